"""The README runs as written: its Python API example (default run), its first-run and main-job blocks (--runslow).

Each block is taken from README.md as it stands and run in a fresh directory, so a README edit that breaks a
command fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def block(heading: str, lang: str = "") -> str:
    """The first fenced code block after ``## heading``."""
    text = README.read_text()
    start = text.index(f"## {heading}\n")
    m = re.compile(rf"^```{lang}\n(.*?)^```", re.S | re.M).search(text, start)
    assert m, f"no code block under '{heading}'"
    return m.group(1)


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def test_python_api_example(tmp_path):
    code = block("Python API", "python")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert ", 0 mismatching bytes" in res.stdout and "golden vs ONNX Runtime: 0 mismatching bytes" in res.stdout
    assert (tmp_path / "build/api/v1_1.html").stat().st_size > 5000
    assert len([l for l in res.stdout.splitlines() if " fps " in l]) == 3


@pytest.mark.slow
def test_first_run_and_main_job_walkthrough(tmp_path):
    script = "set -euo pipefail\n" + block("First run") + block("The main job")
    res = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=3600)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    for f in ("build/demo/report.html", "build/v1_1/manifest.json", "build/rtl/fireforge_top.v",
              "build/v1_1_ulx3s.html", "build/explore/results.json", "build/explore/report.html"):
        assert (tmp_path / f).exists(), f
    assert "0 mismatching bytes vs golden" in res.stdout
