"""cocotb test: the LiteDRAM backdoor against the AXI port (``ff_litedram_sim`` built from
:func:`fireforge.sim.litedram_backdoor.write_backdoor_core`). The chip was preloaded by ``$readmemh`` (plusargs); this
test only opens the port (``init_done = 1`` on ``wb_ctrl``, all SDRAMPHYModel needs), reads the regions of
``reads`` over AXI with cocotbext-axi's ``AxiMaster`` and writes ``writes``; the dump happens in the core's
``final`` block when the simulation ends, and the pytest side compares it.

Environment: ``FF_BACKDOOR`` (JSON: ``reads`` [[addr, length]], ``writes`` [[addr, hex]]), ``FF_RESULT``.
Result: ``reads`` (hex of each region read), ``cycles`` (simulated clock cycles).
"""

from __future__ import annotations

import json
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles

from fireforge.sim.cocotb_litedram import WishboneMaster
from fireforge.sim.litedram import AXI_PREFIX

PERIOD_NS = 10


@cocotb.test()
async def dram_backdoor(dut):
    from cocotbext.axi import AxiBus, AxiMaster

    with open(os.environ["FF_BACKDOOR"]) as f:
        spec = json.load(f)
    if os.environ.get("FF_CLOCK") != "hdl":
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    wb = WishboneMaster(dut)
    axi = AxiMaster(AxiBus.from_prefix(dut, AXI_PREFIX), dut.clk, dut.user_rst)
    for part in (axi.write_if, axi.read_if):
        part.log.setLevel(logging.WARNING)
    await ClockCycles(dut.clk, 10)
    await wb.write(0, 1)                     # ddrctrl_init_done = 1 (the first CSR)
    await ClockCycles(dut.clk, 2)
    assert int(dut.init_done.value) == 1
    reads = []
    for addr, n in spec["reads"]:
        reads.append(bytes((await axi.read(addr, n)).data).hex())
    for addr, data in spec["writes"]:
        await axi.write(addr, bytes.fromhex(data))
    await ClockCycles(dut.clk, 4)
    with open(f"{os.environ['FF_RESULT']}.tmp", "w") as f:
        json.dump({"reads": reads, "cycles": int(get_sim_time(unit="ns")) // PERIOD_NS}, f)
    os.replace(f"{os.environ['FF_RESULT']}.tmp", os.environ["FF_RESULT"])
