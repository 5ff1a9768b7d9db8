"""DRAM mode: a scheduled program as the command stream the DRAM-mode engine runs (docs/dram.md).

Everything is in DRAM (:class:`DramMap`): weights and requant words (the resident images, word for word), the
command stream, and the activations, every tensor at its own words (``plan_memory(reuse=False)``). The engine
has three on-chip buffers — ACT (activation words), WEIGHTS, QUANT — and runs the commands in order; a
compute command only starts the engine, so the transfers after it overlap the tile it computes.

Every layer is cut into tiles (:mod:`fireforge.sw.tiling` chooses the band height, the output-group chunk and
the loop order that move the fewest bytes). A tile is the layer's own descriptor with its addresses moved into
the buffers (:func:`tile_descriptor`); :mod:`fireforge.sw.dram_builder` emits the loads, tiles and stores into
buffer halves that alternate. Max pools, a Fire's squeeze and the GAP pass their data through the buffer where
that costs less (:mod:`fireforge.sw.dram_chains`).

A tile's STORE is emitted after the *next* tile's compute, so it overlaps that compute. A transfer gets
``wait`` when it touches buffer words the running tile uses, and a pending STORE is emitted before any LOAD
whose DRAM bytes it overlaps (read-after-write through DRAM: the next layer reading this one's output).
"""

from __future__ import annotations

from dataclasses import dataclass

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import COMMAND_BYTES, Buffer, Op, pack, pack_transfer
from fireforge.core.program import Program
from fireforge.errors import FireforgeError
from fireforge.sw.dram_builder import Builder, buffer_halves
from fireforge.sw.dram_chains import RUN_BYTES, TILE_BYTES, plan_chains
from fireforge.sw.dram_emit import Emitter, LayerTraffic, tile_descriptor, word_bytes
from fireforge.sw.schedule import Schedule
from fireforge.sw.tiling import BufferBudget, LayerTiling, TilingOptions, fits, plan_tiles, traffic, transfer_runs

__all__ = ["DramMap", "DramProgram", "LayerTraffic", "build", "summary", "tile_descriptor", "buffer_halves", "word_bytes"]

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


def build(program: Program, sched: Schedule, config: EngineConfig, *, base: int = 0, fuse: bool = True) -> DramProgram:
    """The command stream of ``program`` scheduled for DRAM mode (``sched`` on ``config``, ``config.dram``), its
    regions from DRAM byte address ``base`` on (a multiple of 4 KB: several programs can share one DRAM);
    ``fuse``: run max pools, squeezes and GAPs through the buffer where that costs less."""
    if base % ALIGN:
        raise ValueError(f"base must be a multiple of {ALIGN}")
    if not config.dram:
        raise ValueError("build() is for a DRAM-mode engine config")
    plan = sched.plan
    wb, qb = word_bytes(config, Buffer.WEIGHTS), word_bytes(config, Buffer.QUANT)
    tilings = _layer_tiles(program, sched, config)
    wide = _widen(config, tilings)
    w_bytes, q_bytes, a_bytes = plan.weight_words * wb, plan.quant_words * qb, plan.act_words * config.vector
    weights, quant = base, base + _align(w_bytes)
    act = _align(quant + q_bytes)
    commands = _align(act + a_bytes)
    dmap = DramMap(weights, quant, act, commands, w_bytes, q_bytes, a_bytes, 0)
    chains = plan_chains(program, sched, config, tilings, dmap, wide) if fuse else {}
    banded = {l.name for c in chains.values() if c.gap is None for l in c.writers}
    traffic = [LayerTraffic(l.name, height=t.height, chunk=t.chunk, order=t.order)
               for l, t in zip(program.layers, tilings)]
    em = Emitter(config, dmap, traffic)
    b = Builder(program, sched, config, em, descriptors={l.name: d for l, d in zip(program.layers, sched.descriptors)},
                tilings={l.name: t for l, t in zip(program.layers, tilings)}, wide=wide - banded)
    index, skip = {l.name: i for i, l in enumerate(program.layers)}, set()
    for layer in program.layers:
        if layer.name in skip:
            continue
        c = chains.get(layer.name)
        if c is None:
            b.layer(layer)
            continue
        b.chain(c)
        skip.update(l.name for l in c.layers)
        for l in c.layers:
            traffic[index[l.name]].height = c.height or traffic[index[l.name]].height
        if c.gap is not None:
            traffic[index[c.gap.name]].chunk = traffic[index[c.writers[0].name]].chunk = c.chunk
    em.end()
    dmap = DramMap(weights, quant, act, commands, w_bytes, q_bytes, a_bytes, len(em.commands))
    return DramProgram(dmap, em.commands, traffic)


def summary(dp: DramProgram, prediction=None, bus=None) -> dict:
    """The manifest's ``dram`` entry: the map, the totals and every layer's tiling and traffic; with the cycle
    model's ``prediction`` (:func:`fireforge.sw.dram_perf.predict_stream` on ``bus``), its totals and, per layer
    with stores of its own, its predicted cycles, compute cycles and bound."""
    layers = [l.to_dict() for l in dp.layers]
    out = {"map": dp.map.to_dict(), "bytes_read": dp.bytes_read, "bytes_written": dp.bytes_written, "layers": layers}
    if prediction is not None:
        marked = [l for l in layers if not (l["fused_into"] or l["stored_by"])]
        for k, l in enumerate(marked):
            l.update(predicted_cycles=prediction.layer_cycles[k], predicted_compute=prediction.layer_compute[k],
                     bound=prediction.bound(k))
        out["predicted"] = {"cycles": prediction.cycles, "compute_cycles": prediction.compute_cycles,
                            "stall_cycles": prediction.stall_cycles, "clock_mhz": bus.clock_mhz,
                            "fps": bus.clock_mhz * 1e6 / prediction.cycles}
    return out
