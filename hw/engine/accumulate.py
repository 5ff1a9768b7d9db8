"""The accumulator: per output lane, the sum over an output's taps (conv), their sum (GAP), their max (max
pool), or the pair of an add's two inputs — the hardware twin of the golden model's per-layer reductions.

Two stages. ``p`` registers, per lane, the addend and the value a first tap starts from (both from the MAC
sums or the activation, by op); ``acc`` is then ``nxt = first ? start : cont``, so the accumulator's loop is
one adder and two LUT levels (acc → adder → op mux → first mux → acc)::

    CONV     start = bias + sums   cont = acc + sums
    GAP      start = aux + x       cont = acc + x      (Σx − zp·N: the zero-point term enters like a bias)
    MAXPOOL  start = x             cont = max(acc, x)  (acc holds a uint8 here: an 8-bit compare)
    ADD      start = x             cont = acc          (tap 0, input A, is kept; tap 1 goes along beside it)

Everything a lane reads comes as a copy of its own: the op selects and descriptor fields
(:class:`~fireforge.hw.engine.sequencer.LayerFields`), the bias (its quant register), and the tap's
``valid`` and ``first`` (the MAC array's ``lanes``, a copy tree in the stages the tap passes through). One
``first`` flip-flop steering every lane's accumulator was the routed 64-MAC ULX3S design's critical path
(12.35 ns of routing across the die).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.quant import QUANT_LANE
from fireforge.hw.engine.ports import OUT_ADDR_BITS, TAP_META, act_word
from fireforge.hw.engine.sequencer import LANE_FIELDS, LANE_OPS

__all__ = ["Accumulator", "LANE_META", "mac_meta", "accumulator_input", "lane_results", "ACC_BITS"]

ACC_BITS = 32
#: what every lane reads of a tap, delivered as a copy per lane (the MAC array's ``lane_meta``)
LANE_META = data.StructLayout({"valid": 1, "first": 1})


def mac_meta(vector: int) -> data.StructLayout:
    """What travels beside the MAC array with a tap, as one copy (the MAC array's ``meta``): its meta
    (``first`` is read per lane, from :data:`LANE_META`) and its activation word (max pool, GAP and add
    read it)."""
    return data.StructLayout({"tap": TAP_META, "x": act_word(vector)})


def accumulator_input(vector: int, sum_width: int) -> data.StructLayout:
    """The MAC array's output as the accumulator takes it (:class:`~fireforge.hw.mac.MacArray` ``o``)."""
    return data.StructLayout({"sums": data.ArrayLayout(signed(sum_width), vector), "meta": mac_meta(vector),
                              "lanes": data.ArrayLayout(LANE_META, vector)})


def lane_results(vector: int) -> data.StructLayout:
    """An output's results: per lane the accumulator (a conv / GAP sum, a max, or an add's input A in its
    low byte), the tap's activation word (an add's input B), the destination."""
    return data.StructLayout({"acc": data.ArrayLayout(signed(ACC_BITS), vector), "b": act_word(vector),
                              "out_addr": OUT_ADDR_BITS})


class Accumulator(wiring.Component):
    """Parameters
    ----------
    vector : int
        Lanes.
    sum_width : int
        Width of the MAC array's sums.

    Members
    -------
    i : In(stream.Signature(accumulator_input(vector, sum_width), always_ready=True))
        The MAC array's output.
    ops : In(ArrayLayout(LANE_OPS, vector))
    fields : In(ArrayLayout(LANE_FIELDS, vector))
        Per lane: the op selects and descriptor fields (``aux``).
    quant : In(ArrayLayout(QUANT_LANE, vector))
        Per lane: the output group's requant word (``bias``).
    o : Out(stream.Signature(lane_results(vector), always_ready=True))
        One result per output (its last tap), :attr:`latency` cycles after that tap.
    """

    #: ``p``, then ``acc`` (the result register beside it)
    latency = 2

    def __init__(self, *, vector: int, sum_width: int):
        self.vector = vector
        super().__init__({
            "i": In(stream.Signature(accumulator_input(vector, sum_width), always_ready=True)),
            "ops": In(data.ArrayLayout(LANE_OPS, vector)), "fields": In(data.ArrayLayout(LANE_FIELDS, vector)),
            "quant": In(data.ArrayLayout(QUANT_LANE, vector)),
            "o": Out(stream.Signature(lane_results(vector), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        v, i = self.vector, self.i
        a_x = i.p.meta.x
        # p: the tap's meta (one copy: only the result's valid and address read it), its word, and per lane
        p_valid, p_last = Signal(name="p_valid"), Signal(name="p_last")
        p_out_addr = Signal(OUT_ADDR_BITS, name="p_out_addr")
        p_x = Signal(act_word(v), name="p_x", reset_less=True)
        m.d.sync += [p_valid.eq(i.valid), p_last.eq(i.p.meta.tap.last), p_out_addr.eq(i.p.meta.tap.out_addr),
                     p_x.eq(a_x)]
        acc = Signal(data.ArrayLayout(signed(ACC_BITS), v))
        nxt = Signal(data.ArrayLayout(signed(ACC_BITS), v))
        for lane in range(v):
            ops, fields, tap = self.ops[lane], self.fields[lane], i.p.lanes[lane]
            # the lane's copies of the tap's valid and first: reset-less as the copy tree they come from (a
            # stray value after reset is harmless: nothing is written without the reset valid above, and
            # every output's first tap restarts the sum)
            first = Signal(name=f"p_first{lane}", reset_less=True)
            valid = Signal(name=f"p_valid{lane}", reset_less=True)
            addend = Signal(signed(ACC_BITS), name=f"p_addend{lane}", reset_less=True)
            start = Signal(signed(ACC_BITS), name=f"p_start{lane}", reset_less=True)
            x = a_x[lane]
            add_in = Mux(ops.conv, i.p.sums[lane], x)
            m.d.sync += [first.eq(tap.first), valid.eq(tap.valid),
                         addend.eq(Mux(ops.conv | ops.gap, add_in, 0)),
                         start.eq(Mux(ops.conv | ops.gap,
                                      Mux(ops.conv, self.quant[lane].bias, fields.aux.as_signed()) + add_in, x))]
            px = p_x[lane]
            cont = Mux(ops.max, Mux(px > acc[lane][:8], px, acc[lane][:8]), acc[lane] + addend)
            m.d.comb += nxt[lane].eq(Mux(first, start, cont))
            with m.If(valid):
                m.d.sync += acc[lane].eq(nxt[lane])
        res_addr = Signal(OUT_ADDR_BITS, name="res_addr")
        res_b = Signal(act_word(v), reset_less=True)
        res = Signal(data.ArrayLayout(signed(ACC_BITS), v), reset_less=True)
        m.d.sync += [self.o.valid.eq(p_valid & p_last), res_addr.eq(p_out_addr), res.eq(nxt), res_b.eq(p_x)]
        m.d.comb += [self.o.p.acc.eq(res), self.o.p.b.eq(res_b), self.o.p.out_addr.eq(res_addr)]
        return m
