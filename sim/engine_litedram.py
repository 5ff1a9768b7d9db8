"""The engine with its activations in LiteDRAM's real controller, simulated (issue #19).

:class:`EngineLiteDRAMTop` (Amaranth) joins, on **one clock** (the LiteDRAM sim core's ``clk`` is the
engine's ``sync`` clock; the board's clock-domain crossing is issue #20):

* :class:`~fireforge.hw.dram.engine_axi.EngineAxiTop` — the engine, activations behind an
  ``AxiActivationPort`` (AXI data width = the activation word, ID width 1, addresses cut to the core's);
* ``ff_litedram_sim`` (:func:`fireforge.sim.litedram.write_sim_top`) as an ``Instance``: the ULX3S
  ``--sim`` core (real controller + ``SDRAMPHYModel``), generated with the same data and ID widths;
* :class:`~fireforge.hw.dram.init_sequencer.DramInitSequencer` on its ``wb_ctrl`` port, fed with
  ``init_sequence(core)`` — the hardware init the board top will use (``seq_done`` / ``seq_error``);
* a host AXI slave port ``s_axi_*`` (for cocotbext-axi's ``AxiMaster``), which owns the core's AXI port
  while ``host`` is 1 (preload / read-back); with ``host`` 0 the engine owns it. The multiplexer is
  combinational and must only be switched while both sides are idle.

The engine's side of the bus is copied to outputs ``m_axi_*`` (monitor only), so the per-layer check of
``sim/cocotb_engine_axi.py`` applies unchanged. Generated files go under the build root.
"""

from __future__ import annotations

from pathlib import Path

from amaranth import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.sim import litedram

__all__ = ["EngineLiteDRAMTop", "TOP", "build"]

TOP = "ff_engine_litedram"


class EngineLiteDRAMTop(wiring.Component):
    def __init__(self, config, core: litedram.LiteDRAMCore, *, base: int, max_writes: int = 8,
                 raw: str = "addresses"):
        from fireforge.hw.dram.axi import AXI4
        from fireforge.hw.dram.engine_axi import EngineAxiTop

        self.core = core
        self.addr_width = (core.profile.size_bytes - 1).bit_length()
        if core.axi_data_width != config.act_word_bits:
            raise ValueError(f"the core's AXI port is {core.axi_data_width} bits, the activation word "
                             f"{config.act_word_bits}")
        self.id_width = core.config["user_ports"]["axi_0"]["id_width"]
        self.engine = EngineAxiTop(config, base=base, addr_width=self.addr_width, max_writes=max_writes, raw=raw)
        if self.engine.m_axi.signature.id_width != self.id_width:
            raise ValueError("generate the core with the engine's AXI ID width "
                             f"({self.engine.m_axi.signature.id_width})")
        self.axi_sig = AXI4(data_width=config.act_word_bits, addr_width=self.addr_width, id_width=self.id_width)
        monitor = {f"m_axi_{n}": Out(m.shape) for n, m in self.axi_sig.members.items()}
        super().__init__({"start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
                          "wr_pending": Out(8), "wr_count": Out(32), "axi_error": Out(1),
                          "init_done": Out(1), "init_error": Out(1), "seq_done": Out(1), "seq_error": Out(1),
                          "host": In(1), "s_axi": In(self.axi_sig), **monitor})

    def elaborate(self, platform):
        from fireforge.hw.dram.init_sequencer import DramInitSequencer

        m = Module()
        m.submodules.engine = eng = self.engine
        m.submodules.seq = seq = DramInitSequencer(litedram.init_sequence(self.core))
        m.d.comb += [eng.start.eq(self.start), self.busy.eq(eng.busy), self.done.eq(eng.done),
                     self.cycles.eq(eng.cycles), self.layer_done.eq(eng.layer_done),
                     self.wr_pending.eq(eng.wr_pending), self.wr_count.eq(eng.wr_count),
                     self.axi_error.eq(eng.axi_error), self.seq_done.eq(seq.done), self.seq_error.eq(seq.error)]
        ea, ha = eng.m_axi, self.s_axi
        requests = {}
        for n, member in self.axi_sig.members.items():
            m.d.comb += getattr(self, f"m_axi_{n}").eq(getattr(ea, n))
            if member.flow == Out:       # master -> core: the host's while host is 1
                requests[n] = Mux(self.host, getattr(ha, n), getattr(ea, n))
        m.submodules.dram, responses = litedram.sim_core_instance(
            self.core, self.axi_sig, requests, seq.bus, init_done=self.init_done, init_error=self.init_error)
        for n, sig in responses.items():  # core -> master: handshakes to the side that owns the port
            e, h = getattr(ea, n), getattr(ha, n)
            if n.endswith("valid") or n.endswith("ready"):
                m.d.comb += [h.eq(sig & self.host), e.eq(sig & ~self.host)]
            else:
                m.d.comb += [h.eq(sig), e.eq(sig)]
        return m


def build(compiled, core: litedram.LiteDRAMCore, build_root: Path, *, base: int, max_writes: int = 8):
    """Write the top's Verilog under *build_root*/dram and Verilate it with the core (GPI clock: the host
    ``AxiMaster`` samples at the rising edge). Returns ``(model dir, top name)``."""
    from amaranth.back import verilog

    from fireforge.hw.top import HDL_DIR, verilog_ports
    from fireforge.sim import verilator as V

    litedram.write_sim_top(core)
    top = EngineLiteDRAMTop(compiled.config, core, base=base, max_writes=max_writes)
    tag = "-".join(f"{k}{v}" for k, v in compiled.config.to_dict().items())
    src = Path(build_root) / "dram" / f"englitedram-{core.out_dir.name}-{tag}-b{base:x}-w{max_writes}" / f"{TOP}.v"
    src.parent.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(top, name=TOP, emit_src=False, ports=verilog_ports(top))
    if not src.is_file() or src.read_text() != text:
        src.write_text(text)
    model = V.build([src, HDL_DIR / "ff_rom.v", core.verilog, core.sim_top], TOP, Path(build_root) / "verilator",
                    clock="gpi")
    return model, TOP
