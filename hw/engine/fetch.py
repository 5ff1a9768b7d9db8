"""Activation fetch: the AGU's taps become memory reads, and each tap is joined with its read's response.

A tap goes to the memory (unless it is padding) and, as it is issued, into the tap FIFO; responses come
back in order, through a register, into the response FIFO. The join takes the tap FIFO's head with the
response FIFO's head (or, for a padding tap, with the padding value) — the memory may stall or answer late
without losing a beat. The tap FIFO bounds the reads in flight (the AGU issues only when it has room), so
the response FIFO cannot overflow and responses need no back-pressure.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.engine.agu import tap_request
from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.ports import TAP_META, W_ADDR_BITS, ReadChannel, act_word
from fireforge.hw.engine.needs import total

__all__ = ["ActivationFetch", "joined_tap", "TAP_RECORD"]

#: a tap in the tap FIFO: everything but its read address
TAP_RECORD = data.StructLayout({"pad": 1, "w_addr": W_ADDR_BITS, "meta": TAP_META})


def joined_tap(vector: int) -> data.StructLayout:
    """A tap with its activation word (or the padding word)."""
    return data.StructLayout({"x": act_word(vector), "w_addr": W_ADDR_BITS, "meta": TAP_META})


class ActivationFetch(wiring.Component):
    """Parameters
    ----------
    vector : int
        Channels per activation word.
    addr_bits : int
        Activation address bits.
    read_depth : int
        Depth of the tap and response FIFOs: reads in flight.

    Members
    -------
    taps : In(stream.Signature(tap_request(addr_bits)))
        Taps from the AGU. ``ready`` is the memory's: the AGU keeps the tap FIFO from filling (``level``).
    level : Out(range(read_depth + 1))
        Taps in the tap FIFO.
    read : Out(ReadChannel)
        The activation memory's read channel.
    pad_value : In(unsigned(8))
        What a padding tap reads, in every channel.
    joined : Out(stream.Signature(joined_tap(vector), always_ready=True))
        Taps with their words, in order, at the earliest :attr:`latency` cycles after they were issued.
    """

    def __init__(self, *, vector: int, addr_bits: int, read_depth: int):
        self.vector, self.read_depth = vector, read_depth
        super().__init__({
            "taps": In(stream.Signature(tap_request(addr_bits))), "level": Out(range(read_depth + 1)),
            "read": Out(ReadChannel(addr_bits=addr_bits, data_bits=8 * vector)), "pad_value": In(unsigned(8)),
            "joined": Out(stream.Signature(joined_tap(vector), always_ready=True)),
        })

    #: cycles from a tap issued to it joined (a padding tap, or a read answered at once): the tap FIFO's
    latency = StreamFIFO.latency

    @classmethod
    def needs(cls, *, vector: int, addr_bits: int, read_depth: int) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the tap and response FIFOs."""
        return total(StreamFIFO.needs(shape=TAP_RECORD, depth=read_depth),
                     StreamFIFO.needs(shape=act_word(vector), depth=read_depth))

    def elaborate(self, platform):
        m = Module()
        taps, read = self.taps, self.read
        m.submodules.tapq = tapq = StreamFIFO(shape=TAP_RECORD, depth=self.read_depth)
        m.submodules.respq = respq = StreamFIFO(shape=act_word(self.vector), depth=self.read_depth)
        m.d.comb += [read.valid.eq(taps.valid & ~taps.p.pad), read.addr.eq(taps.p.addr),
                     taps.ready.eq(read.ready), self.level.eq(tapq.level),
                     tapq.w.valid.eq(taps.valid & taps.ready),
                     tapq.w.p.pad.eq(taps.p.pad), tapq.w.p.w_addr.eq(taps.p.w_addr), tapq.w.p.meta.eq(taps.p.meta)]
        # responses are registered once before the FIFO: the memory's output (block RAM clock-to-out, its bank
        # mux, a cross-chip route) then ends in a flip-flop, not in the FIFO's write logic. One more cycle of
        # read latency; the tap FIFO bounds the reads in flight, so the response FIFO still cannot overflow
        # (responses held here and in it never outnumber the tap FIFO's entries). Data registers from here to
        # the write queue are reset-less: only valid bits need the reset, whose net otherwise reaches every
        # flip-flop of the datapath.
        resp_valid = Signal()
        resp_data = Signal(len(read.resp.data), reset_less=True)
        m.d.sync += [resp_valid.eq(read.resp.valid), resp_data.eq(read.resp.data)]
        m.d.comb += [respq.w.payload.eq(resp_data), respq.w.valid.eq(resp_valid)]

        head = tapq.r.p
        take = Signal()
        pad_word = Signal(act_word(self.vector))
        m.d.comb += [take.eq(tapq.r.valid & (head.pad | respq.r.valid)),
                     tapq.r.ready.eq(take), respq.r.ready.eq(take & ~head.pad),
                     *(pad_word[lane].eq(self.pad_value) for lane in range(self.vector)),
                     self.joined.valid.eq(take),
                     self.joined.p.x.eq(Mux(head.pad, pad_word.as_value(), respq.r.payload)),
                     self.joined.p.w_addr.eq(head.w_addr), self.joined.p.meta.eq(head.meta)]
        return m
