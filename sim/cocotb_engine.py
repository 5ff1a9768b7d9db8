"""Generic cocotb test for an autonomous design: clock, reset, start, wait for done, report.

Run it through :func:`fireforge.sim.verilator.run` (``test_module="fireforge.sim.cocotb_engine"``).

Bench contract (top-level ports)
--------------------------------
``clk``, ``rst`` (synchronous, active high), ``start`` (input, sampled at a rising edge),
``done`` (output: low while a run is in progress, rises when it ends; a level cleared by the
next start or a one-cycle pulse), ``busy`` (output, informational), ``cycles`` (32-bit output,
optional: the design's own cycle count of the run) and ``dump`` (input, optional: pulsed for one
cycle after every run so simulation memories write their contents, e.g. ``ff_sim_ram``'s
``+ram_dump`` file).

Why it is shaped like this
--------------------------
Python must not run per clock cycle.  The clock is either made inside the model (the default of
``verilator.build``: a generated wrapper toggles ``clk`` under Verilator ``--timing``;
``FF_CLOCK=hdl``) or is cocotb's GPI clock (``impl="gpi"``: C++ in the GPI layer, the fastest
clock cocotb 2.1 offers; ``FF_CLOCK=gpi``).  The model's own clock is 1.3-3.5x faster because
no VPI callbacks run per edge.  The test then sleeps in one ``await`` until ``done`` rises (or
a cycle limit / wall-clock chunk expires), so Verilator runs freely.  The cycle limit is a
``Timer``, not a per-cycle counter.

Environment
-----------
``FF_RESULT``        JSON result file (set by ``run()``; nothing is written without it)
``FF_MAX_CYCLES``    cycle limit of each run (default 100,000,000); exceeding it fails the test
``FF_RUNS``          back-to-back runs without reset (default 1): start is pulsed again after done
``FF_RESET_CYCLES``  cycles of reset at the beginning (default 4)
``FF_READ``          comma-separated names of extra top-level signals to read after the last run
``FF_LAYER_CYCLES``  ``1`` (signal ``layer_done``) or a signal name: record ``cycles`` at every
                     rising edge of that signal (one Python wake-up per edge, not per cycle)
``FF_TIMEOUT_S``     optional wall-clock limit checked every ``FF_CHUNK_CYCLES`` (default 1M)
``FF_CLOCK``         ``hdl``: the model toggles clk itself (build(clock="hdl"), set by run());
                     otherwise the GPI clock is started here.  Both have a 10 ns period.

Result JSON
-----------
``{"cycles": <cycles of run 0>, "runs": [cycles of each run], "clock_cycles": [clock cycles
from start to done of each run], "sim_seconds": <wall time from first start to last done>,
"cpu_seconds": <CPU time of the simulator over that span>, "total_clock_cycles": <all clock
cycles simulated>, "cycles_per_second": ..., "signals": {...}}`` plus, with FF_LAYER_CYCLES, ``"layer_cycles"``
(the ``cycles`` values at the marks of run 0) and ``"layer_cycles_runs"`` (one list per run).
``cycles`` comes from the ``cycles`` port when there is one, else from simulation time.
"""

from __future__ import annotations

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


def _has(dut, name: str) -> bool:
    try:
        getattr(dut, name)
    except AttributeError:
        return False
    return True



async def _wait_done(dut, max_cycles: int, chunk: int, deadline: float | None) -> bool:
    """Sleep until ``done`` rises; False if *max_cycles* pass first.  The wait is split into
    chunks only so that a wall-clock deadline can be checked now and then."""
    left = max_cycles
    done_edge = RisingEdge(dut.done)
    while left > 0:
        n = min(left, chunk)
        fired = await First(done_edge, Timer(n * PERIOD_NS, unit="ns"))
        if fired is done_edge:
            return True
        left -= n
        if deadline is not None and time.perf_counter() > deadline:
            raise TimeoutError(f"FF_TIMEOUT_S exceeded after {max_cycles - left} cycles")
    return False


async def _record_marks(dut, signal, marks: list[list[int]], has_cycles: bool, t_ref: list):
    """Append the cycle count to marks[-1] at every rising edge of *signal*; with ``FF_PROGRESS`` set, also
    append "run mark cycles" lines to that file so the caller can show progress while the model runs."""
    edge = RisingEdge(signal)
    progress = os.environ.get("FF_PROGRESS")
    out = open(progress, "a", buffering=1) if progress else None
    while True:
        await edge
        if has_cycles:
            marks[-1].append(int(dut.cycles.value.to_unsigned()))
        else:
            marks[-1].append(round((get_sim_time("ns") - t_ref[0]) / PERIOD_NS))
        if out is not None:
            out.write(f"{len(marks) - 1} {len(marks[-1])} {marks[-1][-1]}\n")


@cocotb.test()
async def run_engine(dut):
    """Reset, then FF_RUNS times: pulse start, wait for done, read cycles, pulse dump."""
    max_cycles = _env_int("FF_MAX_CYCLES", 100_000_000)
    runs = _env_int("FF_RUNS", 1)
    reset_cycles = _env_int("FF_RESET_CYCLES", 4)
    chunk = _env_int("FF_CHUNK_CYCLES", 1_000_000)
    timeout_s = os.environ.get("FF_TIMEOUT_S")
    read_names = [s.strip() for s in os.environ.get("FF_READ", "").split(",") if s.strip()]
    has_cycles = _has(dut, "cycles")
    has_dump = _has(dut, "dump")
    mark_name = os.environ.get("FF_LAYER_CYCLES", "").strip()
    if mark_name in ("1", "true", "yes"):
        mark_name = "layer_done"
    elif mark_name in ("0", "false", "no"):
        mark_name = ""

    if os.environ.get("FF_CLOCK", "gpi") != "hdl":  # "hdl": the model makes its own clock
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    dut.start.value = 0
    if has_dump:
        dut.dump.value = 0
    await ClockCycles(dut.clk, reset_cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    t0 = time.perf_counter()
    c0 = time.process_time()
    deadline = None if not timeout_s else t0 + float(timeout_s)
    cycles: list[int] = []
    clock_cycles: list[int] = []
    marks: list[list[int]] = []
    t_ref = [0.0]
    mark_task = None
    if mark_name:
        mark_task = cocotb.start_soon(
            _record_marks(dut, getattr(dut, mark_name), marks, has_cycles, t_ref))
    for r in range(runs):
        # start is set now and seen by the design at the next rising edge.
        marks.append([])
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        t_start = get_sim_time("ns")
        t_ref[0] = t_start
        if not await _wait_done(dut, max_cycles, chunk, deadline):
            write_result({"error": f"run {r}: done not seen within FF_MAX_CYCLES={max_cycles}",
                           "runs": cycles})
            raise AssertionError(f"run {r}: done did not rise within {max_cycles} cycles")
        # done rose at the edge that ended the run (values read now are post-edge).
        clock_cycles.append(round((get_sim_time("ns") - t_start) / PERIOD_NS))
        cycles.append(int(dut.cycles.value.to_unsigned()) if has_cycles else clock_cycles[-1])
        if has_dump:
            # dump is seen at the next edge; two more edges make sure $writememh has run.
            dut.dump.value = 1
            await RisingEdge(dut.clk)
            dut.dump.value = 0
            await ClockCycles(dut.clk, 2)
    sim_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    if mark_task is not None:
        mark_task.cancel()

    signals = {name: int(getattr(dut, name).value.to_unsigned()) for name in read_names}
    total = round(get_sim_time("ns") / PERIOD_NS)
    result = {
        "cycles": cycles[0] if cycles else None,
        "runs": cycles,
        "clock_cycles": clock_cycles,
        "sim_seconds": round(sim_seconds, 6),
        "cpu_seconds": round(cpu_seconds, 6),
        "total_clock_cycles": total,
        "cycles_per_second": round(sum(clock_cycles) / sim_seconds) if sim_seconds > 0 else None,
        "signals": signals,
    }
    if mark_name:
        result["layer_cycles"] = marks[0] if marks else []
        result["layer_cycles_runs"] = marks
    write_result(result)
    dut._log.info("ff engine: %s", result)
