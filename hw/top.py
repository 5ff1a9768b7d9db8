"""``fireforge_top``: the engine with its ROMs and activation memory, and Verilog generation.

The ROMs are instances of ``hdl/ff_rom.v`` loaded with ``$readmemh`` rather than Amaranth memories with
inline init: the same Verilog (and the same Verilated model) then runs any program whose images fit the
config's depths — simulation swaps images with plusargs, synthesis reads the ``.hex`` files beside the
Verilog. The activation memory is ``hdl/ff_act_ram.v`` (block RAM on chip; in simulation it can stall and
answer late), or — ``act_memory="external"``, for a board whose block RAM holds the weights but not the
activations — the same two channels as the ``mem`` port, for a DRAM controller outside the top.

Every memory is joined to the engine by its port's signature (:mod:`fireforge.hw.engine.ports`) with
``wiring.connect``; the Verilog instances are wrapped in components whose pins are the signature's members.
"""

import json
import shutil
from pathlib import Path

from amaranth import ClockSignal, Instance, Module, Mux, ResetSignal, Signal, Value
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import ACT_MEMORY, BuildVariant, EngineConfig
from fireforge.core.descriptor import DESCRIPTOR
from fireforge.hw.engine import ROM_LATENCY, ActMemoryPort, Engine, HostPort, RomPort, bits_for

__all__ = ["FireforgeTop", "HDL_DIR", "HDL_SOURCES", "ACT_RAM_LATENCY", "write_verilog", "verilog_ports", "ROM_IMAGES",
           "ACT_MEMORY", "RomInstance", "ActMemoryInstance", "HostArbiter"]

HDL_DIR = Path(__file__).parent / "hdl"
HDL_SOURCES = ("ff_rom.v", "ff_act_ram.v")
#: cycles from an accepted read of ``ff_act_ram`` to its response: two levels of address copies, block RAM,
#: output register, bank mux (the same pipeline as the ROMs)
ACT_RAM_LATENCY = ROM_LATENCY
#: ROM name (the engine's port) -> (image stem, plusarg): the plusarg selects another image at simulation time
ROM_IMAGES = {"desc": ("descriptors", "desc"), "weights": ("weights", "weights"), "quant": ("quant", "quant")}

#: the Verilog module of each memory: the hand-written ones, or (ECP5 boards) fireforge.hw.board.ecp5_memory's
#: DP16KD versions with the same ports and cycle behaviour
DEFAULT_MEMORY_CELLS = {"desc": "ff_rom", "weights": "ff_rom", "quant": "ff_rom", "act": "ff_act_ram"}


def _pins(port) -> dict:
    """``Instance`` keywords for an interface whose members are a Verilog module's pins (``rd.resp.valid`` →
    pin ``rd_resp_valid``): ``i_`` for the members flowing into the module, ``o_`` for those out of it."""
    return {f"{'i' if member.flow == In else 'o'}_{'_'.join(map(str, path))}": value
            for path, member, value in port.signature.flatten(port)}


class RomInstance(wiring.Component):
    """A ROM module (``hdl/ff_rom.v`` or an ECP5 one of :mod:`fireforge.hw.board.ecp5_memory`) behind a
    :class:`~fireforge.hw.engine.ports.RomPort`, its image read from ``<stem>.hex`` (or ``+<plusarg>=``).

    Members
    -------
    port : In(RomPort)
    """

    def __init__(self, *, cell: str, width: int, depth: int, image: tuple[str, str], latency: int = ROM_LATENCY):
        self.cell, self.width, self.depth, self.image, self.latency = cell, width, depth, image, latency
        super().__init__({"port": In(RomPort(addr_bits=bits_for(depth), data_bits=width))})

    def elaborate(self, platform):
        m = Module()
        stem, plusarg = self.image
        m.submodules.rom = Instance(
            self.cell, p_WIDTH=self.width, p_DEPTH=self.depth, p_ADDR_WIDTH=bits_for(self.depth),
            p_INIT_FILE=f"{stem}.hex", p_PLUSARG=plusarg, p_LATENCY=self.latency, i_clk=ClockSignal(),
            **_pins(self.port))
        return m


class ActMemoryInstance(wiring.Component):
    """An activation memory module behind an :class:`~fireforge.hw.engine.ports.ActMemoryPort`: ``ff_act_ram``
    (on chip; ``dump`` / ``dump_layer`` write its contents in simulation) or ``ff_ext_act_mem`` (a board's DRAM
    adapter, with ``rst``).

    Members
    -------
    port : In(ActMemoryPort)
    dump, dump_layer : In(1)
        ``ff_act_ram`` only.
    """

    def __init__(self, *, cell: str, width: int, depth: int, latency: int | None = ACT_RAM_LATENCY,
                 dump: bool = True, reset: bool = False):
        self.cell, self.width, self.depth, self.latency, self.reset = cell, width, depth, latency, reset
        members = {"port": In(ActMemoryPort(addr_bits=bits_for(depth), data_bits=width))}
        if dump:
            members.update({"dump": In(1), "dump_layer": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        params = {"p_WIDTH": self.width, "p_DEPTH": self.depth, "p_ADDR_WIDTH": bits_for(self.depth)}
        if self.latency is not None:
            params["p_LATENCY"] = self.latency
        extra = {"i_rst": ResetSignal()} if self.reset else {}
        if "dump" in self.signature.members:
            extra.update(i_dump=self.dump, i_dump_layer=self.dump_layer)
        m.submodules.mem = Instance(self.cell, **params, i_clk=ClockSignal(), **extra, **_pins(self.port))
        return m


class HostArbiter(wiring.Component):
    """The activation memory serves the engine while it runs and the host while it is idle.

    Responses come back in order, so the first ``host_pending`` responses are the host's: it only reads while
    the engine is idle, and the engine has no read outstanding once it is idle (it drained). The host's
    answers leave through a register: the read data is a wide block-RAM bank mux, and the host link's reply
    shifter sits elsewhere on the chip (this was the ULX3S critical path).

    Members
    -------
    engine : In(ActMemoryPort)
    host : In(HostPort)
        Requests while the engine is busy are ignored.
    busy : In(1)
        The engine runs.
    memory : Out(ActMemoryPort)
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        super().__init__({"engine": In(ActMemoryPort(addr_bits=addr_bits, data_bits=data_bits)),
                          "host": In(HostPort(addr_bits=addr_bits, data_bits=data_bits)), "busy": In(1),
                          "memory": Out(ActMemoryPort(addr_bits=addr_bits, data_bits=data_bits))})

    def elaborate(self, platform):
        m = Module()
        eng, host, mem = self.engine, self.host, self.memory
        idle = Signal()
        m.d.comb += idle.eq(~self.busy)
        pending = Signal(8, name="host_pending")
        to_host, issue = Signal(), Signal()
        resp = mem.rd.resp
        m.d.comb += [issue.eq(idle & host.re & mem.rd.ready), to_host.eq(pending != 0)]
        m.d.sync += [pending.eq(pending + issue - (resp.valid & to_host)),
                     host.rvalid.eq(resp.valid & to_host), host.rdata.eq(resp.data)]
        m.d.comb += [
            mem.rd.valid.eq(Mux(idle, host.re, eng.rd.valid)),
            mem.rd.addr.eq(Mux(idle, host.addr, eng.rd.addr)),
            # the engine reads only while busy (its AGU is stopped when idle): no `& busy` on its ready,
            # which steers every AGU register
            eng.rd.ready.eq(mem.rd.ready),
            eng.rd.resp.valid.eq(resp.valid & ~to_host), eng.rd.resp.data.eq(resp.data),
            host.rready.eq(idle & mem.rd.ready), host.wready.eq(idle & mem.wr.ready),
            mem.wr.valid.eq(Mux(idle, host.we, eng.wr.valid)),
            mem.wr.addr.eq(Mux(idle, host.addr, eng.wr.addr)),
            mem.wr.data.eq(Mux(idle, host.wdata, eng.wr.data)),
            eng.wr.ready.eq(mem.wr.ready & ~idle),
        ]
        return m


class FireforgeTop(wiring.Component):
    """Engine + descriptor / weight / quant ROMs + the activation memory (or a port to it).

    Parameters
    ----------
    config : EngineConfig
        Resolved depths.
    variant : BuildVariant
        How the engine is built, and where the activations live (``act_memory``).
    memory_cells : dict
        Memory name (``desc``, ``weights``, ``quant``, ``act``) → Verilog module, over
        :data:`DEFAULT_MEMORY_CELLS`.

    Members
    -------
    start, busy, done, cycles, layer_done :
        As :class:`~fireforge.hw.engine.Engine`.
    dump : In(1)
        Simulation: write the activation memory to ``+act_dump=<file>`` (on-chip memory only).
    host : In(HostPort)
        The host's port into the activation memory while the engine is idle (load the input, read the
        result); see :class:`~fireforge.hw.engine.ports.HostPort`.
    mem : Out(ActMemoryPort)
        ``act_memory="external"`` only: the activation memory's two channels, for a memory outside the top (a
        DRAM controller adapter, ``hdl/ff_ext_act_mem.v``).
    """

    def __init__(self, config: EngineConfig, variant: BuildVariant = BuildVariant(), *,
                 memory_cells: dict[str, str] | None = None):
        if not isinstance(variant, BuildVariant):
            raise TypeError(f"variant must be a BuildVariant, not {variant!r}")
        self.config, self.variant = config, variant
        self.memory_cells = {**DEFAULT_MEMORY_CELLS, **(memory_cells or {})}
        addr_bits, word = bits_for(config.act_depth), config.act_word_bits
        ports = {
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
            "dump": In(1), "host": In(HostPort(addr_bits=addr_bits, data_bits=word)),
        }
        if variant.external:
            ports["mem"] = Out(ActMemoryPort(addr_bits=addr_bits, data_bits=word))
        super().__init__(ports)

    @property
    def act_memory(self) -> str:
        return self.variant.act_memory

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.engine = eng = Engine(cfg, self.variant)
        m.d.comb += [eng.start.eq(self.start), self.busy.eq(eng.busy), self.done.eq(eng.done),
                     self.cycles.eq(eng.cycles), self.layer_done.eq(eng.layer_done)]
        for name, width, depth in (("desc", DESCRIPTOR.size, cfg.desc_depth),
                                   ("weights", cfg.weight_word_bits, cfg.weight_depth),
                                   ("quant", cfg.quant_word_bits, cfg.quant_depth)):
            m.submodules[f"{name}_rom"] = rom = RomInstance(cell=self.memory_cells[name], width=width, depth=depth,
                                                            image=ROM_IMAGES[name])
            wiring.connect(m, getattr(eng, name), rom.port)
        m.submodules.arbiter = arb = HostArbiter(addr_bits=bits_for(cfg.act_depth), data_bits=cfg.act_word_bits)
        m.d.comb += arb.busy.eq(eng.busy)
        wiring.connect(m, eng.mem, arb.engine)
        wiring.connect(m, wiring.flipped(self.host), arb.host)
        if self.variant.external:
            wiring.connect(m, arb.memory, wiring.flipped(self.mem))
            return m
        m.submodules.act_ram = ram = ActMemoryInstance(cell=self.memory_cells["act"], width=cfg.act_word_bits,
                                                       depth=cfg.act_depth)
        wiring.connect(m, arb.memory, ram.port)
        m.d.comb += [ram.dump.eq(self.dump), ram.dump_layer.eq(eng.layer_done)]
        return m


def verilog_ports(component) -> dict:
    """``verilog.convert``'s ``ports`` for a component: each signature member under its path joined by ``_``
    (``host.addr`` → ``host_addr``, ``mem.rd.resp.data`` → ``mem_rd_resp_data``): the names
    ``fireforge_top``'s Verilog ports have always had, which the cocotb benches, the Verilator harness and
    board projects rely on."""
    ports = {}
    for path, member, value in component.signature.flatten(component):
        name = "_".join(map(str, path))
        if name in ports:
            raise ValueError(f"two members of {component!r} flatten to the Verilog port name {name!r}")
        ports[name] = (Value.cast(value), None)     # direction: from the design (driven inside: an output)
    return ports


def write_verilog(config: EngineConfig, rtl_dir: Path, variant: BuildVariant = BuildVariant(), *,
                  name: str = "fireforge_top") -> Path:
    """Write ``fireforge_top.v`` and the hand-written HDL it instantiates; return the top file."""
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    top = FireforgeTop(config, variant)
    text = verilog.convert(top, name=name, emit_src=False, ports=verilog_ports(top))
    path = rtl_dir / f"{name}.v"
    path.write_text(text)
    for src in HDL_SOURCES:
        if src == "ff_act_ram.v" and variant.external:
            continue
        shutil.copyfile(HDL_DIR / src, rtl_dir / src)
    (rtl_dir / "engine.json").write_text(json.dumps(config.to_dict(), indent=1))
    return path
