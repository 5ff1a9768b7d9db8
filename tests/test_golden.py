"""The golden model's fast paths equal its integer specification, and its blocks equal plain definitions."""

import numpy as np
import onnx
from conftest import random_input

from fireforge.models.squeezenet import build_squeezenet
from fireforge.sim import golden
from fireforge.sw.compile import compile_model
from fireforge.core.program import ConvLayer, MaxPoolLayer, Program


def test_float32_requant_twin_equals_the_integer_spec_on_a_whole_network(tmp_path):
    onnx.save(build_squeezenet("v1_1", input_size=64, classes=10, bypass="complex"), tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "out")
    program = Program.load(tmp_path / "out")
    for seed in range(3):
        x = random_input((1, 3, 64, 64), seed) * (1 + seed)    # wider inputs push more values to saturation
        fast = golden.run(program, x)
        spec = golden.run(program, x, integer_requant=True)
        for name, y in spec.layer_outputs.items():
            np.testing.assert_array_equal(fast.layer_outputs[name], y, err_msg=name)


def _direct_conv(layer: ConvLayer, x: np.ndarray, zp: int, out_hw) -> np.ndarray:
    """Σ w·(x − zp) + bias by explicit loops over the kernel (no im2col, no BLAS)."""
    o, c, kh, kw = layer.weights.shape
    t, l, b, r = layer.pads
    xp = np.full((c, x.shape[1] + t + b, x.shape[2] + l + r), zp, np.int64)
    xp[:, t:t + x.shape[1], l:l + x.shape[2]] = x
    oh, ow = out_hw
    sh, sw = layer.stride
    acc = np.zeros((o, oh, ow), np.int64)
    for dy in range(kh):
        for dx in range(kw):
            patch = xp[:, dy:dy + (oh - 1) * sh + 1:sh, dx:dx + (ow - 1) * sw + 1:sw] - zp
            acc += np.einsum("oc,chw->ohw", layer.weights[:, :, dy, dx].astype(np.int64), patch)
    return acc + layer.bias[:, None, None]


def test_conv_accumulators_and_max_pool_equal_direct_definitions(tmp_path):
    onnx.save(build_squeezenet("v1_0", input_size=48, classes=10), tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "out")
    program = Program.load(tmp_path / "out")
    res = golden.run(program, random_input((1, 3, 48, 48), 9))
    for layer in program.layers:
        x = res.tensors[layer.inputs[0]]
        out_t = program.tensors[layer.output]
        hw = (out_t.height, out_t.width)
        if isinstance(layer, ConvLayer):
            zp = program.tensors[layer.input].zero_point
            np.testing.assert_array_equal(golden.conv_accumulate(layer, x, zp, hw), _direct_conv(layer, x, zp, hw))
        elif isinstance(layer, MaxPoolLayer):
            kh, kw = layer.kernel
            sh, sw = layer.stride
            want = np.zeros((x.shape[0], *hw), np.uint8)
            for i in range(hw[0]):
                for j in range(hw[1]):
                    y0, x0 = i * sh - layer.pads[0], j * sw - layer.pads[1]
                    win = x[:, max(0, y0):y0 + kh, max(0, x0):x0 + kw]
                    want[:, i, j] = win.max(axis=(1, 2))
            np.testing.assert_array_equal(res.layer_outputs[layer.name], want)
