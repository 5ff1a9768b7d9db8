"""cocotb test: stream one input vector per clock cycle into a pipelined block and record its outputs.

For components without the engine's start / done contract (:mod:`fireforge.sim.cocotb_engine`), e.g. a
requantizer built with vendor primitives that only Verilator can run. Python runs once per cycle here,
which is fine for the few thousand cycles such a check takes (the engine benches avoid it).

Run it through :func:`fireforge.sim.verilator.run` (``test_module="fireforge.sim.cocotb_stream"``).

Environment: ``FF_RESULT`` (JSON result file, set by ``run()``), ``FF_STREAM`` (JSON stimulus file:
``{"inputs": {port: [value per cycle]}, "outputs": [port, ...]}``, every input list of the same length),
``FF_RESET_CYCLES`` (cycles of ``rst`` first, default 4), ``FF_CLOCK`` (``hdl``: the model makes its clock).

Timing: after reset, at the falling edge of cycle ``k`` the outputs are sampled and then the inputs of
cycle ``k`` are driven, so the rising edge that follows takes them in. A block of latency ``L`` (``L``
rising edges from its inputs to its output registers) shows the result of cycle ``k``'s inputs in the
sample of cycle ``k + L``. Result: ``{"outputs": {port: [sample per cycle]}, "cycles": n}``.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from fireforge.sim.verilator_run import write_result

PERIOD_NS = 10


@cocotb.test()
async def stream(dut):
    spec = json.loads(open(os.environ["FF_STREAM"]).read())
    inputs = {name: (getattr(dut, name), values) for name, values in spec["inputs"].items()}
    outputs = {name: getattr(dut, name) for name in spec["outputs"]}
    cycles = {len(values) for _, values in inputs.values()}
    assert len(cycles) == 1, f"input lists of different lengths: {sorted(cycles)}"
    cycles = cycles.pop()

    if os.environ.get("FF_CLOCK") != "hdl":
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    for handle, _ in inputs.values():
        handle.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, int(os.environ.get("FF_RESET_CYCLES", "4")))
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    seen = {name: [] for name in outputs}
    for k in range(cycles):
        for name, handle in outputs.items():
            seen[name].append(int(handle.value))
        for handle, values in inputs.values():
            handle.value = values[k]
        await FallingEdge(dut.clk)

    write_result({"outputs": seen, "cycles": cycles})
