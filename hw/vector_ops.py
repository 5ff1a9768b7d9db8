"""Placeholder until the add formula is known."""
from amaranth import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from fireforge.sw.descriptor import DESCRIPTOR


class AddRequantizer(wiring.Component):
    def __init__(self, *, vector):
        self.vector = vector
        super().__init__({"a": In(data.ArrayLayout(unsigned(8), vector)), "b": In(data.ArrayLayout(unsigned(8), vector)),
                          "params": In(DESCRIPTOR), "out": Out(data.ArrayLayout(unsigned(8), vector))})

    def elaborate(self, platform):
        return Module()


class AverageRequantizer(AddRequantizer):
    def __init__(self, *, vector):
        self.vector = vector
        wiring.Component.__init__(self, {"sum": In(data.ArrayLayout(unsigned(32), vector)), "params": In(DESCRIPTOR),
                          "out": Out(data.ArrayLayout(unsigned(8), vector))})
