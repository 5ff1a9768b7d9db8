"""DRAM mode's tile loop: a layer, or a chain of layers that pass their data through the buffer, as loads, tiles
and stores (:mod:`fireforge.sw.dram_program` builds the whole stream with it, :mod:`fireforge.sw.dram_chains`
prices the choices with it).

The buffers are split in halves and tiles alternate between them (:func:`buffer_halves`): ACT = input half 0 |
input half 1 | output half 0 | output half 1, WEIGHTS and QUANT two halves each. A tile's input band and
weights are loaded only when no half already holds them.

A :class:`Chain` runs band by band: a Fire's squeeze computes the rows its expands need into input half 1 (its
own input in half 0), the writers of a tensor compute their rows reading them there (or loading their own), a
max pool in their output path (the engine's pool stage) pools them on the way out, and one store per band
takes the band out. A GAP chain runs its conv in output-group chunks, each averaged from the output half.
"""

from __future__ import annotations

from dataclasses import dataclass

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Buffer
from fireforge.core.program import AddLayer, ConvLayer, Program
from fireforge.sw.dram_emit import Emitter, tile_descriptor, word_bytes
from fireforge.sw.schedule import Schedule
from fireforge.sw.tiling import band_input_rows, bands, chunks

__all__ = ["Builder", "Chain", "buffer_halves", "pool_fields"]


def buffer_halves(config: EngineConfig) -> dict[str, list[int]]:
    """First words of the halves of each buffer (see the module docstring)."""
    q = config.act_depth // 4
    return {"in": [0, q], "out": [2 * q, 3 * q], "weights": [0, config.weight_depth // 2],
            "quant": [0, config.quant_depth // 2]}


@dataclass
class Chain:
    """Layers that run band by band through the buffer: ``writers`` (consecutive layers writing one tensor),
    a max ``pool`` in their output path, the ``squeeze`` conv whose output they read (computed per band, never
    stored), or a ``gap`` averaging the one writer's output chunk by chunk. ``height``: output rows per band
    (pooled rows with a pool); ``chunk``: a GAP chain's output groups per chunk."""
    writers: list
    height: int = 0
    chunk: int = 0
    pool: object = None
    squeeze: object = None
    gap: object = None

    @property
    def layers(self) -> list:
        return [x for x in (self.squeeze, *self.writers, self.pool, self.gap) if x is not None]


def pool_fields(pool, band: tuple[int, int], rows: tuple[int, int], out_w: int) -> dict:
    """The pool stage's fields for a writer tile computing input rows ``rows`` of pooled rows ``band``: the
    band's windows start ``pool_pad_t`` rows above the tile's first row (the pool's own pad in the first band)."""
    (py0, py1), (r0, _) = band, rows
    return {"pool_en": 1, "pool_k": pool.kernel[0], "pool_s": pool.stride[0],
            "pool_pad_t": r0 - (py0 * pool.stride[0] - pool.pads[0]), "pool_pad_l": pool.pads[1],
            "pool_out_h": py1 - py0, "pool_out_w": out_w}


class Builder:
    """The tile loop: loads (unless a half already holds them), the tile, its store."""

    def __init__(self, program: Program, sched: Schedule, config: EngineConfig, em: Emitter, *,
                 descriptors: dict, tilings: dict, wide: set[str] = frozenset()):
        self.program, self.sched, self.config, self.em = program, sched, config, em
        self.plan, self.v = sched.plan, config.vector
        self.descriptors, self.tilings = descriptors, tilings
        self.halves = buffer_halves(config)
        self.held = {"in": [None, None], "weights": [None, None]}
        self.in_half = self.w_half = self.out_half = 1
        self.index = {l.name: i for i, l in enumerate(program.layers)}
        #: layers run as one band whose input fills both input halves (sw.dram_program._widen)
        self.wide = set(wide)
        self.wide_held = False              # the band in input half 0 spans both halves

    def _inputs(self, layer, rows, gi0, gi1, half=None) -> tuple[int, int, int]:
        """Load input rows ``rows`` × groups ``[gi0, gi1)`` of the layer's input(s) into an input half (unless
        one holds them; a widened layer: across both halves; ``half``: that one); returns (address, words per
        input, inputs)."""
        em, plan, v, i = self.em, self.plan, self.v, self.index[layer.name]
        srcs = [plan.layouts[x] for x in ([layer.input_a, layer.input_b] if isinstance(layer, AddLayer)
                                          else [layer.inputs[0]])]
        (r0, r1), g_all, w_in = rows, srcs[0].groups, srcs[0].width
        gin = gi1 - gi0
        words = (r1 - r0) * w_in * gin
        key = (tuple(x.name for x in srcs), r0, r1, gi0, gi1)
        if key in self.held["in"] and half in (None, self.held["in"].index(key)):
            self.in_half = self.held["in"].index(key)
        else:
            wide = layer.name in self.wide
            self.in_half = half if half is not None else 0 if wide else 1 - self.in_half
            if self.wide_held and not wide:     # half 1's words belong to the wide band in half 0 as well
                self.held["in"][0] = None
            self.held["in"][self.in_half] = key
            if wide:
                self.held["in"][1] = None
            self.wide_held = wide
            for s, src in enumerate(srcs):
                first = em.map.act + (src.addr + r0 * w_in * g_all + gi0) * v
                to = self.halves["in"][self.in_half] + s * words
                if gin == g_all:
                    em.load(Buffer.ACT, first, w_in * g_all, r1 - r0, w_in * g_all * v, to, i)
                else:
                    em.load(Buffer.ACT, first, gin, (r1 - r0) * w_in, g_all * v, to, i)
        return self.halves["in"][self.in_half], words, len(srcs)

    def _weights(self, layer, d, og0, og1) -> tuple[int, int]:
        em, i, taps = self.em, self.index[layer.name], d["taps"]
        wb, qb = word_bytes(self.config, Buffer.WEIGHTS), word_bytes(self.config, Buffer.QUANT)
        key = (layer.name, og0, og1)
        if key in self.held["weights"]:
            self.w_half = self.held["weights"].index(key)
        else:
            self.w_half = 1 - self.w_half
            self.held["weights"][self.w_half] = key
            em.load(Buffer.WEIGHTS, em.map.weights + (d["weight_addr"] + og0 * taps) * wb, (og1 - og0) * taps, 1,
                    (og1 - og0) * taps * wb, self.halves["weights"][self.w_half], i)
            em.load(Buffer.QUANT, em.map.quant + (d["quant_addr"] + og0) * qb, og1 - og0, 1, (og1 - og0) * qb,
                    self.halves["quant"][self.w_half], i)
        return self.halves["weights"][self.w_half], self.halves["quant"][self.w_half]

    def tile(self, layer, band, chunk, *, out_addr, out_pitch=None, source=None, pool=None, half=None) -> None:
        """One tile of ``layer``: its loads (``source``: (address, groups) of its input's rows already in ACT,
        nothing loaded; ``half``: the input half to load into), then the tile computing ``band`` × ``chunk``
        into ``out_addr`` (``pool``: the pool stage's fields, its words pooled on the way out)."""
        d, geometry = self.descriptors[layer.name], self.tilings[layer.name].geometry
        (oy0, oy1), (og0, og1) = band, chunk
        self.em.traffic[self.index[layer.name]].tiles += 1
        rows = band_input_rows(oy0, oy1, geometry)
        conv = isinstance(layer, ConvLayer)
        g_all = self.plan.layouts[layer.inputs[0]].groups
        gi0, gi1 = (0, g_all) if conv else (og0, og1)
        if source is None:
            in_addr, in_words, n_in = self._inputs(layer, rows, gi0, gi1, half)
            gin = gi1 - gi0
        else:
            (in_addr, gin), n_in = source, 1
            in_words = (rows[1] - rows[0]) * d["in_w"] * gin
        uses = {Buffer.ACT: [(in_addr, in_addr + in_words * n_in)]}
        w_addr = q_addr = 0
        if conv:
            w_addr, q_addr = self._weights(layer, d, og0, og1)
            uses[Buffer.WEIGHTS] = [(w_addr, w_addr + (og1 - og0) * d["taps"])]
            uses[Buffer.QUANT] = [(q_addr, q_addr + og1 - og0)]
        pitch = og1 - og0 if out_pitch is None else out_pitch
        pixels = pool["pool_out_h"] * pool["pool_out_w"] if pool else (oy1 - oy0) * d["out_w"]
        writes = (out_addr, out_addr + (pixels - 1) * pitch + og1 - og0)
        uses[Buffer.ACT].append(writes)
        desc = tile_descriptor(d, rows, band, chunk, in_groups=gin, in_addr=in_addr,
                               in_b_addr=in_addr + in_words if n_in == 2 else None, out_addr=out_addr,
                               weight_addr=w_addr, quant_addr=q_addr, out_pitch=out_pitch)
        self.em.compute({**desc, **(pool or {})}, uses, writes)

    def store(self, layer, band, chunk, out_addr, last: bool, *, tensor_offset: int | None = None) -> None:
        """The words of ``band`` × ``chunk`` at ``out_addr`` (pitch the chunk) to ``layer``'s output in DRAM
        (``tensor_offset``: the chunk's first group in the tensor, else the layer's own offset)."""
        dst, v = self.plan.layouts[layer.output], self.v
        (oy0, oy1), (og0, og1) = band, chunk
        n, pitch = og1 - og0, dst.groups
        offset = self.descriptors[layer.name]["out_addr"] - dst.addr if tensor_offset is None else tensor_offset
        first = self.em.map.act + (dst.addr + oy0 * dst.width * pitch + offset + og0) * v
        i = self.index[layer.name]
        if n == pitch:
            self.em.store(first, dst.width * pitch, oy1 - oy0, dst.width * pitch * v, out_addr, i, last)
        else:
            self.em.store(first, n, (oy1 - oy0) * dst.width, pitch * v, out_addr, i, last)

    def _out(self) -> int:
        self.out_half = 1 - self.out_half
        return self.halves["out"][self.out_half]

    def layer(self, layer) -> None:
        tiles = self.tilings[layer.name].tiles()
        for k, (band, chunk) in enumerate(tiles):
            out_addr = self._out()
            self.tile(layer, band, chunk, out_addr=out_addr)
            self.store(layer, band, chunk, out_addr, k == len(tiles) - 1)

    def chain(self, c: Chain) -> None:
        if c.gap is not None:
            return self._gap_chain(c)
        t = self.plan.layouts[c.writers[0].output]
        gf = self.tilings[(c.pool or c.writers[0]).name].geometry
        final = bands(gf.out_h, c.height)
        for k, band in enumerate(final):
            rows = band_input_rows(*band, gf) if c.pool else band       # of the writers' tensor
            sources = self._squeeze(c, rows) if c.squeeze is not None else {}
            fields = pool_fields(c.pool, band, rows, gf.out_w) if c.pool is not None else None
            out_addr = self._out()
            for w in c.writers:
                goff = self.descriptors[w.name]["out_addr"] - t.addr
                for og0, og1 in chunks(self.tilings[w.name].geometry.og, self.tilings[w.name].chunk):
                    self.tile(w, rows, (og0, og1), out_addr=out_addr + goff + og0, out_pitch=t.groups,
                              pool=fields, source=sources.get(w.name))
            last = k == len(final) - 1
            if c.pool is not None:
                self.store(c.pool, band, (0, t.groups), out_addr, last)
            else:       # whole pixels of the writers' tensor, as the last writer's store
                self.store(c.writers[-1], rows, (0, t.groups), out_addr, last, tensor_offset=0)
        for w in c.writers:
            if c.pool is not None:
                self.em.traffic[self.index[w.name]].fused_into = c.pool.name
            elif w is not c.writers[-1]:
                self.em.traffic[self.index[w.name]].stored_by = c.writers[-1].name
        if c.squeeze is not None:
            self.em.traffic[self.index[c.squeeze.name]].fused_into = c.writers[0].name

    def _squeeze(self, c: Chain, rows) -> dict:
        """The squeeze's rows the writers' ``rows`` need, from its input in input half 0 into input half 1;
        returns each writer's source (address, groups) there."""
        s = self.plan.layouts[c.squeeze.output]
        need = {w.name: band_input_rows(*rows, self.tilings[w.name].geometry) for w in c.writers}
        srows = (min(a for a, _ in need.values()), max(b for _, b in need.values()))
        base = self.halves["in"][1]
        ts = self.tilings[c.squeeze.name]
        for og0, og1 in chunks(ts.geometry.og, ts.chunk):
            self.tile(c.squeeze, srows, (og0, og1), out_addr=base + og0, out_pitch=s.groups, half=0)
        self.held["in"][1] = None
        return {n: (base + (a - srows[0]) * s.width * s.groups, s.groups) for n, (a, _) in need.items()}

    def _gap_chain(self, c: Chain) -> None:
        """The writer in output-group chunks over its whole map, each chunk averaged from the output half."""
        (w,), gap = c.writers, c.gap
        tw, d = self.tilings[w.name], self.descriptors[w.name]
        pixels = d["out_h"] * d["out_w"]
        parts = chunks(tw.geometry.og, c.chunk)
        for k, chunk in enumerate(parts):
            n = chunk[1] - chunk[0]
            out_addr = self._out()
            self.tile(w, (0, d["out_h"]), chunk, out_addr=out_addr)
            self.tile(gap, (0, 1), chunk, out_addr=out_addr + pixels * n, source=(out_addr, n))
            self.store(gap, (0, 1), chunk, out_addr + pixels * n, k == len(parts) - 1)
        self.em.traffic[self.index[w.name]].fused_into = gap.name
