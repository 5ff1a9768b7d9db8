"""Place-and-route one synthesised board design with several nextpnr seeds: Fmax min / median / max.

    python benchmarks/pnr_seeds.py RTL_DIR [--seeds 1 2 3] [--jobs 1] [--json FILE]

RTL_DIR is the output of ``fireforge generate OUT -o RTL_DIR --board B --synth`` (or ``--pnr``): its yosys
netlist (``fireforge_board.json``) is placed and routed again with nextpnr's ``--seed N``, the command line
otherwise exactly the one of the board's build script. Each run writes ``seed-N.tim`` in RTL_DIR. One
seed's Fmax says little: the placer's randomness moves it by ±15 % on the ULX3S designs; the minimum over
seeds is the figure to quote. Tens of minutes per seed on the 64-MAC ULX3S design on one core.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fireforge.hw.board import TOP_NAME as TOP, parse_nextpnr_log, yowasp_environ


def nextpnr_command(rtl: Path) -> list[str]:
    """The build script's nextpnr line, with the tool variable resolved later."""
    for line in (rtl / f"build_{TOP}.sh").read_text().splitlines():
        if line.startswith('"$NEXTPNR_'):
            return shlex.split(line)
    raise SystemExit(f"{rtl}: no nextpnr line in build_{TOP}.sh (not a board design?)")


def run_seed(rtl: Path, seed: int) -> dict:
    cmd = nextpnr_command(rtl)
    var = cmd[0].lstrip("$")
    env = yowasp_environ(var)
    tool, args = env[var], cmd[1:]
    args[args.index("--log") + 1] = f"seed-{seed}.tim"
    for out in ("--textcfg", "--asc", "--fasm"):
        if out in args:                         # keep the bitstream inputs of the build script's own run
            i = args.index(out)
            args[i + 1] = f"seed-{seed}.{args[i + 1].rsplit('.', 1)[-1]}"
    t0 = time.perf_counter()
    proc = subprocess.run([tool, *args, "--seed", str(seed)], cwd=rtl, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    text = (rtl / f"seed-{seed}.tim").read_text(errors="replace") if (rtl / f"seed-{seed}.tim").exists() else ""
    parsed = parse_nextpnr_log(text)
    mhz = min((f["mhz"] for f in parsed["fmax"].values()), default=None)
    path = parsed["critical_path"]
    return {"seed": seed, "fmax_mhz": mhz, "seconds": round(seconds, 1), "returncode": proc.returncode,
            "critical_from": path.get("from"), "critical_to": path.get("to"),
            "logic_ns": path.get("logic_ns"), "routing_ns": path.get("routing_ns")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rtl", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--jobs", type=int, default=1, help="seeds placed and routed at once (one core each)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not (args.rtl / f"{TOP}.json").exists():
        raise SystemExit(f"{args.rtl}: no {TOP}.json netlist; run fireforge generate ... --board B --synth first")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda s: run_seed(args.rtl, s), args.seeds))
    for r in results:
        print(f"seed {r['seed']}: {r['fmax_mhz']} MHz in {r['seconds']} s; critical path {r['critical_from']} -> "
              f"{r['critical_to']} ({r['logic_ns']} ns logic, {r['routing_ns']} ns routing)")
    fmax = [r["fmax_mhz"] for r in results if r["fmax_mhz"] is not None]
    if fmax:
        print(f"Fmax over {len(fmax)} seeds: min {min(fmax):.2f} / median {statistics.median(fmax):.2f} / "
              f"max {max(fmax):.2f} MHz")
    if args.json:
        args.json.write_text(json.dumps({"rtl": str(args.rtl), "runs": results}, indent=1))
    return 0 if len(fmax) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
