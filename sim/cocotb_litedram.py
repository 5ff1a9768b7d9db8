"""cocotb test of a generated LiteDRAM ``--sim`` core (:mod:`fireforge.sim.litedram`): initialise it through
``wb_ctrl``, then write random data through the AXI user port with cocotbext-axi's ``AxiMaster`` and read it
back byte-exact, and measure the port's read latency and burst throughput in controller cycles.

Run it through :func:`fireforge.sim.verilator.run` (``test_module="fireforge.sim.cocotb_litedram"``). This
is a protocol test: cocotbext-axi runs Python every cycle, which is fine for a few thousand cycles of
traffic; the engine's simulation must not drive DRAM from Python.

Environment
-----------
``FF_RESULT``           JSON result file (set by ``run()``)
``FF_LITEDRAM_INIT``    JSON file: the init sequence, ``[[byte address, data, wait cycles], ...]``
                        (:func:`fireforge.sim.litedram.init_sequence`)
``FF_LITEDRAM_SEED``    seed of the random addresses, lengths and data (default 1)
``FF_LITEDRAM_SIZE``    DRAM size in bytes (random addresses stay below it)
``FF_CLOCK``            ``hdl``: the model makes its clock (10 ns); otherwise the GPI clock is started here

Result JSON
-----------
``init_cycles`` (cycles the init sequence took), ``init_done``/``init_error`` (ports before and after),
``init_done_readback``, ``transfers`` (one entry per checked transfer: address, length, write and read
cycles, mismatching bytes), ``read_latency_miss``/``read_latency_hit`` (cycles from the AR handshake to the
first R beat of a one-beat read of a closed / the open row), ``burst_read`` / ``burst_write`` (one
256-beat burst: cycles from the address handshake to the last R beat / to B), ``stream_read`` /
``stream_write`` (bytes and cycles of a long sequential transfer split into bursts by ``AxiMaster``).
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from fireforge.sim.litedram import AXI_PREFIX
from fireforge.sim.verilator_run import write_result

PERIOD_NS = 10


def _now_cycles() -> int:
    return int(get_sim_time(unit="ns")) // PERIOD_NS


class WishboneMaster:
    """Classic Wishbone cycles on ``wb_ctrl_*`` (one at a time; the CSR bridge acks in a few cycles)."""

    def __init__(self, dut, prefix: str = "wb_ctrl"):
        self.dut, self.clk = dut, dut.clk
        self.s = {n: getattr(dut, f"{prefix}_{n}") for n in ("adr", "dat_w", "dat_r", "sel", "cyc", "stb",
                                                               "we", "ack", "err", "cti", "bte")}
        for n in ("adr", "dat_w", "sel", "cyc", "stb", "we", "cti", "bte"):
            self.s[n].value = 0

    async def _cycle(self, byte_address: int, data: int | None, limit: int = 100) -> int:
        s = self.s
        await FallingEdge(self.clk)
        s["adr"].value = byte_address >> 2
        s["we"].value = int(data is not None)
        s["dat_w"].value = data or 0
        s["sel"].value = 0xF
        s["cyc"].value = 1
        s["stb"].value = 1
        for _ in range(limit):
            await RisingEdge(self.clk)
            if s["ack"].value == 1 or s["err"].value == 1:
                break
        else:
            raise TimeoutError(f"wb_ctrl: no ack in {limit} cycles at {byte_address:#x}")
        if s["err"].value == 1:
            raise RuntimeError(f"wb_ctrl: bus error at {byte_address:#x}")
        value = int(s["dat_r"].value)
        await FallingEdge(self.clk)
        s["cyc"].value = 0
        s["stb"].value = 0
        s["we"].value = 0
        return value

    async def write(self, byte_address: int, data: int) -> None:
        await self._cycle(byte_address, data)

    async def read(self, byte_address: int) -> int:
        return await self._cycle(byte_address, None)


class AxiWatch:
    """Records, per channel, the cycle of every handshake (``events``) and the cycle each transfer was
    first offered (``starts``: valid high after a cycle with valid low or with a handshake); one
    wake-up per clock while running.

    Both are needed because LiteDRAM's AXI port acknowledges AR (AW) only when it has issued the
    burst's last native command: an AR handshake comes *after* most of the data, so latency and burst
    time are counted from ``starts``."""

    def __init__(self, dut, prefix: str):
        self.clk = dut.clk
        g = lambda n: getattr(dut, f"{prefix}_{n}")   # noqa: E731
        self.ch = {c: (g(f"{c}valid"), g(f"{c}ready")) for c in ("ar", "aw", "w", "r", "b")}
        self.rlast = g("rlast")
        self.events: dict[str, list[int]] = {c: [] for c in self.ch}
        self.starts: dict[str, list[int]] = {c: [] for c in self.ch}
        self.rlast_at: list[int] = []
        self._free = {c: True for c in self.ch}     # no transfer pending on the channel

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            t = _now_cycles()
            for c, (v, r) in self.ch.items():
                valid = v.value == 1
                if valid and self._free[c]:
                    self.starts[c].append(t)
                self._free[c] = not valid
                if valid and r.value == 1:
                    self.events[c].append(t)
                    self._free[c] = True
                    if c == "r" and self.rlast.value == 1:
                        self.rlast_at.append(t)

    def start(self):
        self.clear()
        cocotb.start_soon(self._run())

    def clear(self):
        for d in (self.events, self.starts):
            for v in d.values():
                v.clear()
        self.rlast_at.clear()


def _first(watch: AxiWatch, *channels: str) -> int:
    """The cycle the first of *channels* offered a transfer."""
    return min(watch.starts[c][0] for c in channels)



@cocotb.test()
async def litedram_axi(dut):
    from cocotbext.axi import AxiBus, AxiMaster   # deferred: only in the simulator process

    result: dict = {}
    if os.environ.get("FF_CLOCK") != "hdl":
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    wb = WishboneMaster(dut)
    axi = AxiMaster(AxiBus.from_prefix(dut, AXI_PREFIX), dut.clk, dut.user_rst)
    for part in (axi.write_if, axi.read_if):
        part.log.setLevel(logging.WARNING)   # it logs every burst with its data at INFO
    watch = AxiWatch(dut, AXI_PREFIX)
    await ClockCycles(dut.clk, 10)           # the core's power-on reset (int_rst) is one cycle
    result["before_init"] = {"init_done": int(dut.init_done.value), "init_error": int(dut.init_error.value)}

    # -- initialisation through wb_ctrl --------------------------------------------------------------------
    with open(os.environ["FF_LITEDRAM_INIT"]) as f:
        sequence = json.load(f)
    t0 = _now_cycles()
    for address, data, wait in sequence:
        await wb.write(address, data)
        if wait:
            await ClockCycles(dut.clk, wait)
    result["init_cycles"] = _now_cycles() - t0
    result["init_writes"] = len(sequence)
    await ClockCycles(dut.clk, 2)             # user_enable is registered
    result["init_done"] = int(dut.init_done.value)
    result["init_error"] = int(dut.init_error.value)
    result["init_done_readback"] = await wb.read(0)   # ddrctrl_init_done is the first CSR
    if not result["init_done"] or result["init_error"]:
        write_result(result)
        raise AssertionError(f"controller not ready after init: {result}")

    # -- random transfers, byte-exact -------------------------------------------------------------------------
    rng = random.Random(int(os.environ.get("FF_LITEDRAM_SEED", "1")))
    size = int(os.environ["FF_LITEDRAM_SIZE"])
    lengths = [1, 2, 3, 5, 8, 13, 31, 64, 100, 255, 1024, 1500, 4097]
    transfers, used, written = [], [], []
    watch.start()
    for n in lengths:
        while True:   # a random start (any byte offset), its region not overlapping earlier ones
            if n > 4096:  # across a 4 KB boundary (AxiMaster splits the burst there) and a DRAM row
                addr = (rng.randrange(1, size >> 12) << 12) - 1000 - rng.randrange(8)
            else:
                addr = rng.randrange(0, size - n)
            if all(addr + n <= a or a + m <= addr for a, m in used):
                break
        used.append((addr, n))
        data = bytes(rng.getrandbits(8) for _ in range(n))
        written.append(data)
        tw = _now_cycles()
        await axi.write(addr, data)
        tr = _now_cycles()
        back = (await axi.read(addr, n)).data
        te = _now_cycles()
        bad = sum(a != b for a, b in zip(back, data)) + abs(len(back) - n)
        transfers.append({"address": addr, "length": n, "write_cycles": tr - tw, "read_cycles": te - tr,
                          "mismatches": bad})
    # reread everything at the end: later writes must not have disturbed earlier data
    for t, (addr, n), data in zip(transfers, used, written):
        back = (await axi.read(addr, n)).data
        t["mismatches_at_end"] = sum(a != b for a, b in zip(back, data)) + abs(len(back) - n)
    result["transfers"] = transfers

    # -- latency: one-beat reads of a closed row (miss) and of the row just opened (hit) -----------------------
    beat = len(getattr(dut, f"{AXI_PREFIX}_rdata"))
    step = beat // 8
    row_stride = 1 << 20   # far apart: another row in the same bank after the first access
    lat = {}
    for label, address in (("read_latency_miss", 3 * row_stride), ("read_latency_hit", 3 * row_stride + step)):
        watch.clear()
        await axi.read(address, step)
        lat[label] = watch.events["r"][0] - watch.starts["ar"][0]
    result.update(lat)

    # -- one 256-beat burst each way, and a long sequential stream ---------------------------------------------
    burst_bytes = 256 * step
    base = 5 * row_stride
    payload = bytes(rng.getrandbits(8) for _ in range(burst_bytes))
    watch.clear()
    await axi.write(base, payload)
    result["burst_write"] = {"bytes": burst_bytes, "cycles": watch.events["b"][0] - _first(watch, "aw", "w"),
                             "aw_handshake": watch.events["aw"][0] - _first(watch, "aw", "w")}
    watch.clear()
    back = (await axi.read(base, burst_bytes)).data
    result["burst_read"] = {"bytes": burst_bytes, "cycles": watch.rlast_at[0] - watch.starts["ar"][0],
                            "first_beat": watch.events["r"][0] - watch.starts["ar"][0],
                            "ar_handshake": watch.events["ar"][0] - watch.starts["ar"][0],
                            "mismatches": sum(a != b for a, b in zip(back, payload))}
    stream = bytes(rng.getrandbits(8) for _ in range(16 * burst_bytes))
    base = 7 * row_stride
    watch.clear()
    await axi.write(base, stream)
    result["stream_write"] = {"bytes": len(stream), "cycles": watch.events["b"][-1] - _first(watch, "aw", "w")}
    watch.clear()
    back = (await axi.read(base, len(stream))).data
    result["stream_read"] = {"bytes": len(stream), "cycles": watch.rlast_at[-1] - watch.starts["ar"][0],
                             "mismatches": sum(a != b for a, b in zip(back, stream))}
    result["axi_data_width"] = beat
    write_result(result)
    bad = [t for t in transfers if t["mismatches"] or t["mismatches_at_end"]]
    assert not bad, f"mismatching transfers: {bad}"
    assert result["burst_read"]["mismatches"] == 0 and result["stream_read"]["mismatches"] == 0
