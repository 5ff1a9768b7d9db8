"""Register copy trees: one signal delivered to many sinks spread over the die, a copy per sink.

Why: a single register feeding sinks all over the chip is one long route (the MAC lanes sit beside their weight
blocks, which span the die). A tree of registered copies lets the placer put each copy beside its sinks, at the
cost of registers the signal passes through anyway: the tree replaces stages of an existing delay line.

Yosys merges flip-flops with the same input and the same initial value (``opt_merge``), so plain copies
collapse back into one register — bit by bit, once synthesis has split them into single flip-flops. Siblings
here differ in every bit's initial value (all zeros, all ones), which is never observed: the data they carry is
qualified by a valid bit elsewhere. So each split is in two: a parent with more children (a last level wider
than twice the one before) keeps only two distinct copies.
"""

from __future__ import annotations

from amaranth import Signal

__all__ = ["copy_tree", "delayed_copies", "tree_fanouts"]


def tree_fanouts(copies: int, levels: int) -> list[int]:
    """Copies at each of ``levels`` registered levels: doubling per level, all ``copies`` at the last."""
    if copies < 1 or levels < 1:
        raise ValueError(f"a copy tree needs at least one copy and one level, not {copies} / {levels}")
    return [min(copies, 2 ** (lv + 1)) for lv in range(levels - 1)] + [copies]


def copy_tree(m, src, copies: int, levels: int, name: str) -> list[Signal]:
    """``copies`` registers holding ``src`` (a value, of its width) ``levels`` cycles late, through ``levels``
    registered levels of copies (:func:`tree_fanouts`); returns the last level's copies, in order."""
    width = len(src)
    prev = [src]
    for lv, n in enumerate(tree_fanouts(copies, levels)):
        per_parent = -(-n // len(prev))
        cur = []
        for k in range(n):
            q = Signal(width, name=f"{name}_l{lv}_{k}", init=-(k % per_parent % 2) % (1 << width), reset_less=True)
            m.d.sync += q.eq(prev[k // per_parent])
            cur.append(q)
        prev = cur
    return prev


def delayed_copies(m, src, copies: int, cycles: int, name: str) -> list[Signal]:
    """``copies`` registers holding ``src`` ``cycles`` cycles late: a plain delay line whose last stages (as many
    as a binary tree to ``copies`` needs, at most ``cycles``) are a :func:`copy_tree`."""
    levels = min(max(1, (copies - 1).bit_length()), cycles)
    for stage in range(cycles - levels):
        q = Signal(len(src), name=f"{name}_d{stage}", reset_less=True)
        m.d.sync += q.eq(src)
        src = q
    return copy_tree(m, src, copies, levels, name)
