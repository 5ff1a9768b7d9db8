"""The fused max-pool stage against its twin and numpy: random words, kernel 2/3, stride 1/2, pads, ceil-mode
edge windows, several output groups, gaps between words (amaranth.sim)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fireforge.core.descriptor import pack
from fireforge.hw.engine.pool import PoolStage, fusable, ref_pool_stage

V = 4


def _out(n, k, s, p, ceil):
    num = n + 2 * p - k
    return (-(-num // s) if ceil else num // s) + 1


def _np_pool(x, k, s, pads, oh, ow):
    """numpy reference: -inf (here -1) padding, windows clipped to the map."""
    c, h, w = x.shape
    xp = np.full((c, h + 2 * k + s * oh, w + 2 * k + s * ow), -1, np.int32)
    xp[:, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    out = np.full((c, oh, ow), -1, np.int32)
    for dy in range(k):
        for dx in range(k):
            out = np.maximum(out, xp[:, dy:dy + (oh - 1) * s + 1:s, dx:dx + (ow - 1) * s + 1:s])
    assert (out >= 0).all()
    return out.astype(np.uint8)


def rtl_pool(desc: dict, words, seed: int):
    rng = random.Random(seed)
    dut = PoolStage(vector=V)
    got, stats = [], {"drops": 0, "inputs": 0, "outs": 0}
    n = desc["out_h"] * desc["out_w"]

    async def bench(ctx):
        ctx.set(dut.desc.as_value(), pack(desc))
        pending = list(words)
        og = 0
        for og in range(desc["og_count"]):
            ctx.set(dut.og, og)
            ctx.set(dut.restart, 1)
            await ctx.tick()
            ctx.set(dut.restart, 0)
            group = pending[og * n:(og + 1) * n]
            while group or stats["outs"] + stats["drops"] < stats["inputs"]:
                send = bool(group) and rng.random() < 0.7
                if send:
                    addr, data = group.pop(0)
                    ctx.set(dut.i.valid, 1)
                    ctx.set(dut.i.p.addr, addr)
                    ctx.set(dut.i.p.data.as_value(), sum(b << (8 * l) for l, b in enumerate(data)))
                    stats["inputs"] += 1
                else:
                    ctx.set(dut.i.valid, 0)
                if ctx.get(dut.o.valid):
                    p = ctx.get(dut.o.payload)
                    got.append((p.addr, [int(p.data[l]) for l in range(V)]))
                    stats["outs"] += 1
                stats["drops"] += ctx.get(dut.dropped)
                await ctx.tick()
            ctx.set(dut.i.valid, 0)
            for _ in range(5):          # drained: nothing more comes out
                assert not ctx.get(dut.o.valid) and not ctx.get(dut.dropped)
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, stats


CASES = [  # (h, w, k, s, pads, ceil, og)
    (7, 9, 3, 2, (0, 0), True, 2), (8, 8, 3, 2, (0, 0), True, 1), (9, 7, 3, 2, (0, 0), False, 2),
    (6, 5, 2, 2, (0, 0), False, 1), (5, 7, 2, 2, (0, 0), True, 2), (6, 6, 3, 2, (1, 1), False, 2),
    (5, 6, 3, 1, (0, 0), False, 2), (4, 5, 2, 1, (0, 0), False, 1), (7, 7, 3, 2, (1, 1), True, 1),
    (3, 3, 3, 2, (0, 0), True, 1), (2, 3, 3, 2, (1, 1), True, 2), (3, 9, 3, 2, (1, 0), False, 3), (2, 2, 2, 2, (0, 0), False, 2),
    (5, 5, 3, 3, (0, 0), True, 1), (6, 7, 2, 1, (1, 1), False, 1),
]


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_pool_stage_matches_numpy(case):
    h, w, k, s, pads, ceil, og = case
    oh, ow = _out(h, k, s, pads[0], ceil), _out(w, k, s, pads[1], ceil)
    if ceil:    # ONNX: the last window starts inside the map or the left pad
        oh -= (oh - 1) * s >= h + pads[0]
        ow -= (ow - 1) * s >= w + pads[1]
    why = fusable(h, w, oh, ow, (k, k), (s, s), pads)
    if why:
        pytest.skip(f"not fusable: {why}")
    rng = np.random.default_rng(hash(case) & 0xFFFF)
    x = rng.integers(0, 256, (og, h, w, V), dtype=np.uint8)
    desc = {"out_h": h, "out_w": w, "og_count": og, "pool_en": 1, "pool_k": k, "pool_s": s, "pool_pad_t": pads[0],
            "pool_pad_l": pads[1], "pool_out_h": oh, "pool_out_w": ow, "out_addr": 1000, "out_pitch": og + 1}
    words = [(0, list(map(int, x[g, yy, xx]))) for g in range(og) for yy in range(h) for xx in range(w)]
    want = ref_pool_stage(desc, words)
    # the twin against numpy
    for g in range(og):
        ref = _np_pool(x[g].transpose(2, 0, 1), k, s, pads, oh, ow)
        for j in range(oh * ow):
            assert want[g * oh * ow + j] == (1000 + g + j * (og + 1), list(map(int, ref[:, j // ow, j % ow])))
    for seed in (1, 2):
        got, stats = rtl_pool(desc, words, seed)
        assert got == want
        assert stats["outs"] + stats["drops"] == len(words)


def test_pool_stage_off_is_a_wire():
    words = [(i * 3, [i, i + 1, i + 2, i + 3]) for i in range(10)]
    got, stats = rtl_pool({"out_h": 2, "out_w": 5, "og_count": 1}, words, 3)
    assert got == words and stats["drops"] == 0


def test_fusable_refuses_double_window_ends():
    assert fusable(6, 6, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1))      # 'same' 3x3/1: the last row ends two windows
    assert fusable(112, 112, 56, 56, (3, 3), (2, 2), (0, 0, 0, 0)) is None
    assert fusable(200, 200, 100, 100, (2, 2), (2, 2), (0, 0, 0, 0))   # wider than the line buffer
