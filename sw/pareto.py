"""Pareto fronts of explorer points: the points no other point beats on both axes.

The explorer's three fronts (:data:`FRONTS`) pair a cost with a benefit: frames per second against the block
RAM or the LUTs a point needs (fps up, resource down), and parameters against cycles — a network's capacity
against its time (parameters up, cycles down: the paper's trade of accuracy for speed, accuracy standing in
for parameters since the explorer does not train). Only points that fit their board and have the numbers take
part in a front.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Front", "FRONTS", "pareto_front"]


@dataclass(frozen=True)
class Front:
    name: str
    x: str              # a point's key, e.g. "bram_blocks"
    y: str
    x_better: str       # "min" or "max"
    y_better: str
    x_label: str
    y_label: str


FRONTS = (
    Front("fps-bram", "bram_blocks", "fps", "min", "max", "block RAM blocks", "frames per second"),
    Front("fps-lut", "luts", "fps", "min", "max", "LUTs", "frames per second"),
    Front("params-cycles", "cycles", "params", "min", "max", "cycles per inference", "parameters"),
)


def _key(value: float, better: str) -> float:
    return value if better == "min" else -value


def pareto_front(points: list[dict], front: Front, *, fitting_only: bool = True) -> list[dict]:
    """The non-dominated points of ``points`` for ``front``, sorted by its x axis (best first)."""
    pts = [p for p in points if p.get(front.x) is not None and p.get(front.y) is not None
           and (p.get("fits") or not fitting_only)]
    pts.sort(key=lambda p: (_key(p[front.x], front.x_better), _key(p[front.y], front.y_better)))
    out, best_y = [], None
    for p in pts:
        y = _key(p[front.y], front.y_better)
        if best_y is None or y < best_y:
            out.append(p)
            best_y = y
    return out
