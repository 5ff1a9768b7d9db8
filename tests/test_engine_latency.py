# amaranth: UnusedElaboratable=no
"""The engine's latencies, summed from its parts' (``Engine.latency``), are what a whole engine takes
(amaranth.sim, a 4-MAC engine with ROM and memory models); the margin its per-lane descriptor copies need
is checked when it is built."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.descriptor import Op, pack
from fireforge.hw.engine import Engine


def _config(mac_units=4) -> EngineConfig:
    return EngineConfig(mac_units=mac_units, weight_depth=16, quant_depth=16, desc_depth=4, act_depth=64,
                        add_unit=False)


def _measure(variant: BuildVariant, rom_latency: int, pool: dict | None = None) -> dict:
    """Run a two-output max pool whose taps are all padding (no read waits on the memory) and END; the cycles
    of: the descriptor's arrival, the first tap issued, the first tap at the MAC array's output, the first
    write offered, the writes, done. ``pool``: descriptor fields of a pool fused into its output path."""
    eng = Engine(_config(), variant, rom_latency=rom_latency)
    p = eng.parts
    descs = [pack({"op": Op.MAXPOOL, "pad_en": 1, "depthwise": 1, "og_count": 1, "out_h": 1, "out_w": 2,
                   "kernel_h": 1, "kernel_w": 1, "g_count": 1, "in_h": 0, "in_w": 4, "stride_h": 1,
                   "stride_w": 1, "taps": 1, "out_addr": 5, "out_pitch": 1, **(pool or {})}), pack({"op": Op.END})]
    marks, writes = {}, []

    def mark(name, cycle, cond):
        if cond and name not in marks:
            marks[name] = cycle

    async def bench(ctx):
        rom_addr = []
        ctx.set(eng.mem.rd.ready, 1)
        ctx.set(eng.mem.wr.ready, 1)
        ctx.set(eng.start, 1)
        for cycle in range(300):
            rom_addr.append(ctx.get(eng.desc.addr) if ctx.get(eng.desc.en) else None)
            back = rom_addr[-1 - rom_latency] if len(rom_addr) > rom_latency else None
            ctx.set(eng.desc.data, descs[back] if back is not None else 0)
            mark("desc", cycle, ctx.get(p["sequencer"].desc.op) == Op.MAXPOOL)
            mark("tap", cycle, ctx.get(p["agu"].taps.valid) and ctx.get(p["agu"].taps.ready))
            mark("mac", cycle, ctx.get(p["mac"].o.valid))
            mark("write", cycle, ctx.get(eng.mem.wr.valid))
            if ctx.get(eng.mem.wr.valid):
                writes.append((ctx.get(eng.mem.wr.addr), ctx.get(eng.mem.wr.data)))
            mark("done", cycle, ctx.get(eng.done))
            await ctx.tick()
            ctx.set(eng.start, 0)

    sim = Simulator(eng)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return {"marks": marks, "writes": writes, "latency": eng.latency}


@pytest.mark.parametrize("variant, rom_latency", [(BuildVariant(), 6), (BuildVariant(act_memory="external",
                                                                                     mac_products="lut"), 2)])
def test_engine_latency_is_the_sum_of_its_parts(variant, rom_latency):
    r = _measure(variant, rom_latency)
    marks, latency = r["marks"], r["latency"]
    assert marks["mac"] - marks["desc"] == latency["lead"]
    assert marks["write"] - marks["tap"] == latency["tap_to_write"]
    assert r["writes"] == [(5, 0), (6, 0)] and "done" in marks      # padding reads 0 in a max pool


def test_fused_pool_adds_its_latency():
    """A 1x1 pool fused into the output path (every word a pooled word) writes ``pool`` cycles later."""
    r = _measure(BuildVariant(), 6, {"pool_en": 1, "pool_k": 1, "pool_s": 1, "pool_out_h": 1, "pool_out_w": 2})
    marks, latency = r["marks"], r["latency"]
    assert marks["write"] - marks["tap"] == latency["tap_to_write"] + latency["pool"]
    assert r["writes"] == [(5, 0), (6, 0)] and "done" in marks


def test_engine_latency_at_64_macs():
    """The 64-MAC engine (ULX3S): 22 cycles from a descriptor to its first tap at the accumulator (7 of the
    sequencer, the AGU's go, 2 of the tap FIFO, 8 of the weight ROM's pipeline, 4 of the MAC array)."""
    cfg = EngineConfig(mac_units=64, weight_depth=512, quant_depth=64, desc_depth=32, act_depth=1024)
    assert Engine(cfg).latency == {"lead": 22, "tap_to_write": 42, "pool": 5}
    assert Engine(cfg, BuildVariant(mac_products="lut")).latency == {"lead": 23, "tap_to_write": 43, "pool": 5}


def test_op_select_margin_is_checked():
    """The per-lane op-select chain needs vector + 1 cycles after a descriptor; an engine whose pipeline could
    bring a layer's first tap to the accumulator sooner is refused, not built wrong."""
    cfg = EngineConfig(mac_units=256, weight_depth=512, quant_depth=64, desc_depth=32, act_depth=1024)
    assert Engine(cfg, rom_latency=6).latency["lead"] == 23            # 16 lanes: ≥ 17
    with pytest.raises(ValueError, match="op-select chain needs 17 cycles but a layer's first tap can reach "
                                         "the accumulator 13 cycles"):
        Engine(cfg, rom_latency=1)
