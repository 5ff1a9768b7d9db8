"""The power-up memory test (hw/dram/memtest.py) against an AXI slave memory: a good memory passes and holds
the twin's words; a stuck data line, a stuck or shorted address line, swapped byte lanes and error responses
each fail it."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from fireforge.hw.dram.memtest import DramMemtest, memtest_words
from tests.support.axi_slave import AxiSlave

SIZE = 1 << 20


class FaultyMemory:
    """A bytearray seen through a fault: ``addr(a)`` maps a word's byte address, ``read(word_bytes)`` damages
    what a read returns."""

    def __init__(self, size, *, addr=lambda a: a, read=lambda b: b):
        self.mem, self.addr, self.read = bytearray(size), addr, read

    def __getitem__(self, s):
        n = s.stop - s.start
        at = self.addr(s.start)
        return self.read(bytes(self.mem[at:at + n]))

    def __setitem__(self, s, value):
        at = self.addr(s.start)
        self.mem[at:at + len(value)] = value


def run_memtest(mem, data_width, *, busy=0.3, error_range=None):
    dut = DramMemtest(data_width=data_width, addr_width=24, id_width=1, size_bytes=SIZE)
    result = {}

    async def bench(ctx):
        slave = AxiSlave(dut.axi, mem, data_width=data_width, seed=data_width, busy=busy, r_delay=3,
                         error_range=error_range)
        ctx.set(dut.start, 1)
        for cycle in range(20000):
            slave.step(ctx)
            if ctx.get(dut.done):
                break
            await ctx.tick()
        result.update(done=ctx.get(dut.done), error=ctx.get(dut.error), cycles=cycle, writes=slave.w_beats)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return result


@pytest.mark.parametrize("data_width", [16, 128])
def test_good_memory_passes_and_holds_the_twins_words(data_width):
    mem = bytearray(SIZE)
    r = run_memtest(mem, data_width)
    words = memtest_words(SIZE, data_width)
    assert r["done"] and not r["error"] and r["writes"] == len(words)
    size = data_width // 8
    for addr, word in words:
        assert int.from_bytes(mem[addr:addr + size], "little") == word, hex(addr)
    # every data line seen at 0 and 1, every address bit of the 1 MB walked
    assert {a for a, _ in words} >= {(1 << k) * size for k in range((2 * data_width - 1).bit_length(),
                                                                    (SIZE // size - 1).bit_length())}


def _flip(bit):
    return lambda b: (int.from_bytes(b, "little") | 1 << bit).to_bytes(len(b), "little")


@pytest.mark.parametrize("fault", ["data bit 3 stuck at 1", "address bit 12 stuck at 0", "address bit 2 stuck at 1",
                                   "address bits 9 and 10 shorted", "byte lanes swapped", "error response"])
def test_faults_fail_it(fault):
    kw = {}
    if fault == "data bit 3 stuck at 1":
        mem = FaultyMemory(SIZE, read=_flip(3))
    elif fault == "address bit 12 stuck at 0":
        mem = FaultyMemory(SIZE, addr=lambda a: a & ~(1 << 12))
    elif fault == "address bit 2 stuck at 1":
        mem = FaultyMemory(SIZE, addr=lambda a: a | 1 << 2)
    elif fault == "address bits 9 and 10 shorted":   # wired-OR
        mem = FaultyMemory(SIZE, addr=lambda a: a | (1 << 10 if a >> 9 & 1 else 0) | (1 << 9 if a >> 10 & 1 else 0))
    elif fault == "byte lanes swapped":
        mem = FaultyMemory(SIZE, read=lambda b: bytes(b[i ^ 1] for i in range(len(b))))
    else:
        mem, kw = bytearray(SIZE), {"error_range": (0x4000, 0x4002)}
    r = run_memtest(mem, 16, **kw)
    assert r["done"] and r["error"], fault


def test_size_is_checked():
    with pytest.raises(ValueError, match="power of two"):
        DramMemtest(data_width=16, addr_width=24, id_width=1, size_bytes=3 << 20)
