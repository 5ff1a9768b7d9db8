# amaranth: UnusedElaboratable=no
"""``fireforge.hw.dram.axi_cdc.AxiCdc`` in amaranth's simulator: a master in one clock domain writes bursts (random
strobes) and reads them back through the crossing from a memory model in another domain, with unrelated clock
periods both ways (slave slower and faster) and random valid / ready gaps on every channel. Checked: every byte
read equals the last byte written, bursts and beats come out in order with their IDs and ``last`` flags, every
write gets its B, and the FIFOs push back (a full FIFO drops ``ready`` on the sending side).
"""

from __future__ import annotations

import random

import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from fireforge.hw.dram.axi import AXI4
from fireforge.hw.dram.axi_cdc import AxiCdc

DATA_WIDTH = 32
BYTES = DATA_WIDTH // 8


class Bench:
    """The CDC between a master (``sync``) and a memory slave (``dram``); ``bursts`` as ``(addr, beats, id)``."""

    def __init__(self, seed, up_ns, down_ns, up_ready_pct, down_ready_pct):
        self.rng = random.Random(seed)
        self.up_ns, self.down_ns = up_ns, down_ns
        self.up_pct, self.down_pct = up_ready_pct, down_ready_pct
        self.sig = AXI4(data_width=DATA_WIDTH, addr_width=16, id_width=2)
        self.dut = AxiCdc(self.sig, up_domain="sync", down_domain="dram", addr_depth=4, data_depth=8)
        self.mem = {}                       # byte address -> byte (the slave's)
        self.expect = {}                    # what the master wrote last
        self.bursts = [(self.rng.randrange(0, 1 << 12) * BYTES, self.rng.randint(1, 16), self.rng.randrange(4))
                       for _ in range(12)]
        self.writes_done = 0
        self.b_ids, self.r_log = [], []
        self.up_stalls = 0

    def _gap(self, pct):
        return self.rng.randrange(100) >= pct

    # ---- master side (sync) ----
    async def aw(self, ctx):
        up = self.dut.up
        for addr, beats, ident in self.bursts:
            while self._gap(self.up_pct):
                await ctx.tick("sync")
            ctx.set(up.awvalid, 1)
            ctx.set(up.awaddr, addr)
            ctx.set(up.awlen, beats - 1)
            ctx.set(up.awid, ident)
            ctx.set(up.awsize, 2)
            ctx.set(up.awburst, 1)
            while True:
                _, _, ready = await ctx.tick("sync").sample(up.awready)
                if ready:
                    break
                self.up_stalls += 1
            ctx.set(up.awvalid, 0)

    async def w(self, ctx):
        up = self.dut.up
        for addr, beats, _ in self.bursts:
            for beat in range(beats):
                while self._gap(self.up_pct):
                    await ctx.tick("sync")
                data = self.rng.getrandbits(DATA_WIDTH)
                strb = self.rng.getrandbits(BYTES)
                for b in range(BYTES):
                    if strb >> b & 1:
                        self.expect[addr + beat * BYTES + b] = data >> (8 * b) & 0xFF
                ctx.set(up.wvalid, 1)
                ctx.set(up.wdata, data)
                ctx.set(up.wstrb, strb)
                ctx.set(up.wlast, beat == beats - 1)
                while True:
                    _, _, ready = await ctx.tick("sync").sample(up.wready)
                    if ready:
                        break
                    self.up_stalls += 1
                ctx.set(up.wvalid, 0)

    async def b(self, ctx):
        up = self.dut.up
        while len(self.b_ids) < len(self.bursts):
            ready = not self._gap(self.up_pct)
            ctx.set(up.bready, ready)
            _, _, valid, bid, bresp = await ctx.tick("sync").sample(up.bvalid, up.bid, up.bresp)
            if valid and ready:
                assert bresp == 0
                self.b_ids.append(bid)
        ctx.set(up.bready, 0)

    async def ar(self, ctx):
        up = self.dut.up
        while len(self.b_ids) < len(self.bursts):       # read back once every write is acknowledged
            await ctx.tick("sync")
        for addr, beats, ident in self.bursts:
            while self._gap(self.up_pct):
                await ctx.tick("sync")
            ctx.set(up.arvalid, 1)
            ctx.set(up.araddr, addr)
            ctx.set(up.arlen, beats - 1)
            ctx.set(up.arid, ident)
            ctx.set(up.arsize, 2)
            ctx.set(up.arburst, 1)
            while True:
                _, _, ready = await ctx.tick("sync").sample(up.arready)
                if ready:
                    break
            ctx.set(up.arvalid, 0)

    async def r(self, ctx):
        up = self.dut.up
        total = sum(beats for _, beats, _ in self.bursts)
        while len(self.r_log) < total:
            ready = not self._gap(self.up_pct)
            ctx.set(up.rready, ready)
            _, _, valid, rid, rdata, rlast, rresp = await ctx.tick("sync").sample(up.rvalid, up.rid, up.rdata,
                                                                                    up.rlast, up.rresp)
            if valid and ready:
                assert rresp == 0
                self.r_log.append((rid, rdata, rlast))
        ctx.set(up.rready, 0)

    # ---- slave side (dram): a memory with random readiness ----
    async def slave(self, ctx):
        down = self.dut.down
        aw_q, ar_q, b_q = [], [], []
        w_burst = r_burst = None        # [addr, beats left, id, beat]
        r_out = None                    # the R beat on the bus
        b_out = None
        while True:
            aw_rdy, w_rdy, ar_rdy = (not self._gap(self.down_pct) for _ in range(3))
            ctx.set(down.awready, aw_rdy)
            ctx.set(down.arready, ar_rdy)
            ctx.set(down.wready, w_rdy and (w_burst is not None or bool(aw_q)))
            if b_out is None and b_q:
                b_out = b_q.pop(0)
            ctx.set(down.bvalid, b_out is not None)
            ctx.set(down.bid, b_out or 0)
            if r_out is None and (r_burst is not None or ar_q):
                if r_burst is None:
                    a, n, i = ar_q.pop(0)
                    r_burst = [a, n, i, 0]
                a, n, i, k = r_burst
                word = sum(self.mem.get(a + k * BYTES + b, 0) << (8 * b) for b in range(BYTES))
                r_out = (i, word, k == n - 1)
                r_burst = None if k == n - 1 else [a, n, i, k + 1]
            ctx.set(down.rvalid, r_out is not None and not self._gap(self.down_pct))
            if r_out is not None:
                ctx.set(down.rid, r_out[0])
                ctx.set(down.rdata, r_out[1])
                ctx.set(down.rlast, r_out[2])
            (_, _, awv, awaddr, awlen, awid, wv, wr, wdata, wstrb, wlast, bv, br, arv, araddr, arlen, arid, rv,
             rr) = await ctx.tick("dram").sample(
                down.awvalid, down.awaddr, down.awlen, down.awid, down.wvalid, down.wready, down.wdata, down.wstrb,
                down.wlast, down.bvalid, down.bready, down.arvalid, down.araddr, down.arlen, down.arid, down.rvalid,
                down.rready)
            if awv and aw_rdy:
                aw_q.append((awaddr, awlen + 1, awid))
            if arv and ar_rdy:
                ar_q.append((araddr, arlen + 1, arid))
            if bv and br:
                b_out = None
            if rv and rr:
                r_out = None
            if wv and wr:
                if w_burst is None:
                    a, n, i = aw_q.pop(0)
                    w_burst = [a, n, i, 0]
                a, n, i, k = w_burst
                for b in range(BYTES):
                    if wstrb >> b & 1:
                        self.mem[a + k * BYTES + b] = wdata >> (8 * b) & 0xFF
                assert wlast == (k == n - 1), "wlast out of place"
                if k == n - 1:
                    b_q.append(i)
                    w_burst = None
                else:
                    w_burst[3] = k + 1

    def run(self):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.dram = ClockDomain("dram")
        m.submodules.dut = self.dut
        sim = Simulator(m)
        sim.add_clock(self.up_ns * 1e-9, domain="sync")
        sim.add_clock(self.down_ns * 1e-9, domain="dram", phase=self.down_ns * 0.37e-9)
        for tb in (self.aw, self.w, self.b, self.ar, self.r):
            sim.add_testbench(tb)
        sim.add_testbench(self.slave, background=True)
        sim.run()
        return self


@pytest.mark.parametrize("up_ns, down_ns, up_pct, down_pct", [
    (10.0, 23.3, 90, 30),     # slow controller that rarely takes a beat: the FIFOs fill up
    (10.0, 7.1, 60, 90),      # faster controller, a hesitant master
    (13.7, 13.3, 100, 100),   # nearly the same frequencies, no gaps: one beat per cycle
])
def test_axi_cdc_bursts_both_ways(up_ns, down_ns, up_pct, down_pct):
    tb = Bench(seed=int(up_ns * 100 + down_ns), up_ns=up_ns, down_ns=down_ns, up_ready_pct=up_pct,
               down_ready_pct=down_pct).run()
    # every write acknowledged, with its ID, in order
    assert tb.b_ids == [i for _, _, i in tb.bursts]
    # the memory holds exactly what the master wrote
    assert tb.mem == tb.expect
    # R: the bursts in order, their IDs, last on the last beat, the data the master wrote
    expect_r = []
    for addr, beats, ident in tb.bursts:
        for k in range(beats):
            word = sum(tb.expect.get(addr + k * BYTES + b, 0) << (8 * b) for b in range(BYTES))
            expect_r.append((ident, word, int(k == beats - 1)))
    assert tb.r_log == expect_r
    if down_pct < 50:
        assert tb.up_stalls > 20, tb.up_stalls        # backpressure reached the master through the full FIFOs


def test_axi_cdc_refusals():
    sig = AXI4(data_width=16, addr_width=25, id_width=1)
    with pytest.raises(ValueError, match="must differ"):
        AxiCdc(sig, up_domain="sync", down_domain="sync")
    with pytest.raises(ValueError, match="data_depth must be a power of two"):
        AxiCdc(sig, data_depth=12)
    with pytest.raises(TypeError, match="AXI4 signature"):
        AxiCdc(sig.read())
    assert AxiCdc(sig).channel_width("r") == 1 + 16 + 2 + 1
