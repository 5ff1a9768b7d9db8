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
from fireforge.core.program import AddLayer, ConvLayer, Program
from fireforge.errors import FireforgeError
from fireforge.sw.schedule import Schedule
from fireforge.sw.tiling import BufferBudget, LayerTiling, TilingOptions, band_input_rows, plan_tiles

__all__ = ["DramMap", "DramProgram", "LayerTraffic", "build", "summary", "tile_descriptor", "buffer_halves", "word_bytes"]

#: transfers' ``run_words`` and ``runs`` fields are 16 bits
MAX_RUN = (1 << 16) - 1
#: what the tiling choice charges per DMA run and per tile, in bytes of traffic: a run costs ~4 bus cycles
#: beyond its bytes (sw.dram_perf.BUSES), ~8 bytes at 1.92 B/cycle; a tile the core's restart (~30 cycles)
RUN_BYTES, TILE_BYTES = 8, 60
#: DRAM regions start on this many bytes (a burst boundary for every supported port)
ALIGN = 4096


def word_bytes(config: EngineConfig, buffer: Buffer) -> int:
    return {Buffer.ACT: config.act_word_bits, Buffer.WEIGHTS: config.weight_word_bits,
            Buffer.QUANT: config.quant_word_bits}[buffer] // 8


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


def tile_descriptor(d: dict, rows: tuple[int, int], band: tuple[int, int], chunk: tuple[int, int], *,
                    in_groups: int, in_addr: int, in_b_addr: int | None, out_addr: int,
                    weight_addr: int, quant_addr: int) -> dict:
    """Layer descriptor ``d`` (addresses in DRAM words) as the tile computing output rows ``band`` × output
    groups ``chunk`` from input rows ``rows`` held at ``in_addr`` (``in_groups`` words per pixel; an add's
    second input at ``in_b_addr``), writing ``band`` × ``chunk`` words at ``out_addr`` (pitch: the chunk)."""
    (r0, r1), (oy0, oy1), (og0, og1) = rows, band, chunk
    pad_t = d["pad_t"] + r0 - oy0 * d["stride_h"]
    if not 0 <= pad_t < 16:
        raise AssertionError(f"tile rows {rows} for band {band}: pad_t {pad_t}")
    w, g = d["in_w"], in_groups
    t = {**d, "in_h": r1 - r0, "out_h": oy1 - oy0, "pad_t": pad_t, "og_count": og1 - og0,
         "win_addr0": in_addr - (pad_t * w + d["pad_l"]) * g, "row_step": d["stride_h"] * w * g,
         "pix_step": d["stride_w"] * g, "ky_step": w * g, "kx_step": g, "out_addr": out_addr, "out_pitch": og1 - og0}
    if d["op"] == Op.CONV:
        t.update(weight_addr=weight_addr, quant_addr=quant_addr)
    if d["op"] == Op.ADD:
        t["kx_step"] = in_b_addr - in_addr
    return t


class _Emitter:
    """Commands in order, with the ``wait`` flags and the delayed STOREs of the module docstring."""

    def __init__(self, config: EngineConfig, dmap: DramMap, traffic: list[LayerTraffic]):
        self.config, self.map, self.traffic = config, dmap, traffic
        self.commands: list[dict] = []
        self.running: dict[Buffer, list[tuple[int, int]]] = {}   # buffer words the running tile uses
        self.pending: tuple[list[dict], tuple[int, int]] | None = None    # a STORE not yet emitted, its DRAM range

    def _busy(self, buffer: Buffer, lo: int, hi: int) -> bool:
        return any(a < hi and lo < b for a, b in self.running.get(buffer, ()))

    def _transfers(self, op: Op, buffer: Buffer, dram_addr: int, run_words: int, runs: int, stride: int,
                   buf_addr: int, layer: int, mark: bool = False) -> list[dict]:
        """One transfer, split where its runs exceed the 16-bit fields (a long contiguous run becomes runs)."""
        wb = word_bytes(self.config, buffer)
        if runs == 1 and run_words > MAX_RUN:       # contiguous: cut into runs of equal length
            n = next(k for k in range(MAX_RUN, 0, -1) if run_words % k == 0 and run_words // k <= MAX_RUN)
            run_words, runs, stride = n, run_words // n, n * wb
        out = []
        for r0 in range(0, runs, MAX_RUN):
            k = min(MAX_RUN, runs - r0)
            out.append({"op": op, "buffer": buffer, "dram_addr": dram_addr + r0 * stride, "dram_stride": stride,
                        "run_words": run_words, "runs": k, "buf_addr": buf_addr + r0 * run_words})
        if mark:
            out[-1]["mark"] = 1
        nbytes = run_words * runs * wb
        t = self.traffic[layer]
        if op == Op.STORE:
            t.write_bytes += nbytes
        elif buffer == Buffer.ACT:
            t.read_bytes += nbytes
        else:
            t.weight_bytes += nbytes
        return out

    def _emit(self, cmds: list[dict]) -> None:
        for c in cmds:
            c["wait"] = int(self._busy(c["buffer"], c["buf_addr"], c["buf_addr"] + c["run_words"] * c["runs"]))
            self.commands.append(c)

    def load(self, buffer: Buffer, dram_addr: int, run_words: int, runs: int, stride: int, buf_addr: int,
             layer: int) -> None:
        lo = dram_addr
        hi = dram_addr + (runs - 1) * stride + run_words * word_bytes(self.config, buffer)
        if self.pending is not None and self.pending[1][0] < hi and lo < self.pending[1][1]:
            self.flush()
        self._emit(self._transfers(Op.LOAD, buffer, dram_addr, run_words, runs, stride, buf_addr, layer))

    def compute(self, desc: dict, uses: dict[Buffer, list[tuple[int, int]]]) -> None:
        self.commands.append(desc)
        self.running = uses
        if self.pending is not None:            # the previous tile's store overlaps this tile
            self.flush()

    def store(self, dram_addr: int, run_words: int, runs: int, stride: int, buf_addr: int, layer: int,
              mark: bool) -> None:
        cmds = self._transfers(Op.STORE, Buffer.ACT, dram_addr, run_words, runs, stride, buf_addr, layer, mark)
        hi = dram_addr + (runs - 1) * stride + run_words * self.config.vector
        self.pending = (cmds, (dram_addr, hi))

    def flush(self) -> None:
        if self.pending is not None:
            cmds, self.pending = self.pending[0], None
            self._emit(cmds)

    def end(self) -> None:
        self.flush()
        self.commands.append({"op": Op.END})


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


def build(program: Program, sched: Schedule, config: EngineConfig, *, base: int = 0) -> DramProgram:
    """The command stream of ``program`` scheduled for DRAM mode (``sched`` on ``config``, ``config.dram``), its
    regions from DRAM byte address ``base`` on (a multiple of 4 KB: several programs can share one DRAM)."""
    if base % ALIGN:
        raise ValueError(f"base must be a multiple of {ALIGN}")
    if not config.dram:
        raise ValueError("build() is for a DRAM-mode engine config")
    plan, v = sched.plan, config.vector
    wb, qb = word_bytes(config, Buffer.WEIGHTS), word_bytes(config, Buffer.QUANT)
    tilings = _layer_tiles(program, sched, config)
    w_bytes, q_bytes, a_bytes = plan.weight_words * wb, plan.quant_words * qb, plan.act_words * v
    weights, quant = base, base + _align(w_bytes)
    act = _align(quant + q_bytes)
    commands = _align(act + a_bytes)
    traffic = [LayerTraffic(l.name, height=t.height, chunk=t.chunk, order=t.order)
               for l, t in zip(program.layers, tilings)]
    em = _Emitter(config, DramMap(weights, quant, act, commands, w_bytes, q_bytes, a_bytes, 0), traffic)
    halves = buffer_halves(config)
    held = {"in": [None, None], "weights": [None, None]}
    in_half = w_half = out_half = 1
    for i, (layer, d, tiling) in enumerate(zip(program.layers, sched.descriptors, tilings)):
        conv = isinstance(layer, ConvLayer)
        srcs = [plan.layouts[x] for x in ([layer.input_a, layer.input_b] if isinstance(layer, AddLayer)
                                          else [layer.inputs[0]])]
        dst = plan.layouts[layer.output]
        goff = d["out_addr"] - dst.addr
        tiles = tiling.tiles()
        for k, ((oy0, oy1), (og0, og1)) in enumerate(tiles):
            traffic[i].tiles += 1
            chunk = og1 - og0
            r0, r1 = band_input_rows(oy0, oy1, tiling.geometry)
            g_all = srcs[0].groups
            gi0, gi1 = (0, g_all) if conv else (og0, og1)
            gin, w_in = gi1 - gi0, srcs[0].width
            in_words = (r1 - r0) * w_in * gin
            key = (layer.inputs[0], tuple(x.name for x in srcs), r0, r1, gi0, gi1)
            if key in held["in"]:
                in_half = held["in"].index(key)
            else:
                in_half = 1 - in_half
                held["in"][in_half] = key
                for s, src in enumerate(srcs):
                    base = em.map.act + (src.addr + r0 * w_in * g_all + gi0) * v
                    if gin == g_all:
                        em.load(Buffer.ACT, base, w_in * g_all, r1 - r0, w_in * g_all * v,
                                halves["in"][in_half] + s * in_words, i)
                    else:
                        em.load(Buffer.ACT, base, gin, (r1 - r0) * w_in, g_all * v,
                                halves["in"][in_half] + s * in_words, i)
            in_addr = halves["in"][in_half]
            uses = {Buffer.ACT: [(in_addr, in_addr + in_words * len(srcs))]}
            w_addr = q_addr = 0
            if conv:
                taps = d["taps"]
                wkey = (layer.name, og0, og1)
                if wkey in held["weights"]:
                    w_half = held["weights"].index(wkey)
                else:
                    w_half = 1 - w_half
                    held["weights"][w_half] = wkey
                    em.load(Buffer.WEIGHTS, weights + (d["weight_addr"] + og0 * taps) * wb, chunk * taps, 1,
                            chunk * taps * wb, halves["weights"][w_half], i)
                    em.load(Buffer.QUANT, quant + (d["quant_addr"] + og0) * qb, chunk, 1, chunk * qb,
                            halves["quant"][w_half], i)
                w_addr, q_addr = halves["weights"][w_half], halves["quant"][w_half]
                uses[Buffer.WEIGHTS] = [(w_addr, w_addr + chunk * taps)]
                uses[Buffer.QUANT] = [(q_addr, q_addr + chunk)]
            out_half = 1 - out_half
            out_addr = halves["out"][out_half]
            out_words = (oy1 - oy0) * dst.width * chunk
            uses[Buffer.ACT].append((out_addr, out_addr + out_words))
            desc = tile_descriptor(d, (r0, r1), (oy0, oy1), (og0, og1), in_groups=gin, in_addr=in_addr,
                                   in_b_addr=in_addr + in_words if len(srcs) == 2 else None, out_addr=out_addr,
                                   weight_addr=w_addr, quant_addr=q_addr)
            em.compute(desc, uses)
            pitch = dst.groups
            first = em.map.act + (dst.addr + oy0 * dst.width * pitch + goff + og0) * v
            last = k == len(tiles) - 1
            if chunk == pitch:
                em.store(first, dst.width * pitch, oy1 - oy0, dst.width * pitch * v, out_addr, i, last)
            else:
                em.store(first, chunk, (oy1 - oy0) * dst.width, pitch * v, out_addr, i, last)
    em.end()
    dmap = DramMap(weights, quant, act, commands, w_bytes, q_bytes, a_bytes, len(em.commands))
    return DramProgram(dmap, em.commands, traffic)


def summary(dp: DramProgram) -> dict:
    """The manifest's ``dram`` entry: the map, the totals and every layer's tiling and traffic."""
    return {"map": dp.map.to_dict(), "bytes_read": dp.bytes_read, "bytes_written": dp.bytes_written,
            "layers": [l.to_dict() for l in dp.layers]}
