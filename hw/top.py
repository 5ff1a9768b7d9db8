"""``fireforge_top``: the engine with its ROMs and activation memory, and Verilog generation.

The ROMs are instances of ``hdl/ff_rom.v`` loaded with ``$readmemh`` rather than Amaranth memories with
inline init: the same Verilog (and the same Verilated model) then runs any program whose images fit the
config's depths — simulation swaps images with plusargs, synthesis reads the ``.hex`` files beside the
Verilog. The activation memory is ``hdl/ff_act_ram.v`` (block RAM on chip; in simulation it can stall).
"""

import json
import shutil
from pathlib import Path

from amaranth import ClockSignal, Instance, Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.engine import Engine, _bits_for
from fireforge.sw.config import EngineConfig
from fireforge.sw.descriptor import DESCRIPTOR

__all__ = ["FireforgeTop", "HDL_DIR", "HDL_SOURCES", "write_verilog", "ROM_IMAGES"]

HDL_DIR = Path(__file__).parent / "hdl"
HDL_SOURCES = ("ff_rom.v", "ff_act_ram.v")
#: ROM name -> (image stem, plusarg): the plusarg selects another image at simulation time
ROM_IMAGES = {"desc": ("descriptors", "desc"), "weights": ("weights", "weights"), "quant": ("quant", "quant")}


class FireforgeTop(wiring.Component):
    """Engine + descriptor / weight / quant ROMs + activation RAM.

    Members
    -------
    start, busy, done, cycles :
        As :class:`~fireforge.hw.engine.Engine`.
    dump : In(1)
        Simulation: write the activation memory to ``+act_dump=<file>``.
    """

    start: In(1)
    busy: Out(1)
    done: Out(1)
    cycles: Out(32)
    layer_done: Out(1)
    dump: In(1)

    def __init__(self, config: EngineConfig):
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.engine = eng = Engine(cfg)
        m.d.comb += [eng.start.eq(self.start), self.busy.eq(eng.busy), self.done.eq(eng.done),
                     self.cycles.eq(eng.cycles), self.layer_done.eq(eng.layer_done)]

        def rom(name, width, depth, en, addr, data):
            stem, plusarg = ROM_IMAGES[name]
            m.submodules[f"{name}_rom"] = Instance(
                "ff_rom", p_WIDTH=width, p_DEPTH=depth, p_ADDR_WIDTH=_bits_for(depth),
                p_INIT_FILE=f"{stem}.hex", p_PLUSARG=plusarg,
                i_clk=ClockSignal(), i_en=en, i_addr=addr, o_data=data)

        rom("desc", DESCRIPTOR.size, cfg.desc_depth, eng.desc_en, eng.desc_addr, eng.desc_data)
        rom("weights", cfg.weight_word_bits, cfg.weight_depth, eng.w_en, eng.w_addr, eng.w_data)
        rom("quant", cfg.quant_word_bits, cfg.quant_depth, eng.q_en, eng.q_addr, eng.q_data)
        m.submodules.act_ram = Instance(
            "ff_act_ram", p_WIDTH=cfg.act_word_bits, p_DEPTH=cfg.act_depth, p_ADDR_WIDTH=_bits_for(cfg.act_depth),
            i_clk=ClockSignal(),
            i_rd_valid=eng.rd_valid, o_rd_ready=eng.rd_ready, i_rd_addr=eng.rd_addr,
            o_rd_resp_valid=eng.rd_resp_valid, o_rd_resp_data=eng.rd_resp_data,
            i_wr_valid=eng.wr_valid, o_wr_ready=eng.wr_ready, i_wr_addr=eng.wr_addr, i_wr_data=eng.wr_data,
            i_dump=self.dump, i_dump_layer=eng.layer_done)
        return m


def write_verilog(config: EngineConfig, rtl_dir: Path, *, name: str = "fireforge_top") -> Path:
    """Write ``fireforge_top.v`` and the hand-written HDL it instantiates; return the top file."""
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    top = FireforgeTop(config)
    text = verilog.convert(top, name=name, emit_src=False)
    path = rtl_dir / f"{name}.v"
    path.write_text(text)
    for src in HDL_SOURCES:
        shutil.copyfile(HDL_DIR / src, rtl_dir / src)
    (rtl_dir / "engine.json").write_text(json.dumps(config.to_dict(), indent=1))
    return path
