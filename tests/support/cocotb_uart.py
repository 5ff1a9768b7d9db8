"""cocotb test: one inference through the UART host link, driven by the real PC-side client.

The design is :class:`fireforge.hw.host_link.LinkedTop` (ports ``clk``, ``rst``, ``rx``, ``tx``, ...);
:class:`fireforge.hw.host_link.HostClient` — the code a PC runs against a board — talks to it through a
serial-port object whose ``write``/``read`` bit-bang ``rx`` and sample ``tx`` in simulation time
(``cocotb.task.bridge`` / ``resume``: the client runs in a thread, the simulator waits for it).
Run through :func:`support.uart.uart_infer`.

Environment: ``FF_RESULT`` (JSON result file), ``FF_OUT_DIR`` (compiled program), ``FF_INPUT`` (``.npy``
float NCHW input), ``FF_DIVISOR`` (clock cycles per UART bit), ``FF_CLOCK`` (``hdl``: the model makes
its clock). Result: ``{"info", "output" (uint8 list, NCHW order), "shape", "cycles", "sim_ns"}``.
"""

from __future__ import annotations

import json
import os
from collections import deque

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from fireforge.hw.host_link import HostClient

PERIOD_NS = 10


@cocotb.test()
async def uart_inference(dut):
    div = int(os.environ.get("FF_DIVISOR", "4"))
    bit_ns = div * PERIOD_NS
    if os.environ.get("FF_CLOCK") != "hdl":
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)

    received: deque[int] = deque()

    async def monitor():
        while True:
            await FallingEdge(dut.tx)                      # start bit
            await Timer(bit_ns * 3 // 2, unit="ns")        # middle of bit 0
            byte = 0
            for i in range(8):
                byte |= int(dut.tx.value) << i
                await Timer(bit_ns, unit="ns")
            received.append(byte)                          # now in the middle of the stop bit

    cocotb.start_soon(monitor())

    async def send(data: bytes):
        for byte in data:
            for level in (0, *((byte >> i) & 1 for i in range(8)), 1):
                dut.rx.value = level
                await Timer(bit_ns, unit="ns")

    async def recv(n: int) -> bytes:
        waited, limit = 0, (n + 16) * 10 * 4           # bit times: generous for any reply
        while len(received) < n and waited < limit:
            await Timer(bit_ns * 10, unit="ns")
            waited += 10
        return bytes(received.popleft() for _ in range(min(n, len(received))))

    class SimSerial:
        def write(self, data):
            resume(send)(bytes(data))

        def read(self, n):
            return resume(recv)(n)

    x = np.load(os.environ["FF_INPUT"])

    @bridge
    def host():
        client = HostClient(SimSerial())
        info = client.info()
        out, cycles = client.infer(os.environ["FF_OUT_DIR"], x)
        return info, out, cycles

    t0 = get_sim_time("ns")
    info, out, cycles = await host()
    result = {"info": info, "output": np.asarray(out).astype(int).ravel().tolist(), "shape": list(out.shape),
              "cycles": int(cycles), "sim_ns": get_sim_time("ns") - t0}
    if os.environ.get("FF_RESULT"):
        with open(os.environ["FF_RESULT"], "w") as f:
            json.dump(result, f)
