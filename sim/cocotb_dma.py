"""cocotb test: the DMA engines (``fireforge.hw.dram``) on a Verilated top against cocotbext-axi's ``AxiRam``.

The top (``tests/test_dram_dma.py``'s ``DmaTop``) exposes a :class:`~fireforge.hw.dram.dma.ReadDma` and a
:class:`~fireforge.hw.dram.dma.WriteDma` as streams (``rd_cmd``, ``rd_data``, ``wr_cmd``, ``wr_data``,
``wr_done``: ``_payload`` / ``_valid`` / ``_ready``) and their shared AXI4 port as ``m_axi_*``. ``AxiRam``
is the memory; every channel of it and every stream is paused by a random ``itertools.cycle`` pattern.

Phase A writes the lower half of the memory while reading the upper half; phase B reads anywhere (so it
reads back phase A's writes). Python runs once per cycle here (cocotbext-axi's models), fine for the few
thousand cycles of this check.

Environment: ``FF_RESULT`` (JSON result, set by :func:`fireforge.sim.verilator.run`), ``FF_DMA`` (JSON spec:
``{"addr_width", "data_width", "mem": hex, "reads_a", "writes_a", "words_a", "reads_b": [[addr, beats]…],
"seed", "busy"}``). Result: ``{"reads_a", "reads_b": [word…], "mem": hex, "max_reads_in_flight",
"max_writes_in_flight", "cycles"}``.
"""

from __future__ import annotations

import itertools
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiRam
from cocotbext.axi.stream import define_stream

from fireforge.sim.verilator_run import write_result

PERIOD_NS = 10

_, DmaTransaction, DmaSource, DmaSink, _ = define_stream("Dma", signals=["payload", "valid", "ready"])


def _pattern(rng, busy):
    return itertools.cycle([int(rng.random() < busy) for _ in range(rng.randint(13, 61))])


class TB:
    def __init__(self, dut, spec):
        self.dut, self.spec = dut, spec
        rng = random.Random(spec["seed"])
        busy = spec["busy"]
        if os.environ.get("FF_CLOCK") != "hdl":
            cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=2 ** spec["addr_width"])
        mem = bytes.fromhex(spec["mem"])
        self.ram.write(0, mem)
        for channel in (self.ram.write_if.aw_channel, self.ram.write_if.w_channel, self.ram.write_if.b_channel,
                        self.ram.read_if.ar_channel, self.ram.read_if.r_channel):
            channel.set_pause_generator(_pattern(rng, busy))
        self.rd_cmd = DmaSource(DmaSource._bus_obj.from_prefix(dut, "rd_cmd"), dut.clk, dut.rst)
        self.wr_cmd = DmaSource(DmaSource._bus_obj.from_prefix(dut, "wr_cmd"), dut.clk, dut.rst)
        self.wr_data = DmaSource(DmaSource._bus_obj.from_prefix(dut, "wr_data"), dut.clk, dut.rst)
        self.rd_data = DmaSink(DmaSink._bus_obj.from_prefix(dut, "rd_data"), dut.clk, dut.rst)
        self.wr_done = DmaSink(DmaSink._bus_obj.from_prefix(dut, "wr_done"), dut.clk, dut.rst)
        for s in (self.rd_cmd, self.wr_cmd, self.wr_data, self.rd_data, self.wr_done):
            s.set_pause_generator(_pattern(rng, busy))
        self.in_flight = {"reads": [0, 0], "writes": [0, 0]}     # now, max
        self.cycles = 0

    def cmd(self, addr, beats):
        return DmaTransaction(payload=addr | beats << self.spec["addr_width"])

    async def monitor(self):
        """Bursts in flight: AR taken to last R beat, AW taken to B (sampled at each rising edge)."""
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            self.cycles += 1
            r, w = self.in_flight["reads"], self.in_flight["writes"]
            r[0] += int(d.m_axi_arvalid.value) & int(d.m_axi_arready.value)
            r[0] -= int(d.m_axi_rvalid.value) & int(d.m_axi_rready.value) & int(d.m_axi_rlast.value)
            w[0] += int(d.m_axi_awvalid.value) & int(d.m_axi_awready.value)
            w[0] -= int(d.m_axi_bvalid.value) & int(d.m_axi_bready.value)
            r[1], w[1] = max(r), max(w)

    async def reads(self, cmds):
        for a, n in cmds:
            await self.rd_cmd.send(self.cmd(a, n))
        return [int((await self.rd_data.recv()).payload) for _ in range(sum(n for _, n in cmds))]

    async def writes(self, cmds, words):
        for a, n in cmds:
            await self.wr_cmd.send(self.cmd(a, n))
        for w in words:
            await self.wr_data.send(DmaTransaction(payload=w))
        for _ in cmds:
            assert int((await self.wr_done.recv()).payload) == 0, "write error response"


@cocotb.test()
async def dma(dut):
    spec = json.loads(open(os.environ["FF_DMA"]).read())
    tb = TB(dut, spec)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    cocotb.start_soon(tb.monitor())

    writer = cocotb.start_soon(tb.writes(spec["writes_a"], spec["words_a"]))
    reads_a = await tb.reads(spec["reads_a"])
    await writer
    reads_b = await tb.reads(spec["reads_b"])
    await ClockCycles(dut.clk, 2)

    write_result({"reads_a": reads_a, "reads_b": reads_b, "mem": bytes(tb.ram.read(0, 2 ** spec["addr_width"])).hex(),
                  "max_reads_in_flight": tb.in_flight["reads"][1], "max_writes_in_flight": tb.in_flight["writes"][1],
                  "cycles": tb.cycles})
