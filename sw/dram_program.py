"""DRAM mode: a scheduled program as the command stream the DRAM-mode engine runs (docs/dram.md).

Everything is in DRAM (:class:`DramMap`): weights and requant words (the resident images, word for word), the
command stream, and the activations, every tensor at its own words (``plan_memory(reuse=False)``). The engine
has three on-chip buffers — ACT (activation words), WEIGHTS, QUANT — and runs the commands in order; a
compute command only starts the engine, so the transfers after it overlap the tile it computes.

Every layer is cut into tiles (:mod:`fireforge.sw.tiling` chooses the band height, the output-group chunk and
the loop order that move the fewest bytes). A tile is the layer's own descriptor with its addresses moved into
the buffers (:func:`tile_descriptor`). The buffers are split in halves and tiles alternate between them:

* ACT = input half 0 | input half 1 | output half 0 | output half 1 (quarters of ``act_depth``);
* WEIGHTS and QUANT: two halves each (one chunk's weights and requant words per half).

A tile's input band and weights are loaded only when no half already holds them; a tile's STORE is emitted
after the *next* tile's compute, so it overlaps that compute. A transfer gets ``wait`` when it touches buffer
words the running tile uses, and a pending STORE is emitted before any LOAD whose DRAM bytes it overlaps
(read-after-write through DRAM: the next layer reading this one's output).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import COMMAND_BYTES, Buffer, Op, pack, pack_transfer
from fireforge.core.program import AddLayer, ConvLayer, MaxPoolLayer, Program
from fireforge.errors import FireforgeError
from fireforge.sw.dram_emit import Emitter, tile_descriptor, word_bytes
from fireforge.sw.schedule import Schedule
from fireforge.sw.tiling import (BufferBudget, LayerTiling, TilingOptions, band_input_rows, fits, plan_tiles, traffic,
                                 transfer_runs)

__all__ = ["DramMap", "DramProgram", "LayerTraffic", "build", "summary", "tile_descriptor", "buffer_halves", "word_bytes"]

#: what the tiling choice charges per DMA run and per tile, in bytes of traffic: a run costs ~4 bus cycles
#: beyond its bytes (sw.dram_perf.BUSES), ~8 bytes at 1.92 B/cycle; a tile the core's restart (~30 cycles)
RUN_BYTES, TILE_BYTES = 8, 60
#: DRAM regions start on this many bytes (a burst boundary for every supported port)
ALIGN = 4096


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class DramMap:
    """Byte addresses of the regions in DRAM (``act``: word ``w`` of the activation plan is at ``act + w·vector``)."""
    weights: int
    quant: int
    act: int
    commands: int
    weight_bytes: int
    quant_bytes: int
    act_bytes: int
    command_count: int

    @property
    def end(self) -> int:
        return self.commands + self.command_count * COMMAND_BYTES

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class LayerTraffic:
    name: str
    tiles: int = 0
    weight_bytes: int = 0      # weights and requant words read
    read_bytes: int = 0        # maps read
    write_bytes: int = 0       # maps written
    height: int = 0
    chunk: int = 0
    order: str = "-"
    fused_into: str | None = None    # a writer of a max pool's input, computed into the buffer the pool reads

    @property
    def dram_bytes_read(self) -> int:
        return self.weight_bytes + self.read_bytes

    def to_dict(self) -> dict:
        return {**self.__dict__, "dram_bytes_read": self.dram_bytes_read}


@dataclass
class DramProgram:
    map: DramMap
    commands: list[dict]             # command fields in stream order, the final END included
    layers: list[LayerTraffic]

    @property
    def bytes_read(self) -> int:
        """DRAM bytes the run reads: every LOAD, and the command stream itself."""
        return sum(l.dram_bytes_read for l in self.layers) + self.map.command_count * COMMAND_BYTES

    @property
    def bytes_written(self) -> int:
        return sum(l.write_bytes for l in self.layers)

    def command_bytes(self) -> bytes:
        out = bytearray()
        for i, c in enumerate(self.commands):
            word = pack_transfer(c) if c["op"] in (Op.LOAD, Op.STORE) else pack(c, layer=f"command {i}")
            out += word.to_bytes(COMMAND_BYTES, "little")
        return bytes(out)


def buffer_halves(config: EngineConfig) -> dict[str, list[int]]:
    """First words of the halves of each buffer (see the module docstring)."""
    q = config.act_depth // 4
    return {"in": [0, q], "out": [2 * q, 3 * q], "weights": [0, config.weight_depth // 2],
            "quant": [0, config.quant_depth // 2]}


def _layer_tiles(program: Program, sched: Schedule, config: EngineConfig) -> list[LayerTiling]:
    halves = buffer_halves(config)
    q = halves["in"][1]
    budget = BufferBudget(input_words=q, weight_words=halves["weights"][1], output_words=q)
    try:
        return plan_tiles(program, sched.descriptors, config, budget,
                          TilingOptions(fuse_pools=False, squeeze_on_chip=False), max_chunk=halves["quant"][1],
                          run_bytes=RUN_BYTES, tile_bytes=TILE_BYTES)
    except FireforgeError as e:
        raise FireforgeError(f"DRAM mode: {e}; the engine's buffers (act {config.act_depth}, weights "
                             f"{config.weight_depth}, quant {config.quant_depth} words) are too small") from None


def _widen(config: EngineConfig, tilings: list[LayerTiling]) -> set[str]:
    """Layers better run as one band whose input fills both input halves (it never changes, so it needs no
    double buffering): a conv cut into bands only because its input did not fit one half re-reads all its
    weights per band (v1.1's conv10 at 224: 0.5 MB). Their tilings are changed; returns their names."""
    halves = buffer_halves(config)
    q = halves["in"][1]
    wide_budget = BufferBudget(input_words=2 * q, weight_words=halves["weights"][1], output_words=q)
    kw = dict(vector=config.vector, weight_word_bytes=config.weight_word_bits // 8,
              quant_word_bytes=config.quant_word_bits // 8)

    def cost(g, height, chunk, order):
        tiles = -(-g.out_h // height) * -(-g.og // chunk)
        return (sum(traffic(g, height, chunk, order, **kw)) + RUN_BYTES * transfer_runs(g, height, chunk, order)
                + TILE_BYTES * tiles)
    wide = set()
    for t in tilings:
        g = t.geometry
        if not t.height or t.height >= g.out_h or not g.taps:
            continue
        chunk = max((c for c in range(1, min(g.og, halves["quant"][1]) + 1)
                     if fits(g, g.out_h, c, wide_budget)), default=0)
        if chunk and cost(g, g.out_h, chunk, "input") < cost(g, t.height, t.chunk, t.order):
            t.height, t.chunk, t.order = g.out_h, chunk, "input"
            t.weight_bytes, t.read_bytes, t.write_bytes = traffic(g, g.out_h, chunk, "input", **kw)
            wide.add(t.name)
    return wide


@dataclass
class _Fused:
    """A max pool done straight from the buffer: its input's writers (consecutive layers right before it)
    compute bands of that tensor into the middle of ACT, the pool reads them there, only pooled words are
    stored. ``height``: pooled rows per band."""
    writers: list
    pool: object
    height: int


def _fusable_pools(program: Program, plan, config: EngineConfig, tilings) -> dict[str, _Fused]:
    """Max pools whose input only they read, written by the convs / adds right before them, whose bands fit:
    by the index of their first writer."""
    halves = buffer_halves(config)
    mid_words, out_words = halves["out"][1] - halves["out"][0], (halves["out"][1] - halves["out"][0]) // 2
    readers: dict[str, list] = {}
    for l in program.layers:
        for x in set(l.inputs):
            readers.setdefault(x, []).append(l)
    fused, index = {}, {l.name: i for i, l in enumerate(program.layers)}
    for i, pool in enumerate(program.layers):
        if not isinstance(pool, MaxPoolLayer):
            continue
        t = pool.input
        writers = [l for l in program.layers if l.output == t]
        first = index[writers[0].name] if writers else i
        if (t in (program.input, program.output) or readers[t] != [pool]
                or not all(isinstance(w, (ConvLayer, AddLayer)) for w in writers)
                or [index[w.name] for w in writers] != list(range(first, i))):
            continue
        src, g = plan.layouts[t], tilings[i].geometry
        best = 0
        for h in range(1, g.out_h + 1):
            t_bands = [band_input_rows(y, min(y + h, g.out_h), g) for y in range(0, g.out_h, h)]
            need = [max(b - a for a, b in t_bands) * src.width * src.groups <= mid_words,
                    h * g.out_w * src.groups <= out_words]
            for w in writers:
                tw = tilings[index[w.name]]
                gw = tw.geometry
                rows = max(b - a for a, b in (band_input_rows(t0, t1, gw) for t0, t1 in t_bands))
                per_pixel = gw.in_groups if not gw.depthwise else tw.chunk * gw.inputs
                need.append(rows * gw.in_w * per_pixel <= halves["in"][1])
            if not all(need):
                break
            best = h
        if best:
            fused[writers[0].name] = _Fused(writers, pool, best)
    return fused


class _Builder:
    """The tile loop: loads (unless a half already holds them), the tile, its store."""

    def __init__(self, program: Program, sched: Schedule, config: EngineConfig, em: Emitter):
        self.program, self.sched, self.config, self.em = program, sched, config, em
        self.plan, self.v = sched.plan, config.vector
        self.halves = buffer_halves(config)
        self.held = {"in": [None, None], "weights": [None, None]}
        self.in_half = self.w_half = self.out_half = 1
        self.index = {l.name: i for i, l in enumerate(program.layers)}
        self.wide: set[str] = set()
        self.wide_held = False              # the band in input half 0 spans both halves

    def _inputs(self, layer, rows, gi0, gi1) -> tuple[int, int, int]:
        """Load input rows ``rows`` × groups ``[gi0, gi1)`` of the layer's input(s) into an input half (unless
        one holds them; a widened layer: across both halves); returns (address, words per input, inputs)."""
        em, plan, v, i = self.em, self.plan, self.v, self.index[layer.name]
        srcs = [plan.layouts[x] for x in ([layer.input_a, layer.input_b] if isinstance(layer, AddLayer)
                                          else [layer.inputs[0]])]
        (r0, r1), g_all, w_in = rows, srcs[0].groups, srcs[0].width
        gin = gi1 - gi0
        words = (r1 - r0) * w_in * gin
        key = (tuple(x.name for x in srcs), r0, r1, gi0, gi1)
        if key in self.held["in"]:
            self.in_half = self.held["in"].index(key)
        else:
            wide = layer.name in self.wide
            self.in_half = 0 if wide else 1 - self.in_half
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

    def tile(self, layer, d, geometry, band, chunk, *, out_addr, out_pitch=None, source=None) -> None:
        """One tile: its loads (``source``: (address, groups) of an input already in ACT, nothing loaded), then
        the tile computing ``band`` × ``chunk`` into ``out_addr``."""
        (oy0, oy1), (og0, og1) = band, chunk
        self.em.traffic[self.index[layer.name]].tiles += 1
        rows = band_input_rows(oy0, oy1, geometry)
        conv = isinstance(layer, ConvLayer)
        g_all = self.plan.layouts[layer.inputs[0]].groups
        gi0, gi1 = (0, g_all) if conv else (og0, og1)
        if source is None:
            in_addr, in_words, n_in = self._inputs(layer, rows, gi0, gi1)
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
        out_words = (oy1 - oy0) * d["out_w"] * pitch
        uses[Buffer.ACT].append((out_addr, out_addr + out_words))
        desc = tile_descriptor(d, rows, band, chunk, in_groups=gin, in_addr=in_addr,
                               in_b_addr=in_addr + in_words if n_in == 2 else None, out_addr=out_addr,
                               weight_addr=w_addr, quant_addr=q_addr, out_pitch=out_pitch)
        self.em.compute(desc, uses, (out_addr, out_addr + out_words))

    def store(self, layer, d, band, chunk, out_addr, last: bool) -> None:
        """The tile's output (``band`` × ``chunk``, pitch the chunk, at ``out_addr``) to its tensor in DRAM."""
        dst, v = self.plan.layouts[layer.output], self.v
        (oy0, oy1), (og0, og1) = band, chunk
        n, pitch = og1 - og0, dst.groups
        first = self.em.map.act + (dst.addr + oy0 * dst.width * pitch + (d["out_addr"] - dst.addr) + og0) * v
        i = self.index[layer.name]
        if n == pitch:
            self.em.store(first, dst.width * pitch, oy1 - oy0, dst.width * pitch * v, out_addr, i, last)
        else:
            self.em.store(first, n, (oy1 - oy0) * dst.width, pitch * v, out_addr, i, last)

    def layer(self, layer, d, tiling) -> None:
        tiles = tiling.tiles()
        for k, (band, chunk) in enumerate(tiles):
            self.out_half = 1 - self.out_half
            out_addr = self.halves["out"][self.out_half]
            self.tile(layer, d, tiling.geometry, band, chunk, out_addr=out_addr)
            self.store(layer, d, band, chunk, out_addr, k == len(tiles) - 1)

    def fused(self, f: _Fused, descriptors: dict, tilings: dict) -> None:
        """Per band of pooled rows: the writers' tiles of the rows it needs into the middle of ACT (whole
        pixels: every writer's groups at its offset), then the pool from there, then its store."""
        mid, out_q = self.halves["out"][0], self.halves["out"][1] - self.halves["out"][0]
        pool, dp, gp = f.pool, descriptors[f.pool.name], tilings[f.pool.name].geometry
        t = self.plan.layouts[pool.input]
        bands = [(y, min(y + f.height, gp.out_h)) for y in range(0, gp.out_h, f.height)]
        for k, band in enumerate(bands):
            r0, r1 = band_input_rows(*band, gp)
            for w in f.writers:
                dw, tw = descriptors[w.name], tilings[w.name]
                goff = dw["out_addr"] - t.addr
                for og0 in range(0, tw.geometry.og, tw.chunk):
                    og1 = min(og0 + tw.chunk, tw.geometry.og)
                    self.tile(w, dw, tw.geometry, (r0, r1), (og0, og1), out_addr=mid + goff + og0,
                              out_pitch=t.groups)
            self.out_half = 1 - self.out_half
            out_addr = mid + out_q + self.out_half * (out_q // 2)
            self.tile(pool, dp, gp, band, (0, t.groups), out_addr=out_addr, source=(mid, t.groups))
            self.store(pool, dp, band, (0, t.groups), out_addr, k == len(bands) - 1)
        for w in f.writers:
            self.em.traffic[self.index[w.name]].fused_into = pool.name


def build(program: Program, sched: Schedule, config: EngineConfig, *, base: int = 0,
          fuse_pools: bool = True) -> DramProgram:
    """The command stream of ``program`` scheduled for DRAM mode (``sched`` on ``config``, ``config.dram``), its
    regions from DRAM byte address ``base`` on (a multiple of 4 KB: several programs can share one DRAM);
    ``fuse_pools``: max pools read their input from the buffer where its writers computed it."""
    if base % ALIGN:
        raise ValueError(f"base must be a multiple of {ALIGN}")
    if not config.dram:
        raise ValueError("build() is for a DRAM-mode engine config")
    plan, v = sched.plan, config.vector
    wb, qb = word_bytes(config, Buffer.WEIGHTS), word_bytes(config, Buffer.QUANT)
    tilings = _layer_tiles(program, sched, config)
    wide = _widen(config, tilings)
    w_bytes, q_bytes, a_bytes = plan.weight_words * wb, plan.quant_words * qb, plan.act_words * v
    weights, quant = base, base + _align(w_bytes)
    act = _align(quant + q_bytes)
    commands = _align(act + a_bytes)
    traffic = [LayerTraffic(l.name, height=t.height, chunk=t.chunk, order=t.order)
               for l, t in zip(program.layers, tilings)]
    em = Emitter(config, DramMap(weights, quant, act, commands, w_bytes, q_bytes, a_bytes, 0), traffic)
    b = _Builder(program, sched, config, em)
    b.wide = wide
    fused = _fusable_pools(program, plan, config, tilings) if fuse_pools else {}
    descs = {l.name: d for l, d in zip(program.layers, sched.descriptors)}
    by_name = {l.name: t for l, t in zip(program.layers, tilings)}
    skip = set()
    for layer, d, tiling in zip(program.layers, sched.descriptors, tilings):
        if layer.name in skip:
            continue
        f = fused.get(layer.name)
        if f is not None:
            b.fused(f, descs, by_name)
            skip.update(w.name for w in f.writers)
            skip.add(f.pool.name)
            traffic[b.index[f.pool.name]].height = f.height
            continue
        b.layer(layer, d, tiling)
    em.end()
    dmap = DramMap(weights, quant, act, commands, w_bytes, q_bytes, a_bytes, len(em.commands))
    return DramProgram(dmap, em.commands, traffic)


def summary(dp: DramProgram) -> dict:
    """The manifest's ``dram`` entry: the map, the totals and every layer's tiling and traffic."""
    return {"map": dp.map.to_dict(), "bytes_read": dp.bytes_read, "bytes_written": dp.bytes_written,
            "layers": [l.to_dict() for l in dp.layers]}
