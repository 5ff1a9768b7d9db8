"""A first-word-fall-through FIFO with stream ports and a memory the caller may steer to LUT RAM.

Cycle for cycle the same as :class:`amaranth.lib.fifo.SyncFIFOBuffered` (a ``depth − 1`` word memory with
a synchronous read port, then an output register), but its memory is made here, so its attributes are
set through the public :class:`amaranth.lib.memory.Memory` ``attrs`` (``ram_style``) rather than by
reaching into the stdlib FIFO's private submodule.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import Shape
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFIFO", "RAM_STYLES"]

#: ``ram_style`` values: leave the choice to synthesis, or force LUT RAM (never block RAM)
RAM_STYLES = (None, "distributed")


class StreamFIFO(wiring.Component):
    """Parameters
    ----------
    shape : ShapeLike
        Shape of a word (a layout gives a payload view with its fields).
    depth : int
        Words held (≥ 2): ``depth − 1`` in the memory, one in the output register.
    ram_style : str or None
        ``"distributed"``: the memory carries ``ram_style = "distributed"`` (LUT RAM: its read data leaves a
        flip-flop, not a block RAM read port without output register); ``None``: synthesis chooses.

    Members
    -------
    w : In(stream.Signature(shape))
        Words in; ``ready`` is low while full.
    r : Out(stream.Signature(shape))
        Words out, in order, :attr:`latency` cycles after they were written at the earliest.
    level : Out(range(depth + 1))
        Words held (memory and output register).
    """

    def __init__(self, *, shape, depth: int, ram_style: str | None = None):
        Shape.cast(shape)
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an integer ≥ 2, not {depth!r}")
        if ram_style not in RAM_STYLES:
            raise ValueError(f"ram_style must be one of {RAM_STYLES}, not {ram_style!r}")
        self.shape, self.depth, self.ram_style = shape, depth, ram_style
        super().__init__({"w": In(stream.Signature(shape)), "r": Out(stream.Signature(shape)),
                          "level": Out(range(depth + 1))})

    #: cycles from a word written to it readable: the memory, then the output register
    latency = 2

    @classmethod
    def needs(cls, *, shape, depth: int, ram_style: str | None = None) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): one memory of ``depth − 1`` words."""
        return {"products": {}, "memories": [(Shape.cast(shape).width, depth - 1)]}

    def elaborate(self, platform):
        m = Module()
        inner_depth = self.depth - 1
        inner_level = Signal(range(inner_depth + 1))
        # "not full" and "not empty" as registers, updated as the level moves: the memory's write enable
        # (``ready & valid``, decoded per LUT RAM block) then starts at a flip-flop, not at a compare of the
        # level (the ULX3S DRAM engine's critical path at 86.48 MHz: the fetch DMA's level → its LUT RAM's
        # write enables, 9.7 ns of routing)
        w_rdy, inner_r_rdy = Signal(init=1), Signal()
        inner_level_next = Signal.like(inner_level)
        do_write = self.w.ready & self.w.valid
        m.d.comb += self.w.ready.eq(w_rdy)
        do_inner_read = inner_r_rdy & (~self.r.valid | self.r.ready)

        attrs = {"ram_style": self.ram_style} if self.ram_style else None
        m.submodules.storage = storage = Memory(shape=Shape.cast(self.shape).width, depth=inner_depth, init=[],
                                                attrs=attrs)
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        produce = Signal(range(inner_depth))
        consume = Signal(range(inner_depth))

        def incr(value):     # as the stdlib FIFO: wrap at inner_depth
            return value + 1 if inner_depth == 2 ** len(value) else Mux(value == inner_depth - 1, 0, value + 1)

        m.d.comb += [w_port.addr.eq(produce), w_port.data.eq(self.w.payload), w_port.en.eq(do_write),
                     r_port.addr.eq(consume), self.r.payload.eq(r_port.data), r_port.en.eq(do_inner_read)]
        with m.If(do_write):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_inner_read):
            m.d.sync += consume.eq(incr(consume))
        # the flags' next values as compares of the level now, ``up`` / ``down`` (the consumer's ``ready``, often
        # late) only choosing among them: through the adder it was the ULX3S DRAM engine's critical path (74.89 MHz)
        up, down = Signal(), Signal()
        m.d.comb += [inner_level_next.eq(inner_level + do_write - do_inner_read),
                     up.eq(do_write & ~do_inner_read), down.eq(do_inner_read & ~do_write)]
        m.d.sync += [inner_level.eq(inner_level_next),
                     w_rdy.eq(Mux(up, inner_level != inner_depth - 1, down | w_rdy)),
                     inner_r_rdy.eq(Mux(down, inner_level != 1, up | inner_r_rdy))]
        with m.If(do_inner_read):
            m.d.sync += self.r.valid.eq(1)
        with m.Elif(self.r.ready):
            m.d.sync += self.r.valid.eq(0)
        m.d.comb += self.level.eq(inner_level + self.r.valid)
        return m
