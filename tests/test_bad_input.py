"""Bad input: one clear line naming what and where, a nonzero exit, no traceback, no half-written OUT/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fireforge.cli import main


def _run(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    return rc, err


def _assert_clean_failure(rc, err, *words, out=None):
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fireforge: error:"), err
    for w in words:
        assert w.lower() in err.lower(), (w, err)
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), "a half-written output directory was left"
        leftovers = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp")]
        assert not leftovers, leftovers


def _conv_model(path, *, op="Conv", inputs=None, weight=None, dims=(1, 3, 8, 8), elem=TensorProto.FLOAT):
    w = weight if weight is not None else np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    if op == "Conv":
        node = helper.make_node("Conv", ["input", "w"], ["y"], name="conv_a", pads=[1, 1, 1, 1])
    else:
        node = helper.make_node(op, ["input"], ["y"], name="odd_node")
    graph_inputs = inputs or [helper.make_tensor_value_info("input", elem, list(dims))]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])
    graph = helper.make_graph([node], "g", graph_inputs, [out],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def good_model(build_model):
    return build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=8)


def test_missing_file(tmp_path, capsys):
    rc, err = _run(["compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "nope.onnx", "no such file", out=tmp_path / "out")


def test_truncated_onnx_file(good_model, tmp_path, capsys):
    data = good_model.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    rc, err = _run(["compile", str(bad), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "truncated.onnx", out=tmp_path / "out")


def test_non_onnx_file(tmp_path, capsys):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is a text file, not a model\n" * 20)
    rc, err = _run(["compile", str(bad), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "notes.onnx", out=tmp_path / "out")


def test_unsupported_op_names_node_and_op(tmp_path, capsys):
    path = _conv_model(tmp_path / "m.onnx", op="Sigmoid")
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "odd_node", "Sigmoid", "not supported", "fireforge compile --list-ops",
                          out=tmp_path / "out")


def test_dynamic_input_dims(tmp_path, capsys):
    inp = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", 8])]
    path = _conv_model(tmp_path / "m.onnx", inputs=inp)
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "input", "dynamic", out=tmp_path / "out")


def test_unknown_input_shape(tmp_path, capsys):
    inp = [helper.make_tensor_value_info("input", TensorProto.FLOAT, None)]
    path = _conv_model(tmp_path / "m.onnx", inputs=inp)
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "input", "shape", out=tmp_path / "out")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_weights(tmp_path, capsys, bad):
    w = np.ones((4, 3, 3, 3), np.float32)
    w[1, 2, 0, 0] = bad
    path = _conv_model(tmp_path / "m.onnx", weight=w)
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "'w'", "conv_a", "NaN/Inf", out=tmp_path / "out")


def test_more_than_one_input(tmp_path, capsys):
    inp = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8]),
           helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 3, 8, 8])]
    path = _conv_model(tmp_path / "m.onnx", inputs=inp)
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "2 inputs", "extra", out=tmp_path / "out")


def test_non_image_input_rank(tmp_path, capsys):
    path = _conv_model(tmp_path / "m.onnx", dims=(1, 192))
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    _assert_clean_failure(rc, err, "rank 2", "input", out=tmp_path / "out")


def test_non_empty_output_dir_needs_force(good_model, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    rc, err = _run(["compile", str(good_model), "-o", str(out)], capsys)
    assert rc == 2 and "not empty" in err and "--force" in err and "Traceback" not in err
    assert (out / "precious.txt").read_text() == "keep me"
    assert _run(["compile", str(good_model), "-o", str(out), "--force"], capsys)[0] == 0
    assert not (out / "precious.txt").exists() and (out / "manifest.json").is_file()


def test_killed_run_leftovers_are_swept(good_model, tmp_path, capsys):
    """A run killed mid-build (SIGKILL: no cleanup) leaves its hidden temp dir; the next run removes it,
    but never the temp dir of a run still alive."""
    from fireforge.core.outdir import prepare_output_dir

    out = tmp_path / "out"
    code = ("import os, sys; from pathlib import Path; from fireforge.core.outdir import prepare_output_dir; "
            "t = prepare_output_dir(Path(sys.argv[1]), False); (t / 'half.v').write_text('x'); "
            "print(t, flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    dead = Path(proc.stdout.strip())
    assert proc.returncode == -9 and (dead / "half.v").is_file()
    alive = prepare_output_dir(out, False)          # this process's: still running
    assert _run(["compile", str(good_model), "-o", str(out)], capsys)[0] == 0
    assert not dead.exists() and alive.is_dir()
    assert (out / "manifest.json").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir(good_model, tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        rc, err = _run(["compile", str(good_model), "-o", str(parent / "out")], capsys)
        _assert_clean_failure(rc, err, "cannot write")
    finally:
        parent.chmod(0o700)


def test_output_path_is_a_file(good_model, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    rc, err = _run(["compile", str(good_model), "-o", str(target)], capsys)
    _assert_clean_failure(rc, err, "not a directory")
    assert target.read_text() == "x"


def test_output_under_a_file_is_unwritable(good_model, tmp_path, capsys):
    """Works as root too: a path below a regular file can never be created."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    rc, err = _run(["compile", str(good_model), "-o", str(blocker / "out")], capsys)
    _assert_clean_failure(rc, err, "cannot write")


def test_calibration_data_of_the_wrong_shape(good_model, tmp_path, capsys):
    np.save(tmp_path / "calib.npy", np.zeros((4, 3, 16, 16), np.float32))
    rc, err = _run(["compile", str(good_model), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "calib.npy")],
                   capsys)
    _assert_clean_failure(rc, err, "calib.npy", "[4, 3, 16, 16]", "[N, 3, 8, 8]", out=tmp_path / "out")


def test_calibration_folder_without_images(good_model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, err = _run(["compile", str(good_model), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "empty")],
                   capsys)
    _assert_clean_failure(rc, err, "no image files", out=tmp_path / "out")


def test_bad_engine_config(good_model, tmp_path, capsys):
    cfg = tmp_path / "engine.json"
    cfg.write_text('{"mac_units": 48}')
    rc, err = _run(["compile", str(good_model), "-o", str(tmp_path / "out"), "--config", str(cfg)], capsys)
    _assert_clean_failure(rc, err, "mac_units", "48", out=tmp_path / "out")
    cfg.write_text('{"add_unit": "yes"}')
    rc, err = _run(["compile", str(good_model), "-o", str(tmp_path / "out"), "--config", str(cfg)], capsys)
    _assert_clean_failure(rc, err, "add_unit", "'yes'", out=tmp_path / "out")
    cfg.write_text('{"lanes": 64}')
    rc, err = _run(["compile", str(good_model), "-o", str(tmp_path / "out"), "--config", str(cfg)], capsys)
    _assert_clean_failure(rc, err, "unknown key", "lanes", out=tmp_path / "out")


def test_compare_with_wrong_input_shape_and_missing_output_dir(good_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(["compile", str(good_model), "-o", str(out)], capsys)[0] == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 9, 9), np.float32))
    rc, err = _run(["compare", str(out), "--input", str(tmp_path / "x.npy")], capsys)
    _assert_clean_failure(rc, err, "x.npy", "[1, 3, 9, 9]")
    rc, err = _run(["compare", str(tmp_path / "nothing"), "--input", str(tmp_path / "x.npy")], capsys)
    _assert_clean_failure(rc, err, "nothing", "fireforge compile")


def test_console_script_failure_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fireforge.cli", "compile", str(tmp_path / "missing.onnx"), "-o",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_engine_config_without_add_unit_refuses_a_bypass_network(build_model, tmp_path, capsys):
    model = build_model("v1_1", input_size=32, classes=4, squeeze_ratio=0.03125, bypass="simple")
    cfg = tmp_path / "engine.json"
    cfg.write_text('{"mac_units": 16, "add_unit": false}')
    rc, err = _run(["compile", str(model), "-o", str(tmp_path / "out"), "--config", str(cfg)], capsys)
    last = err.splitlines()[-1]         # after the quantizer's progress line: the program is known by then
    _assert_clean_failure(rc, last, "add_unit is false", "'fire3/bypass_add' is an add", out=tmp_path / "out")
    assert "Traceback" not in err
