"""DRAM mode's tiling and traffic model (docs/dram.md, "The DRAM-mode engine"): per layer, the row band
height, the output-group chunk and the loop order that move the fewest DRAM bytes under a buffer budget;
the bytes each layer reads (weights, maps) and writes; its cycles at a bandwidth.

A tile is one descriptor: output rows ``[oy0, oy1)`` × output groups ``[og0, og1)``; it reads the input rows
:func:`band_input_rows` gives (the halo, clipped to the map: padding rows are never read) and its chunk's
weights. Buffers (:class:`BufferBudget`, in words):

* input: a ring of input rows (the DMA refills the rows the previous band freed), one band's rows with
  all the input groups a conv reads (a depthwise op — pool, add, GAP — only its chunk's groups);
* weights: two halves (double-buffered), one chunk's ``chunk · taps`` weight words each;
* output: one band of the chunk's output rows (plus, with a fused max pool, its ``kernel − stride``
  line-buffer rows).

Loop orders (a conv; depthwise ops have no weights, and read each input word once in either order):

* weights-stationary: per chunk, its weights once, every band streamed; the input is read once per chunk
  (once in all if a single band holds the whole input);
* input-stationary: per band, its rows once, every chunk's weights streamed; the weights are read once per
  band (once in all if a single chunk holds them).

Options (:class:`TilingOptions`): a max pool fused into its producers (only pooled words are written; the
pool has no pass of its own), a GAP likewise (one word per group); a Fire module's squeeze output kept on
chip when it fits the output buffer — the buffers then swap roles for the expands, which read it as their
resident input and write bands through the input buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Op
from fireforge.core.program import AddLayer, ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program
from fireforge.errors import FireforgeError

__all__ = ["BufferBudget", "TilingOptions", "Geometry", "LayerTiling", "band_input_rows", "bands", "chunks",
           "traffic", "transfer_runs", "choose", "plan_tiles"]


@dataclass(frozen=True)
class BufferBudget:
    """On-chip buffer sizes in words: activation words (``vector`` bytes) for input and output, weight
    words (``mac_units`` bytes) for each of the two weight halves."""

    input_words: int
    weight_words: int
    output_words: int


@dataclass(frozen=True)
class TilingOptions:
    fuse_pools: bool = True          # max pool and GAP into the producing layer's output path
    squeeze_on_chip: bool = True     # a Fire squeeze's output stays on chip for its expands


@dataclass(frozen=True)
class Geometry:
    """What tiling needs of one descriptor (``fireforge.sw.schedule``'s fields)."""

    out_h: int
    out_w: int
    og: int                 # output groups
    kernel_h: int
    stride_h: int
    pad_t: int
    in_h: int
    in_w: int
    in_groups: int          # input words per pixel a tile reads (conv: all; depthwise: per output group ×)
    taps: int               # weight words per output group (0: no weights)
    depthwise: bool
    inputs: int = 1         # tensors read (an add: 2)

    @classmethod
    def of(cls, d: dict) -> "Geometry":
        conv = d["op"] == Op.CONV
        return cls(d["out_h"], d["out_w"], d["og_count"], d["kernel_h"], d["stride_h"], d["pad_t"], d["in_h"],
                   d["in_w"], d["g_count"] if conv else 1, d["taps"] if conv else 0, not conv,
                   2 if d["op"] == Op.ADD else 1)


def band_input_rows(oy0: int, oy1: int, g: Geometry) -> tuple[int, int]:
    """Input rows ``[iy0, iy1)`` output rows ``[oy0, oy1)`` read: their windows, clipped to the map."""
    lo = oy0 * g.stride_h - g.pad_t
    hi = (oy1 - 1) * g.stride_h - g.pad_t + g.kernel_h
    return max(lo, 0), min(hi, g.in_h)


def bands(out_h: int, height: int) -> list[tuple[int, int]]:
    return [(y, min(y + height, out_h)) for y in range(0, out_h, height)]


def chunks(og: int, size: int) -> list[tuple[int, int]]:
    return [(g, min(g + size, og)) for g in range(0, og, size)]


def _row_words(g: Geometry, chunk: int) -> int:
    """Input words per input row one tile holds."""
    return g.in_w * (g.in_groups if not g.depthwise else chunk * g.inputs)


def fits(g: Geometry, height: int, chunk: int, budget: BufferBudget, *, input_resident=False,
         output_resident=False, out_halo=0) -> bool:
    """Band ``height`` and ``chunk`` fit the buffers."""
    if g.taps and chunk * g.taps > budget.weight_words:
        return False
    if not input_resident:
        rows = max(b - a for a, b in (band_input_rows(y0, y1, g) for y0, y1 in bands(g.out_h, height)))
        if rows * _row_words(g, chunk) > budget.input_words:
            return False
    if not output_resident and (height + out_halo) * g.out_w * chunk > budget.output_words:
        return False
    return True


def traffic(g: Geometry, height: int, chunk: int, order: str, *, vector: int, weight_word_bytes: int,
            quant_word_bytes: int = 0, input_resident=False, write_bytes: int | None = None) -> tuple[int, int, int]:
    """(weight bytes, map bytes read, map bytes written) of one layer tiled so."""
    bs, n_c = bands(g.out_h, height), -(-g.og // chunk)
    rows = sum(b - a for a, b in (band_input_rows(y0, y1, g) for y0, y1 in bs))
    per_row = g.in_w * (g.in_groups if not g.depthwise else g.og * g.inputs) * vector
    maps = 0 if input_resident else rows * per_row
    weights = g.og * (g.taps * weight_word_bytes + quant_word_bytes) if g.taps else 0
    if g.taps and order == "weights" and len(bs) > 1:
        maps *= n_c
    if g.taps and order == "input" and n_c > 1:
        weights *= len(bs)
    out = g.out_h * g.out_w * g.og * vector if write_bytes is None else write_bytes
    return weights, maps, out


def transfer_runs(g: Geometry, height: int, chunk: int, order: str) -> int:
    """DMA runs (contiguous pieces) of one layer tiled so: a band of whole pixels is one run per row, a chunk of
    a pixel's groups one run per pixel — what makes a tiling slow on a bus beyond its bytes."""
    bs, n_c = bands(g.out_h, height), -(-g.og // chunk)
    rows = sum(b - a for a, b in (band_input_rows(y0, y1, g) for y0, y1 in bs))
    split = chunk < g.og
    loads = rows * g.inputs * (g.in_w if g.depthwise and split else 1)
    if not g.depthwise and order == "weights" and len(bs) > 1:
        loads *= n_c
    stores = g.out_h * n_c * (g.out_w if split else 1)
    return loads + stores + (n_c * (len(bs) if order == "input" else 1) if g.taps else 0)


def choose(g: Geometry, budget: BufferBudget, **kw) -> tuple[int, int, str, tuple[int, int, int]]:
    """The (band height, chunk, order, traffic) with the fewest bytes (ties: the smallest ``tie(height, chunk,
    order)`` if given — the DRAM model passes the time nothing overlaps —, then fewer tiles, taller bands).
    For a band height the largest chunk that fits is best (traffic never grows with the chunk).
    ``run_bytes`` / ``tile_bytes``: what a DMA run (:func:`transfer_runs`) and a tile cost, in bytes of traffic
    (0: bytes alone)."""
    tie = kw.pop("tie", None)
    run_bytes, tile_bytes = kw.pop("run_bytes", 0), kw.pop("tile_bytes", 0)
    max_chunk = kw.pop("max_chunk", None) or g.og
    fit_kw = {k: kw.pop(k) for k in ("input_resident", "output_resident", "out_halo") if k in kw}
    t_kw = {**kw, "input_resident": fit_kw.get("input_resident", False)}
    best = None
    for height in range(1, g.out_h + 1):
        lo, hi = 0, min(g.og, max_chunk)
        while lo < hi:                      # the largest chunk that fits (fitting is monotone in the chunk)
            mid = (lo + hi + 1) // 2
            if fits(g, height, mid, budget, **fit_kw):
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            continue
        for order in (("weights", "input") if g.taps else ("weights",)):
            t = traffic(g, height, lo, order, **t_kw)
            tiles = -(-g.out_h // height) * -(-g.og // lo)
            cost = sum(t) + (run_bytes * transfer_runs(g, height, lo, order) if run_bytes else 0) + tile_bytes * tiles
            key = (cost, tie(height, lo, order) if tie else 0, tiles, -height)
            if best is None or key < best[0]:
                best = (key, height, lo, order, t)
    if best is None:
        raise FireforgeError(f"no tiling fits the buffers {budget} (one output row of one group: "
                             f"{g.taps} weight words, input rows of {_row_words(g, 1)} words)")
    return best[1], best[2], best[3], best[4]


@dataclass
class LayerTiling:
    name: str
    kind: str
    geometry: Geometry
    height: int = 0                 # output rows per band (0: no pass of its own, fused)
    chunk: int = 0                  # output groups per chunk
    order: str = "-"
    weight_bytes: int = 0
    read_bytes: int = 0             # maps read
    write_bytes: int = 0            # maps written
    fused_into: str | None = None   # a pool / GAP done in its producer's output path
    fuses: list[str] = field(default_factory=list)
    input_on_chip: bool = False
    output_on_chip: bool = False

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.read_bytes + self.write_bytes

    def tiles(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """(band, chunk) pairs in execution order."""
        if not self.height:
            return []
        bs, cs = bands(self.geometry.out_h, self.height), chunks(self.geometry.og, self.chunk)
        if self.order == "input":
            return [(b, c) for b in bs for c in cs]
        return [(b, c) for c in cs for b in bs]


def _fusable(program: Program, layer, readers: dict, writers: dict) -> bool:
    """A pool / GAP whose input only it reads, written by convs or adds (not the program input)."""
    src = layer.inputs[0]
    return (src != program.input and src != program.output and readers[src] == [layer]
            and all(isinstance(w, (ConvLayer, AddLayer)) for w in writers.get(src, [])))


def plan_tiles(program: Program, descriptors: list[dict], config: EngineConfig, budget: BufferBudget,
               options: TilingOptions = TilingOptions(), tie=None, max_chunk: int | None = None,
               run_bytes: int = 0, tile_bytes: int = 0) -> list[LayerTiling]:
    """Every layer's tiling (program order; ``descriptors``: the schedule's, one per layer; ``max_chunk``: the
    most output groups a chunk may have, e.g. the requant buffer's words)."""
    v = config.vector
    wbytes, qbytes = config.weight_word_bits // 8, config.quant_word_bits // 8
    readers: dict[str, list] = {}
    writers: dict[str, list] = {}
    for l in program.layers:
        for x in set(l.inputs):
            readers.setdefault(x, []).append(l)
        writers.setdefault(l.output, []).append(l)
    geo = {l.name: Geometry.of(d) for l, d in zip(program.layers, descriptors)}
    plans = {l.name: LayerTiling(l.name, l.kind, geo[l.name]) for l in program.layers}
    # fusion: a pool's / GAP's producers write its (pooled) words; the pool has no pass
    halo: dict[str, int] = {}
    written: dict[str, int] = {}
    if options.fuse_pools:
        for l in program.layers:
            if isinstance(l, (MaxPoolLayer, GlobalAvgPoolLayer)) and _fusable(program, l, readers, writers):
                pg = geo[l.name]
                plans[l.name].fused_into = ", ".join(w.name for w in writers[l.inputs[0]])
                for w in writers[l.inputs[0]]:
                    plans[w.name].fuses.append(l.name)
                    written[w.name] = pg.out_h * pg.out_w * geo[w.name].og * v
                    if isinstance(l, MaxPoolLayer):
                        halo[w.name] = max(0, l.kernel[0] - l.stride[0])
    # Fire squeezes on chip: the output buffer holds the whole squeeze output; the expands read it there and
    # write their bands through the input buffer (the buffers swap roles)
    swapped = set()
    if options.squeeze_on_chip:
        for l in program.layers:
            rs = readers.get(l.output, [])
            g = geo[l.name]
            if (isinstance(l, ConvLayer) and "squeeze" in l.name and l.output != program.output and rs
                    and all(isinstance(r, ConvLayer) and r.unit == l.unit for r in rs)
                    and len(writers[l.output]) == 1 and g.out_h * g.out_w * g.og <= budget.output_words):
                plans[l.name].output_on_chip = True
                written[l.name] = 0
                for r in rs:
                    plans[r.name].input_on_chip = True
                    swapped.add(r.name)
    for l in program.layers:
        p = plans[l.name]
        if p.fused_into:
            continue
        b = budget
        g = p.geometry
        p.write_bytes = written.get(l.name, g.out_h * g.out_w * g.og * v)     # the tie-break sees it
        if l.name in swapped:
            b = BufferBudget(budget.output_words, budget.weight_words, budget.input_words)
        p.height, p.chunk, p.order, (p.weight_bytes, p.read_bytes, p.write_bytes) = choose(
            p.geometry, b, vector=v, weight_word_bytes=wbytes, quant_word_bytes=qbytes,
            input_resident=p.input_on_chip, output_resident=p.output_on_chip, out_halo=halo.get(l.name, 0),
            write_bytes=written.get(l.name), max_chunk=max_chunk, run_bytes=run_bytes, tile_bytes=tile_bytes,
            tie=(lambda h, c, o, _l=l, _p=p: tie(_l, _p, h, c, o)) if tie else None)
    return [plans[l.name] for l in program.layers]
