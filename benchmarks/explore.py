"""fireforge explore, MEASURED: the seed's sweeps and the sweep's wall time on this machine's cores.

    python benchmarks/explore.py OUT [--sweeps squeeze-ratio pct3x3] [--versions v1_0 v1_1]
                                     [--boards ulx3s-85f kc705] [--verify N] [--scale] [--workers N]

For each (sweep, version): a ``fireforge.explore`` run at 224x224, 1000 classes on the boards given; prints per point
the parameters, the engine chosen, cycles, fps, block RAM and whether it fits, then the wall time. ``--verify N``
simulates N sampled fitting points per sweep (minutes each at 224x224). ``--scale`` also times one sweep of at
least 200 points (squeeze ratio x pct3x3 x versions x boards) from an empty cache: the issue's "200 points in
5 minutes on 2 cores".
"""

import argparse
import shutil
import time
from pathlib import Path

import fireforge


def _table(result) -> None:
    print(f"  {'model':<44} {'board':<10} {'mode':<8} {'params':>10} {'cycles':>11} {'fps':>7} {'BRAM':>9} "
          f"{'fits':>4} {'measured':>11} {'err':>6}")
    for r in result:
        if r["status"] != "ok":
            print(f"  {r['model']:<44} {r['board']:<10} failed: {r['error']}")
            continue
        bram = r["resources"]["bram"]
        meas = r.get("measured_cycles")
        print(f"  {r['model']:<44} {r['board']:<10} {r['memory']:<8} {r['params']:>10,} {r['cycles']:>11,} "
              f"{r['fps']:>7.2f} {bram['used']:>4}/{bram['available']:<4} {'yes' if r['fits'] else 'no':>4} "
              f"{'-' if meas is None else format(meas, ','):>11} "
              f"{'-' if meas is None else format(r['cycle_error'], '+.1%'):>6}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--sweeps", nargs="*", default=["squeeze-ratio", "pct3x3"], help="none: only --scale")
    ap.add_argument("--versions", nargs="+", default=["v1_0", "v1_1"])
    ap.add_argument("--boards", nargs="+", default=["ulx3s-85f", "kc705"])
    ap.add_argument("--verify", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--scale", action="store_true")
    a = ap.parse_args()
    for sweep in a.sweeps:
        for version in a.versions:
            out = a.out / f"{sweep}-{version}"
            t = time.perf_counter()
            res = fireforge.explore(out, preset=sweep, version=version, board=a.boards, verify=a.verify,
                                    workers=a.workers)
            print(f"{sweep} sweep, {version}, {', '.join(a.boards)}: {len(res)} points "
                  f"({res.computed} computed, {res.cached} cached) in {time.perf_counter() - t:.1f} s")
            _table(res)
    if a.scale:
        out = a.out / "scale"
        shutil.rmtree(out, ignore_errors=True)
        from fireforge.explorer.space import PRESETS
        t = time.perf_counter()
        res = fireforge.explore(out, version=a.versions, board=a.boards, workers=a.workers,
                                squeeze_ratio=list(PRESETS["squeeze-ratio"]["squeeze_ratio"]),
                                pct3x3=list(PRESETS["pct3x3"]["pct3x3"]))
        wall = time.perf_counter() - t
        ok = sum(r["status"] == "ok" for r in res)
        print(f"scale: {len(res)} points ({ok} ok, {sum(bool(r['fits']) for r in res)} fit) from an empty cache in "
              f"{wall:.1f} s on {a.workers or 'all'} workers")


if __name__ == "__main__":
    main()
