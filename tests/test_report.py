"""``fireforge report``: the HTML page for a resident and a DRAM-mode compile, the simulate / generate JSON it takes,
the explorer's Pareto section, one-line refusals that write nothing, and the page opened in a real headless
chromium (console errors or an empty page fail; chromium's absence skips, saying so)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fireforge.core.compiled import Compiled
from fireforge.sw.compile import compile_model
from fireforge.sw.report import write_report
from tests.support.cli import refuse, run_cli

HEADINGS = {"cycles": "Per-layer cycles and MAC utilization", "traffic": "DRAM traffic per layer",
            "resources": "Resources against the board&#x27;s capacity", "diff": "HW / golden / ONNX Runtime per layer",
            "pareto": "Design-space exploration: Pareto fronts"}


@pytest.fixture(scope="module")
def resident(build_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "resident"
    compile_model(build_model("v1_1", input_size=32, classes=10), out)
    return Compiled.load(out)


@pytest.fixture(scope="module")
def dram(build_model, tmp_path_factory):
    """v1.1 at 32x32 for the ULX3S: its 0.7 M parameters do not fit the block RAM, so DRAM mode."""
    out = tmp_path_factory.mktemp("report") / "dram"
    compile_model(build_model("v1_1", input_size=32, classes=10), out, board="ulx3s-85f")
    c = Compiled.load(out)
    assert c.config.dram and c.board == "ulx3s-85f"
    return c


def _fake_sim(c: Compiled) -> dict:
    """``simulate --json``'s shape with values no run would give, so the report can only have them from here."""
    layers = [{"name": l.name, "kind": l.kind, "cycles": 900_001 + i, "mismatches": 0, "size": 1}
              for i, l in enumerate(c.program.layers)]
    layers[1]["mismatches"] = 7_777
    return {"layers": layers, "total_cycles": 1, "mismatches": 7_777, "top5": {"hw": [9, 4, 3, 2, 1], "golden": []}}


FAKE_BOARD = {"board": "ulx3s-85f", "fits": True, "fmax_mhz": 98.76, "bitstream": None, "memory": "dram",
              "resources": {"lut": [11_111, 83_640], "ff": [22_222, 83_640], "dsp": [33, 156],
                            "bram_bits": [444_444, 3_833_856]}}


def _point(pid, **kw) -> dict:
    p = dict.fromkeys(("error", "model", "base_e", "incr_e", "freq", "input_size", "classes", "weight_bytes", "macs",
                       "dram_bytes", "clock_mhz", "misfit", "ffs", "dsps", "resources"))
    p.update(id=pid, status="ok", version="v1_1", squeeze_ratio=0.125, pct3x3=0.5, bypass="none", mac_units=64,
             memory="dram", board="ulx3s-85f", fits=True)
    p.update(kw)
    return p


#: best: on every front; dominated: beaten by best on all three; misfit: better than both but does not fit (on
#: no front); broken: failed, no numbers
POINTS = [_point("pt-best", bram_blocks=10, luts=1000, fps=100.0, params=2000, cycles=1000),
          _point("pt-dominated", bram_blocks=20, luts=2000, fps=50.0, params=1000, cycles=2000, squeeze_ratio=0.75),
          _point("pt-misfit", bram_blocks=5, luts=500, fps=200.0, params=3000, cycles=500, fits=False,
                 misfit="block RAM 300 > 208"),
          _point("pt-broken", status="failed", error="nextpnr timed out", fits=None)]


def _row(text: str, cell: str) -> str:
    """The table row (``<tr ...>...</tr>``) whose cell is ``cell``."""
    m = re.search(r'<tr class="([^"]*)">((?:(?!</tr>).)*?>' + re.escape(cell) + r"</td>.*?)</tr>", text)
    assert m, f"no row for {cell}"
    return m.group(0)


def _self_contained(text: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I), "a script loaded from elsewhere"
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", text, re.I), "a stylesheet from the web"
    assert "Plotly.newPlot" in text and len(text) > 1_000_000      # plotly.js itself inlined


def test_resident_report(resident, tmp_path, capsys):
    out = tmp_path / "r.html"
    rc, _, err = run_cli(["report", resident.out_dir, "-o", out], capsys)
    assert rc == 0, err
    assert err.strip() == f"wrote {out} ({out.stat().st_size:,} bytes)"
    text = out.read_text()
    assert out.stat().st_size > 5_000
    _self_contained(text)
    for key in ("cycles", "diff"):
        assert f"<h2>{HEADINGS[key]}</h2>" in text
    for key in ("traffic", "resources", "pareto"):        # no DRAM, no board, no points: no such section
        assert HEADINGS[key] not in text
    for layer in resident.program.layers:
        assert f">{html.escape(layer.name)}</td>" in text, layer.name
    # no --sim: the HW column is empty; golden and ONNX Runtime agree on every layer (the compiler's check)
    assert "No --sim RESULT.json given" in text and "0 mismatching bytes, top-1 agrees" in text
    assert not list(tmp_path.glob(".*tmp*"))


def test_dram_report_with_sim_and_board(dram, tmp_path, capsys):
    sim, board = tmp_path / "sim.json", tmp_path / "board.json"
    sim.write_text(json.dumps(_fake_sim(dram)))
    board.write_text(json.dumps(FAKE_BOARD))
    out = tmp_path / "sub" / "d.html"
    rc, _, err = run_cli(["report", dram.out_dir, "--sim", sim, "--board", board, "-o", out], capsys)
    assert rc == 0, err
    text = out.read_text()
    _self_contained(text)
    for key in ("cycles", "traffic", "resources", "diff"):
        assert f"<h2>{HEADINGS[key]}</h2>" in text
    assert f"{dram.dram['bytes_read']:,} bytes read" in text and f"{dram.dram['bytes_written']:,} written" in text
    traffic = text[text.index('<section id="traffic">'):]
    traffic = traffic[:traffic.index("</section>")]
    for entry in dram.dram["layers"]:                     # the traffic table: every layer with its bytes
        row = _row(traffic, entry["name"])
        assert f">{entry['weight_bytes']:,}</td>" in row and f">{entry['write_bytes']:,}</td>" in row
    assert "ulx3s-85f (LFE5U-85F)" in text
    assert ">11,111</td>" in text and ">98.76</td>" in text          # generate --json's figures
    assert ">7,777</td>" in text and "9, 4, 3, 2, 1" in text         # simulate --json's HW column and top-5


def test_board_json_gives_a_resident_compile_its_board(resident, tmp_path):
    out = write_report(tmp_path / "k.html", out_dir=resident, board={**FAKE_BOARD, "board": "kc705"})
    text = out.read_text()
    assert HEADINGS["resources"] in text and "kc705" in text


def test_pareto_section(tmp_path):
    text = write_report(tmp_path / "p.html", points=POINTS, title="sweep <1>").read_text()
    _self_contained(text)
    assert f"<h2>{HEADINGS['pareto']}</h2>" in text and "<title>sweep &lt;1&gt;</title>" in text
    for key in ("cycles", "traffic", "resources", "diff"):
        assert HEADINGS[key] not in text
    for front in ("fps-bram", "fps-lut", "params-cycles"):
        assert f'id="chart-pareto-{front}"' in text
    best = _row(text, "pt-best")
    assert best.startswith('<tr class="front">') and "fps-bram, fps-lut, params-cycles" in best
    assert _row(text, "pt-dominated").startswith('<tr class="">')
    assert "block RAM 300 &gt; 208" in _row(text, "pt-misfit") and _row(text, "pt-misfit").startswith('<tr class="">')
    assert "nextpnr timed out" in _row(text, "pt-broken") and _row(text, "pt-broken").startswith('<tr class="bad">')
    assert "squeeze_ratio: 0.75" in text        # the dominated point's details on hover


def test_refusals(resident, dram, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "other.json").write_text('{"layers": [{"name": "no_such_layer"}]}')
    (tmp_path / "kc.json").write_text('{"board": "kc705", "resources": {"lut": [1, 2]}}')
    (tmp_path / "model.onnx").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    out = tmp_path / "r.html"
    refuse(capsys, ["report", tmp_path / "model.onnx", "-o", out], "model.onnx", "compile", where=tmp_path)
    refuse(capsys, ["report", tmp_path / "dir", "-o", out], "dir", "not a fireforge compile output", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "--sim", tmp_path / "bad.json", "-o", out], "bad.json",
           "not valid JSON", "simulate", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "--sim", tmp_path / "nope.json", "-o", out], "nope.json",
           "cannot read", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "--sim", tmp_path / "list.json", "-o", out], "list.json",
           "simulate", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "--sim", tmp_path / "other.json", "-o", out], "other.json",
           "no_such_layer", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "--board", tmp_path / "list.json", "-o", out], "list.json",
           "generate", where=tmp_path)
    refuse(capsys, ["report", dram.out_dir, "--board", tmp_path / "kc.json", "-o", out], "kc.json", "kc705",
           "ulx3s-85f", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "-o", tmp_path / "dir"], "dir", "is a directory", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "--sim", tmp_path / "bad.json", "-o", tmp_path / "bad.json"],
           "bad.json", "another file", where=tmp_path)
    refuse(capsys, ["report", resident.out_dir, "-o", resident.out_dir / "manifest.json"], "manifest.json",
           where=resident.out_dir)


def test_a_failed_report_keeps_the_previous_one(resident, tmp_path):
    from fireforge.errors import FireforgeError

    out = tmp_path / "r.html"
    out.write_text("previous")
    with pytest.raises(FireforgeError, match="no_such_layer"):
        write_report(out, out_dir=resident, sim={"layers": [{"name": "no_such_layer"}]})
    assert out.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


# -- the page in a real browser ----------------------------------------------------------------------------------

def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium; apt-get install chromium)")
    return exe


def _open_in_browser(page: Path, png: Path, tmp_path: Path) -> tuple[list[str], float]:
    """Load ``page`` in headless chromium with no network (a proxy that refuses, so a CDN load would fail),
    run its scripts for 5 s of virtual time, screenshot it. Returns (the console messages chromium logged, the
    screenshot's share of non-white pixels). Chromium's log gives every console message the same level, so
    every message counts: the report writes none."""
    from PIL import Image

    cmd = [_chromium(), "--headless=new", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--proxy-server=127.0.0.1:9",
           "--virtual-time-budget=5000", "--window-size=1280,2000", f"--screenshot={png}", page.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"chromium wrote no screenshot (exit {res.returncode}): {res.stderr[-2000:]}"
    console = [l for l in res.stderr.splitlines() if ":CONSOLE" in l]
    img = Image.open(png).convert("L")
    dark = sum(n for value, n in enumerate(img.histogram()) if value < 235)
    return console, dark / (img.width * img.height)


def test_the_detector_sees_console_errors_and_blank_pages(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><h1 style='font-size:120px'>Broken page</h1><p>text</p>"
                      "<script>setTimeout(function () { no_such_function(); }, 500);</script></body></html>")
    console, ink = _open_in_browser(broken, tmp_path / "broken.png", tmp_path)
    assert any("no_such_function" in l for l in console), console
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    console, ink_blank = _open_in_browser(blank, tmp_path / "blank.png", tmp_path)
    assert console == [] and ink_blank < 0.001 < ink


def test_the_report_in_chromium(dram, tmp_path):
    page = write_report(tmp_path / "report.html", out_dir=dram, sim=_fake_sim(dram), board=FAKE_BOARD,
                        points=POINTS)
    console, ink = _open_in_browser(page, tmp_path / "report.png", tmp_path)
    assert console == [], console
    assert ink > 0.03, f"the page looks empty: {ink:.2%} of the screenshot is not white"
