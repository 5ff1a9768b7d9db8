"""The hardware DDR3 read leveler against a behavioural model of the Arty core's CSRs on ``wb_ctrl``.

The model is NOT the A7DDRPHY (no IDELAYE2, ISERDESE2 or signal integrity: those cannot run here): per byte lane
it keeps the read bitslip and IDELAY tap the ``ddrphy_*`` strobes set (for the lanes ``dly_sel`` selects), stores
the burst a DFII WRITE puts in bank 0 / row 0, and returns it on a READ only inside a hidden (bitslip, tap) window
per lane — outside, the lane's bits come back wrong. The CSR addresses are the real generated core's.
"""

from __future__ import annotations

import pytest
from amaranth import DomainRenamer
from amaranth.sim import Simulator

from fireforge.hw.board.litedram_core import generate_board_core
from fireforge.hw.dram.read_leveler import DramReadLeveler, bios_pattern, lane_mask

PHY = dict(phases=4, rdphase=2, wrphase=3, modules=2, databits=16)


@pytest.fixture(scope="module")
def arty_csr(tmp_path_factory):
    import os
    from pathlib import Path
    root = Path(os.environ.get("FIREFORGE_BUILD", tmp_path_factory.mktemp("build")))
    return generate_board_core("arty", axi_data_width=128, build_root=root).csr


class PhyModel:
    """The CSRs' effects (see the module docstring). ``windows[lane]``: {bitslip: (first tap, last tap)} where
    the lane reads right."""

    def __init__(self, csr, windows, *, delays, bitslips):
        self.addr = {a >> 2: name for name, a in csr.items()}
        self.windows, self.delays, self.bitslips = windows, delays, bitslips
        self.sel, self.tap, self.slip = 0, [0, 0], [0, 0]
        self.wrdata, self.stored, self.rddata, self.command = [0] * 4, None, [0] * 4, [0] * 4
        self.log = []

    def lanes(self):
        return [k for k in range(2) if self.sel >> k & 1]

    def reads_right(self, k):
        lo_hi = self.windows[k].get(self.slip[k])
        return lo_hi is not None and lo_hi[0] <= self.tap[k] <= lo_hi[1]

    def write(self, word_addr, value):
        name = self.addr[word_addr]
        self.log.append((name, value))
        if name == "ddrphy_dly_sel":
            self.sel = value
        for k in self.lanes():
            if name == "ddrphy_rdly_dq_rst":
                self.tap[k] = 0
            elif name == "ddrphy_rdly_dq_inc":
                self.tap[k] = (self.tap[k] + 1) % self.delays
            elif name == "ddrphy_rdly_dq_bitslip_rst":
                self.slip[k] = 0
            elif name == "ddrphy_rdly_dq_bitslip":
                self.slip[k] = (self.slip[k] + 1) % self.bitslips
        if name.startswith("sdram_dfii_pi"):
            p, reg = int(name[13]), name[15:]
            if reg == "wrdata":
                self.wrdata[p] = value
            elif reg == "command":
                self.command[p] = value
            elif reg == "command_issue":
                self.issue(p, self.command[p])

    def issue(self, p, flags):
        if flags == 0x17:
            assert p == PHY["wrphase"]
            self.stored = list(self.wrdata)
        elif flags == 0x25:
            assert p == PHY["rdphase"] and self.stored is not None
            for q in range(4):
                word = self.stored[q]
                for k in range(2):
                    if not self.reads_right(k):
                        word ^= lane_mask(k, 16) & 0x5A3C0F96
                self.rddata[q] = word

    def read(self, word_addr):
        name = self.addr[word_addr]
        self.log.append((name, None))
        assert name.endswith("_rddata"), name
        return self.rddata[int(name[13])]


async def serve(ctx, bus, model, *, until, max_cycles):
    """Answer the Wishbone master on ``bus`` from ``model`` (each access 2–3 cycles, as the CSR bridge's) until
    ``until()``; returns the clock cycles it took."""
    cycles = 0
    while not until():
        assert cycles < max_cycles, "the master did not finish"
        wait = 1
        if ctx.get(bus.cyc) and ctx.get(bus.stb):
            adr, we, dat = ctx.get(bus.adr), ctx.get(bus.we), ctx.get(bus.dat_w)
            wait = 1 + cycles % 2
            await ctx.tick().repeat(wait)
            if we:
                model.write(adr, dat)
            else:
                ctx.set(bus.dat_r, model.read(adr))
            ctx.set(bus.ack, 1)
            await ctx.tick()
            ctx.set(bus.ack, 0)
            wait += 1
        else:
            await ctx.tick()
        cycles += wait
    return cycles


def run(csr, windows, *, delays=16, bitslips=4, seeds=(42,), max_cycles=400_000):
    dut = DramReadLeveler(csr=csr, delays=delays, bitslips=bitslips, seeds=seeds, **PHY)
    model = PhyModel(csr, windows, delays=delays, bitslips=bitslips)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    result = {}

    async def bench(ctx):
        result["cycles"] = await serve(ctx, dut.bus, model, until=lambda: ctx.get(dut.done) or ctx.get(dut.error),
                                       max_cycles=max_cycles)
        result.update(done=ctx.get(dut.done), error=ctx.get(dut.error),
                      bitslip=[ctx.get(dut.bitslip[k]) for k in range(2)],
                      delay=[ctx.get(dut.delay[k]) for k in range(2)])

    sim.add_testbench(bench)
    sim.run()
    return result, model


def test_patterns_are_the_bios_words():
    """seed 42's four phase words as LiteX's lfsr() gives them (computed by a port of lfsr.h, 2024.12)."""
    assert bios_pattern(42, 4, 4) == [0x07004000, 0x01B06DDB, 0x79CEB31A, 0xEEA00ABB]


def test_each_lane_gets_its_window_bitslip_and_middle_tap(arty_csr):
    res, model = run(arty_csr, [{1: (3, 9)}, {2: (6, 13)}])
    assert res["done"] and not res["error"]
    assert res["bitslip"] == [1, 2] and res["delay"] == [6, 9]
    assert model.slip == [1, 2] and model.tap == [6, 9] and model.sel == 0       # what the PHY holds at the end


def test_the_wider_window_wins_over_the_neighbouring_bitslip(arty_csr):
    res, model = run(arty_csr, [{0: (10, 12), 1: (0, 8)}, {2: (1, 2), 3: (4, 15)}])
    assert res["done"] and res["bitslip"] == [1, 3] and res["delay"] == [4, 9]
    assert model.tap == [4, 9]


def test_the_bitslip_with_more_passing_taps_wins_wherever_its_window_is(arty_csr):
    res, _ = run(arty_csr, [{0: (12, 15), 3: (0, 1)}, {1: (5, 5), 2: (7, 8)}])
    assert res["done"] and res["bitslip"] == [0, 2] and res["delay"] == [13, 7]


def test_a_lane_without_a_window_is_an_error_not_done(arty_csr):
    res, model = run(arty_csr, [{1: (3, 9)}, {}])
    assert res["error"] and not res["done"]


def test_a_single_passing_tap_is_not_a_window_start(arty_csr):
    """The BIOS's rule: a run begins at two passing taps in a row; a lone passing tap is none."""
    res, _ = run(arty_csr, [{0: (4, 4)}, {0: (2, 6)}])
    assert res["error"] and not res["done"]


@pytest.mark.slow
def test_full_size_scan_as_the_bios(arty_csr):
    """32 taps, 8 bitslips, the three seeds: the Arty's real scan (100,307 cycles against the model, ~1 ms at 100 MHz)."""
    res, model = run(arty_csr, [{2: (9, 24), 3: (0, 6)}, {5: (14, 29)}], delays=32, bitslips=8,
                     seeds=(42, 84, 36), max_cycles=400_000)
    assert res["done"] and res["bitslip"] == [2, 5] and res["delay"] == [16, 21]
    print(f"read leveling: {res['cycles']} cycles")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_the_board_controller_levels_between_the_init_writes_and_hardware_control(arty_csr, tmp_path):
    """The Arty top's ``wb_ctrl`` masters in turn (the init writes, the leveler, the last two writes), on the
    model (the init's waits left out: the order is the point)."""
    import os
    from pathlib import Path

    from amaranth import Module

    from fireforge.hw.board.dram_top import DramController
    from fireforge.hw.board.litedram_core import board_init_sequence, read_leveling

    core = generate_board_core("arty", axi_data_width=128,
                               build_root=Path(os.environ.get("FIREFORGE_BUILD", tmp_path)))
    assert read_leveling(core) == dict(PHY, delays=32, bitslips=8)
    sequence = [(a, d, 0, c) for a, d, _, c in board_init_sequence(core)]
    m = Module()
    bus, fault = DramController(core, {}, sequence)._init(m)
    m = DomainRenamer({"dram": "sync"})(m)
    model = PhyModel(core.csr, [{3: (4, 20)}, {4: (10, 25)}], delays=32, bitslips=8)
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def bench(ctx):
        await serve(ctx, bus, model, until=lambda: model.log[-1:] == [("ddrctrl_init_done", 1)],
                    max_cycles=2_000_000)
        assert not ctx.get(fault)

    sim.add_testbench(bench)
    sim.run()
    names = [n for n, _ in model.log]
    first_level = names.index("ddrphy_dly_sel")
    assert [(n, v) for n, v in model.log[:first_level]] == [(csr_name(core.csr, a), d) for a, d, _, _ in sequence[:-2]]
    assert model.log[-2:] == [("sdram_dfii_control", 0x01), ("ddrctrl_init_done", 1)]
    assert model.slip == [3, 4] and model.tap == [12, 17]


def csr_name(csr, address):
    return next(n for n, a in csr.items() if a == address)


def test_a_sequence_without_the_hardware_control_write_is_refused():
    from fireforge.hw.board.litedram_core import before_hardware_control

    steps = [(0x800, 1, 0, "PHY reset"), (0x1000, 1, 0, "DFII: hardware control"), (0x2000, 1, 0, "init_done = 1")]
    assert before_hardware_control(steps) == (steps[:1], steps[1:])
    with pytest.raises(ValueError, match="0 writes marked 'DFII: hardware control'"):
        before_hardware_control(steps[:1])
