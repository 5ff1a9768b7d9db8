"""An AXI4 slave memory for ``amaranth.sim`` testbenches, lockstep with the design: call :meth:`AxiSlave.step`
once per cycle, before ``ctx.tick()``. INCR bursts of full-width beats (what the DMA engines issue),
answered in order; optional random pauses on every channel, a read latency, and an address range that answers
SLVERR."""

from __future__ import annotations

import itertools
import random
from collections import deque

SLVERR = 0b10


def pattern(rng, busy: float):
    """An endless 0/1 pattern, 1 with probability ``1 − busy`` (``busy`` = 0: always 1)."""
    return itertools.cycle([int(rng.random() >= busy) for _ in range(97)])


class AxiSlave:
    """A memory of ``mem`` (a bytearray, byte address 0 up) on an AXI4 interface ``axi`` (the master's
    members: ``araddr``… ``bready``).

    ``busy``: the fraction of cycles each of AR / R / AW / W / B is paused; ``r_delay``: cycles from AR taken
    to its first beat offered; ``error_range``: (lo, hi) byte addresses whose bursts answer SLVERR.
    Counters: ``r_beats``, ``w_beats``, ``bursts`` (``("r"|"w", addr, beats)``), ``max_reads`` in flight."""

    def __init__(self, axi, mem: bytearray, *, data_width: int, seed: int = 0, busy: float = 0.0, r_delay: int = 0,
                 error_range: tuple[int, int] | None = None):
        self.axi, self.mem, self.size = axi, mem, data_width // 8
        rng = random.Random(seed)
        self.pats = {k: pattern(rng, busy) for k in ("ar", "r", "aw", "w", "b")}
        self.r_delay, self.error_range = r_delay, error_range
        self.cycle = 0
        self.beats = deque()          # R: (cycle it may go, data, last, id, resp)
        self.aws = deque()            # [addr, beats left, id, error]
        self.bs = deque()             # (id, resp)
        self.r_held = self.b_held = False
        self.r_beats = self.w_beats = self.reads = self.max_reads = 0
        self.bursts = []

    def _bad(self, addr, n):
        lo, hi = self.error_range or (0, 0)
        return addr < hi and addr + n * self.size > lo

    def step(self, ctx):
        a, size = self.axi, self.size
        ctx.set(a.arready, next(self.pats["ar"]))
        r_valid = bool(self.beats) and self.beats[0][0] <= self.cycle and (self.r_held or next(self.pats["r"]))
        ctx.set(a.rvalid, r_valid)
        if self.beats:
            _, d, last, rid, resp = self.beats[0]
            ctx.set(a.rdata, d)
            ctx.set(a.rlast, last)
            ctx.set(a.rid, rid)
            ctx.set(a.rresp, resp)
        ctx.set(a.awready, next(self.pats["aw"]))
        ctx.set(a.wready, bool(self.aws) and next(self.pats["w"]))
        b_valid = bool(self.bs) and (self.b_held or next(self.pats["b"]))
        ctx.set(a.bvalid, b_valid)
        if self.bs:
            ctx.set(a.bid, self.bs[0][0])
            ctx.set(a.bresp, self.bs[0][1])

        if ctx.get(a.arvalid) and ctx.get(a.arready):
            addr, n, rid = ctx.get(a.araddr), ctx.get(a.arlen) + 1, ctx.get(a.arid)
            assert ctx.get(a.arsize) == size.bit_length() - 1 and addr % size == 0
            assert addr // 4096 == (addr + n * size - 1) // 4096, "a burst crosses a 4 KB boundary"
            resp = SLVERR if self._bad(addr, n) else 0
            self.bursts.append(("r", addr, n))
            for i in range(n):
                at = addr + i * size
                self.beats.append((self.cycle + self.r_delay, int.from_bytes(self.mem[at:at + size], "little"),
                                   int(i == n - 1), rid, resp))
            self.reads += 1
        if r_valid:
            self.r_held = not ctx.get(a.rready)
            if not self.r_held:
                self.reads -= self.beats.popleft()[2]
                self.r_beats += 1
        if ctx.get(a.awvalid) and ctx.get(a.awready):
            addr, n = ctx.get(a.awaddr), ctx.get(a.awlen) + 1
            assert ctx.get(a.awsize) == size.bit_length() - 1 and addr % size == 0
            assert addr // 4096 == (addr + n * size - 1) // 4096, "a burst crosses a 4 KB boundary"
            self.bursts.append(("w", addr, n))
            self.aws.append([addr, n, ctx.get(a.awid), self._bad(addr, n)])
        if ctx.get(a.wvalid) and ctx.get(a.wready):
            burst = self.aws[0]
            assert ctx.get(a.wstrb) == (1 << size) - 1
            if not burst[3]:
                self.mem[burst[0]:burst[0] + size] = ctx.get(a.wdata).to_bytes(size, "little")
            burst[0] += size
            burst[1] -= 1
            assert ctx.get(a.wlast) == (burst[1] == 0), "wlast does not end the burst"
            self.w_beats += 1
            if not burst[1]:
                self.aws.popleft()
                self.bs.append((burst[2], SLVERR if burst[3] else 0))
        if b_valid:
            self.b_held = not ctx.get(a.bready)
            if not self.b_held:
                self.bs.popleft()
        self.max_reads = max(self.max_reads, self.reads)
        self.cycle += 1
