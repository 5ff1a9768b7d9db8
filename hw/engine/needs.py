"""Resource reports: what a block needs from the FPGA, stated by the block itself, without elaboration.

A report is a plain dict (no Amaranth objects, so the fit check can cache and print it)::

    {"products": {(a_bits, a_signed, b_bits, b_signed): count},   # multiplications, by operand shape
     "memories": [(width, depth), ...]}                           # memories (FIFO stores), one entry each

Each component has a ``needs`` classmethod taking its constructor's parameters; the engine's is the sum
of its parts' (:func:`total`). ``tests/test_engine_needs.py`` checks every report against what the
elaborated design really contains.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["report", "total"]


def report(products: dict | None = None, memories: list | None = None) -> dict:
    """A report with ``products`` (operand shape → count; zero counts dropped) and ``memories``."""
    return {"products": {k: n for k, n in (products or {}).items() if n},
            "memories": [tuple(m) for m in (memories or [])]}


def total(*reports: dict, times: int = 1) -> dict:
    """The sum of ``reports`` (each ``times`` over): products added by shape, memories concatenated."""
    products, memories = Counter(), []
    for r in reports:
        for shape, n in r["products"].items():
            products[shape] += n * times
        memories += list(r["memories"]) * times
    return report(dict(products), memories)
