"""cocotb test: the DRAM-mode engine on LiteDRAM's real controller (:mod:`fireforge.sim.dram_top`'s
``ff_dram_sim``), runs back to back in one simulation. No Python runs per clock cycle: the test sleeps on
``done`` (and one helper task on ``layer_done``'s rising edges), with a ``Timer`` as the cycle-limit watchdog.

1. ``stall_seed`` / ``stall_pct`` set, reset (``FF_RESET_CYCLES``, default 4); the hardware sequencer plays
   the init on ``wb_ctrl`` (``init_cycles``: reset release → ``seq_done``);
2. for each run of the spec: ``program_addr`` / ``program_commands`` set, ``start`` pulsed for one cycle,
   ``done`` awaited; the engine's counters read (``cycles``, ``compute_cycles``, ``bytes_read``,
   ``bytes_written``, ``error``) and the ``cycles`` value at each ``layer_done`` pulse kept;
3. the DRAM's contents are dumped by the core's ``final`` block when the simulation ends (plusargs
   ``+dram_dump_*``, see :func:`fireforge.sim.litedram_backdoor.backdoor_plusargs`): that is after the last run.

Environment
-----------
``FF_DRAM``        JSON: ``runs`` ``[[program_addr, program_commands], ...]``, ``stall_seed``, ``stall_pct``
``FF_MAX_CYCLES``  cycle limit of each run (default 50,000,000); exceeding it fails the test
``FF_INIT_CYCLES`` cycle limit of the init sequence (default 1,000,000; the ULX3S init takes 20,538)
``FF_TIMEOUT_S``   optional wall-clock limit, checked every ``FF_CHUNK_CYCLES`` (default 1,000,000) cycles
``FF_RESULT``      the result file (set by :func:`fireforge.sim.verilator.run`)
``FF_CLOCK``       ``hdl``: the model makes its clock; otherwise cocotb's GPI clock is started here (10 ns)

Result JSON
-----------
``init_cycles``, ``init_done``, ``init_error``, ``seq_error``; ``runs``: one dict per run with ``cycles``,
``compute_cycles``, ``bytes_read``, ``bytes_written``, ``error`` (the engine's ports at ``done``),
``clock_cycles`` (simulated cycles from the start pulse to ``done``: ``cycles`` + a fixed offset) and
``layer_cycles`` (``cycles`` at each ``layer_done``); ``stalls`` (the staller's counter after the last run),
``sim_seconds``, ``total_clock_cycles``; on failure ``failure`` says why (the file is still written).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from fireforge.sim.verilator_run import write_result

PERIOD_NS = 10


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def _u(signal) -> int:
    return int(signal.value.to_unsigned())


def _now() -> int:
    """Clock periods since time 0 (floored: the model's own clock has its rising edges at 5, 15, ... ns)."""
    return int(get_sim_time("ns") // PERIOD_NS)



async def _await_edge(signal, max_cycles: int, chunk: int, deadline: float | None) -> bool:
    """Sleep until *signal* rises; False if *max_cycles* pass first (a Timer, not a per-cycle count). The wait
    is cut into chunks only to check the wall-clock *deadline* now and then."""
    edge = RisingEdge(signal)
    left = max_cycles
    while left > 0:
        n = min(left, chunk)
        if await First(edge, Timer(n * PERIOD_NS, unit="ns")) is edge:
            return True
        left -= n
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError(f"FF_TIMEOUT_S exceeded after {max_cycles - left} cycles")
    return False


async def _stamp_layers(dut, stamps: list[list[int]]):
    """``cycles`` at every rising edge of ``layer_done``, into the current run's list."""
    edge = RisingEdge(dut.layer_done)
    while True:
        await edge
        stamps[-1].append(_u(dut.cycles))


@cocotb.test()
async def dram_engine(dut):
    with open(os.environ["FF_DRAM"]) as f:
        spec = json.load(f)
    max_cycles = _env_int("FF_MAX_CYCLES", 50_000_000)
    chunk = _env_int("FF_CHUNK_CYCLES", 1_000_000)
    timeout_s = os.environ.get("FF_TIMEOUT_S", "").strip()
    deadline = time.perf_counter() + float(timeout_s) if timeout_s else None
    result: dict = {"runs": []}

    def fail(why: str):
        result["failure"] = why
        write_result(result)
        raise AssertionError(why)

    if os.environ.get("FF_CLOCK", "gpi") != "hdl":
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    dut.start.value = 0
    dut.program_addr.value = 0
    dut.program_commands.value = 0
    dut.stall_seed.value = int(spec.get("stall_seed", 0))
    dut.stall_pct.value = int(spec.get("stall_pct", 0))
    await ClockCycles(dut.clk, _env_int("FF_RESET_CYCLES", 4))
    dut.rst.value = 0
    t0 = _now()
    init_cycles = _env_int("FF_INIT_CYCLES", 1_000_000)
    if not int(dut.seq_done.value) and not await _await_edge(dut.seq_done, init_cycles, chunk, deadline):
        fail(f"init sequencer: no seq_done within FF_INIT_CYCLES={init_cycles} cycles")
    result["init_cycles"] = _now() - t0
    await ClockCycles(dut.clk, 2)                 # the core registers init_done
    result.update(init_done=int(dut.init_done.value), init_error=int(dut.init_error.value),
                  seq_error=int(dut.seq_error.value))
    if int(dut.seq_error.value) or not int(dut.init_done.value) or int(dut.init_error.value):
        fail(f"controller not initialised: {result}")

    stamps: list[list[int]] = []
    stamper = cocotb.start_soon(_stamp_layers(dut, stamps))
    w0 = time.perf_counter()
    for r, (program_addr, program_commands) in enumerate(spec["runs"]):
        stamps.append([])
        dut.program_addr.value = int(program_addr)
        dut.program_commands.value = int(program_commands)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        t_start = _now()
        if not await _await_edge(dut.done, max_cycles, chunk, deadline):
            result["runs"].append({"layer_cycles": stamps[-1], "cycles": _u(dut.cycles)})
            fail(f"run {r}: done did not rise within FF_MAX_CYCLES={max_cycles} cycles")
        result["runs"].append({
            "cycles": _u(dut.cycles), "compute_cycles": _u(dut.compute_cycles), "bytes_read": _u(dut.bytes_read),
            "bytes_written": _u(dut.bytes_written), "error": int(dut.error.value),
            "clock_cycles": _now() - t_start, "layer_cycles": stamps[-1]})
        await ClockCycles(dut.clk, 2)             # a layer_done in done's cycle is stamped by now
    stamper.cancel()
    result["stalls"] = _u(dut.stalls)
    result["sim_seconds"] = round(time.perf_counter() - w0, 4)
    result["total_clock_cycles"] = _now()
    write_result(result)
    dut._log.info("dram engine: %s", {k: v for k, v in result.items() if k != "runs"})
