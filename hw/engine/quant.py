"""Requant fetch: an output group's requant word (per lane: folded bias, mantissa, shift) read from the quant
ROM into per-lane registers.

The word is loaded lane by lane as it leaves the ROM, on the ROM read delayed by ``rom_latency`` cycles —
the last of them a copy tree, a strobe per lane (:func:`fireforge.hw.fanout.delayed_copies`). The lanes'
quant registers sit by their accumulators and requantizers, all over the die; one enable for all of them was
a route across it (8.8 ns, the floorplanned 64-MAC ULX3S design's critical path).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.quant import QUANT_LANE
from fireforge.hw.engine.ports import RomPort
from fireforge.hw.fanout import delayed_copies

__all__ = ["QuantFetch"]


class QuantFetch(wiring.Component):
    """Parameters
    ----------
    vector : int
        Lanes: the ROM word is ``ArrayLayout(QUANT_LANE, vector)``.
    quant_addr_bits : int
        Quant ROM address bits.
    rom_latency : int
        Cycles from the ROM's ``en`` to its ``data``.

    Members
    -------
    request : In(stream.Signature(quant_addr_bits, always_ready=True))
        Read this word (the sequencer's ``GROUP``).
    rom : Out(RomPort)
    quant : Out(ArrayLayout(QUANT_LANE, vector))
        The registers: loaded at the edge :attr:`latency` cycles after the request.
    """

    def __init__(self, *, vector: int, quant_addr_bits: int, rom_latency: int):
        if not isinstance(rom_latency, int) or rom_latency < 1:
            raise ValueError(f"rom_latency must be a positive integer, not {rom_latency!r}")
        self.vector, self.rom_latency = vector, rom_latency
        self.layout = data.ArrayLayout(QUANT_LANE, vector)
        super().__init__({
            "request": In(stream.Signature(quant_addr_bits, always_ready=True)),
            "rom": Out(RomPort(addr_bits=quant_addr_bits, data_bits=self.layout.size)),
            "quant": Out(self.layout),
        })

    @property
    def latency(self) -> int:
        return self.rom_latency

    def elaborate(self, platform):
        m = Module()
        quant = Signal(self.layout)
        word = data.View(self.layout, self.rom.data)
        m.d.comb += [self.rom.en.eq(self.request.valid), self.rom.addr.eq(self.request.payload),
                     self.quant.eq(quant)]
        for lane, strobe in enumerate(delayed_copies(m, self.rom.en, self.vector, self.rom_latency, "q_take")):
            with m.If(strobe):
                m.d.sync += quant[lane].eq(word[lane])
        return m
