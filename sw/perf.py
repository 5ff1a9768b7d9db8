# amaranth: UnusedElaboratable=no
"""The cycle model: what the engine takes per layer, predicted from the descriptors, without simulating.

**Resident engine** (:func:`predict`). Every layer is one loop nest; the sequencer runs it group by group
(``fireforge.hw.engine.sequencer``)::

    layer  = FETCH (1) + FETCH_WAIT (rom_latency) + DECODE (1) + Σ_groups group + LAYER_END
    group  = GROUP (1; after the first, it waits for the previous group to drain) + QUANT (quant_latency)
             + RUN (one tap per cycle: out_h · out_w · kernel_h · kernel_w · g_count taps)

and the drain after a group's last tap is ``tap_to_write`` (:attr:`fireforge.hw.engine.Engine.latency`,
taken from an engine object that is constructed, never elaborated) plus the ``drained`` register plus
:data:`DRAIN_EXTRA`. So a layer takes ``rom_latency + 3 + og_count · (quant_latency + tap_to_write + 2 +
DRAIN_EXTRA + taps)`` cycles (the first one less: the start pulse), and the run ``rom_latency + 3`` more
(the END descriptor); a layer with a fused max pool (``pool_en``) adds the pool stage's latency to every
group's drain. Padding taps, pools, adds (two taps per output) and GAP (the whole map per output)
follow the same nest. ``DRAIN_EXTRA`` (6 cycles) is the one calibrated term: what Verilator shows beyond
``Engine.latency``'s padding-only measurement; it is the same at 16 and 64 MAC units.

Stalls: the AGU issues only while the tap FIFO has room (level ≤ ``reads_in_flight − 2``) and fewer than
``WRITE_DEPTH − 1`` results are in flight. The on-chip RAM answers in ``ACT_RAM_LATENCY + 1`` cycles (its
pipeline and the response register) and the FIFO needs 2 more, far below 16 − 2; one output per tap keeps
``tap_to_write`` results in flight, below 63. :func:`tap_throughput` checks both bounds and slows the layer
down if a configuration ever violates them (it never does with the default build).

**DRAM mode** (:func:`predict_dram`) reuses the per-group cost on every tile that
:mod:`fireforge.sw.tiling` chooses, and takes ``max(compute, transfer)`` per tile (double buffering),
plus the first tile's loads and the last tile's stores, which nothing overlaps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.hw.engine import Engine
from fireforge.hw.engine.engine import WRITE_DEPTH
from fireforge.hw.top import ACT_RAM_LATENCY
from fireforge.sim.hw_run import ideal_cycles

__all__ = ["EngineTiming", "engine_timing", "layer_taps", "group_overhead", "layer_cycles", "predict",
           "Prediction", "tap_throughput", "DRAIN_EXTRA"]

#: cycles a group's drain takes beyond ``tap_to_write`` + the ``drained`` register, calibrated on Verilator
#: (16 and 64 MAC units, every layer kind): ``Engine.latency`` is measured with padding taps only
DRAIN_EXTRA = 6


@dataclass(frozen=True)
class EngineTiming:
    rom_latency: int
    quant_latency: int
    tap_to_write: int
    lead: int
    pool: int = 0                   # what a fused max pool (pool_en) adds to tap_to_write
    read_latency: int = ACT_RAM_LATENCY
    reads_in_flight: int = 16
    write_depth: int = WRITE_DEPTH

    @property
    def group_overhead(self) -> int:
        """Cycles of one output group besides its taps: GROUP, QUANT, the drain."""
        return 1 + self.quant_latency + self.tap_to_write + 1 + DRAIN_EXTRA

    @property
    def layer_overhead(self) -> int:
        """Cycles of one descriptor besides its groups: FETCH, FETCH_WAIT, DECODE, LAYER_END's last cycle."""
        return self.rom_latency + 3


@functools.lru_cache(maxsize=64)
def engine_timing(config: EngineConfig, variant: BuildVariant | None = None, *,
                  read_latency: int = ACT_RAM_LATENCY) -> EngineTiming:
    """The latencies of the engine for ``config``: an :class:`Engine` is constructed (its parts state their
    latencies), never elaborated; unresolved (0) depths are replaced, they change no latency. Cached: the
    construction costs ~0.1 s and the buffer search of ``compile --board`` asks for the same configs often."""
    variant = variant or BuildVariant()
    depths = {k: getattr(config, k) or 1024 for k in ("weight_depth", "quant_depth", "desc_depth", "act_depth")}
    eng = Engine(config.with_depths(**depths) if 0 in (config.weight_depth, config.quant_depth, config.desc_depth,
                                                        config.act_depth) else config, variant)
    lat = eng.latency
    return EngineTiming(eng.rom_latency, eng.parts["quant_fetch"].latency, lat["tap_to_write"], lat["lead"],
                        lat["pool"], read_latency, variant.reads_in_flight, WRITE_DEPTH)


def layer_taps(d: dict) -> int:
    """Taps one output group of a descriptor issues: out_h · out_w · kernel_h · kernel_w · g_count."""
    return d["out_h"] * d["out_w"] * d["kernel_h"] * d["kernel_w"] * d["g_count"]


def tap_throughput(d: dict, t: EngineTiming) -> float:
    """Taps per cycle in a group's steady state (1.0 unless a credit bound binds).

    Tap FIFO: a tap stays in it from its issue to its join, ``read_latency + 1`` (the response register) + 2
    (the response FIFO) cycles; at most ``reads_in_flight − 2`` may be there. Write credit: with
    ``k`` taps per output, ``tap_to_write / k`` results are in flight, at most ``write_depth − 2``."""
    rate = 1.0
    round_trip = t.read_latency + 1 + 2
    if round_trip > t.reads_in_flight - 2:
        rate = min(rate, (t.reads_in_flight - 2) / round_trip)
    per_out = d["kernel_h"] * d["kernel_w"] * d["g_count"]
    if t.tap_to_write / per_out > t.write_depth - 2:
        rate = min(rate, per_out * (t.write_depth - 2) / t.tap_to_write)
    return rate


def group_overhead(t: EngineTiming) -> int:
    return t.group_overhead


def layer_cycles(d: dict, t: EngineTiming, *, groups: int | None = None, taps: int | None = None) -> int:
    """Cycles of one descriptor (a layer, or a DRAM-mode tile of ``groups`` groups of ``taps`` taps each)."""
    groups = d["og_count"] if groups is None else groups
    taps = layer_taps(d) if taps is None else taps
    run = -(-taps // 1) if tap_throughput(d, t) == 1.0 else int(-(-taps // tap_throughput(d, t)))
    return t.layer_overhead + groups * (t.group_overhead + (t.pool if d.get("pool_en") else 0) + run)


@dataclass
class Prediction:
    names: list[str]
    layer_cycles: list[int]
    tail: int                       # the END descriptor: FETCH, FETCH_WAIT, DECODE
    timing: EngineTiming
    ideal: list[int] = field(default_factory=list)   # MACs ÷ MAC units per layer

    @property
    def cycles(self) -> int:
        return sum(self.layer_cycles) + self.tail

    @property
    def utilization(self) -> float:
        return sum(self.ideal) / self.cycles if self.cycles else 0.0


def predict(descriptors: list[dict], config: EngineConfig, variant: BuildVariant | None = None, *,
            names: list[str] | None = None, ideal: list[int] | None = None) -> Prediction:
    """Per-layer cycles of the resident engine running ``descriptors`` (the schedule's field dicts, in
    order), as ``rtl_run(...).layer_cycles`` counts them (layer ``i`` ends at its ``layer_done``)."""
    t = engine_timing(config, variant)
    cycles = [layer_cycles(d, t) for d in descriptors]
    if cycles:
        cycles[0] -= 1          # the first layer starts with the start pulse's cycle uncounted
    return Prediction(names or [str(i) for i in range(len(cycles))], cycles, t.layer_overhead, t, ideal or [])


def predict_compiled(compiled) -> Prediction:
    """:func:`predict` for a :class:`~fireforge.core.compiled.Compiled` (or an ``OUT/`` path)."""
    c = Compiled.of(compiled)
    layers = {l.name: l for l in c.program.layers}
    rom = c.rom_layers          # a fused pool has no descriptor: its writer's computes it
    descs = [_rom_descriptor(e, c.layers) for e in rom]
    return predict(descs, c.config, names=[e.name for e in rom],
                   ideal=[ideal_cycles(c.program, layers[e.name], c.config) for e in rom])


def _rom_descriptor(entry, entries) -> dict:
    """The descriptor the ROM holds for ``entry`` (the manifest keeps a fused writer's with the pool fields)."""
    return entry.descriptor


def predict_program(program, config: EngineConfig, variant: BuildVariant | None = None) -> Prediction:
    """:func:`predict` for a program scheduled on ``config`` (depths resolved as ``fireforge compile`` does)."""
    from fireforge.core.layout import planned_config
    from fireforge.sim.hw_run import ideal_cycles
    from fireforge.sw.schedule import schedule
    sched = schedule(program, planned_config(program, config))
    layers = {l.name: l for l in program.layers}
    return predict(sched.rom_descriptors, sched.config, variant, names=sched.rom_names,
                   ideal=[ideal_cycles(program, layers[n], config) for n in sched.rom_names])


# -- DRAM mode ------------------------------------------------------------------------------------------------

@dataclass
class DramLayer:
    name: str
    kind: str
    tiling: object                  # fireforge.sw.tiling.LayerTiling
    compute: int                    # engine cycles of its tiles
    transfer: int                   # DRAM cycles of its bytes
    cycles: int                     # Σ_tiles max(compute, transfer) + the unoverlapped first load / last store

    @property
    def memory_bound(self) -> bool:
        return self.transfer > self.compute


@dataclass
class DramPrediction:
    layers: list[DramLayer]
    tail: int
    ideal: int                      # MACs ÷ MAC units
    bytes_per_cycle: float

    @property
    def cycles(self) -> int:
        return sum(l.cycles for l in self.layers) + self.tail

    @property
    def compute(self) -> int:
        return sum(l.compute for l in self.layers) + self.tail

    @property
    def utilization(self) -> float:
        return self.ideal / self.cycles

    def total(self, what: str) -> int:
        return sum(getattr(l.tiling, what) for l in self.layers)

    def fps(self, clock_mhz: float) -> float:
        return clock_mhz * 1e6 / self.cycles


def _tile_costs(d: dict, p, t: EngineTiming, v: int, wbytes: int, qbytes: int):
    """Per tile of plan ``p``, in order: (compute cycles, bytes loaded, bytes stored)."""
    from fireforge.sw.tiling import band_input_rows
    g, per_out = p.geometry, d["kernel_h"] * d["kernel_w"] * d["g_count"]
    n_b = -(-g.out_h // p.height)
    n_c = -(-g.og // p.chunk)
    prev_band = prev_chunk = None
    costs = []
    for (y0, y1), (c0, c1) in p.tiles():
        c = layer_cycles(d, t, groups=c1 - c0, taps=(y1 - y0) * g.out_w * per_out)
        load = 0
        # a conv's band is re-read per chunk when weights-stationary (unless it is the only band); a
        # depthwise tile reads its own chunk's groups of the band
        new_band = (y0, y1) != prev_band or (g.taps and p.order == "weights" and n_b > 1)
        if not p.input_on_chip and (new_band or g.depthwise):
            iy0, iy1 = band_input_rows(y0, y1, g)
            load += (iy1 - iy0) * g.in_w * (g.in_groups if not g.depthwise else (c1 - c0) * g.inputs) * v
        if g.taps and ((c0, c1) != prev_chunk and (n_c > 1 or prev_chunk is None)):
            load += (c1 - c0) * (g.taps * wbytes + qbytes)
        store = p.write_bytes * (y1 - y0) * (c1 - c0) / (g.out_h * g.og)
        costs.append((c, load, store))
        prev_band, prev_chunk = (y0, y1), (c0, c1)
    return costs


def pipeline_cycles(costs, bytes_per_cycle: float) -> tuple[int, float, float]:
    """(compute, transfer, cycles) of tiles run double-buffered: tile i computes while tile i+1 loads and
    tile i−1 stores over the one port; the first load and the last store overlap nothing."""
    n = len(costs)
    if not n:
        return 0, 0.0, 0.0
    bw = bytes_per_cycle
    total = costs[0][1] / bw + costs[-1][2] / bw
    for i, (c, _, _) in enumerate(costs):
        nxt = costs[i + 1][1] if i + 1 < n else 0
        prv = costs[i - 1][2] if i else 0
        total += max(c, (nxt + prv) / bw)
    return sum(c for c, _, _ in costs), sum(l + s for _, l, s in costs) / bw, total


def predict_dram(program, config: EngineConfig, budget, bytes_per_cycle: float, options=None,
                 variant: BuildVariant | None = None) -> DramPrediction:
    """DRAM mode: the tiling of :func:`fireforge.sw.tiling.plan_tiles` (fewest bytes; among equals, the
    least time nothing overlaps: the first load, the last store, the per-tile and per-group overheads), each
    tile a descriptor costed as :func:`layer_cycles`, its loads and stores at ``bytes_per_cycle`` (DRAM bytes
    per engine cycle), tiles pipelined as :func:`pipeline_cycles`."""
    from fireforge.core.layout import planned_config
    from fireforge.sim.hw_run import ideal_cycles
    from fireforge.sw.schedule import schedule
    from fireforge.sw.tiling import TilingOptions, band_input_rows, plan_tiles
    sched = schedule(program, planned_config(program, config))
    t = engine_timing(sched.config, variant)
    v, wbytes = sched.config.vector, sched.config.weight_word_bits // 8
    qbytes = sched.config.quant_word_bits // 8
    bw = bytes_per_cycle

    def exposed(layer, p, h, c, o):
        g = p.geometry
        n_b, n_c = -(-g.out_h // h), -(-g.og // c)
        iy0, iy1 = band_input_rows(0, min(h, g.out_h), g)
        first = 0 if p.input_on_chip else (iy1 - iy0) * g.in_w * (g.in_groups if g.taps else c * g.inputs) * v
        first += c * (g.taps * wbytes + qbytes) if g.taps else 0
        last = p.write_bytes * min(h, g.out_h) * c / (g.out_h * g.og)
        return (first + last) / bw + n_b * n_c * t.layer_overhead + n_b * g.og * t.group_overhead

    plans = plan_tiles(program, sched.descriptors, sched.config, budget, options or TilingOptions(), tie=exposed)
    out = []
    for d, p in zip(sched.descriptors, plans):
        compute, transfer, cycles = pipeline_cycles(_tile_costs(d, p, t, v, wbytes, qbytes), bw) if p.height \
            else (0, 0.0, 0.0)
        out.append(DramLayer(p.name, p.kind, p, compute, round(transfer), round(cycles)))
    ideal = sum(ideal_cycles(program, l, config) for l in program.layers)
    return DramPrediction(out, t.layer_overhead, ideal, bytes_per_cycle)
