# amaranth: UnusedElaboratable=no
"""AXI arbiters (``fireforge.hw.dram.arbiter``): two or three ``ReadDma`` / ``WriteDma`` behind one arbiter and
a Python AXI slave with random pauses (answering out of order across IDs when asked). Every DMA gets exactly
its own data, a waiting master gets the port after at most ``n − 1`` other grants (round-robin), and W bursts
never interleave."""

from __future__ import annotations

import random
from collections import deque

import pytest
from amaranth import Elaboratable, Module
from amaranth.lib import wiring
from test_dram_dma import pattern, random_cmds, ref_read, ref_write, run

from fireforge.hw.dram import axi
from fireforge.hw.dram.arbiter import AxiReadArbiter, AxiWriteArbiter, index_bits
from fireforge.hw.dram.dma import ReadDma, WriteDma

MEM = bytes(random.Random(11).randrange(256) for _ in range(1 << 14))


class ReadTop(Elaboratable):
    def __init__(self, n, *, data_width, max_burst, outstanding, policy):
        self.dmas = [ReadDma(data_width=data_width, addr_width=20, max_burst=max_burst, outstanding=outstanding)
                     for _ in range(n)]
        self.arb = AxiReadArbiter(n=n, data_width=data_width, addr_width=20, policy=policy)

    def elaborate(self, platform):
        m = Module()
        m.submodules.arb = self.arb
        for i, d in enumerate(self.dmas):
            m.submodules[f"dma{i}"] = d
            wiring.connect(m, d.axi, self.arb.s[i])
        return m


class WriteTop(Elaboratable):
    def __init__(self, n, *, data_width, max_burst, outstanding, policy, arb_outstanding):
        self.dmas = [WriteDma(data_width=data_width, addr_width=20, max_burst=max_burst, outstanding=outstanding)
                     for _ in range(n)]
        self.arb = AxiWriteArbiter(n=n, data_width=data_width, addr_width=20, policy=policy,
                                   outstanding=arb_outstanding)

    def elaborate(self, platform):
        m = Module()
        m.submodules.arb = self.arb
        for i, d in enumerate(self.dmas):
            m.submodules[f"dma{i}"] = d
            wiring.connect(m, d.axi, self.arb.s[i])
        return m


def _starvation(ctx, arb, prefix, waiting):
    """Count, per master waiting on AR/AW, the grants others got meanwhile; returns the grant (or None)."""
    granted = None
    for i, s in enumerate(arb.s):
        if ctx.get(getattr(s, f"{prefix}valid")) and ctx.get(getattr(s, f"{prefix}ready")):
            granted = i
    for i, s in enumerate(arb.s):
        if ctx.get(getattr(s, f"{prefix}valid")) and granted != i:
            waiting[i] = waiting.get(i, 0) + (granted is not None)
        else:
            waiting.pop(i, None)
    return granted


def rtl_read(cmd_lists, *, data_width=32, max_burst=8, outstanding=2, policy="round_robin", seed=0,
             ar_busy=0.3, r_busy=0.3, out_busy=0.2, reorder=False):
    rng = random.Random(seed)
    n = len(cmd_lists)
    top = ReadTop(n, data_width=data_width, max_burst=max_burst, outstanding=outstanding, policy=policy)
    arb, down = top.arb, top.arb.m
    size = data_width // 8
    ar_pat, r_pat = pattern(rng, ar_busy), pattern(rng, r_busy)
    out_pats = [pattern(rng, out_busy) for _ in range(n)]
    want = [sum(b for _, b in cmds) for cmds in cmd_lists]
    words = [[] for _ in range(n)]
    stats = {"max_wait_grants": 0, "grants": []}

    async def bench(ctx):
        pending = [deque(c) for c in cmd_lists]
        bursts = {}        # id -> deque of [addr, beats left]
        waiting, cycle = {}, 0
        current = None     # the id whose burst R is sending (held until its handshake if valid)
        r_held = False
        while [len(w) for w in words] != want:
            assert cycle < 30000, "stalled"
            for i, d in enumerate(top.dmas):
                ctx.set(d.cmd.valid, bool(pending[i]))
                if pending[i]:
                    ctx.set(d.cmd.payload, {"addr": pending[i][0][0], "beats": pending[i][0][1]})
                ctx.set(d.data.ready, next(out_pats[i]))
            ctx.set(down.arready, next(ar_pat))
            if not r_held:
                ids = [k for k, q in bursts.items() if q]
                current = (rng.choice(ids) if reorder else min(ids, key=lambda k: bursts[k][0][2])) if ids else None
            r_valid = current is not None and (r_held or bool(next(r_pat)))
            ctx.set(down.rvalid, r_valid)
            if current is not None:
                addr, left, _ = bursts[current][0]
                ctx.set(down.rid, current)
                ctx.set(down.rdata, int.from_bytes(MEM[addr:addr + size], "little"))
                ctx.set(down.rlast, left == 1)
                ctx.set(down.rresp, axi.RESP_OKAY)

            for i, d in enumerate(top.dmas):
                if ctx.get(d.cmd.valid) and ctx.get(d.cmd.ready):
                    pending[i].popleft()
                if ctx.get(d.data.valid) and ctx.get(d.data.ready):
                    words[i].append(ctx.get(d.data.payload))
            g = _starvation(ctx, arb, "ar", waiting)
            if g is not None:
                stats["grants"].append(g)
            stats["max_wait_grants"] = max([stats["max_wait_grants"], *waiting.values()])
            if ctx.get(down.arvalid) and ctx.get(down.arready):
                rid = ctx.get(down.arid)
                bursts.setdefault(rid, deque()).append([ctx.get(down.araddr), ctx.get(down.arlen) + 1, cycle])
            r_held = r_valid and not ctx.get(down.rready)
            if r_valid and ctx.get(down.rready):
                b = bursts[current][0]
                b[0] += size
                b[1] -= 1
                if not b[1]:
                    bursts[current].popleft()
            await ctx.tick()
            cycle += 1
        stats["cycles"] = cycle

    run(top, bench)
    return words, stats


@pytest.mark.parametrize("n,data_width,reorder", [(2, 32, False), (3, 16, False), (3, 64, True)])
def test_read_arbiter_every_dma_gets_its_data(n, data_width, reorder):
    rng = random.Random(n * data_width)
    cmd_lists = [random_cmds(rng, count=8, data_width=data_width, mem_size=len(MEM), max_beats=30)
                 for _ in range(n)]
    words, stats = rtl_read(cmd_lists, data_width=data_width, seed=n, reorder=reorder)
    for cmds, got in zip(cmd_lists, words):
        assert got == ref_read(cmds, MEM, data_width=data_width)
    assert stats["max_wait_grants"] <= n - 1          # round-robin: nobody waits more than n − 1 grants
    assert stats["max_wait_grants"] >= 1              # there was contention


def test_read_arbiter_fixed_priority_prefers_low_index():
    rng = random.Random(5)
    cmd_lists = [random_cmds(rng, count=6, data_width=32, mem_size=len(MEM), max_beats=20) for _ in range(2)]
    words, stats = rtl_read(cmd_lists, policy="priority", ar_busy=0.6, out_busy=0.0)
    for cmds, got in zip(cmd_lists, words):
        assert got == ref_read(cmds, MEM, data_width=32)
    # master 0's bursts all go out before master 1 gets a second one in (both request from the start)
    first1 = stats["grants"].index(1)
    assert stats["grants"][:first1] == [0] * first1 and first1 >= 2


def rtl_write(cmd_lists, *, data_width=32, max_burst=8, outstanding=2, policy="round_robin", arb_outstanding=4,
              seed=0, aw_busy=0.3, w_busy=0.3, b_busy=0.3, in_busy=0.2, b_delay=2):
    rng = random.Random(seed)
    n = len(cmd_lists)
    top = WriteTop(n, data_width=data_width, max_burst=max_burst, outstanding=outstanding, policy=policy,
                   arb_outstanding=arb_outstanding)
    arb, down = top.arb, top.arb.m
    size, mem = data_width // 8, bytearray(MEM)
    tag_shift = data_width - 4
    data = [[(i << tag_shift) | rng.getrandbits(tag_shift) for _ in range(sum(b for _, b in cmds))]
            for i, cmds in enumerate(cmd_lists)]
    pats = {k: pattern(rng, b) for k, b in {"aw": aw_busy, "w": w_busy, "b": b_busy}.items()}
    in_pats = [pattern(rng, in_busy) for _ in range(n)]
    stats = {"max_wait_grants": 0, "done": [0] * n, "bursts": 0}

    async def bench(ctx):
        pending = [deque(c) for c in cmd_lists]
        inputs = [deque(d) for d in data]
        aws, beat = deque(), 0             # AW in order; W beats are written straight into the head burst
        responses = deque()                # (cycle the B may go, bid)
        waiting, cycle = {}, 0
        b_held = False
        while stats["done"] != [len(c) for c in cmd_lists]:
            assert cycle < 30000, "stalled"
            for i, d in enumerate(top.dmas):
                ctx.set(d.cmd.valid, bool(pending[i]))
                if pending[i]:
                    ctx.set(d.cmd.payload, {"addr": pending[i][0][0], "beats": pending[i][0][1]})
                ctx.set(d.data.valid, bool(inputs[i]) and next(in_pats[i]))
                if inputs[i]:
                    ctx.set(d.data.payload, inputs[i][0])
                ctx.set(d.done.ready, 1)
            ctx.set(down.awready, next(pats["aw"]))
            ctx.set(down.wready, bool(aws) and next(pats["w"]))   # this slave takes W only after its AW
            b_valid = bool(responses) and responses[0][0] <= cycle and (b_held or bool(next(pats["b"])))
            ctx.set(down.bvalid, b_valid)
            if responses:
                ctx.set(down.bid, responses[0][1])
            ctx.set(down.bresp, axi.RESP_OKAY)

            for i, d in enumerate(top.dmas):
                if ctx.get(d.cmd.valid) and ctx.get(d.cmd.ready):
                    pending[i].popleft()
                if ctx.get(d.data.valid) and ctx.get(d.data.ready):
                    inputs[i].popleft()
                if ctx.get(d.done.valid) and ctx.get(d.done.ready):
                    assert not ctx.get(d.done.payload.error)
                    stats["done"][i] += 1
            _starvation(ctx, arb, "aw", waiting)
            stats["max_wait_grants"] = max([stats["max_wait_grants"], *waiting.values()])
            if ctx.get(down.wvalid) and ctx.get(down.wready):
                addr, blen, awid = aws[0]
                value = ctx.get(down.wdata)
                # the beat belongs to the master that owns the burst at the head: no interleaving
                assert value >> tag_shift == awid >> 1, "W beat from another master than its AW's"
                assert ctx.get(down.wlast) == (beat == blen - 1), "wlast misplaced"
                mem[addr + beat * size:addr + (beat + 1) * size] = value.to_bytes(size, "little")
                beat += 1
                if beat == blen:
                    aws.popleft()
                    beat = 0
                    responses.append((cycle + 1 + b_delay, awid))
                    stats["bursts"] += 1
            if ctx.get(down.awvalid) and ctx.get(down.awready):
                aws.append((ctx.get(down.awaddr), ctx.get(down.awlen) + 1, ctx.get(down.awid)))
            b_held = b_valid and not ctx.get(down.bready)
            if b_valid and ctx.get(down.bready):
                responses.popleft()
            await ctx.tick()
            cycle += 1
        assert not aws and not responses

    run(top, bench)
    return bytes(mem), stats


@pytest.mark.parametrize("n,data_width,arb_outstanding", [(2, 32, 4), (3, 16, 1), (3, 64, 2)])
def test_write_arbiter_every_dma_writes_its_data(n, data_width, arb_outstanding):
    rng = random.Random(100 + n * data_width)
    size = data_width // 8
    region = len(MEM) // n                       # disjoint regions, so the final memory is order-independent
    cmd_lists = [[(i * region + a, b) for a, b in random_cmds(rng, count=8, data_width=data_width,
                                                               mem_size=region, max_beats=30)]
                 for i in range(n)]
    got, stats = rtl_write(cmd_lists, data_width=data_width, seed=n, arb_outstanding=arb_outstanding)
    want = MEM
    rng2 = random.Random(n)                       # the words rtl_write made (same seed, same draws first)
    tag_shift = data_width - 4
    data = [[(i << tag_shift) | rng2.getrandbits(tag_shift) for _ in range(sum(b for _, b in cmds))]
            for i, cmds in enumerate(cmd_lists)]
    for cmds, words in zip(cmd_lists, data):
        want = ref_write(cmds, words, want, data_width=data_width)
    assert got == want
    assert stats["max_wait_grants"] <= n - 1
    assert size and stats["bursts"] > 8 * n


def test_ids_and_parameters():
    assert index_bits(1) == 1 and index_bits(2) == 1 and index_bits(3) == 2 and index_bits(5) == 3
    arb = AxiReadArbiter(n=3, data_width=32, id_width=2)
    assert arb.m.signature.id_width == 4 and arb.s[2].signature.id_width == 2
    assert AxiReadArbiter.needs() == {"products": {}, "memories": []}
    assert AxiWriteArbiter.needs(n=2, outstanding=4) == {"products": {}, "memories": []}
    with pytest.raises(ValueError, match="policy must be"):
        AxiReadArbiter(n=2, data_width=32, policy="lottery")
    with pytest.raises(ValueError, match="id_width must be"):
        AxiWriteArbiter(n=3, data_width=32, id_width=15)


def test_stated_latencies():
    arb = AxiReadArbiter(n=2, data_width=32, addr_width=16)

    async def bench(ctx):
        ctx.set(arb.s[1].arvalid, 1)
        ctx.set(arb.s[1].araddr, 0x80)
        ctx.set(arb.m.arready, 1)
        assert ctx.get(arb.s[1].arready) and not ctx.get(arb.m.arvalid)
        await ctx.tick()
        ctx.set(arb.s[1].arvalid, 0)
        assert ctx.get(arb.m.arvalid) and ctx.get(arb.m.araddr) == 0x80 and ctx.get(arb.m.arid) == 0b10
        ctx.set(arb.m.rvalid, 1)
        ctx.set(arb.m.rid, 0b10)
        ctx.set(arb.m.rdata, 0x1234)
        ctx.set(arb.s[1].rready, 1)
        assert ctx.get(arb.s[1].rvalid) and not ctx.get(arb.s[0].rvalid) and ctx.get(arb.s[1].rdata) == 0x1234
        assert ctx.get(arb.m.rready)
    assert AxiReadArbiter.issue_latency == 1 and AxiReadArbiter.latency == 0
    run(arb, bench)
