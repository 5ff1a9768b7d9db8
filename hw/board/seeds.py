"""Place-and-route over nextpnr seeds: the placer's randomness moves one netlist's Fmax by ±10 % (docs/boards.md),
and some placements of a congested design do not route at all. The flow therefore tries seeds in order until a run
routes and meets every clock constraint, keeping the best run's files; ``board.json`` records every run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Sequence

from fireforge.errors import FireforgeError
from fireforge.hw.board.logs import parse_nextpnr_log

__all__ = ["DEFAULT_SEEDS", "route_failed", "seed_label", "sweep_seeds", "with_seed"]

#: the seeds tried, in order (None: nextpnr's own default seed), while the runs before fail to route or miss a clock
DEFAULT_SEEDS = (None, 2, 3)


def route_failed(tim: Path) -> bool:
    """Whether nextpnr's log ends in a routing failure (e.g. router2 not reaching the reset's DCCA input, which
    some placements of the congested DRAM-mode ULX3S design hit), which another placement seed may not."""
    return tim.exists() and "ERROR: Failed to route" in tim.read_text(errors="replace")


def with_seed(nextpnr_line: str, seed: int | None) -> str:
    """A nextpnr command line with ``--seed`` (replacing one it has); None leaves nextpnr's default seed."""
    line = re.sub(r" --seed \S+", "", nextpnr_line)
    return line if seed is None else f"{line} --seed {seed}"


def seed_label(seed: int | None):
    """How board.json and the logs name a seed."""
    return "default" if seed is None else seed


def _verdict(run: dict) -> str:
    if not run["routed"]:
        return "failed to route"
    misses = [f"{mhz:.2f} MHz on {net} (needs {run['target_mhz'][net]:g})" for net, mhz in run["fmax"].items()
              if mhz < run["target_mhz"][net]]
    return "missed its clock: " + ", ".join(misses) if misses else "met every clock"


def _move(d: Path, names: Sequence[str], suffix: str, back: bool = False) -> None:
    """Each file ``name`` to ``name + suffix`` (``back``: the other way), those that exist."""
    for name in names:
        src, dst = d / (name + suffix), d / name
        if not back:
            src, dst = dst, src
        if src.exists():
            os.replace(src, dst)


def _set_aside(d: Path, outputs: Sequence[str], suffix: str, run: dict) -> None:
    """A run not kept: its log (``outputs[0] + suffix``) as ``<log>.seed-<S>``, its other files removed."""
    os.replace(d / (outputs[0] + suffix), d / f"{outputs[0]}.seed-{run['seed']}")
    for name in outputs[1:]:
        (d / (name + suffix)).unlink(missing_ok=True)


def sweep_seeds(d: Path, seeds: Sequence[int | None], run_seed: Callable[[int | None], float],
                outputs: Sequence[str], details: dict, log) -> tuple[float, int | None]:
    """Run ``run_seed(seed)`` (place and route, and pack, the netlist in ``d``; its seconds) for each seed in turn
    until a run routes and meets every clock constraint; returns the seconds of all runs and the kept run's seed.

    ``outputs``: the files a run writes in ``d``, nextpnr's log first. The best run (routed, the highest worst-clock
    Fmax over its constraint) keeps them under their names; any other run's log is kept as ``<log>.seed-<S>``, its
    other files removed. ``details["pnr_seeds"]``: each run's seed, whether it routed, Fmax per clock, whether it met
    them; ``details["pnr_seed"]``: the kept run's. A failure other than a routing one raises at once; every seed
    failing to route is one FireforgeError."""
    tim, runs, best, kept, seconds = d / outputs[0], [], None, None, 0.0
    details["pnr_seeds"] = runs
    for seed in seeds:
        if runs:
            log(f"nextpnr seed {runs[-1]['seed']} {_verdict(runs[-1])}; trying seed {seed_label(seed)}")
        if best is not None:
            _move(d, outputs, ".kept")
        try:
            seconds += run_seed(seed)
            fmax = parse_nextpnr_log(tim.read_text(errors="replace"))["fmax"]
            run = {"seed": seed_label(seed), "routed": True, "fmax": {n: f["mhz"] for n, f in fmax.items()},
                   "target_mhz": {n: f["target_mhz"] for n, f in fmax.items()},
                   "met": all(f["pass"] for f in fmax.values())}
        except FireforgeError as e:
            if not route_failed(tim):
                if best is not None:
                    _move(d, outputs, ".kept", back=True)
                raise
            run = {"seed": seed_label(seed), "routed": False, "error": str(e)}
        runs.append(run)
        if run["routed"] and (best is None or _score(run) > _score(best)):
            if best is not None:
                _set_aside(d, outputs, ".kept", best)
            best, kept = run, seed
        else:
            _set_aside(d, outputs, "", run)
            if best is not None:
                _move(d, outputs, ".kept", back=True)
        if run is best and run["met"]:
            break
    if best is None:
        raise FireforgeError(f"nextpnr failed to route with seeds {', '.join(str(r['seed']) for r in runs)}: "
                             f"{runs[-1]['error']}; other seeds may route (--seed N[,N...])")
    details["pnr_seed"] = best["seed"]
    if len(runs) > 1:
        log(f"nextpnr seed {runs[-1]['seed']} {_verdict(runs[-1])}; kept seed {best['seed']} ({_verdict(best)})")
    return seconds, kept


def _score(run: dict) -> float:
    """The worst clock's Fmax over its constraint (≥ 1 when every clock meets its constraint)."""
    return min((mhz / run["target_mhz"][net] for net, mhz in run["fmax"].items()), default=float("inf"))
