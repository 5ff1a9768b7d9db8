"""The address generator against its Python twin: ``rtl_agu(d) == ref_agu(d)`` on random descriptors, under
random read back-pressure, tap-FIFO drain and write retirement (amaranth.sim)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from fireforge.core.descriptor import Op, pack, unpack
from fireforge.hw.engine.agu import AddressGenerator, AddressStreams, Tap, ref_agu

ADDR_BITS = 12          # narrower than the internal 27 bits: the twin must truncate as the port does
READ_DEPTH = 6
WRITE_DEPTH = 8


def rtl_agu(desc: dict, seed: int = 0, *, read_depth: int = READ_DEPTH, write_depth: int = WRITE_DEPTH) -> AddressStreams:
    """The taps the RTL AGU issues for one descriptor, sequenced as the engine's sequencer does (load; per
    output group: wait until drained, group, run until finished). The memory's ``ready`` drops, the tap FIFO
    drains and the write queue retires results at random; a tap FIFO that would overflow fails the test."""
    rng = random.Random(seed)
    dut = AddressGenerator(addr_bits=ADDR_BITS, read_depth=read_depth, write_depth=write_depth)
    ctl = dut.control
    taps, state = [], {"level": 0, "pending": 0, "cycles": 0}

    async def step(ctx):
        """One clock edge with the environment's random behaviour; records a tap issued in this cycle."""
        ctx.set(dut.taps.ready, rng.random() < 0.8)
        ctx.set(dut.tap_level, state["level"])
        retire = state["pending"] > 0 and rng.random() < 0.5
        ctx.set(dut.retire, retire)
        fired = ctx.get(dut.taps.valid) and ctx.get(dut.taps.ready)
        if fired:
            p = ctx.get(dut.taps.payload)
            taps.append(Tap(None if p.pad else p.addr, p.w_addr, bool(p.meta.first), bool(p.meta.last),
                            p.meta.out_addr))
        finished, last_group = ctx.get(ctl.finished), ctx.get(ctl.last_group)
        await ctx.tick()
        state["pending"] += (fired and taps[-1].last) - retire
        state["level"] += fired - (state["level"] > 0 and rng.random() < 0.6)
        assert state["level"] <= read_depth and state["pending"] <= write_depth
        state["cycles"] += 1
        assert state["cycles"] < 100_000
        return finished, last_group

    async def bench(ctx):
        ctx.set(dut.desc.as_value(), pack(desc))
        ctx.set(ctl.load, 1)
        await ctx.tick()
        ctx.set(ctl.load, 0)
        while True:
            while not ctx.get(ctl.drained):
                await step(ctx)
            ctx.set(ctl.group, 1)
            await step(ctx)
            ctx.set(ctl.group, 0)
            ctx.set(ctl.run, 1)
            await step(ctx)
            ctx.set(ctl.run, 0)
            finished = last_group = False
            while not finished:
                finished, last_group = await step(ctx)
            if last_group:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return AddressStreams(taps)


def _random_descriptor(rng: random.Random) -> dict:
    """Small loop bounds (a few hundred taps), addresses anywhere (wrapping included), padding on or off."""
    kernel_h, kernel_w, g_count = rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3)
    in_h, in_w = rng.randint(1, 9), rng.randint(1, 9)
    d = {
        "op": rng.choice([Op.CONV, Op.MAXPOOL, Op.GAP, Op.ADD]), "relu": rng.randint(0, 1),
        "pad_en": rng.randint(0, 1), "depthwise": rng.randint(0, 1),
        "og_count": rng.randint(1, 3), "out_h": rng.randint(1, 4), "out_w": rng.randint(1, 5),
        "kernel_h": kernel_h, "kernel_w": kernel_w, "g_count": g_count, "in_h": in_h, "in_w": in_w,
        "stride_h": rng.randint(1, 3), "stride_w": rng.randint(1, 3), "pad_t": rng.randint(0, 2),
        "pad_l": rng.randint(0, 2),
        "win_addr0": rng.randint(-3000, 3000), "row_step": rng.randint(0, 500), "pix_step": rng.randint(0, 60),
        "ky_step": rng.randint(0, 200), "kx_step": rng.randint(-40, 40),
        "weight_addr": rng.choice([rng.randint(0, 5000), 2**24 - rng.randint(1, 40)]),
        "taps": kernel_h * kernel_w * g_count + rng.randint(0, 3),
        "out_addr": rng.choice([rng.randint(0, 5000), 2**24 - rng.randint(1, 40)]), "out_pitch": rng.randint(1, 9),
        "quant_addr": rng.randint(0, 100),
    }
    return unpack(pack(d))


@pytest.mark.parametrize("seed", range(20))
def test_rtl_agu_equals_the_twin(seed):
    rng = random.Random(seed)
    desc = _random_descriptor(rng)
    ref = ref_agu(desc, addr_bits=ADDR_BITS)
    got = rtl_agu(desc, seed)
    assert got == ref
    assert got.reads == ref.reads and got.writes == ref.writes


def test_the_twin_walks_the_loop_nest():
    """A 3x3 conv with padding on a 2x2 map, two input groups, one output group: what the descriptor says."""
    d = unpack(pack({"op": Op.CONV, "pad_en": 1, "og_count": 1, "out_h": 2, "out_w": 2, "kernel_h": 3,
                     "kernel_w": 3, "g_count": 2, "in_h": 2, "in_w": 2, "stride_h": 1, "stride_w": 1, "pad_t": 1,
                     "pad_l": 1, "win_addr0": 100 - (1 * 2 + 1) * 2, "row_step": 4, "pix_step": 2, "ky_step": 4,
                     "kx_step": 2, "weight_addr": 7, "taps": 18, "out_addr": 50, "out_pitch": 3}))
    s = ref_agu(d)
    assert len(s.taps) == 4 * 18 and s.writes == [50, 53, 56, 59]
    # output pixel (0, 0): the window's top row and left column are padding; (1, 1) of the window is word 100
    first = s.taps[:18]
    assert [t.addr for t in first[8:10]] == [100, 101] and all(t.addr is None for t in first[:6])
    assert [t.w_addr for t in first] == list(range(7, 25)) and first[0].first and first[-1].last
    assert sum(t.addr is not None for t in s.taps) == 4 * 4 * 2


def test_agu_latency_and_credit():
    """The first tap is offered AddressGenerator.latency cycles after ``run``; with the write queue never
    retiring, issue stops after write_depth − 1 outputs (one tap each)."""
    d = unpack(pack({"op": Op.MAXPOOL, "og_count": 1, "out_h": 1, "out_w": 20, "kernel_h": 1, "kernel_w": 1,
                     "g_count": 1, "in_h": 1, "in_w": 20, "stride_h": 1, "stride_w": 1, "pix_step": 1, "taps": 1,
                     "out_pitch": 1}))
    dut = AddressGenerator(addr_bits=ADDR_BITS, read_depth=READ_DEPTH, write_depth=WRITE_DEPTH)
    seen = []

    async def bench(ctx):
        ctx.set(dut.desc.as_value(), pack(d))
        ctx.set(dut.taps.ready, 1)
        for cmd in ("load", "group"):
            ctx.set(getattr(dut.control, cmd), 1)
            await ctx.tick()
            ctx.set(getattr(dut.control, cmd), 0)
        ctx.set(dut.control.run, 1)
        for cycle in range(40):
            seen.append(ctx.get(dut.taps.valid))
            await ctx.tick()
            ctx.set(dut.control.run, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen.index(1) == AddressGenerator.latency
    assert sum(seen) == WRITE_DEPTH - 1
