"""``fireforge_top``: the engine with its ROMs and activation memory, and Verilog generation.

The ROMs are instances of ``hdl/ff_rom.v`` loaded with ``$readmemh`` rather than Amaranth memories with
inline init: the same Verilog (and the same Verilated model) then runs any program whose images fit the
config's depths — simulation swaps images with plusargs, synthesis reads the ``.hex`` files beside the
Verilog. The activation memory is ``hdl/ff_act_ram.v`` (block RAM on chip; in simulation it can stall and
answer late), or — ``act_memory="external"``, for a board whose block RAM holds the weights but not the
activations — the same two channels as ``mem_*`` ports, for a DRAM controller outside the top.
"""

import json
import shutil
from pathlib import Path

from amaranth import ClockSignal, Instance, Module, Mux, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.engine import EXTERNAL_TAP_DEPTH, ROM_LATENCY, TAP_DEPTH, Engine, _bits_for
from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import DESCRIPTOR

__all__ = ["FireforgeTop", "HDL_DIR", "HDL_SOURCES", "ACT_RAM_LATENCY", "write_verilog", "ROM_IMAGES", "ACT_MEMORY",
           "EXT_MEM_PORTS"]

HDL_DIR = Path(__file__).parent / "hdl"
HDL_SOURCES = ("ff_rom.v", "ff_act_ram.v")
#: cycles from an accepted read of ``ff_act_ram`` to its response: two levels of address copies, block RAM,
#: output register, bank mux (the same pipeline as the ROMs)
ACT_RAM_LATENCY = ROM_LATENCY
#: ROM name -> (image stem, plusarg): the plusarg selects another image at simulation time
ROM_IMAGES = {"desc": ("descriptors", "desc"), "weights": ("weights", "weights"), "quant": ("quant", "quant")}


#: the Verilog module of each memory: the hand-written ones, or (ECP5 boards) fireforge.hw.ecp5_memory's
#: DP16KD versions with the same ports and cycle behaviour
DEFAULT_MEMORY_CELLS = {"desc": "ff_rom", "weights": "ff_rom", "quant": "ff_rom", "act": "ff_act_ram"}

#: where the activation memory lives: on-chip block RAM (``ff_act_ram``) or outside the top (``mem_*`` ports)
ACT_MEMORY = ("on-chip", "external")

#: the external activation-memory port (``act_memory="external"``): name -> (direction seen from the top, width key)
EXT_MEM_PORTS = {
    "rd_valid": ("out", 1), "rd_ready": ("in", 1), "rd_addr": ("out", "addr"),
    "rd_resp_valid": ("in", 1), "rd_resp_data": ("in", "word"),
    "wr_valid": ("out", 1), "wr_ready": ("in", 1), "wr_addr": ("out", "addr"), "wr_data": ("out", "word"),
}


class FireforgeTop(wiring.Component):
    """Engine + descriptor / weight / quant ROMs + the activation memory (or a port to it).

    Members
    -------
    start, busy, done, cycles :
        As :class:`~fireforge.hw.engine.Engine`.
    dump : In(1)
        Simulation: write the activation memory to ``+act_dump=<file>`` (on-chip memory only).
    host_* :
        The host's port into the activation memory while the engine is idle (load the input, read
        the result): hold ``host_re``/``host_we`` with ``host_addr``/``host_wdata`` until
        ``host_rready``/``host_wready`` says the memory took it; a read answers on ``host_rdata`` with
        ``host_rvalid`` one or more cycles later, in order. Requests while busy are ignored.
    mem_* : (``act_memory="external"`` only)
        The activation memory's two channels, for a memory outside the top (a DRAM controller adapter):
        reads ``mem_rd_valid``/``mem_rd_ready``/``mem_rd_addr`` with in-order responses
        ``mem_rd_resp_valid``/``mem_rd_resp_data`` any number of cycles later (no back-pressure on
        responses: the engine never has more reads outstanding than it can buffer), writes
        ``mem_wr_valid``/``mem_wr_ready``/``mem_wr_addr``/``mem_wr_data``. Addresses count words of
        ``act_word_bits`` (lane 0 in the low byte). A read must return the data of every write accepted
        before it (the engine reads a layer's output only after the layer drained).
    """

    def __init__(self, config: EngineConfig, *, act_memory: str = "on-chip", read_depth: int | None = None,
                 memory_cells: dict[str, str] | None = None, mac_products: str = "dsp",
                 multipliers: str = "inferred"):
        if act_memory not in ACT_MEMORY:
            raise ValueError(f"act_memory must be one of {ACT_MEMORY}, not {act_memory!r}")
        self.config = config
        self.act_memory = act_memory
        self.memory_cells = {**DEFAULT_MEMORY_CELLS, **(memory_cells or {})}
        self.mac_products = mac_products
        self.multipliers = multipliers
        # reads in flight: enough for block RAM, or for DRAM's tens of cycles (see Engine)
        self.read_depth = read_depth or (EXTERNAL_TAP_DEPTH if act_memory == "external" else TAP_DEPTH)
        addr_bits = _bits_for(config.act_depth)
        ports = {
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
            "dump": In(1),
            "host_addr": In(addr_bits), "host_wdata": In(config.act_word_bits), "host_we": In(1),
            "host_re": In(1), "host_rdata": Out(config.act_word_bits), "host_rvalid": Out(1),
            "host_rready": Out(1), "host_wready": Out(1),
        }
        if act_memory == "external":
            widths = {"addr": addr_bits, "word": config.act_word_bits}
            for name, (direction, width) in EXT_MEM_PORTS.items():
                # seen from the top: requests go out, readiness and responses come in
                ports[f"mem_{name}"] = (Out if direction == "out" else In)(widths.get(width, width))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.engine = eng = Engine(cfg, read_depth=self.read_depth, mac_products=self.mac_products,
                                           multipliers=self.multipliers)
        m.d.comb += [eng.start.eq(self.start), self.busy.eq(eng.busy), self.done.eq(eng.done),
                     self.cycles.eq(eng.cycles), self.layer_done.eq(eng.layer_done)]

        def rom(name, width, depth, en, addr, data):
            stem, plusarg = ROM_IMAGES[name]
            m.submodules[f"{name}_rom"] = Instance(
                self.memory_cells[name], p_WIDTH=width, p_DEPTH=depth, p_ADDR_WIDTH=_bits_for(depth),
                p_INIT_FILE=f"{stem}.hex", p_PLUSARG=plusarg, p_LATENCY=ROM_LATENCY,
                i_clk=ClockSignal(), i_en=en, i_addr=addr, o_data=data)

        rom("desc", DESCRIPTOR.size, cfg.desc_depth, eng.desc_en, eng.desc_addr, eng.desc_data)
        rom("weights", cfg.weight_word_bits, cfg.weight_depth, eng.w_en, eng.w_addr, eng.w_data)
        rom("quant", cfg.quant_word_bits, cfg.quant_depth, eng.q_en, eng.q_addr, eng.q_data)
        # the activation memory serves the engine while it runs and the host while it is idle. Responses
        # come back in order, so the first `host_pending` responses are the host's: it only reads while
        # the engine is idle, and the engine has no read outstanding once it is idle (it drained).
        addr_bits = _bits_for(cfg.act_depth)
        rd_valid, rd_ready, rd_addr = Signal(), Signal(), Signal(addr_bits)
        resp_valid, resp_data = Signal(), Signal(cfg.act_word_bits)
        wr_valid, wr_ready, wr_addr, wr_data = Signal(), Signal(), Signal(addr_bits), Signal(cfg.act_word_bits)
        host = Signal()
        m.d.comb += host.eq(~eng.busy)
        host_pending = Signal(8)
        to_host = Signal()
        host_issue = Signal()
        m.d.comb += [host_issue.eq(host & self.host_re & rd_ready), to_host.eq(host_pending != 0)]
        m.d.sync += host_pending.eq(host_pending + host_issue - (resp_valid & to_host))
        # the host's answers leave through a register: the read data is a wide block-RAM bank mux, and the
        # host link's reply shifter sits elsewhere on the chip (this was the ULX3S critical path)
        m.d.sync += [self.host_rvalid.eq(resp_valid & to_host), self.host_rdata.eq(resp_data)]
        m.d.comb += [
            rd_valid.eq(Mux(host, self.host_re, eng.rd_valid)),
            rd_addr.eq(Mux(host, self.host_addr, eng.rd_addr)),
            # the engine reads only while busy (its AGU is stopped when idle): no `& ~host` on its ready,
            # which steers every AGU register
            eng.rd_ready.eq(rd_ready),
            eng.rd_resp_valid.eq(resp_valid & ~to_host), eng.rd_resp_data.eq(resp_data),

            self.host_rready.eq(host & rd_ready), self.host_wready.eq(host & wr_ready),
            wr_valid.eq(Mux(host, self.host_we, eng.wr_valid)),
            wr_addr.eq(Mux(host, self.host_addr, eng.wr_addr)),
            wr_data.eq(Mux(host, self.host_wdata, eng.wr_data)),
            eng.wr_ready.eq(wr_ready & ~host),
        ]
        if self.act_memory == "external":
            m.d.comb += [
                self.mem_rd_valid.eq(rd_valid), rd_ready.eq(self.mem_rd_ready), self.mem_rd_addr.eq(rd_addr),
                resp_valid.eq(self.mem_rd_resp_valid), resp_data.eq(self.mem_rd_resp_data),
                self.mem_wr_valid.eq(wr_valid), wr_ready.eq(self.mem_wr_ready), self.mem_wr_addr.eq(wr_addr),
                self.mem_wr_data.eq(wr_data),
            ]
            return m
        m.submodules.act_ram = Instance(
            self.memory_cells["act"], p_WIDTH=cfg.act_word_bits, p_DEPTH=cfg.act_depth, p_ADDR_WIDTH=addr_bits,
            p_LATENCY=ACT_RAM_LATENCY, i_clk=ClockSignal(),
            i_rd_valid=rd_valid, o_rd_ready=rd_ready, i_rd_addr=rd_addr,
            o_rd_resp_valid=resp_valid, o_rd_resp_data=resp_data,
            i_wr_valid=wr_valid, o_wr_ready=wr_ready, i_wr_addr=wr_addr, i_wr_data=wr_data,
            i_dump=self.dump, i_dump_layer=eng.layer_done)
        return m


def write_verilog(config: EngineConfig, rtl_dir: Path, *, name: str = "fireforge_top",
                  act_memory: str = "on-chip", read_depth: int | None = None, mac_products: str = "dsp") -> Path:
    """Write ``fireforge_top.v`` and the hand-written HDL it instantiates; return the top file."""
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    top = FireforgeTop(config, act_memory=act_memory, read_depth=read_depth, mac_products=mac_products)
    text = verilog.convert(top, name=name, emit_src=False)
    path = rtl_dir / f"{name}.v"
    path.write_text(text)
    for src in HDL_SOURCES:
        if src == "ff_act_ram.v" and act_memory == "external":
            continue
        shutil.copyfile(HDL_DIR / src, rtl_dir / src)
    (rtl_dir / "engine.json").write_text(json.dumps(config.to_dict(), indent=1))
    return path
