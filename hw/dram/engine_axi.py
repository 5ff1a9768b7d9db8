"""``EngineAxiTop``: :class:`~fireforge.hw.top.FireforgeTop` built with ``act_memory="external"``, its
``mem`` port served by an :class:`~fireforge.hw.dram.act_port.AxiActivationPort` — the engine with its
activations behind an AXI4 master ``m_axi`` (the ROMs stay ``ff_rom`` instances, images by plusarg).

The host port is tied off: the input is placed in the AXI memory before ``start`` and the result read from
it after ``done`` (once ``wr_pending`` is 0)."""

from __future__ import annotations

from dataclasses import replace

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.hw.dram.act_port import AxiActivationPort
from fireforge.hw.dram.axi import AXI4
from fireforge.hw.engine import bits_for
from fireforge.hw.top import FireforgeTop

__all__ = ["EngineAxiTop"]


class EngineAxiTop(wiring.Component):
    """Members: ``start``, ``busy``, ``done``, ``cycles``, ``layer_done`` (as ``FireforgeTop``), ``m_axi``
    (AXI4, data width = activation word), ``wr_pending``, ``wr_count``, ``axi_error`` (the port's)."""

    def __init__(self, config: EngineConfig, variant: BuildVariant = BuildVariant(act_memory="external"), *,
                 base: int = 0, addr_width: int = 32, max_writes: int = 8, raw: str = "addresses"):
        self.config, self.variant = config, replace(variant, act_memory="external")
        self.port_params = dict(vector=config.vector, act_addr_bits=bits_for(config.act_depth), base=base,
                                addr_width=addr_width, max_writes=max_writes, raw=raw)
        super().__init__({"start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
                          "m_axi": Out(AXI4(data_width=config.act_word_bits, addr_width=addr_width)),
                          "wr_pending": Out(8), "wr_count": Out(32), "axi_error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = FireforgeTop(self.config, self.variant)
        m.submodules.port = port = AxiActivationPort(**self.port_params)
        m.d.comb += [top.start.eq(self.start), self.busy.eq(top.busy), self.done.eq(top.done),
                     self.cycles.eq(top.cycles), self.layer_done.eq(top.layer_done), top.dump.eq(0),
                     top.host.we.eq(0), top.host.re.eq(0), top.host.addr.eq(0), top.host.wdata.eq(0),
                     self.wr_pending.eq(port.wr_pending), self.wr_count.eq(port.wr_count),
                     self.axi_error.eq(port.error)]
        wiring.connect(m, top.mem, port.mem)
        wiring.connect(m, port.m_axi, wiring.flipped(self.m_axi))
        return m
