"""cocotb test: the engine with its activations in cocotbext-axi's ``AxiRam`` (``hw/dram/engine_axi.py``'s
``EngineAxiTop``, ports ``m_axi_*``), every AXI channel randomly paused.

Needs cocotb's GPI clock (``verilator.build(clock="gpi")``): cocotbext-axi samples at the rising edge.
Python runs once per cycle (the AXI models and the write monitor), so keep programs small.

Environment: ``FF_RESULT`` (set by :func:`fireforge.sim.verilator.run`), ``FF_AXI`` (JSON spec: ``{"init":
path of the initial memory bytes, "final": path to write the memory bytes to, "base", "size", "seed", "busy",
"max_cycles", "write_lag": W paused for that many cycles, then open for one}``). Result: ``{"cycles", "clock_cycles", "writes": [[byte addr, data]…] in acceptance order,
"layer_ends": [writes accepted when each layer_done rose], "max_reads_in_flight", "max_writes_in_flight",
"error"}``.
"""

from __future__ import annotations

import itertools
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer
from cocotbext.axi import AxiBus, AxiRam

from fireforge.sim.verilator_run import write_result

PERIOD_NS = 10


def _pattern(rng, busy):
    return itertools.cycle([int(rng.random() < busy) for _ in range(rng.randint(13, 61))])


class Monitor:
    """Per rising edge: AW / W handshakes (paired in order: the port issues one AW and one W per write),
    layer boundaries, bursts in flight."""

    def __init__(self, dut):
        self.dut = dut
        self.aw, self.w, self.layer_ends = [], [], []
        self.reads = self.writes = self.max_reads = self.max_writes = 0
        self.cycle = 0
        self.trace = []

    async def run(self):
        d, mark = self.dut, False
        while True:
            await RisingEdge(d.clk)
            self.cycle += 1
            if mark:
                self.layer_ends.append(int(d.wr_count.value))
            mark = bool(int(d.layer_done.value))
            if int(d.m_axi_awvalid.value) and int(d.m_axi_awready.value):
                self.aw.append(int(d.m_axi_awaddr.value))
                self.trace.append((self.cycle, "aw", self.aw[-1]))
                self.writes += 1
            if int(d.m_axi_wvalid.value) and int(d.m_axi_wready.value):
                self.w.append(d.m_axi_wdata.value.to_unsigned())
                self.trace.append((self.cycle, "w", len(self.w) - 1))
            if int(d.m_axi_arvalid.value) and int(d.m_axi_arready.value):
                self.trace.append((self.cycle, "ar", int(d.m_axi_araddr.value)))
            self.writes -= int(d.m_axi_bvalid.value) & int(d.m_axi_bready.value)
            self.reads += int(d.m_axi_arvalid.value) & int(d.m_axi_arready.value)
            self.reads -= int(d.m_axi_rvalid.value) & int(d.m_axi_rready.value) & int(d.m_axi_rlast.value)
            self.max_reads, self.max_writes = max(self.max_reads, self.reads), max(self.max_writes, self.writes)


async def run_until_landed(dut, mon, max_cycles: int) -> tuple[int, int]:
    """Pulse ``start``, wait for ``done`` (at most ``max_cycles``), then until every accepted write has its B
    response (it has landed); returns (clock cycles seen, the engine's cycle counter)."""
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    c0 = mon.cycle
    done = RisingEdge(dut.done)
    fired = await First(done, Timer(max_cycles * PERIOD_NS, unit="ns"))
    assert fired is done, f"done did not rise within {max_cycles} cycles"
    clock_cycles, cycles = mon.cycle - c0, int(dut.cycles.value)
    while int(dut.wr_pending.value):
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 2)
    return clock_cycles, cycles


def bus_result(dut, mon, cycles: int, clock_cycles: int) -> dict:
    """What the monitor saw on the bus and the port's own counters, for the test to check."""
    assert len(mon.aw) == len(mon.w), (len(mon.aw), len(mon.w))
    return {"cycles": cycles, "clock_cycles": clock_cycles, "writes": [list(p) for p in zip(mon.aw, mon.w)],
            "layer_ends": mon.layer_ends, "max_reads_in_flight": mon.max_reads,
            "max_writes_in_flight": mon.max_writes, "error": int(dut.axi_error.value),
            "wr_count": int(dut.wr_count.value)}


@cocotb.test()
async def engine_axi(dut):
    spec = json.loads(open(os.environ["FF_AXI"]).read())
    rng = random.Random(spec["seed"])
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=spec["size"])
    ram.write(spec["base"], open(spec["init"], "rb").read())
    if spec["busy"]:
        for channel in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                        ram.read_if.ar_channel, ram.read_if.r_channel):
            channel.set_pause_generator(_pattern(rng, spec["busy"]))
    if spec.get("write_lag"):       # writes land late: W held off in long stretches (reads are not)
        lag = spec["write_lag"]
        ram.write_if.w_channel.set_pause_generator(itertools.cycle([1] * lag + [0]))
    dut.rst.value = 1
    dut.start.value = 0
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    mon = Monitor(dut)
    cocotb.start_soon(mon.run())

    clock_cycles, cycles = await run_until_landed(dut, mon, spec["max_cycles"])
    init_len = os.path.getsize(spec["init"])
    with open(spec["final"], "wb") as f:
        f.write(bytes(ram.read(spec["base"], init_len)))
    result = bus_result(dut, mon, cycles, clock_cycles)
    if spec.get("trace"):
        result["trace"] = mon.trace
    write_result(result)
    dut._log.info("engine over AXI: %d cycles, %d writes, in flight: reads %d writes %d", cycles, len(mon.aw),
                  mon.max_reads, mon.max_writes)
