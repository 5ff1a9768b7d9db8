"""The compiler end to end: golden model vs ONNX Runtime, byte for byte, and the images it writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import random_input

from fireforge.cli import main
from fireforge.sim import golden
from fireforge.sw import compare as cmp
from fireforge.sw.compile import compile_model
from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Op, unpack
from fireforge.core.compiled import Compiled
from fireforge.sw.images import folded_bias
from fireforge.core.program import ConvLayer, Program
from fireforge.sw.schedule import schedule

VARIANTS = [("v1_0", "none"), ("v1_1", "none"), ("v1_1", "simple"), ("v1_1", "complex")]


def _assert_exact(out_dir, shape, seeds):
    """Every layer 0 mismatching bytes golden vs ORT, and the same top-1, on each input."""
    program = Program.load(out_dir)
    for seed in seeds:
        result = cmp.compare(out_dir, random_input(shape, seed), program)
        bad = [(l.name, l.mismatches, l.max_abs_diff) for l in result.layers if l.mismatches]
        assert not bad, f"input seed {seed}: layers differing from ORT: {bad}"
        assert result.top1_agree, (result.top5_golden, result.top5_ort)


@pytest.fixture(scope="module")
def compiled(build_model, tmp_path_factory):
    cache = {}

    def get(version, bypass, size):
        key = (version, bypass, size)
        if key not in cache:
            out = tmp_path_factory.mktemp("out") / f"{version}-{bypass}-{size}"
            model = build_model(version, input_size=size, classes=10, bypass=bypass)
            compile_model(model, out)
            cache[key] = out
        return cache[key]

    return get


@pytest.mark.parametrize("version,bypass", VARIANTS)
def test_variant_is_byte_exact_with_onnxruntime_at_64(compiled, version, bypass):
    _assert_exact(compiled(version, bypass, 64), (1, 3, 64, 64), seeds=range(8))


@pytest.mark.slow
@pytest.mark.parametrize("version,bypass", VARIANTS)
def test_variant_is_byte_exact_with_onnxruntime_at_224(build_model, tmp_path, version, bypass):
    out = tmp_path / "out"
    compile_model(build_model(version, input_size=224, classes=1000, bypass=bypass), out)
    _assert_exact(out, (1, 3, 224, 224), seeds=range(8))


def test_output_directory_is_complete_and_checksummed(compiled):
    out = compiled("v1_1", "simple", 64)
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "quantized.onnx").is_file()
    onnx.checker.check_model(onnx.load(out / "quantized.onnx"))
    assert manifest["engine"]["mac_units"] == 64
    for name, entry in manifest["images"].items():
        for suffix in ("bin", "hex"):
            data = (out / entry[suffix]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry[f"{suffix}_sha256"], name
        hex_lines = (out / entry["hex"]).read_text().split()
        assert len(hex_lines) == entry["words"]
        # the .hex and .bin hold the same words
        words = Compiled.load(out).images[name].read()
        for line, word in zip(hex_lines[:50], words[:50]):
            assert int(line, 16) == int.from_bytes(word.tobytes(), "little")
    assert manifest["totals"]["weight_bits"] == 8 * sum(
        l.weights.size for l in Program.load(out).layers if isinstance(l, ConvLayer))


def test_images_decode_back_to_the_program(compiled):
    """Weights, requant words and descriptors read back from the .bin files equal the program."""
    out = compiled("v1_1", "complex", 64)
    program = Program.load(out)
    manifest = json.loads((out / "manifest.json").read_text())
    v = EngineConfig(**manifest["engine"]).vector
    images = Compiled.load(out).images
    weights, quant, descs = (images[name].read() for name in ("weights", "quant", "descriptors"))
    sched = schedule(program, EngineConfig(mac_units=manifest["engine"]["mac_units"]))
    rom = [e for e in manifest["layers"] if not (e.get("fused_with") and e["kind"] == "maxpool")]
    assert len(descs) == len(rom) + 1 and len(rom) < len(program.layers)     # the fused pools have none
    by_name = {l.name: l for l in program.layers}
    for i, entry in enumerate(rom):
        layer = by_name[entry["name"]]
        d = unpack(int.from_bytes(descs[i].tobytes(), "little"))
        assert d["op"].name == entry["descriptor"]["op"]
        assert d["pool_en"] == bool(entry["fused_with"])
        out_t = program.tensors[layer.output]
        assert (d["out_h"], d["out_w"]) == (out_t.height, out_t.width)
        if not isinstance(layer, ConvLayer):
            continue
        assert d["op"] == Op.CONV
        w_eff = sched.conv_weights(layer)          # an im2col conv1 runs as a 1x1 conv over kh·kw·C taps
        o, c, kh, kw = w_eff.shape
        in_t = manifest["tensors"][layer.input]
        g_in = in_t["groups"]
        assert d["g_count"] == g_in and (d["kernel_h"], d["kernel_w"]) == (kh, kw)
        og = -(-o // v)
        block = weights[d["weight_addr"]:d["weight_addr"] + og * kh * kw * g_in].view(np.int8)
        block = block.reshape(og, kh, kw, g_in, v, v).transpose(0, 4, 3, 5, 1, 2).reshape(og * v, g_in * v, kh, kw)
        # logical input channel c lives at physical channel index[c]; padding channels hold zeros
        lay = sched.layouts[layer.input]
        index = np.arange(c) if lay.im2col else lay.channel_index
        np.testing.assert_array_equal(block[:o][:, index], w_eff)
        assert not np.any(np.delete(block, index, axis=1)) and not np.any(block[o:])
        q = quant[d["quant_addr"]:d["quant_addr"] + og].reshape(og * v, 8)[:o]
        bias = q[:, 0:4].copy().view("<i4").reshape(-1)
        mant = q[:, 4].astype(np.int64) | (q[:, 5].astype(np.int64) << 8) | (q[:, 6].astype(np.int64) << 16)
        np.testing.assert_array_equal(bias, folded_bias(layer, program.tensors[layer.input].zero_point))
        assert np.all((mant >= 1 << 23) & (mant < 1 << 24))
    assert unpack(int.from_bytes(descs[len(rom)].tobytes(), "little"))["op"] == Op.END


def test_concat_slices_are_group_aligned_for_odd_channel_counts(build_model, tmp_path):
    """A Fire module whose expand1x1 is not a multiple of the vector still decodes exactly."""
    model = build_model("fire", in_channels=24, squeeze=12, expand1x1=20, expand3x3=28, input_size=9)
    out = tmp_path / "out"
    compile_model(model, out, config=EngineConfig(mac_units=64))
    manifest = json.loads((out / "manifest.json").read_text())
    program = Program.load(out)
    cat = program.output
    assert manifest["tensors"][cat]["groups"] == 3 + 4       # ceil(20/8) + ceil(28/8)
    e3 = [l for l in program.layers if l.out_channel_offset == 20][0]
    e3_desc = manifest["layers"][program.layers.index(e3)]["descriptor"]
    assert e3_desc["out_addr"] == manifest["tensors"][cat]["addr"] + 3
    _assert_exact(out, (1, 24, 9, 9), seeds=range(3))


def test_engine_config_from_json_and_mac_units(build_model, tmp_path):
    cfg = tmp_path / "engine.json"
    cfg.write_text(json.dumps({"mac_units": 16}))
    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=2, padding=1, input_size=11)
    assert main(["compile", str(model), "-o", str(tmp_path / "a"), "--config", str(cfg)]) == 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["engine"]["mac_units"] == 16
    assert manifest["images"]["weights"]["word_bits"] == 16 * 8
    assert json.loads((tmp_path / "a" / "engine.json").read_text()) == manifest["engine"]


def test_calibration_from_npy_and_from_image_folder(build_model, tmp_path):
    from PIL import Image

    model = build_model("v1_1", input_size=32, classes=10)
    np.save(tmp_path / "calib.npy", np.stack([random_input((3, 32, 32), s) * 2 for s in range(4)]))
    assert main(["compile", str(model), "-o", str(tmp_path / "npy"), "--calib", str(tmp_path / "calib.npy")]) == 0
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["compile", str(model), "-o", str(tmp_path / "img"), "--calib", str(folder)]) == 0
    p_npy, p_img = Program.load(tmp_path / "npy"), Program.load(tmp_path / "img")
    # different calibration data gives different activation scales
    assert p_npy.tensors[p_npy.input].scale != p_img.tensors[p_img.input].scale
    _assert_exact(tmp_path / "img", (1, 3, 32, 32), seeds=[0])


def test_already_quantized_qoperator_model_compiles_to_the_same_program(compiled, tmp_path):
    first = compiled("v1_1", "none", 64)
    out = tmp_path / "again"
    compile_model(first / "quantized.onnx", out)
    a, b = Program.load(first), Program.load(out)
    assert [l.name for l in a.layers] == [l.name for l in b.layers]
    for la, lb in zip(a.layers, b.layers):
        if isinstance(la, ConvLayer):
            np.testing.assert_array_equal(la.weights, lb.weights)
            np.testing.assert_array_equal(la.scale, lb.scale)
    x = random_input((1, 3, 64, 64), 11)
    np.testing.assert_array_equal(golden.run(a, x).output, golden.run(b, x).output)
    _assert_exact(out, (1, 3, 64, 64), seeds=[1])


def test_fire_modules_are_one_unit(compiled):
    program = Program.load(compiled("v1_1", "simple", 64))
    units = dict(program.units())
    for i in range(2, 10):
        names = [l.name for l in units[f"fire{i}"]]
        assert names == [f"fire{i}/squeeze1x1", f"fire{i}/expand1x1", f"fire{i}/expand3x3"]


def test_cli_compare_json_and_exit_status(compiled, tmp_path):
    out = compiled("v1_1", "complex", 64)
    np.save(tmp_path / "x.npy", random_input((1, 3, 64, 64), 5))
    proc = subprocess.run([sys.executable, "-m", "fireforge.cli", "compare", str(out), "--input",
                           str(tmp_path / "x.npy"), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"name", "max_abs_diff", "mismatches", "size"} <= set(doc["layers"][0])
    assert len(doc["top5"]["golden"]) == 5 and doc["top5"]["golden"][0] == doc["top5"]["onnxruntime"][0]
    assert sum(l["mismatches"] for l in doc["layers"]) == 0
    table = subprocess.run([sys.executable, "-m", "fireforge.cli", "compare", str(out), "--input",
                            str(tmp_path / "x.npy")], capture_output=True, text=True)
    assert "fire5/expand3x3" in table.stdout and "top-5 onnxruntime" in table.stdout


def test_compare_accepts_an_image_file(compiled, tmp_path):
    from PIL import Image

    out = compiled("v1_1", "none", 64)
    img = np.random.default_rng(1).integers(0, 256, (80, 100, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "cat.png")
    for pre in ("torchvision", "caffe", "none"):
        assert main(["compare", str(out), "--input", str(tmp_path / "cat.png"), "--preprocess", pre]) == 0


def test_torchvision_style_export(tmp_path):
    from support.zoo_style import build_torchvision_export

    onnx.save(build_torchvision_export("v1_1", input_size=64, classes=10), tmp_path / "tv.onnx")
    compile_model(tmp_path / "tv.onnx", tmp_path / "out")
    assert Program.load(tmp_path / "out").input_name == "x"
    _assert_exact(tmp_path / "out", (1, 3, 64, 64), seeds=range(2))


def test_caffe_model_zoo_style_graph(tmp_path):
    """Opset 7, initializers listed as inputs, floor-mode pools, Dropout, a padded 1x1 conv10, Softmax tail."""
    from support.zoo_style import build_caffe_zoo

    onnx.save(build_caffe_zoo("v1_0", input_size=99, classes=10), tmp_path / "zoo.onnx")
    compile_model(tmp_path / "zoo.onnx", tmp_path / "out")
    program = Program.load(tmp_path / "out")
    conv10 = program.layer("conv10")
    assert conv10.kernel == (1, 1) and conv10.pads == (1, 1, 1, 1)
    _assert_exact(tmp_path / "out", (1, 3, 99, 99), seeds=range(2))


def test_already_quantized_qdq_model(tmp_path):
    """A QDQ model from onnxruntime.quantization (DequantizeLinear → op → QuantizeLinear) is lowered as is."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    class Reader:
        def __init__(self):
            self.items = iter([{"input": random_input((1, 3, 64, 64), s)} for s in range(4)])

        def get_next(self):
            return next(self.items, None)

    from fireforge.models.squeezenet import build_squeezenet

    onnx.save(build_squeezenet(
        "v1_1", input_size=64, classes=10, bypass="simple"), tmp_path / "f.onnx")
    quantize_static(tmp_path / "f.onnx", tmp_path / "qdq.onnx", Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    compile_model(tmp_path / "qdq.onnx", tmp_path / "out")
    assert Program.load(tmp_path / "out").meta["form"] == "qdq"
    _assert_exact(tmp_path / "out", (1, 3, 64, 64), seeds=range(2))
