"""Weight fetch: a joined tap waits beside the weight ROM's pipeline and leaves with its weight word, its
activation word copied once per output lane.

``c1`` registers the tap (and the ROM address: the tap FIFO's memory may be a block RAM with a slow
clock-to-out, and the address goes to every block of the ROM, all over the chip), the tap then travels
``rom_latency`` stages beside the ROM, and ``c2`` takes the weight word as it leaves the ROM. The activation
word's last stages are a copy tree (:func:`fireforge.hw.fanout.delayed_copies`), a copy per output lane:
the lanes sit beside their weight blocks, all over the die, and one register driving all of them was a route
across it.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.engine.fetch import joined_tap
from fireforge.hw.engine.ports import TAP_META, RomPort, act_word
from fireforge.hw.fanout import delayed_copies

__all__ = ["WeightFetch", "mac_operands"]


def mac_operands(vector: int) -> data.StructLayout:
    """A tap at the MAC array: its activation word, a copy per output lane; its weight word (element
    ``o·vector + i`` multiplies ``x[i]`` into output lane ``o``); its meta."""
    return data.StructLayout({"x": data.ArrayLayout(act_word(vector), vector),
                              "w": data.ArrayLayout(signed(8), vector * vector), "meta": TAP_META})


class WeightFetch(wiring.Component):
    """Parameters
    ----------
    vector : int
        Lanes (the weight word is ``vector²`` int8).
    weight_addr_bits : int
        Weight ROM address bits.
    rom_latency : int
        Cycles from the ROM's ``en`` / ``addr`` to its ``data``.

    Members
    -------
    taps : In(stream.Signature(joined_tap(vector), always_ready=True))
    rom : Out(RomPort)
        The weight ROM: read every cycle (``en`` is 1: no enable net from the FIFO logic to every block RAM
        of the ROM; the word is used only with a tap).
    operands : Out(stream.Signature(mac_operands(vector), always_ready=True))
        :attr:`latency` cycles after the tap.
    """

    def __init__(self, *, vector: int, weight_addr_bits: int, rom_latency: int):
        if not isinstance(rom_latency, int) or rom_latency < 1:
            raise ValueError(f"rom_latency must be a positive integer, not {rom_latency!r}")
        self.vector, self.rom_latency = vector, rom_latency
        super().__init__({
            "taps": In(stream.Signature(joined_tap(vector), always_ready=True)),
            "rom": Out(RomPort(addr_bits=weight_addr_bits, data_bits=8 * vector * vector)),
            "operands": Out(stream.Signature(mac_operands(vector), always_ready=True)),
        })

    @property
    def latency(self) -> int:
        """``c1``, the ROM's stages, ``c2``."""
        return self.rom_latency + 2

    def elaborate(self, platform):
        m = Module()
        v, taps = self.vector, self.taps
        side = data.StructLayout({"valid": 1, "meta": TAP_META})
        c1 = Signal(side)
        c1_x = Signal(act_word(v), reset_less=True)
        m.d.comb += self.rom.en.eq(1)
        m.d.sync += [self.rom.addr.eq(taps.p.w_addr), c1.valid.eq(taps.valid), c1.meta.eq(taps.p.meta),
                     c1_x.eq(taps.p.x)]
        w_side = c1
        for stage in range(self.rom_latency):
            ns = Signal(side, name=f"w{stage}_side")
            m.d.sync += ns.eq(w_side)
            w_side = ns
        c2 = Signal(side)
        c2_w = Signal(data.ArrayLayout(signed(8), v * v), reset_less=True)
        m.d.sync += [c2.eq(w_side), c2_w.as_value().eq(self.rom.data)]
        lane_x = delayed_copies(m, c1_x.as_value(), v, self.rom_latency + 1, "lane_x")
        m.d.comb += [self.operands.valid.eq(c2.valid), self.operands.p.meta.eq(c2.meta),
                     self.operands.p.w.eq(c2_w), *(self.operands.p.x[o].eq(lane_x[o]) for o in range(v))]
        return m
