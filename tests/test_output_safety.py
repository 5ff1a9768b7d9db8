"""Bad-input corpus, class 3: a command never destroys what it reads. ``--force`` replaces a previous output
only: an OUT that is or holds an input is refused (and every input survives byte for byte); a symlinked OUT
is written through; nothing hidden stays behind: after a refusal, a failure, or SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fireforge.cli import main
from tests.support.cli import refuse, run_cli, snapshot

CONV = ["models", "build", "conv", "--in-channels", "3", "--out-channels", "4", "--kernel", "3", "--input-size", "8"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny conv model and its compiled OUT/, copied into each test's folder as needed."""
    d = tmp_path_factory.mktemp("output-safety")
    assert main([*CONV, "-o", str(d / "m.onnx")]) == 0
    assert main(["compile", str(d / "m.onnx"), "-o", str(d / "out")]) == 0
    return d


@pytest.fixture
def project(built, tmp_path):
    """``tmp_path/proj/`` holding what compile reads: the model, a calibration batch, an engine config, images;
    ``tmp_path/m.onnx``, the model outside it; and ``tmp_path/out/``, a compiled program."""
    proj = tmp_path / "proj"
    (proj / "images").mkdir(parents=True)
    shutil.copy(built / "m.onnx", proj / "m.onnx")
    shutil.copy(built / "m.onnx", tmp_path / "m.onnx")
    np.save(proj / "cal.npy", np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    (proj / "engine.json").write_text('{"mac_units": 16}')
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(proj / "images" / f"{i}.png")
    shutil.copytree(built / "out", tmp_path / "out")
    return proj


def hidden(root: Path) -> list[str]:
    """Hidden files or folders anywhere under ``root``: what a run left beside its output."""
    return sorted(p for p in snapshot(root) if Path(p).name.startswith("."))


# -- --force never removes an input ---------------------------------------------------------------------------

COMPILE_OVER_INPUTS = {
    "model-in-out": (["compile", "{p}/m.onnx", "-o", "{p}", "--force"], "m.onnx"),
    "model-in-out-no-force": (["compile", "{p}/m.onnx", "-o", "{p}"], "m.onnx"),
    "model-two-levels-down": (["compile", "{p}/images/../m.onnx", "-o", "{t}", "--force"], "m.onnx"),
    "calib-npy-in-out": (["compile", "{t}/m.onnx", "--calib", "{p}/cal.npy", "-o", "{p}", "--force"], "cal.npy"),
    "calib-folder-is-out": (["compile", "{p}/m.onnx", "--calib", "{p}/images", "-o", "{p}/images", "--force"],
                            "images"),
    "config-in-out": (["compile", "{t}/m.onnx", "--config", "{p}/engine.json", "-o", "{p}", "--force"],
                      "engine.json"),
    "model-through-a-symlinked-folder": (["compile", "{t}/link/m.onnx", "-o", "{p}", "--force"], "m.onnx"),
    "out-is-a-symlink-to-the-models-folder": (["compile", "{p}/m.onnx", "-o", "{t}/link", "--force"], "m.onnx"),
    "generate-out-is-the-program": (["generate", "{t}/out", "-o", "{t}/out", "--force"], "out"),
    "generate-out-holds-the-program": (["generate", "{t}/out", "-o", "{t}", "--force"], "out"),
    "generate-out-is-the-program-through-a-symlink": (["generate", "{t}/out", "-o", "{t}/outlink", "--force"],
                                                      "out"),
    "board-generate-out-is-the-program": (["generate", "{t}/out", "-o", "{t}/out", "--board", "kc705", "--force"],
                                          "out"),
}


@pytest.mark.parametrize("args, culprit", COMPILE_OVER_INPUTS.values(), ids=COMPILE_OVER_INPUTS.keys())
def test_force_never_removes_an_input(args, culprit, project, tmp_path, capsys):
    (tmp_path / "link").symlink_to(project)
    (tmp_path / "outlink").symlink_to(tmp_path / "out")
    args = [a.format(p=project, t=tmp_path) for a in args]
    refuse(capsys, args, culprit, "input", where=tmp_path)     # where: every input, byte for byte


def test_generate_into_a_folder_inside_the_program_keeps_the_program(project, tmp_path, capsys):
    before = snapshot(tmp_path / "out")
    assert run_cli(["generate", tmp_path / "out", "-o", tmp_path / "out" / "rtl", "--force"], capsys)[0] == 0
    after = snapshot(tmp_path / "out")
    assert {k: v for k, v in after.items() if "/rtl" not in k} == before
    assert (tmp_path / "out" / "rtl" / "fireforge_top.v").is_file() and not hidden(tmp_path)


def test_force_replaces_a_previous_output_and_leaves_nothing_hidden(project, tmp_path, capsys):
    inputs = snapshot(project)
    (tmp_path / "out" / "stale.txt").write_text("from an older run")
    assert run_cli(["compile", project / "m.onnx", "--calib", project / "cal.npy", "-o", tmp_path / "out",
                    "--force"], capsys)[0] == 0
    assert not (tmp_path / "out" / "stale.txt").exists() and (tmp_path / "out" / "manifest.json").is_file()
    assert snapshot(project) == inputs and not hidden(tmp_path)


# -- a symlinked OUT is written through -------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["compile", "generate"])
def test_symlinked_out_is_written_through(command, project, tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (real / "old.txt").write_text("previous output")
    link = tmp_path / "link"
    link.symlink_to(real)
    args = (["compile", project / "m.onnx"] if command == "compile" else ["generate", tmp_path / "out"])
    assert run_cli([*args, "-o", link, "--force"], capsys)[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert not (real / "old.txt").exists()
    assert (real / ("manifest.json" if command == "compile" else "fireforge_top.v")).is_file()
    assert not hidden(tmp_path)


def test_dangling_symlinked_out_is_created_at_its_target(project, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "later" / "out")
    assert run_cli(["compile", project / "m.onnx", "-o", link], capsys)[0] == 0
    assert link.is_symlink() and (tmp_path / "later" / "out" / "manifest.json").is_file()
    assert not hidden(tmp_path)


def test_models_build_writes_through_a_symlinked_file(tmp_path, capsys):
    target = tmp_path / "models" / "m.onnx"
    target.parent.mkdir()
    target.write_text("an older model")
    (tmp_path / "m.onnx").symlink_to(target)
    assert run_cli([*CONV, "-o", tmp_path / "m.onnx"], capsys)[0] == 0
    assert (tmp_path / "m.onnx").is_symlink() and target.stat().st_size > 100
    assert not hidden(tmp_path)


# -- a failed models build leaves nothing -------------------------------------------------------------------------

def test_models_build_into_a_directory(tmp_path, capsys):
    (tmp_path / "dir.onnx").mkdir()
    refuse(capsys, [*CONV, "-o", tmp_path / "dir.onnx"], "dir.onnx", "is a directory", where=tmp_path)


def test_models_build_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    refuse(capsys, [*CONV, "-o", tmp_path / "file" / "m.onnx"], "cannot write", "m.onnx", where=tmp_path)


def test_models_build_refused_model_writes_nothing(tmp_path, capsys):
    (tmp_path / "m.onnx").write_text("an older model")
    refuse(capsys, ["models", "build", "v1_1", "--input-size", "8", "-o", tmp_path / "m.onnx"], "input",
           where=tmp_path)


# -- SIGTERM: cleanup runs ----------------------------------------------------------------------------------------------

def test_sigterm_during_compile_leaves_nothing(built, tmp_path):
    """compile is terminated while it quantizes (its scratch folder exists): it exits 143 with one line, and
    nothing stays in $TMPDIR or beside OUT."""
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    # a model and a calibration batch big enough that quantizing takes a few tenths of a second
    assert main(["models", "build", "v1_1", "--input-size", "64", "--classes", "10", "-o",
                 str(work / "v.onnx")]) == 0
    np.save(work / "cal.npy", np.random.default_rng(0).standard_normal((96, 3, 64, 64)).astype(np.float32))
    inputs = snapshot(work)
    proc = subprocess.Popen([sys.executable, "-m", "fireforge.cli", "compile", str(work / "v.onnx"),
                             "--calib", str(work / "cal.npy"), "-o", str(work / "out")],
                            env={**os.environ, "TMPDIR": str(temp)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(work.glob(".out.tmp-*/fireforge-quant-*")):
            break
        time.sleep(0.002)
    assert proc.poll() is None, "compile finished before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "fireforge: terminated" and "Traceback" not in err
    assert snapshot(work) == inputs, "left beside OUT"
    # .ses: onnxruntime's import writes its session id there, run or no run
    assert [p.name for p in temp.iterdir() if p.name != ".ses"] == [], "left in TMPDIR"
