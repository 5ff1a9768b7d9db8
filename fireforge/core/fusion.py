"""Which max pools the resident engine computes in their writers' output path (the pool stage,
``fireforge.hw.engine.pool``): the geometry the stage takes and the program shapes the compiler fuses.

Here, below ``hw`` and ``sw``, because the memory plan depends on it (a fused pool's input is never stored,
its output is live from its first writer on): :func:`fireforge.core.layout.plan_memory` and
:func:`~fireforge.core.layout.planned_config` plan for it, :mod:`fireforge.sw.schedule` writes the descriptors.
"""

from __future__ import annotations

from fireforge.core.program import AddLayer, ConvLayer, MaxPoolLayer, Program

__all__ = ["POOL_LINE", "MAX_POOL_KERNEL", "fusable", "pool_writers"]

#: words of each of the pool stage's line buffers: the widest pooled row a fused pool may have (SqueezeNet
#: at 224: 55)
POOL_LINE = 64
#: the largest fused kernel (the stage keeps two rows and two columns)
MAX_POOL_KERNEL = 3


def _ends(n_in: int, n_out: int, k: int, s: int, pad: int) -> list[int]:
    return [min(s * p - pad + k - 1, n_in - 1) for p in range(n_out)]


def fusable(in_h: int, in_w: int, out_h: int, out_w: int, kernel, stride, pads) -> str | None:
    """Why the pool stage cannot compute a max pool of this geometry (None: it can): square kernels 1–3,
    strides 1–3, pads below the kernel, a pooled row of at most :data:`POOL_LINE` words, and no input row or
    column that ends two windows (the stage writes at most one pooled word per input word)."""
    kh, kw = kernel
    sh, sw = stride
    if kh != kw or sh != sw:
        return "not square"
    k, s = kh, sh
    if not (1 <= k <= MAX_POOL_KERNEL and 1 <= s <= 3):
        return f"kernel {k} / stride {s} outside 1..{MAX_POOL_KERNEL} / 1..3"
    if any(not 0 <= p < k for p in pads) or max(pads[0], pads[1]) > 3:
        return f"pads {tuple(pads)}"
    if out_w > POOL_LINE:
        return f"pooled width {out_w} > {POOL_LINE}"
    for n_in, n_out, pad in ((in_h, out_h, pads[0]), (in_w, out_w, pads[1])):
        ends = _ends(n_in, n_out, k, s, pad)
        if any(b <= a for a, b in zip(ends, ends[1:])) or any(s * p - pad > n_in - 1 for p in range(n_out)):
            return "a row or column ends two windows"
    return None


def pool_writers(program: Program, group_offsets: dict[str, int], out_groups, groups: dict[str, int]
                 ) -> dict[str, tuple[str, ...]]:
    """The max pools to fuse -> their writers, in program order.

    A pool is fused when the writers of its input (one, or a concat's: a max pool is per channel, so the pool
    of a concat is the concat of its slices' pools) are CONV or ADD layers right before it in program order,
    covering the input's channel groups, nothing else reads the input (nor is it the program's output), and its
    geometry is :func:`fusable`. ``out_groups(layer)``: the groups a layer writes; ``groups``: per tensor."""
    index = {l.name: i for i, l in enumerate(program.layers)}
    fused = {}
    for i, pool in enumerate(program.layers):
        if not isinstance(pool, MaxPoolLayer) or pool.lut is not None:
            continue
        src = pool.input
        writers = [l for l in program.layers if l.output == src]
        readers = [l for l in program.layers if src in l.inputs]
        if not writers or readers != [pool] or src in (program.output, program.input):
            continue
        n = len(writers)
        if (sorted(index[w.name] for w in writers) != list(range(i - n, i))
                or not all(isinstance(w, (ConvLayer, AddLayer)) and w.lut is None for w in writers)):
            continue
        spans = sorted((group_offsets[w.name], out_groups(w)) for w in writers)
        if [s[0] for s in spans] != [sum(c for _, c in spans[:k]) for k in range(n)] or \
                sum(c for _, c in spans) != groups[src]:
            continue
        t_in, t_out = program.tensors[src], program.tensors[pool.output]
        if fusable(t_in.height, t_in.width, t_out.height, t_out.width, pool.kernel, pool.stride, pool.pads):
            continue
        fused[pool.name] = tuple(w.name for w in sorted(writers, key=lambda w: index[w.name]))
    return fused
