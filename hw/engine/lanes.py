"""The lane requantizers: an output's per-lane results become its output bytes.

Per lane, by the layer's op: conv — :class:`~fireforge.hw.requant.Requantizer` with the channel's requant
word; GAP — the same requantizer with the averaging multiplier (``mult_a``, ``shift_a``); max pool — the
accumulator's low byte as it is; add — :class:`~fireforge.hw.add_requant.AddRequantizer` (ONNX Runtime's fma
chain, when the engine has the add unit). Every path is delayed to the slowest one (the add requantizer's
latency, even without it: one cycle count for every engine of a shape), so results leave in order.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.quant import QUANT_LANE
from fireforge.hw.add_requant import AddRequantizer
from fireforge.hw.dsp import check_multipliers
from fireforge.hw.engine.accumulate import lane_results
from fireforge.hw.engine.needs import total
from fireforge.hw.engine.ports import OUT_ADDR_BITS, act_word
from fireforge.hw.engine.sequencer import LANE_FIELDS
from fireforge.hw.requant import Requantizer
from fireforge.core.config import BuildVariant

__all__ = ["LaneRequantizers", "write_record"]


def write_record(vector: int) -> data.StructLayout:
    """One output word on its way to the activation memory."""
    return data.StructLayout({"addr": OUT_ADDR_BITS, "data": act_word(vector)})


class LaneRequantizers(wiring.Component):
    """Parameters
    ----------
    vector : int
        Lanes.
    add_unit : bool
        With the add requantizers.
    multipliers : str
        How the requantizers' products are built (:data:`fireforge.hw.dsp.MULTIPLIERS`).

    Members
    -------
    i : In(stream.Signature(lane_results(vector), always_ready=True))
    fields : In(ArrayLayout(LANE_FIELDS, vector))
        Per lane: the descriptor fields (a copy each, see
        :class:`~fireforge.hw.engine.sequencer.LayerFields`).
    quant : In(ArrayLayout(QUANT_LANE, vector))
        Per lane: the output group's requant word (``mantissa``, ``shift``).
    o : Out(stream.Signature(write_record(vector), always_ready=True))
        :attr:`latency` cycles after ``i``.
    """

    #: the slowest path, the add requantizer's (16), whether or not the engine has one
    latency = max(Requantizer.latency, AddRequantizer.latency)

    def __init__(self, *, vector: int, add_unit: bool = True, multipliers: str = BuildVariant.multipliers):
        self.vector, self.add_unit, self.multipliers = vector, bool(add_unit), check_multipliers(multipliers)
        super().__init__({
            "i": In(stream.Signature(lane_results(vector), always_ready=True)),
            "fields": In(data.ArrayLayout(LANE_FIELDS, vector)), "quant": In(data.ArrayLayout(QUANT_LANE, vector)),
            "o": Out(stream.Signature(write_record(vector), always_ready=True)),
        })

    @classmethod
    def needs(cls, *, vector: int, add_unit: bool = True, multipliers: str = BuildVariant.multipliers) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): a requantizer per lane, and an add
        requantizer per lane with the add unit."""
        return total(total(Requantizer.needs(multipliers=multipliers), times=vector),
                     total(AddRequantizer.needs(multipliers=multipliers), times=vector if add_unit else 0))

    def elaborate(self, platform):
        m = Module()
        v, i = self.vector, self.i
        rq_bytes, add_bytes, pool = (Signal(act_word(v), name=n) for n in ("rq_bytes", "add_bytes", "pool"))
        for lane in range(v):
            f, q = self.fields[lane], self.quant[lane]
            m.submodules[f"rq{lane}"] = rq = Requantizer(multipliers=self.multipliers)
            m.d.comb += [rq.valid.eq(i.valid), rq.acc.eq(i.p.acc[lane]),
                         rq.mantissa.eq(Mux(f.gap, f.mult_a, q.mantissa)), rq.shift.eq(Mux(f.gap, f.shift_a, q.shift)),
                         rq.zero_point.eq(f.out_zp), rq.relu.eq(f.relu & ~f.gap),
                         rq_bytes[lane].eq(rq.out), pool[lane].eq(i.p.acc[lane][:8])]
            if self.add_unit:
                m.submodules[f"add{lane}"] = ad = AddRequantizer(multipliers=self.multipliers)
                m.d.comb += [ad.valid.eq(i.valid), ad.a.eq(i.p.acc[lane][:8]), ad.b.eq(i.p.b[lane]),
                             ad.mult_a.eq(f.mult_a), ad.shift_a.eq(f.shift_a), ad.mult_b.eq(f.mult_b),
                             ad.shift_b.eq(f.shift_b), ad.addend.eq(f.aux), add_bytes[lane].eq(ad.out)]

        def delay(value, cycles, name, *, reset_less=True):
            """``value`` through ``cycles`` registers; only a valid bit needs them reset."""
            for stage in range(cycles):
                nv = Signal.like(value, name=f"{name}_d{stage}", reset_less=reset_less)
                m.d.sync += nv.eq(value)
                value = nv
            return value

        rq_late = data.View(act_word(v), delay(rq_bytes.as_value(), self.latency - Requantizer.latency, "rq"))
        add_late = data.View(act_word(v), delay(add_bytes.as_value(), self.latency - AddRequantizer.latency, "addq"))
        pool_late = data.View(act_word(v), delay(pool.as_value(), self.latency, "pool"))
        m.d.comb += [self.o.valid.eq(delay(i.valid, self.latency, "res_valid", reset_less=False)),
                     self.o.p.addr.eq(delay(i.p.out_addr, self.latency, "res_addr"))]
        # the output select per lane, from the lane's own copy of the op (one register of the descriptor
        # driving every lane's output mux would be a route across the die)
        for lane in range(v):
            f = self.fields[lane]
            out = Mux(f.max, pool_late[lane], Mux(f.add, add_late[lane], rq_late[lane]) if self.add_unit
                      else rq_late[lane])
            m.d.comb += self.o.p.data[lane].eq(out)
        return m
