"""DRAM mode's command emitter: transfers split to the field widths, ``wait`` flags from buffer overlap, STOREs
delayed one tile, read-after-write through DRAM; and a layer descriptor moved into the buffers as a tile.
(:mod:`fireforge.sw.dram_program` decides what to emit.)"""

from __future__ import annotations

from dataclasses import dataclass

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Buffer, Op

__all__ = ["Emitter", "LayerTraffic", "tile_descriptor", "word_bytes", "MAX_RUN"]

#: transfers' ``run_words`` and ``runs`` fields are 16 bits
MAX_RUN = (1 << 16) - 1


def word_bytes(config: EngineConfig, buffer: Buffer) -> int:
    # branches, not a dict of the three: called per transfer while compile --board and the explorer try buffer sizes
    if buffer is Buffer.ACT:
        return config.act_word_bits // 8
    if buffer is Buffer.WEIGHTS:
        return config.weight_word_bits // 8
    if buffer is Buffer.QUANT:
        return config.quant_word_bits // 8
    raise KeyError(buffer)


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
    fused_into: str | None = None    # its result never reaches DRAM: it went through the buffer into this layer
    stored_by: str | None = None     # its result reaches DRAM in this layer's stores (a Fire's expands)

    @property
    def dram_bytes_read(self) -> int:
        return self.weight_bytes + self.read_bytes

    def to_dict(self) -> dict:
        return {**self.__dict__, "dram_bytes_read": self.dram_bytes_read}


def tile_descriptor(d: dict, rows: tuple[int, int], band: tuple[int, int], chunk: tuple[int, int], *,
                    in_groups: int, in_addr: int, in_b_addr: int | None, out_addr: int,
                    weight_addr: int, quant_addr: int, out_pitch: int | None = None) -> dict:
    """Layer descriptor ``d`` (addresses in DRAM words) as the tile computing output rows ``band`` × output
    groups ``chunk`` from input rows ``rows`` held at ``in_addr`` (``in_groups`` words per pixel; an add's
    second input at ``in_b_addr``), writing ``band`` × ``chunk`` words at ``out_addr`` (``out_pitch`` words per
    pixel: the chunk unless given)."""
    (r0, r1), (oy0, oy1), (og0, og1) = rows, band, chunk
    pad_t = d["pad_t"] + r0 - oy0 * d["stride_h"]
    if not 0 <= pad_t < 16:
        raise AssertionError(f"tile rows {rows} for band {band}: pad_t {pad_t}")
    w, g = d["in_w"], in_groups
    t = {**d, "in_h": r1 - r0, "out_h": oy1 - oy0, "pad_t": pad_t, "og_count": og1 - og0,
         "win_addr0": in_addr - (pad_t * w + d["pad_l"]) * g, "row_step": d["stride_h"] * w * g,
         "pix_step": d["stride_w"] * g, "ky_step": w * g, "kx_step": g, "out_addr": out_addr,
         "out_pitch": og1 - og0 if out_pitch is None else out_pitch}
    if d["op"] == Op.CONV:
        t.update(weight_addr=weight_addr, quant_addr=quant_addr)
    if d["op"] == Op.ADD:
        t["kx_step"] = in_b_addr - in_addr
    return t


class Emitter:
    """Commands in order. A transfer gets ``wait`` when it touches buffer words the running tile uses. A tile's
    STORE is held back (``pending``) until after the next tile's compute, so that it overlaps it; it goes out
    earlier when a LOAD reads DRAM bytes it writes (read-after-write through DRAM) or a tile is about to write
    the buffer words it reads."""

    def __init__(self, config: EngineConfig, dmap, traffic: list):
        self.config, self.map, self.traffic = config, dmap, traffic
        self.commands: list[dict] = []
        self.running: dict[Buffer, list[tuple[int, int]]] = {}   # buffer words the running tile uses
        #: a STORE not yet emitted: its commands, its DRAM byte range, its ACT word range
        self.pending: tuple[list[dict], tuple[int, int], tuple[int, int]] | None = None

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

    def compute(self, desc: dict, uses: dict[Buffer, list[tuple[int, int]]], writes: tuple[int, int]) -> None:
        """A tile that reads and writes the buffer words ``uses``, and writes ACT words ``writes``."""
        if self.pending is not None and self.pending[2][0] < writes[1] and writes[0] < self.pending[2][1]:
            self.flush()                        # it would overwrite what the pending store still has to read
        self.commands.append(desc)
        self.running = uses
        if self.pending is not None:            # the previous tile's store overlaps this tile
            self.flush()

    def store(self, dram_addr: int, run_words: int, runs: int, stride: int, buf_addr: int, layer: int,
              mark: bool) -> None:
        self.flush()
        cmds = self._transfers(Op.STORE, Buffer.ACT, dram_addr, run_words, runs, stride, buf_addr, layer, mark)
        hi = dram_addr + (runs - 1) * stride + run_words * self.config.vector
        self.pending = (cmds, (dram_addr, hi), (buf_addr, buf_addr + run_words * runs))

    def flush(self) -> None:
        if self.pending is not None:
            cmds, self.pending = self.pending[0], None
            self._emit(cmds)

    def end(self) -> None:
        self.flush()
        self.commands.append({"op": Op.END})


