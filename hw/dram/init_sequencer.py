"""Plays a DRAM controller's initialisation — a list of Wishbone writes — from a ROM, with no CPU (issue #20).

The list is what ``fireforge.sim.litedram.init_sequence(core)`` returns (``(byte address, data, wait_cycles,
comment)``; anything indexable with those first three items): the caller passes it, since ``hw`` never
imports ``sim``. Each write is one classic Wishbone cycle on :attr:`DramInitSequencer.bus` (``cyc``/``stb``/
``we`` held until ``ack``), whose word address is ``byte address >> 2`` as on LiteDRAM's ``wb_ctrl``; then
``wait_cycles`` idle cycles; after the last one ``done`` rises and stays. An ``err`` or no ``ack`` within
``timeout`` cycles raises ``error`` (sticky) and stops the sequence (``done`` stays low).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fireforge.hw.engine.needs import report

__all__ = ["WishboneMaster", "DramInitSequencer"]


class WishboneMaster(wiring.Signature):
    """A classic Wishbone B4 master port (32-bit data), with LiteX's member names (``adr``, ``dat_w``…), so a
    top's ``wb`` port flattens to ``wb_adr`` etc. as LiteDRAM's ``wb_ctrl_*``.

    Members
    -------
    adr : Out(addr_width)   (word address)
    dat_w, sel, cyc, stb, we, cti, bte : Out
    dat_r, ack, err : In
    """

    def __init__(self, *, addr_width: int = 30):
        self.addr_width = addr_width
        super().__init__({"adr": Out(addr_width), "dat_w": Out(32), "dat_r": In(32), "sel": Out(4),
                          "cyc": Out(1), "stb": Out(1), "we": Out(1), "cti": Out(3), "bte": Out(2),
                          "ack": In(1), "err": In(1)})


class DramInitSequencer(wiring.Component):
    """Parameters
    ----------
    sequence : list of (byte address, data, wait_cycles, …)
        The writes, in order (≥ 1); byte addresses are 4-aligned.
    addr_width : int
        Bits of the Wishbone word address (default 30).
    timeout : int
        Cycles a write may wait for ``ack`` before ``error`` (default 1024).

    Members
    -------
    bus : Out(WishboneMaster(addr_width))
    done : Out(1)
        High once every write is acknowledged and its wait is over; stays high.
    error : Out(1)
        An ``err`` or an ``ack`` timeout; stays high, and the sequence stops.
    """

    def __init__(self, sequence, *, addr_width: int = 30, timeout: int = 1024):
        steps = [(int(s[0]), int(s[1]), int(s[2])) for s in sequence]
        if not steps:
            raise ValueError("sequence must have at least one write")
        for a, d, w in steps:
            if a % 4 or not 0 <= a >> 2 < 1 << addr_width:
                raise ValueError(f"address {a:#x} is not a 4-aligned byte address below 2**{addr_width + 2}")
            if not 0 <= d < 1 << 32 or w < 0:
                raise ValueError(f"bad step {(a, d, w)!r}: data must fit 32 bits, wait_cycles be ≥ 0")
        if not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be an integer ≥ 1, not {timeout!r}")
        self.steps, self.addr_width, self.timeout = steps, addr_width, timeout
        self.wait_width = max(1, max(w for _, _, w in steps).bit_length())
        self.rom_layout = data.StructLayout({"adr": addr_width, "dat": 32, "wait": self.wait_width})
        super().__init__({"bus": Out(WishboneMaster(addr_width=addr_width)), "done": Out(1), "error": Out(1)})

    #: cycles from a write's ``ack`` to the next write's ``stb`` when its wait is 0 (the ROM read, then the bus
    #: registers); a wait of ``w`` cycles adds ``w``. The first ``stb`` comes ``overhead`` cycles after reset.
    overhead = 2

    @classmethod
    def needs(cls, sequence, *, addr_width: int = 30, **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the ROM, one word per write."""
        wait_width = max(1, max(int(s[2]) for s in sequence).bit_length())
        return report(memories=[(addr_width + 32 + wait_width, len(sequence))])

    def elaborate(self, platform):
        m = Module()
        bus, n = self.bus, len(self.steps)
        init = [{"adr": a >> 2, "dat": d, "wait": w} for a, d, w in self.steps]
        m.submodules.rom = rom = Memory(shape=self.rom_layout, depth=n, init=init)
        rd = rom.read_port(domain="sync")
        index = Signal(range(n + 1))        # the ROM word read: the write after the one on the bus
        wait = Signal(self.wait_width)
        count = Signal(range(max(1 << self.wait_width, self.timeout + 1)))
        m.d.comb += [rd.addr.eq(index), bus.sel.eq(0xF), bus.we.eq(bus.cyc), bus.stb.eq(bus.cyc),
                     bus.cti.eq(0), bus.bte.eq(0)]

        with m.FSM():
            with m.State("FETCH"):          # the ROM word of `index` is being read
                m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [bus.cyc.eq(1), bus.adr.eq(rd.data.adr), bus.dat_w.eq(rd.data.dat),
                             wait.eq(rd.data.wait), count.eq(0), index.eq(index + 1)]
                m.next = "WRITE"
            with m.State("WRITE"):
                m.d.sync += count.eq(count + 1)
                with m.If(bus.err | (~bus.ack & (count == self.timeout - 1))):
                    m.d.sync += [bus.cyc.eq(0), self.error.eq(1)]
                    m.next = "STOP"
                with m.Elif(bus.ack):
                    m.d.sync += [bus.cyc.eq(0), count.eq(0)]
                    m.next = "WAIT"
            with m.State("WAIT"):           # the next ROM word is read meanwhile
                with m.If(count >= wait):
                    with m.If(index == n):
                        m.d.sync += self.done.eq(1)
                        m.next = "STOP"
                    with m.Else():
                        m.d.sync += [bus.cyc.eq(1), bus.adr.eq(rd.data.adr), bus.dat_w.eq(rd.data.dat),
                                     wait.eq(rd.data.wait), count.eq(0), index.eq(index + 1)]
                        m.next = "WRITE"
                with m.Else():
                    m.d.sync += count.eq(count + 1)
            with m.State("STOP"):
                pass
        return m
