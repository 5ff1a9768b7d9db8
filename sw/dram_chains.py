"""Which layers DRAM mode runs as chains through the buffer (:class:`fireforge.sw.dram_builder.Chain`), and in
bands of what height.

Three kinds, each keeping a tensor out of DRAM:

* a max pool the engine's pool stage can compute (:func:`fireforge.core.fusion.pool_writers`, and the stage's
  geometry in every band) in its writers' output path: their tensor is never stored;
* a Fire's squeeze whose output only its expands read, computed band by band where they read it;
* a GAP whose input only it reads, written by one conv that runs as one band: averaged chunk by chunk.

A chain must fit the buffers in every band; among the band heights that do, and against running the layers
one by one, the choice is the one that costs least: each candidate is emitted on a scratch builder and
charged its bytes, :data:`RUN_BYTES` per DMA run and :data:`TILE_BYTES` per tile (the tiling's own cost).
"""

from __future__ import annotations

from fireforge.core.fusion import fusable, pool_writers
from fireforge.core.descriptor import Op
from fireforge.core.program import ConvLayer, GlobalAvgPoolLayer, Program
from fireforge.sw.dram_builder import Builder, Chain, buffer_halves, pool_fields
from fireforge.sw.dram_emit import Emitter, LayerTraffic
from fireforge.sw.tiling import band_input_rows, bands

__all__ = ["plan_chains", "RUN_BYTES", "TILE_BYTES"]

#: what a choice is charged per DMA run and per tile, in bytes of traffic: a run costs ~4 bus cycles beyond its
#: bytes (sw.dram_perf.BUSES), ~8 bytes at 1.92 B/cycle; a tile the core's restart (~30 cycles)
RUN_BYTES, TILE_BYTES = 8, 60


class _Planner:
    def __init__(self, program: Program, sched, config, tilings: dict, descriptors: dict, dmap, wide: set):
        self.program, self.sched, self.config, self.dmap = program, sched, config, dmap
        self.tilings, self.descriptors, self.wide = tilings, descriptors, wide
        self.plan, self.q = sched.plan, buffer_halves(config)["in"][1]
        self.layers = {l.name: l for l in program.layers}
        self.index = {l.name: i for i, l in enumerate(program.layers)}
        self.readers: dict[str, list] = {}
        self.writers: dict[str, list] = {}
        for l in program.layers:
            for x in set(l.inputs):
                self.readers.setdefault(x, []).append(l)
            self.writers.setdefault(l.output, []).append(l)

    def cost(self, items: list) -> int:
        """Bytes moved + runs and tiles charged, for ``items`` (chains and layers) on a scratch builder."""
        traffic = [LayerTraffic(l.name) for l in self.program.layers]
        em = Emitter(self.config, self.dmap, traffic)
        banded = {w.name for c in items if isinstance(c, Chain) and c.gap is None for w in c.writers}
        b = Builder(self.program, self.sched, self.config, em, descriptors=self.descriptors, tilings=self.tilings,
                    wide=self.wide - banded)
        for item in items:
            b.chain(item) if isinstance(item, Chain) else b.layer(item)
        em.flush()
        runs = sum(c["runs"] for c in em.commands if c["op"] in (Op.LOAD, Op.STORE))
        tiles = sum(c["op"] not in (Op.LOAD, Op.STORE) for c in em.commands)
        return sum(t.weight_bytes + t.read_bytes + t.write_bytes for t in traffic) + RUN_BYTES * runs + TILE_BYTES * tiles

    def _geometry(self, layer):
        return self.tilings[layer.name].geometry

    def fits(self, c: Chain, h: int) -> bool:
        """Every band of ``h`` rows fits: the squeeze's input and output, or every writer's input, in an input
        half; the band's words in an output half; the pool stage's geometry."""
        t, q = self.plan.layouts[c.writers[0].output], self.q
        gf = self._geometry(c.pool or c.writers[0])
        for band in bands(gf.out_h, h):
            rows = band_input_rows(*band, gf) if c.pool else band
            pixels = (band[1] - band[0]) * gf.out_w if c.pool else (rows[1] - rows[0]) * t.width
            if pixels * t.groups > q:
                return False
            if c.pool is not None:
                f = pool_fields(c.pool, band, rows, gf.out_w)
                if fusable(rows[1] - rows[0], t.width, f["pool_out_h"], gf.out_w, c.pool.kernel, c.pool.stride,
                           (f["pool_pad_t"], c.pool.pads[1])):
                    return False
            need = [band_input_rows(*rows, self._geometry(w)) for w in c.writers]
            if c.squeeze is not None:
                s, gs = self.plan.layouts[c.squeeze.output], self._geometry(c.squeeze)
                srows = (min(a for a, _ in need), max(b for _, b in need))
                x0, x1 = band_input_rows(*srows, gs)
                if (srows[1] - srows[0]) * s.width * s.groups > q or (x1 - x0) * gs.in_w * gs.in_groups > q:
                    return False
            else:
                for w, (a, b) in zip(c.writers, need):
                    g, chunk = self._geometry(w), self.tilings[w.name].chunk
                    if (b - a) * g.in_w * (g.in_groups if not g.depthwise else chunk * g.inputs) > q:
                        return False
        return True

    def best(self, c: Chain) -> tuple[int, Chain | None]:
        """The cheapest band height for ``c`` that fits (cost, chain), or (0, None)."""
        gf = self._geometry(c.pool or c.writers[0])
        found = (0, None)
        for h in sorted({-(-gf.out_h // n) for n in range(1, gf.out_h + 1)}, reverse=True):
            if self.fits(c, h):
                cand = Chain(c.writers, h, pool=c.pool, squeeze=c.squeeze)
                cost = self.cost([cand])
                if found[1] is None or cost < found[0]:
                    found = (cost, cand)
        return found

    def pools(self) -> dict[str, list]:
        groups = {name: lay.groups for name, lay in self.plan.layouts.items()}
        return {p: [self.layers[w] for w in ws]
                for p, ws in pool_writers(self.program, self.plan.group_offsets, self.plan.out_groups, groups).items()}

    def squeeze_of(self, writers: list):
        """The conv right before ``writers`` whose output only they read (and that only it writes)."""
        i = self.index[writers[0].name]
        s = self.program.layers[i - 1] if i else None
        if (s is None or not isinstance(s, ConvLayer) or s.lut is not None or s.output == self.program.output
                or self.writers[s.output] != [s] or sorted(self.readers[s.output], key=lambda l: self.index[l.name])
                != writers or not all(isinstance(w, ConvLayer) and w.inputs[0] == s.output for w in writers)):
            return None
        return s

    def fire_writers(self) -> list[list]:
        """Groups of consecutive convs that alone write one tensor, right after a squeeze they alone read."""
        out = []
        for x, ws in self.writers.items():
            ws = sorted(ws, key=lambda l: self.index[l.name])
            idx = [self.index[w.name] for w in ws]
            if x != self.program.output and idx == list(range(idx[0], idx[0] + len(ws))) and self.squeeze_of(ws):
                out.append(ws)
        return out

    def gap(self, layer) -> Chain | None:
        (w,) = self.writers[layer.input] if len(self.writers[layer.input]) == 1 else (None,)
        tw = self.tilings[w.name] if w is not None else None
        if (tw is None or not isinstance(w, ConvLayer) or self.readers[layer.input] != [layer]
                or self.index[w.name] != self.index[layer.name] - 1 or layer.input == self.program.output
                or tw.height != tw.geometry.out_h):
            return None
        pixels = tw.geometry.out_h * tw.geometry.out_w
        chunk = min(tw.chunk, self.q // (pixels + 1))
        return Chain([w], chunk=chunk, gap=layer) if chunk else None


def plan_chains(program: Program, sched, config, tilings: list, dmap, wide: set) -> dict[str, Chain]:
    """The chains to run, by the name of their first layer (tilings: per layer in program order; ``wide``:
    the widened layers, see sw.dram_program)."""
    p = _Planner(program, sched, config, {l.name: t for l, t in zip(program.layers, tilings)},
                 {l.name: d for l, d in zip(program.layers, sched.descriptors)}, dmap, wide)
    chains: dict[str, Chain] = {}
    pools = p.pools()
    by_writers = {tuple(w.name for w in ws): pool for pool, ws in pools.items()}
    done = set()
    for ws in p.fire_writers():
        s = p.squeeze_of(ws)
        pool = p.layers.get(by_writers.get(tuple(w.name for w in ws)))
        plain_cost, plain = p.best(Chain(ws, pool=pool)) if pool is not None else (None, None)
        base = p.cost([s, plain] if plain is not None else [s, *ws, *([pool] if pool else [])])
        cost, chain = p.best(Chain(ws, pool=pool, squeeze=s))
        pick = chain if chain is not None and cost < base else plain
        if pick is not None:
            chains[pick.layers[0].name] = pick
        done.add(pool.name if pool is not None else None)
    for name, ws in pools.items():
        if name in done:
            continue
        pool = p.layers[name]
        cost, chain = p.best(Chain(ws, pool=pool))
        if chain is not None and cost < p.cost([*ws, pool]):
            chains[ws[0].name] = chain
    for layer in program.layers:
        if isinstance(layer, GlobalAvgPoolLayer):
            c = p.gap(layer)
            if c is not None:
                chains[c.writers[0].name] = c
    return chains
