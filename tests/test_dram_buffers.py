# amaranth: UnusedElaboratable=no
"""``DramBuffers``' ACT buffer alone in amaranth.sim: the banked, pipelined ports keep their contract — a response
exactly ``ACT_LATENCY`` cycles after its read, a read sees every write accepted in an earlier cycle (in any bank),
STORE reads before the core's, and a LOAD word offered while the core writes waits in its slot and lands."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Buffer
from fireforge.hw.dram.buffers import BANK_DEPTH, BANK_GROUP, DramBuffers, act_banks

#: three banks, the last a partial one
CFG = EngineConfig(mac_units=16, weight_depth=64, quant_depth=16, desc_depth=4, act_depth=2 * BANK_DEPTH + 100,
                   memory="dram")
#: banks in three groups (a request copy and a read multiplexer per group), the last bank a partial one
WIDE = EngineConfig(mac_units=16, weight_depth=64, quant_depth=16, desc_depth=4,
                    act_depth=2 * BANK_GROUP * BANK_DEPTH + 100, memory="dram")


def test_banks_and_needs():
    assert act_banks(CFG) == [(32, BANK_DEPTH), (32, BANK_DEPTH), (32, 100)]
    # each bank as two 16-bit slices side by side
    assert sorted(DramBuffers.needs(CFG)["memories"]) == sorted(
        [(16, BANK_DEPTH)] * 4 + [(16, 100)] * 2 + [(CFG.weight_word_bits, 64), (CFG.quant_word_bits, 16)])


@pytest.mark.parametrize("cfg,addrs", [
    (CFG, (5, BANK_DEPTH + 7, 2 * BANK_DEPTH + 99)),
    (WIDE, (5, (BANK_GROUP + 1) * BANK_DEPTH + 7, 2 * BANK_GROUP * BANK_DEPTH + 99)),
], ids=["one-group", "three-groups"])
def test_act_latency_order_and_load_slot(cfg, addrs):
    assert len(act_banks(cfg)) == (3 if cfg is CFG else 2 * BANK_GROUP + 1)
    dut = DramBuffers(cfg, rom_latency=6)
    act, load, store_rd = dut.act, dut.load, dut.store_rd
    seen = []          # (cycle, "core" / "store", word)

    async def bench(ctx):
        cycle = 0

        async def tick(n=1):
            nonlocal cycle
            for _ in range(n):
                for who, resp in (("core", act.rd.resp), ("store", dut.store_resp)):
                    if ctx.get(resp.valid):
                        seen.append((cycle, who, ctx.get(resp.data)))
                await ctx.tick()
                cycle += 1

        # the core writes one word per bank, reads each back in the very next cycle
        for k, addr in enumerate(addrs):
            ctx.set(act.wr.valid, 1), ctx.set(act.wr.addr, addr), ctx.set(act.wr.data, 0x1000 + k)
            await tick()
            ctx.set(act.wr.valid, 0)
            ctx.set(act.rd.valid, 1), ctx.set(act.rd.addr, addr)
            assert ctx.get(act.rd.ready)
            start = cycle
            await tick()
            ctx.set(act.rd.valid, 0)
            await tick(DramBuffers.ACT_LATENCY + 1)
            assert seen[-1] == (start + DramBuffers.ACT_LATENCY, "core", 0x1000 + k)

        # a STORE read and a core read in one cycle: the STORE's is taken, the core's waits
        ctx.set(store_rd.valid, 1), ctx.set(store_rd.payload, addrs[0])
        ctx.set(act.rd.valid, 1), ctx.set(act.rd.addr, addrs[1])
        assert not ctx.get(act.rd.ready)
        await tick()
        ctx.set(store_rd.valid, 0)
        assert ctx.get(act.rd.ready)
        await tick()
        ctx.set(act.rd.valid, 0)
        await tick(DramBuffers.ACT_LATENCY + 1)
        assert [s[1:] for s in seen[-2:]] == [("store", 0x1000), ("core", 0x1001)]

        # a LOAD word beside a core write: held, then written; LOAD waits while the slot is full
        ctx.set(load.valid, 1), ctx.set(load.p.buffer, Buffer.ACT), ctx.set(load.p.addr, 40)
        ctx.set(load.p.data, 0xAAAA)
        ctx.set(act.wr.valid, 1), ctx.set(act.wr.addr, 41), ctx.set(act.wr.data, 0xBBBB)
        assert ctx.get(load.ready)
        await tick()
        ctx.set(load.p.addr, 42), ctx.set(load.p.data, 0xCCCC)
        assert not ctx.get(load.ready)          # the slot holds word 40 while the core still writes
        await tick()
        ctx.set(act.wr.valid, 0)
        await tick()                            # the slot drains into the write port
        assert ctx.get(load.ready)
        await tick()                            # word 42 is taken
        ctx.set(load.valid, 0)
        for addr in (40, 41, 42):
            ctx.set(act.rd.valid, 1), ctx.set(act.rd.addr, addr)
            await tick()
        ctx.set(act.rd.valid, 0)
        await tick(DramBuffers.ACT_LATENCY + 1)
        assert [s[2] for s in seen[-3:]] == [0xAAAA, 0xBBBB, 0xCCCC]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
