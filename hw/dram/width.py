"""A stream width converter between the AXI port's data width and an on-chip word width (e.g. the ULX3S's
16-bit SDRAM port and a 64-bit engine word). Little-endian, as the port's bytes: the first narrow word is
the low part of the wide word."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WidthConverter"]


class WidthConverter(wiring.Component):
    """Parameters
    ----------
    i_width, o_width : int
        Bits of an input and an output word; the larger a power-of-two multiple of the smaller (equal:
        a register stage).

    Members
    -------
    i : In(stream.Signature(i_width))
    o : Out(stream.Signature(o_width))
        Narrow → wide: one word per ``o_width / i_width`` inputs, the first in the low bits. Wide → narrow:
        the low part first. Full throughput on the narrow side (wide → narrow: the next word is taken in the
        cycle its predecessor's last part is offered).
    """

    def __init__(self, *, i_width: int, o_width: int):
        for name, value in (("i_width", i_width), ("o_width", o_width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        narrow, wide = sorted((i_width, o_width))
        ratio = wide // narrow
        if wide % narrow or ratio & (ratio - 1):
            raise ValueError(f"the wider of i_width and o_width must be a power-of-two multiple of the other, "
                             f"not {i_width} and {o_width}")
        self.i_width, self.o_width, self.ratio = i_width, o_width, ratio
        super().__init__({"i": In(stream.Signature(i_width)), "o": Out(stream.Signature(o_width))})

    @property
    def latency(self) -> int:
        """Cycles from the input word that completes an output (narrow → wide: the output register) or
        starts one (wide → narrow: the holding register, then the output register) to that output offered."""
        return 1 if self.i_width <= self.o_width else 2

    def elaborate(self, platform):
        m = Module()
        i, o, ratio = self.i, self.o, self.ratio
        count = Signal(range(ratio))
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        if self.i_width <= self.o_width:
            # gather into the output register; a finished word leaves while the next one starts
            m.d.comb += i.ready.eq(~o.valid | o.ready | (count != 0))
            with m.If(i.valid & i.ready):
                m.d.sync += count.eq(count + 1 if ratio > 1 else 0)
                with m.If(count == ratio - 1):
                    m.d.sync += o.valid.eq(1)
            # each part's enable spelled alone: only the first part waits for the word before it to leave, so
            # ``o.ready`` (the consumer's decision) reaches 1/ratio of the wide register's enables, not all of them
            # (the command processor's ``ready`` → 512 enables across the die: the ULX3S DRAM engine's critical
            # path at 76.02 MHz, seed 3)
            for k in range(ratio):
                room = (~o.valid | o.ready) if k == 0 else 1
                with m.If(i.valid & (count == k) & room):
                    m.d.sync += o.payload.word_select(k, self.i_width).eq(i.payload)
        else:
            # hold the wide word, offer its parts in turn; the next word is taken as its last part is
            held = Signal(self.i_width)
            full = Signal()
            emit = Signal()
            m.d.comb += [emit.eq(full & (~o.valid | o.ready)),
                         i.ready.eq(~full | (emit & (count == ratio - 1)))]
            with m.If(emit):
                m.d.sync += [o.valid.eq(1), o.payload.eq(held.word_select(count, self.o_width)),
                             count.eq(count + 1)]
                with m.If(count == ratio - 1):
                    m.d.sync += full.eq(0)
            with m.If(i.valid & i.ready):
                m.d.sync += [held.eq(i.payload), full.eq(1)]
        return m
