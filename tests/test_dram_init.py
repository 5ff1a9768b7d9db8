# amaranth: UnusedElaboratable=no
"""``DramInitSequencer`` (``fireforge.hw.dram.init_sequencer``) in amaranth.sim against a Python Wishbone slave
that acks after random delays: the writes it records are the sequence, each wait is respected exactly, ``done``
rises after the last; ``err`` or a missing ``ack`` raises ``error``. Also the real ULX3S LiteDRAM sequence."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from fireforge.hw.dram.init_sequencer import DramInitSequencer


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def play(seq, *, seed=0, max_delay=3, err_at=None, never_ack_at=None, timeout=64, limit=100000):
    """Run the sequencer on ``seq``; returns (writes [(adr, dat, sel)], stb rise cycles, ack cycles, done, error,
    cycles)."""
    rng = random.Random(seed)
    dut = DramInitSequencer(seq, timeout=timeout)
    bus = dut.bus
    out = {"writes": [], "rise": [], "ack": [], "done": 0, "error": 0, "cycles": 0}

    async def bench(ctx):
        cycle, prev_stb, delay = 0, 0, None
        while cycle < limit:
            stb = ctx.get(bus.cyc) and ctx.get(bus.stb)
            if stb and not prev_stb:
                out["rise"].append(cycle)
                delay = rng.randint(0, max_delay)
                assert ctx.get(bus.we) and ctx.get(bus.sel) == 0xF and ctx.get(bus.cti) == 0
            k = len(out["rise"]) - 1
            ack = stb and delay == 0 and k != never_ack_at and k != err_at
            err = stb and delay == 0 and k == err_at
            ctx.set(bus.ack, ack)
            ctx.set(bus.err, err)
            if ack:
                out["writes"].append((ctx.get(bus.adr), ctx.get(bus.dat_w)))
                out["ack"].append(cycle)
            if stb and delay:
                delay -= 1
            prev_stb = stb and not (ack or err)       # a new cycle after an ack is a new rise
            out["done"], out["error"] = ctx.get(dut.done), ctx.get(dut.error)
            if out["done"] or out["error"]:
                break
            await ctx.tick()
            cycle += 1
        out["cycles"] = cycle
        # done / error stay; nothing more on the bus
        for _ in range(5):
            await ctx.tick()
            assert ctx.get(dut.done) == out["done"] and ctx.get(dut.error) == out["error"]
            assert not ctx.get(bus.cyc)

    run(dut, bench)
    return out


def check(seq, out):
    assert out["done"] and not out["error"]
    assert out["writes"] == [(a >> 2, d) for a, d, *_ in seq]
    assert out["rise"][0] == DramInitSequencer.overhead
    for k in range(len(seq) - 1):     # ack of write k to the stb of write k + 1: its wait plus the overhead
        assert out["rise"][k + 1] - out["ack"][k] == DramInitSequencer.overhead + seq[k][2]
    # done one cycle after the last wait is over
    assert out["cycles"] - out["ack"][-1] == DramInitSequencer.overhead + seq[-1][2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plays_the_sequence_with_its_waits(seed):
    rng = random.Random(seed)
    seq = [(rng.randrange(0, 1 << 14) * 4, rng.getrandbits(32), rng.choice([0, 0, 1, 2, 7, rng.randint(0, 300)]),
            f"step {k}") for k in range(rng.randint(1, 25))]
    check(seq, play(seq, seed=seed))


def test_ack_in_the_same_cycle():
    seq = [(0x800, 0xE, 0), (0x804, 1, 3), (0x0, 1, 0)]
    check(seq, play(seq, max_delay=0))


def test_err_or_no_ack_raises_error_and_stops():
    seq = [(4 * k, k, 2) for k in range(6)]
    out = play(seq, err_at=3)
    assert out["error"] and not out["done"] and len(out["writes"]) == 3
    out = play(seq, never_ack_at=2, timeout=40)
    assert out["error"] and not out["done"] and len(out["writes"]) == 2
    assert out["cycles"] - out["rise"][2] == 40     # `timeout` cycles of stb without ack, then error


def test_parameters_and_needs():
    with pytest.raises(ValueError, match="at least one"):
        DramInitSequencer([])
    with pytest.raises(ValueError, match="4-aligned"):
        DramInitSequencer([(2, 0, 0)])
    seq = [(0, 1, 20000), (4, 2, 0)]
    assert DramInitSequencer.needs(seq) == {"products": {}, "memories": [(30 + 32 + 15, 2)]}


def test_ulx3s_litedram_sequence():
    pytest.importorskip("litedram")
    from fireforge.sim import litedram
    seq = litedram.init_sequence(litedram.generate("ulx3s", axi_data_width=32))
    out = play(seq, seed=4)
    check(seq, out)
    assert out["writes"][-1] == (seq[-1].address >> 2, 1)     # init_done = 1 last
