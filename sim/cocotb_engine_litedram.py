"""cocotb test: the engine with its activations in LiteDRAM's real controller (``sim/engine_litedram.py``'s
``ff_engine_litedram``: ``EngineAxiTop`` + the ULX3S ``--sim`` core + ``DramInitSequencer`` on ``wb_ctrl``),
one clock, cocotb's GPI clock.

1. reset; the hardware sequencer plays the init on ``wb_ctrl`` (``init_cycles``: reset release → ``seq_done``);
2. ``host = 1``: cocotbext-axi's ``AxiMaster`` on ``s_axi_*`` writes the initial activation memory at ``base``;
3. ``host = 0``; ``start``; the engine runs on the DRAM until ``done`` and every write has its B;
4. ``host = 1``: the activation memory is read back over AXI.

Environment: ``FF_RESULT``, ``FF_AXI`` (JSON: ``init``, ``final``, ``base``, ``max_cycles``). Result: as
``cocotb_engine_axi`` (``cycles``, ``writes``, ``layer_ends``, in-flight maxima, ``error``) plus
``init_cycles``, ``init_done``, ``init_error``, ``seq_error``, ``preload_cycles``, ``readback_cycles``.
"""

from __future__ import annotations

import json
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiMaster

from fireforge.sim.cocotb_engine_axi import Monitor, bus_result, run_until_landed
from fireforge.sim.verilator_run import write_result

PERIOD_NS = 10



@cocotb.test()
async def engine_litedram(dut):
    spec = json.loads(open(os.environ["FF_AXI"]).read())
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    dut.host.value = 1
    dut.start.value = 0
    dut.rst.value = 1
    host = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)
    for part in (host.write_if, host.read_if):
        part.log.setLevel(logging.WARNING)
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    result = {}
    n = 0
    while not int(dut.seq_done.value):
        await RisingEdge(dut.clk)
        n += 1
        if int(dut.seq_error.value) or n > 200_000:
            result.update(seq_error=int(dut.seq_error.value), init_cycles=n)
            write_result(result)
            raise AssertionError(f"init sequencer: error {int(dut.seq_error.value)} after {n} cycles")
    result.update(init_cycles=n, init_done=int(dut.init_done.value), init_error=int(dut.init_error.value),
                  seq_error=int(dut.seq_error.value))
    await ClockCycles(dut.clk, 2)
    assert int(dut.init_done.value) == 1 and int(dut.init_error.value) == 0, result

    image = open(spec["init"], "rb").read()
    mon = Monitor(dut)
    cocotb.start_soon(mon.run())
    c = mon.cycle
    await host.write(spec["base"], image)
    result["preload_cycles"] = mon.cycle - c
    await RisingEdge(dut.clk)
    dut.host.value = 0
    await RisingEdge(dut.clk)
    clock_cycles, cycles = await run_until_landed(dut, mon, spec["max_cycles"])
    dut.host.value = 1
    await RisingEdge(dut.clk)
    c = mon.cycle
    back = (await host.read(spec["base"], len(image))).data
    result["readback_cycles"] = mon.cycle - c
    with open(spec["final"], "wb") as f:
        f.write(bytes(back))
    result.update(bus_result(dut, mon, cycles, clock_cycles))
    write_result(result)
    dut._log.info("engine on LiteDRAM: init %d cycles, run %d cycles, %d writes", result["init_cycles"], cycles,
                  len(mon.aw))
