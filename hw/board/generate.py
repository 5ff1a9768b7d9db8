"""``fireforge generate OUT/ -o RTL/ --board NAME``: board RTL for a compiled program, and the FPGA flow on it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from fireforge.core.compiled import Compiled
from fireforge.core.descriptor import DESCRIPTOR
from fireforge.core.hexfile import format_words
from fireforge.core.outdir import prepare_output_dir
from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import BOARDS, DEFAULT_BAUD, ECP5_ROUTER, TOP_NAME, Board, get_board
from fireforge.hw.board.clocks import clock_plan
from fireforge.hw.board.dram_top import LINK_BAUD, dram_board_generate, refuse_dram_flags
from fireforge.hw.board.ecp5_memory import memory_modules
from fireforge.hw.board.fit import fit_check, require_fit
from fireforge.hw.board.flow import run_tools, write_board_dir, write_plan, yowasp_environ
from fireforge.hw.board.seeds import DEFAULT_SEEDS
from fireforge.hw.board.top import FireforgeBoard
from fireforge.hw.generate import check_supported
from fireforge.hw.top import HDL_DIR, HDL_SOURCES, ROM_IMAGES

__all__ = ["board_generate", "hdl_sources"]


def board_generate(out_dir, rtl_dir, board, *, clock_mhz: float | None = None, synth: bool = False,
                   pnr: bool = False, bitstream: bool = False, force: bool = False, baud: int | None = None,
                   act_memory: str = "auto", tool_timeout_s: float | None = None, log=lambda msg: None,
                   check_fit: bool = True, floorplan: bool = True, seeds: Sequence[int | None] = DEFAULT_SEEDS) -> dict:
    """Board RTL for the compiled program in ``out_dir`` (a path or a :class:`Compiled`), written atomically to
    ``rtl_dir``.

    Steps: fit check (a misfit raises a one-line FireforgeError before anything is written); the board top
    through amaranth-boards ``prepare()`` (``fireforge_board.il`` / ``.v`` (Verilog of the whole top),
    constraints ``.lpf`` / ``.xdc`` / ``.pcf``, ``build_fireforge_board.sh``), ``ff_rom.v``, ``ff_act_ram.v`` and
    the ROM images padded to the ROM depths; then, as asked, synthesis (``--synth``), place-and-route
    (``--pnr``, ECP5 and iCE40) and a bitstream (``--bitstream``, ULX3S and iCEBreaker: amaranth's build
    script run with the YoWASP tools; :mod:`fireforge.hw.board.flow`). ``board.json`` records everything
    (estimates and measurements, clock, baud, critical path, tool times).

    Returns ``{"board", "fits", "resources": {"lut", "ff", "dsp", "bram_bits": [used, available]},
    "fmax_mhz", "bitstream"}``; ``used`` is the fit check's estimate, replaced by yosys's counts after
    ``--synth`` and by nextpnr's packed counts after ``--pnr`` (``board.json["resources_source"]`` says which).

    A tool that fails raises FireforgeError naming its log; the output directory is then still
    committed (complete RTL plus the failing log) so the log can be read.

    ``check_fit=False`` (benchmarks: what a design that does not fit would take) writes and synthesises a
    misfit anyway, with ``"fits": False`` in the report; place-and-route and bitstreams still need a fit.
    ``floorplan``: see :class:`~fireforge.hw.board.top.FireforgeBoard` (DRAM mode: the buffers' block RAMs,
    :func:`~fireforge.hw.board.dram_top.dram_board_generate`). ``seeds``: nextpnr's placement seeds, tried in turn
    until a run routes and meets every clock (None: nextpnr's default; :mod:`fireforge.hw.board.seeds`). ``baud``: the host link's rate (default:
    115,200 for the resident top's protocol v1; 3,000,000 for DRAM mode's link v2, what ``fireforge run`` uses).

    A DRAM-mode program (``engine.json`` ``"memory": "dram"``) gets the DRAM-mode board top
    (:mod:`fireforge.hw.board.dram_top`: the engine side, the board's LiteDRAM core with its init sequencer, the
    two clocks and the AXI crossing; no ROMs): the same flow (``--synth``; ``--pnr`` / ``--bitstream`` on the
    ULX3S), the report has ``"memory": "dram"``.
    """

    board = get_board(board)
    rtl_dir = Path(rtl_dir)
    _check_tool_flags(board, pnr, bitstream, seeds)
    compiled = Compiled.of(out_dir)
    if compiled.config.dram:
        refuse_dram_flags(compiled, board, pnr=pnr, bitstream=bitstream, act_memory=act_memory)
        rep = require_fit(compiled, board) if check_fit else fit_check(compiled, board)  # nothing written if not
        if not rep.fits and (pnr or bitstream):
            raise FireforgeError(rep.message())
        check_supported(compiled.program, rep.config)
        for note in rep.notes:
            log(f"{board.name}: {note}")
        return dram_board_generate(compiled, rtl_dir, board, rep, clock_mhz=clock_mhz, baud=baud or LINK_BAUD,
                                   synth=synth,
                                   pnr=pnr, bitstream=bitstream, force=force, tool_timeout_s=tool_timeout_s, log=log,
                                   floorplan=floorplan, seeds=seeds)
    baud = baud or DEFAULT_BAUD
    if check_fit:
        rep = require_fit(compiled, board, act_memory)  # first: nothing is written for a misfit
    else:
        rep = fit_check(compiled, board, act_memory=act_memory)
        if not rep.fits and (pnr or bitstream):
            raise FireforgeError(rep.message())
    check_supported(compiled.program, rep.config)
    if rep.act_memory == "external" and (pnr or bitstream):
        raise FireforgeError(f"--pnr/--bitstream: the activations of this model go to {board.name}'s "
                             f"{board.external_ram}, whose controller (ff_ext_act_mem) fireforge does not provide; "
                             f"use --synth for a resource table, or a model whose activations fit on chip")
    for note in rep.notes:
        log(f"{board.name}: {note}")
    clock = clock_plan(board, clock_mhz)
    env = _tool_environ(board, synth, pnr, bitstream)

    tmp = prepare_output_dir(rtl_dir, force, inputs=[compiled.out_dir])
    report = {"board": board.name, "fits": rep.fits, "resources": rep.resources, "fmax_mhz": None, "bitstream": None}
    details = {**rep.details(), "clock_mhz": clock["mhz"], "board_clock_mhz": clock["board_mhz"],
               "pll": clock["pll"], "baud": baud, "host_link": "UART 8N1, protocol v1 (fireforge.hw.host_link)",
               "resources_source": "estimate (fit check)", "timings_s": {}}
    design = None

    def write():
        nonlocal design
        t0 = time.perf_counter()
        design = FireforgeBoard(rep.config, board, clock_mhz=clock["mhz"], baud=baud, act_memory=rep.act_memory,
                                floorplan=floorplan)
        details["floorplan"] = ("block RAM sites by fireforge.hw.board.floorplan (BEL attributes)"
                                if design.floorplan else None)
        _write_design(design, compiled, tmp)
        details["timings_s"]["generate"] = round(time.perf_counter() - t0, 2)
        details["files"] = sorted(p.name for p in tmp.iterdir())

    def tools():
        run_tools(board, tmp, env, synth=synth, pnr=pnr, bitstream=bitstream,
                  hdl_sources=hdl_sources(design.act_memory), report=report, details=details,
                  timeout_s=tool_timeout_s, log=log, seeds=seeds)
    write_board_dir(tmp, rtl_dir, details, write, tools)
    if report["bitstream"]:
        report["bitstream"] = str(rtl_dir / Path(report["bitstream"]).name)
    return report


def _check_tool_flags(board: Board, pnr: bool, bitstream: bool, seeds) -> None:
    if not seeds:
        raise FireforgeError("--seed: no seed given; say one or more, as in --seed 3 or --seed 1,2,3")
    if tuple(seeds) != DEFAULT_SEEDS and not (pnr or bitstream):
        raise FireforgeError("--seed: nextpnr's placement seeds need --pnr or --bitstream")
    if pnr and board.nextpnr is None:
        raise FireforgeError(f"--pnr: no open-source place-and-route for {board.family} ({board.device}) in the "
                             f"YoWASP tools; use --synth for a resource table")
    if bitstream and not board.bitstream:
        raise FireforgeError(f"--bitstream is supported for "
                             f"{', '.join(b.name for b in BOARDS.values() if b.bitstream)}, not {board.name}")


def _tool_environ(board: Board, synth: bool, pnr: bool, bitstream: bool) -> dict | None:
    """The YoWASP environment for the tools asked for (a FireforgeError before anything is written when one is
    missing), or None when no tool runs."""
    need = []
    if synth or pnr or bitstream:
        need.append("YOSYS")
    if pnr or bitstream:
        need.append(board.nextpnr[0].upper().replace("-", "_"))
    if bitstream:
        need.append({"ecp5": "ECPPACK", "ice40": "ICEPACK"}[board.family])
    return yowasp_environ(*need) if need else None


def hdl_sources(act_memory: str) -> tuple[str, ...]:
    """The hand-written Verilog a board top needs: the ROM, and the on-chip RAM or the external one's black box."""

    if act_memory == "external":
        return tuple(s for s in HDL_SOURCES if s != "ff_act_ram.v") + ("ff_ext_act_mem.v",)
    return HDL_SOURCES


def _padded_images(compiled: Compiled) -> dict[str, str]:
    """``{stem}.hex`` -> the ROM image padded to its ROM's depth (yosys leaves uncovered words undefined)."""

    cfg = compiled.config
    shapes = {"desc": (DESCRIPTOR.size, cfg.desc_depth), "weights": (cfg.weight_word_bits, cfg.weight_depth),
              "quant": (cfg.quant_word_bits, cfg.quant_depth)}
    out = {}
    for key, (stem, _) in ROM_IMAGES.items():
        bits, depth = shapes[key]
        image = compiled.images[stem]
        if image.words > depth:
            raise FireforgeError(f"{image.hex} holds {image.words} words but the ROM is {depth} deep; "
                                 f"{compiled.rebuild_hint}")
        out[f"{stem}.hex"] = format_words(image.read(), bits, depth)
    return out


def _write_design(design: FireforgeBoard, compiled: Compiled, tmp: Path) -> None:
    """amaranth-boards ``prepare()``'s build plan (RTLIL, Verilog, constraints, build script) for the top, the
    hand-written and generated memories it instantiates, the padded images, ``manifest.json``, ``engine.json``."""

    board, cfg = design.board, design.config
    plat = board.make_platform()
    for src in hdl_sources(design.act_memory):
        plat.add_file(src, (HDL_DIR / src).read_text())
    if design.memory_cells:
        for module, text in memory_modules(compiled, act_memory=design.act_memory,
                                           device=board.device if design.floorplan else None).values():
            plat.add_file(f"{module}.v", text)
    overrides = {}
    if board.family in ("ecp5", "ice40"):
        overrides["nextpnr_opts"] = " ".join(("--timing-allow-fail", *(ECP5_ROUTER if board.family == "ecp5" else ())))
        overrides["debug_verilog"] = True       # the whole top as Verilog (the build itself reads the .il)
    if board.family == "ice40":
        overrides["synth_opts"] = "-dsp"
    write_plan(plat.prepare(design, TOP_NAME, **overrides), tmp, TOP_NAME)
    for name, content in _padded_images(compiled).items():
        (tmp / name).write_text(content)
    shutil.copyfile(compiled.out_dir / "manifest.json", tmp / "manifest.json")
    (tmp / "engine.json").write_text(json.dumps(cfg.to_dict(), indent=1))
