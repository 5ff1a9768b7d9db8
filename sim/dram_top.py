"""The DRAM-mode engine on LiteDRAM's real controller, simulated (issue #19; spec "Simulation (sim/)").

:class:`DramSimTop` (Amaranth) joins, on **one clock** (the LiteDRAM sim core's ``clk`` is the engine's
``sync`` clock; the board's clock-domain crossing is issue #20):

* :class:`~fireforge.hw.dram.dram_engine.DramEngine` — everything in DRAM: it fetches its command stream,
  weights, requant words and activations over one AXI4 master port (data width = the core's AXI port,
  16 bits on the ULX3S; ID width 1; addresses cut to the core's 25 bits);
* :class:`~fireforge.sim.axi_staller.AxiStaller` between the engine and the core: random valid / ready
  gating on every channel (``stall_seed`` / ``stall_pct`` ports, 0 = wires; no rebuild to change them);
* ``ff_litedram_sim`` (:func:`fireforge.sim.litedram.write_sim_top`) as an ``Instance``, built from the
  **backdoor** copy of the core (:func:`fireforge.sim.backdoor.write_backdoor_core`): the chip's bank arrays
  are preloaded by ``$readmemh`` and dumped by ``$writememh`` in a ``final`` block (plusargs);
* :class:`~fireforge.hw.dram.init_sequencer.DramInitSequencer` on the core's ``wb_ctrl``, fed with
  :func:`~fireforge.sim.litedram.init_sequence` (``seq_done`` / ``seq_error``), as the board top will.

Ports: the engine's ``start``, ``program_addr``, ``program_commands``, ``busy``, ``done``, ``cycles``,
``compute_cycles``, ``bytes_read``, ``bytes_written``, ``layer_done``, ``error``; ``stall_seed``,
``stall_pct``, ``stalls`` (the staller's); ``init_done``, ``init_error`` (the core's), ``seq_done``,
``seq_error``. :func:`build` writes and Verilates it (cached by content; GPI clock is not needed — nothing
in Python samples the bus — so the model makes its own clock).
"""

from __future__ import annotations

import re
from pathlib import Path

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.sim import litedram
from fireforge.sim import litedram_backdoor as backdoor

__all__ = ["DramSimTop", "TOP", "ENGINE_PORTS", "build"]

TOP = "ff_dram_sim"
#: the engine's members the top passes through (spec: hw/dram/dram_engine.py)
ENGINE_PORTS = {"start": In(1), "program_addr": In(32), "program_commands": In(24), "busy": Out(1),
                "done": Out(1), "cycles": Out(32), "compute_cycles": Out(32), "bytes_read": Out(32),
                "bytes_written": Out(32), "layer_done": Out(1), "error": Out(1)}


class DramSimTop(wiring.Component):
    """Parameters
    ----------
    config : EngineConfig
        ``memory="dram"``, depths resolved; ``act_word_bits`` a multiple of the core's AXI width.
    core : LiteDRAMCore
        The ULX3S ``--sim`` core, generated with ``axi_data_width`` = the engine's AXI width and
        ``axi_id_width`` = its ID width (1).
    variant : BuildVariant, optional
    engine : wiring.Component, optional
        Instead of building ``DramEngine(config, variant, ...)``: any component with the
        :data:`ENGINE_PORTS` members and ``m_axi`` (a bench's stand-in).
    max_burst, outstanding : int
        Passed to ``DramEngine``.
    """

    def __init__(self, config, core: litedram.LiteDRAMCore, *, variant=None, engine=None, max_burst: int = 64,
                 outstanding: int = 2):
        from fireforge.hw.dram.axi import AXI4
        from fireforge.sim.axi_staller import AxiStaller

        self.core = core
        self.addr_width = (core.profile.size_bytes - 1).bit_length()
        self.data_width = core.axi_data_width
        self.id_width = core.config["user_ports"]["axi_0"]["id_width"]
        if engine is None:
            from fireforge.core.config import BuildVariant
            from fireforge.hw.dram.dram_engine import DramEngine

            engine = DramEngine(config, variant or BuildVariant(), data_width=self.data_width,
                                addr_width=self.addr_width, id_width=self.id_width, max_burst=max_burst,
                                outstanding=outstanding)
        self.engine = engine
        self.axi_sig = AXI4(data_width=self.data_width, addr_width=self.addr_width, id_width=self.id_width)
        if engine.m_axi.signature != self.axi_sig:
            raise ValueError(f"the engine's port is {engine.m_axi.signature!r}, the core's {self.axi_sig!r}")
        self.staller = AxiStaller(self.axi_sig)
        super().__init__({**ENGINE_PORTS, "stall_seed": In(32), "stall_pct": In(8), "stalls": Out(32),
                          "init_done": Out(1), "init_error": Out(1), "seq_done": Out(1), "seq_error": Out(1)})

    def elaborate(self, platform):
        from fireforge.hw.dram.init_sequencer import DramInitSequencer

        m = Module()
        m.submodules.engine = eng = self.engine
        m.submodules.staller = st = self.staller
        m.submodules.seq = seq = DramInitSequencer(litedram.init_sequence(self.core))
        for name, member in ENGINE_PORTS.items():
            if member.flow == In:
                m.d.comb += getattr(eng, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(eng, name))
        wiring.connect(m, eng.m_axi, st.up)
        m.d.comb += [st.stall_seed.eq(self.stall_seed), st.stall_pct.eq(self.stall_pct), self.stalls.eq(st.stalls),
                     self.seq_done.eq(seq.done), self.seq_error.eq(seq.error)]

        down = st.down
        requests = {n: getattr(down, n) for n, member in self.axi_sig.members.items() if member.flow == Out}
        m.submodules.dram, responses = litedram.sim_core_instance(
            self.core, self.axi_sig, requests, seq.bus, init_done=self.init_done, init_error=self.init_error)
        m.d.comb += [getattr(down, n).eq(sig) for n, sig in responses.items()]
        return m


def _hdl_sources(text: str) -> list[Path]:
    """The hand-written HDL files (``hw/hdl``) whose modules *text* instantiates."""
    from fireforge.hw.top import HDL_DIR

    out = []
    for f in sorted(HDL_DIR.glob("*.v")):
        names = re.findall(r"^\s*module\s+(\w+)", f.read_text(), re.M)
        if any(re.search(rf"^\s*{n}\b", text, re.M) for n in names):
            out.append(f)
    return out


def build(config, core: litedram.LiteDRAMCore, build_root: Path, *, variant=None, engine=None,
          max_burst: int = 64, outstanding: int = 2, tag: str | None = None) -> tuple[Path, str]:
    """Write the top's Verilog under ``build_root/dram/<name>/`` and Verilate it with the backdoor core
    (cached by content under ``build_root/verilator``). Returns ``(model dir, TOP)``. *tag* names the
    directory of the Verilog (default: from the config and variant); the model's cache key is its content."""
    from amaranth.back import verilog

    from fireforge.core.config import BuildVariant
    from fireforge.hw.top import verilog_ports
    from fireforge.sim import verilator as V

    variant = variant or BuildVariant()
    patched = backdoor.write_backdoor_core(core)
    sim_top = litedram.write_sim_top(core)
    top = DramSimTop(config, core, variant=variant, engine=engine, max_burst=max_burst, outstanding=outstanding)
    if tag is None:
        tag = "-".join(filter(None, ("-".join(f"{k}{v}" for k, v in config.to_dict().items()), variant.tag(),
                                     f"b{max_burst}o{outstanding}")))
    src = Path(build_root) / "dram" / f"dramsim-{core.out_dir.name}-{tag}" / f"{TOP}.v"
    src.parent.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(top, name=TOP, emit_src=False, ports=verilog_ports(top))
    if not src.is_file() or src.read_text() != text:
        tmp = src.with_suffix(".v.tmp")
        tmp.write_text(text)
        tmp.replace(src)
    sources = [src, *_hdl_sources(text), patched, sim_top]
    model = V.build(sources, TOP, Path(build_root) / "verilator", clock="auto")
    return model, TOP
