"""Damaged compile outputs (issue #18, class 4): every consumer of ``OUT/`` — ``generate``, ``generate --board``,
``compare``, ``simulate`` — refuses a deleted, truncated, edited or replaced file with exit 2 and one line
naming the file and the command that rebuilds it; ``simulate`` refuses before it builds anything.

One small Fire module is compiled once; each case damages a fresh copy of it. Damage that keeps the manifest's
checksums consistent (the file edited *and* its sha256 in ``manifest.json`` updated) reaches the structural
checks behind the checksums: program.json / program.npz against each other, the images against the engine.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fireforge.core.compiled import Compiled
from tests.support.cli import refuse

HINT = ("fireforge compile", "--force")          # every refusal names the command that rebuilds OUT/


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(OUT/, an input .npy): a Fire module, 16 MAC units, compiled once for the module."""
    from fireforge.models import squeezenet
    from fireforge.sw.compile import compile_model
    from fireforge.core.config import EngineConfig
    import onnx

    d = tmp_path_factory.mktemp("damaged-src")
    onnx.save(squeezenet.build_fire(in_channels=3, squeeze=4, expand1x1=4, expand3x3=4, input_size=6), d / "fire.onnx")
    compile_model(d / "fire.onnx", d / "out", config=EngineConfig(mac_units=16))
    x = d / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(np.float32))
    return d / "out", x


# -- damage helpers ---------------------------------------------------------------------------------------------

def _json(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc, indent=1))


def _manifest(edit):
    return lambda out: _json(out / "manifest.json", edit)


def _rehash(out: Path, name: str) -> None:
    """Record ``name``'s present sha256 in the manifest: the edit passes the checksums, the checks behind them
    must catch it."""
    digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
    _json(out / "manifest.json", lambda m: m["files"].__setitem__(name, digest))


def _program(edit):
    def damage(out):
        _json(out / "program.json", edit)
        _rehash(out, "program.json")
    return damage


def _npz(edit):
    def damage(out):
        with np.load(out / "program.npz") as z:
            arrays = {k: z[k] for k in z.files}
        edit(arrays)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (out / "program.npz").write_bytes(buf.getvalue())
        _rehash(out, "program.npz")
    return damage


def _truncate(name, keep=0.5, rehash=False):
    def damage(out):
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[:int(len(data) * keep)])
        if rehash:
            _rehash(out, name)
    return damage


def _delete(name):
    return lambda out: (out / name).unlink()


def _to_dir(name):
    def damage(out):
        (out / name).unlink()
        (out / name).mkdir()
    return damage


def _edit_hex(out):
    path = out / "weights.hex"
    text = path.read_text()
    i = next(k for k, c in enumerate(text) if c in "0123456789abcdef")
    path.write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:])


def _flip_bin(out):
    data = bytearray((out / "weights.bin").read_bytes())
    data[0] ^= 0x01
    (out / "weights.bin").write_bytes(bytes(data))


def _dangling(name):
    def damage(out):
        (out / name).unlink()
        (out / name).symlink_to(out.parent / "gone" / name)
    return damage


def _symlink_elsewhere(out):
    """weights.hex a symlink to another (edited) copy outside OUT/."""
    other = out.parent / "elsewhere"
    other.mkdir()
    shutil.copyfile(out / "weights.hex", other / "weights.hex")
    _edit_hex(other)
    (out / "weights.hex").unlink()
    (out / "weights.hex").symlink_to(other / "weights.hex")


def _engine_json(mac_units, *, manifest=False, rehash=False):
    """engine.json edited to another MAC count (and, consistently, the manifest's engine and checksum)."""
    def damage(out):
        _json(out / "engine.json", lambda e: e.__setitem__("mac_units", mac_units))
        if manifest:
            _json(out / "manifest.json", lambda m: m["engine"].__setitem__("mac_units", mac_units))
        if rehash:
            _rehash(out, "engine.json")
    return damage


def _first_conv(doc):
    return next(l for l in doc["layers"] if l["kind"] == "conv")


def _out_is_a_file(out):
    shutil.rmtree(out)
    out.write_text("not a directory\n")


# -- the corpus: (id, damage, words the one line must hold) ------------------------------------------------------
# words: the damaged file and what is wrong (the rebuild command is checked for every case but the two where
# OUT/ is no compile output at all)

DAMAGE = [
    # the ROM images
    ("weights.hex-deleted", _delete("weights.hex"), ("weights.hex", "missing")),
    ("weights.bin-deleted", _delete("weights.bin"), ("weights.bin", "missing")),
    ("quant.hex-truncated", _truncate("quant.hex"), ("quant.hex", "changed after compiling")),
    ("descriptors.bin-truncated", _truncate("descriptors.bin"), ("descriptors.bin", "bytes")),
    ("weights.hex-edited", _edit_hex, ("weights.hex", "sha256")),
    ("weights.bin-edited", _flip_bin, ("weights.bin", "sha256")),
    ("weights.hex-a-directory", _to_dir("weights.hex"), ("weights.hex", "a directory")),
    ("quant.bin-dangling-symlink", _dangling("quant.bin"), ("quant.bin", "does not exist")),
    ("weights.hex-symlinked-elsewhere", _symlink_elsewhere, ("weights.hex", "sha256")),
    # manifest.json
    ("manifest-deleted", _delete("manifest.json"), ("manifest.json", "missing")),
    ("manifest-truncated", _truncate("manifest.json"), ("manifest.json", "not valid JSON")),
    ("manifest-empty", _truncate("manifest.json", 0), ("manifest.json", "not valid JSON")),
    ("manifest-a-directory", _to_dir("manifest.json"), ("manifest.json", "a directory")),
    ("manifest-a-list", lambda out: (out / "manifest.json").write_text("[1, 2]"), ("manifest.json", "not a fireforge")),
    ("manifest-older-version", _manifest(lambda m: m.__setitem__("fireforge", 1)), ("manifest.json", "format 1")),
    ("manifest-image-entry-missing", _manifest(lambda m: m["images"].pop("quant")), ("manifest.json", "quant")),
    ("manifest-words-negative", _manifest(lambda m: m["images"]["weights"].__setitem__("words", -3)),
     ("manifest.json", "weights words")),
    ("manifest-layer-missing", _manifest(lambda m: m["layers"].pop()), ("manifest.json", "layer")),
    ("manifest-layer-not-an-object", _manifest(lambda m: m["layers"].__setitem__(0, "conv")),
     ("manifest.json", "layers[0]")),
    ("manifest-tensor-missing", _manifest(lambda m: m["tensors"].pop(next(iter(m["tensors"])))),
     ("manifest.json", "tensors")),
    ("manifest-files-missing", _manifest(lambda m: m.pop("files")), ("manifest.json", "files")),
    ("manifest-checksum-dropped", _manifest(lambda m: m["files"].pop("program.npz")), ("manifest.json", "program.npz")),
    ("manifest-names-a-file-outside", _manifest(lambda m: m["images"]["weights"].__setitem__("hex", "../weights.hex")),
     ("manifest.json", "../weights.hex")),
    ("manifest-engine-wrong-type", _manifest(lambda m: m["engine"].__setitem__("mac_units", "16")),
     ("manifest.json", "mac_units")),
    ("manifest-word-bits-edited", _manifest(lambda m: m["images"]["weights"].__setitem__("word_bits", 127)),
     ("manifest.json", "127-bit")),
    ("manifest-word-bytes-edited", _manifest(lambda m: m["images"]["weights"].update(word_bits=64)),
     ("manifest.json", "64-bit words in 16 bytes")),
    ("manifest-tensor-shape-edited", _manifest(lambda m: next(iter(m["tensors"].values())).update(height=3)),
     ("manifest.json", "program.json")),
    # engine.json
    ("engine.json-mac-units-edited", _engine_json(64), ("engine.json", "sha256")),
    ("engine.json-edited-and-rehashed", _engine_json(64, rehash=True), ("engine.json", "disagrees")),
    ("engine.json-and-manifest-edited", _engine_json(64, manifest=True, rehash=True), ("weights", "64 MAC units")),
    ("engine.json-deleted", _delete("engine.json"), ("engine.json", "missing")),
    # program.json
    ("program.json-deleted", _delete("program.json"), ("program.json", "missing")),
    ("program.json-edited", lambda out: _json(out / "program.json", lambda d: d.__setitem__("input_name", "x")),
     ("program.json", "sha256")),
    ("program.json-truncated", _truncate("program.json", rehash=True), ("program.json", "not valid JSON")),
    ("program.json-field-missing", _program(lambda d: _first_conv(d).pop("stride")), ("program.json", "stride")),
    ("program.json-wrong-type", _program(lambda d: _first_conv(d).__setitem__("pads", "1,1,1,1")),
     ("program.json", "pads")),
    ("program.json-unknown-kind", _program(lambda d: d["layers"][0].__setitem__("kind", "softmax")),
     ("program.json", "softmax")),
    ("program.json-tensor-absent", _program(lambda d: d["layers"][-1].__setitem__("input", "nowhere")),
     ("program.json", "nowhere")),
    ("program.json-shape-disagrees", _program(lambda d: d["tensors"][0].__setitem__("channels", 5)),
     ("program.json and program.npz disagree", "weights", "5 channels")),
    ("program.json-zero-point-out-of-range", _program(lambda d: d["tensors"][0].__setitem__("zero_point", 300)),
     ("program.json", "zero_point")),
    # program.npz
    ("program.npz-deleted", _delete("program.npz"), ("program.npz", "missing")),
    ("program.npz-truncated", _truncate("program.npz"), ("program.npz", "sha256")),
    ("program.npz-truncated-rehashed", _truncate("program.npz", rehash=True), ("program.npz", "damaged")),
    ("program.npz-array-missing", _npz(lambda a: a.pop("0.bias")), ("program.npz", "0.bias")),
    ("program.npz-wrong-dtype", _npz(lambda a: a.__setitem__("0.weights", a["0.weights"].astype(np.float32))),
     ("program.npz", "int8")),
    ("program.npz-wrong-shape", _npz(lambda a: a.__setitem__("0.scale", a["0.scale"][:-1])),
     ("program.npz", "scale")),
    # quantized.onnx
    ("quantized.onnx-deleted", _delete("quantized.onnx"), ("quantized.onnx", "missing")),
    ("quantized.onnx-truncated", _truncate("quantized.onnx"), ("quantized.onnx", "sha256")),
    # OUT/ itself
    ("out-is-a-file", _out_is_a_file, ("not a directory",)),
    ("out-is-empty", lambda out: [p.unlink() for p in out.iterdir()], ("manifest.json is missing",)),
]

CONSUMERS = {
    "generate": lambda out, x, tmp: ["generate", out, "-o", tmp / "rtl"],
    "board": lambda out, x, tmp: ["generate", out, "-o", tmp / "rtl", "--board", "kc705"],
    "compare": lambda out, x, tmp: ["compare", out, "--input", x],
    "simulate": lambda out, x, tmp: ["simulate", out, "--input", x],
}

NO_HINT = {"out-is-a-file", "out-is-empty"}


@pytest.fixture
def damaged(compiled, tmp_path, monkeypatch):
    """damaged(fn) -> a copy of the compile output with fn applied; a Verilator build would land in tmp_path
    (and so fail the check that nothing was left behind)."""
    monkeypatch.setenv("FIREFORGE_BUILD", str(tmp_path / "build"))

    def make(fn):
        out = Path(shutil.copytree(compiled[0], tmp_path / "out"))
        fn(out)
        return out
    return make


@pytest.mark.parametrize("consumer", list(CONSUMERS))
@pytest.mark.parametrize("case", DAMAGE, ids=[c[0] for c in DAMAGE])
def test_a_damaged_output_is_refused_in_one_line(case, consumer, compiled, damaged, tmp_path, capsys):
    name, fn, words = case
    out = damaged(fn)
    t0 = time.monotonic()
    refuse(capsys, CONSUMERS[consumer](out, compiled[1], tmp_path), *words,
           *(() if name in NO_HINT else HINT), where=tmp_path)
    assert time.monotonic() - t0 < 20, "refused only after building or running something"


@pytest.mark.parametrize("case", [
    ("rehashed-garbage", lambda out: ((out / "quantized.onnx").write_bytes(b"\x08\x07garbage"),
                                      _rehash(out, "quantized.onnx")), ("quantized.onnx", "not an onnx model")),
    ("a-directory-rehash-kept", _to_dir("quantized.onnx"), ("quantized.onnx", "a directory")),
], ids=lambda c: c[0])
def test_compare_names_a_damaged_quantized_onnx(case, compiled, damaged, tmp_path, capsys):
    """Only compare reads quantized.onnx: a copy whose checksum was updated still is one line naming it."""
    _, fn, words = case
    refuse(capsys, CONSUMERS["compare"](damaged(fn), compiled[1], tmp_path), *words, *HINT, where=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
@pytest.mark.parametrize("name", ["weights.bin", "manifest.json", "program.npz"])
def test_an_unreadable_file_is_named(name, compiled, damaged, tmp_path, capsys):
    out = damaged(lambda out: None)
    (out / name).chmod(0)
    try:
        refuse(capsys, CONSUMERS["generate"](out, compiled[1], tmp_path), name, "permission", *HINT)
        assert not (tmp_path / "rtl").exists()
    finally:
        (out / name).chmod(0o644)


def test_symlinks_to_the_same_files_load(compiled, tmp_path):
    """A symlinked OUT/, or files symlinked to identical copies, are the compile output itself."""
    (tmp_path / "link").symlink_to(compiled[0])
    assert Compiled.load(tmp_path / "link").config.mac_units == 16
    out = Path(shutil.copytree(compiled[0], tmp_path / "out"))
    (out / "weights.hex").unlink()
    (out / "weights.hex").symlink_to(compiled[0] / "weights.hex")
    assert Compiled.load(out).images["weights"].words > 0


def test_no_consumer_skips_the_checksums():
    """verify=False is for a caller that just validated the same directory, never for a user's OUT/."""
    root = Path(__file__).resolve().parent.parent
    hits = [str(p.relative_to(root)) for sub in ("fireforge", "hw", "sim", "sw", "benchmarks")
            for p in (root / sub).rglob("*.py") if "verify=False" in p.read_text() and p.name != "compiled.py"]
    assert hits == [], hits


def test_an_edited_im2col_layout_is_refused(build_model, tmp_path, capsys):
    """A 3x3 first conv reads its input as host-packed windows: the manifest's im2col entry must be that conv's."""
    from fireforge.sw.compile import compile_model

    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=6)
    out = tmp_path / "out"
    compile_model(model, out)
    Compiled.load(out)
    _manifest(lambda m: next(t for t in m["tensors"].values() if t["im2col"])["im2col"].update(kernel=[1, 1]))(out)
    refuse(capsys, ["generate", out, "-o", tmp_path / "rtl"], "manifest.json", "im2col", *HINT, where=tmp_path)


def test_compare_on_a_program_without_manifest(compiled, tmp_path):
    """The compiler's own check compares program.json + quantized.onnx before the manifest exists: that keeps
    working, and a damaged quantized.onnx there is one FireforgeError naming it."""
    from fireforge.errors import FireforgeError
    from fireforge.sw.compare import compare

    for name in ("program.json", "program.npz", "quantized.onnx"):
        shutil.copyfile(compiled[0] / name, tmp_path / name)
    x = np.load(compiled[1])
    assert compare(tmp_path, x).mismatches == 0
    _truncate("quantized.onnx")(tmp_path)
    with pytest.raises(FireforgeError, match=r"quantized\.onnx is damaged \(not an ONNX model"):
        compare(tmp_path, x)
