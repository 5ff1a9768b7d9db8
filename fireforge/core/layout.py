"""Where tensors live in activation memory, and how a logical tensor becomes memory words and back.

Physical layout: a tensor is stored pixel-major, one word per channel group of ``vector`` channels:
``addr(y, x, g) = base + (y·W + x)·groups + g``. A concat tensor is the concatenation of its writers'
layouts, each starting on a group boundary, so a writer's channel slice is whole words (channels that
pad a slice to a group are never read with a nonzero weight). Activation memory is reused: a tensor's
words are free again after its last reader (first-fit allocation over live ranges); the input and the
output are never overwritten, so back-to-back runs see the same input.

:func:`plan_memory` is the compiler's layout (``fireforge.sw.schedule`` builds descriptors on it) and the
board fit check's (for other MAC counts and model variants); :func:`tensor_words` / :func:`read_tensor`
are the codec the simulator and the host link use to write inputs and read results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fireforge.core.config import EngineConfig, channel_groups
from fireforge.core.fusion import pool_writers
from fireforge.core.program import ConvLayer, Program
from fireforge.errors import FireforgeError

__all__ = ["TensorLayout", "MemoryPlan", "plan_memory", "planned_config", "im2col_conv", "tensor_words", "pack_im2col",
           "read_tensor", "tensor_from_words", "read_layer_result"]


@dataclass
class TensorLayout:
    """One tensor in activation memory (the manifest's ``tensors`` entries hold the same fields)."""

    name: str
    height: int
    width: int
    groups: int                  # words per pixel
    channel_index: np.ndarray    # logical channel -> physical channel (group·vector + lane)
    addr: int = 0
    im2col: dict | None = None   # the program input, stored as the first conv's windows (see im2col_conv)

    @property
    def words(self) -> int:
        return self.height * self.width * self.groups

    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "groups": self.groups, "addr": self.addr,
                "words": self.words, "channel_index": [int(c) for c in self.channel_index], "im2col": self.im2col}

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "TensorLayout":
        return cls(name, d["height"], d["width"], d["groups"], np.asarray(d["channel_index"], np.int64),
                   d["addr"], d.get("im2col"))


@dataclass
class MemoryPlan:
    """The memory side of a schedule: tensor layouts and addresses, and the words each memory needs."""

    layouts: dict[str, TensorLayout]
    group_offsets: dict[str, int]    # layer -> first channel group of its slice in its output tensor
    im2col: ConvLayer | None         # the conv that reads a host-packed (im2col) input
    act_words: int
    weight_words: int
    quant_words: int
    weight_offsets: dict[str, int]   # conv layer -> first weight word
    quant_offsets: dict[str, int]
    vector: int
    fused: dict[str, tuple] = field(default_factory=dict)   # max pool -> its writers (fireforge.core.fusion)

    def out_groups(self, layer) -> int:
        """Channel groups a layer produces."""
        return result_groups(layer, self.layouts, self.vector)[0]


def im2col_conv(program: Program, vector: int) -> ConvLayer | None:
    """The first conv, if it alone reads the input and its input has few channels (conv1: 3).

    Its windows are then packed by the host when it writes the input — word ``g`` of output pixel
    (oy, ox) holds taps ``(ky, kx, c)`` number ``g·vector ..`` — so the engine runs it as a 1x1 conv over
    kh·kw·C channels: ⌈27/8⌉ = 4 cycles per pixel for v1.1's conv1 on 64 MAC units instead of 9, at the
    cost of the input occupying OH·OW·⌈kh·kw·C/vector⌉ words. The host only moves bytes; every MAC is
    still done by the engine.
    """
    readers = [l for l in program.layers if program.input in l.inputs]
    if len(readers) != 1 or not isinstance(readers[0], ConvLayer):
        return None
    conv = readers[0]
    o, c, kh, kw = conv.weights.shape
    packed = channel_groups(kh * kw * c, vector)
    plain = kh * kw * channel_groups(c, vector)
    return conv if packed < plain else None


def result_groups(layer, layouts: dict[str, TensorLayout], vector: int):
    """(groups, channel_index) of the words a layer produces (before placing them in its destination)."""
    if isinstance(layer, ConvLayer):
        o = layer.out_channels
        return channel_groups(o, vector), np.arange(o)
    src = layouts[layer.inputs[0]]
    return src.groups, src.channel_index


def _plan_layouts(program: Program, vector: int, im2col: ConvLayer | None):
    layouts: dict[str, TensorLayout] = {}
    t_in = program.tensors[program.input]
    if im2col is None:
        layouts[t_in.name] = TensorLayout(t_in.name, t_in.height, t_in.width, channel_groups(t_in.channels, vector),
                                          np.arange(t_in.channels))
    else:
        o, c, kh, kw = im2col.weights.shape
        t_out = program.tensors[im2col.output]
        layouts[t_in.name] = TensorLayout(
            t_in.name, t_out.height, t_out.width, channel_groups(kh * kw * c, vector), np.arange(t_in.channels),
            im2col={"kernel": [kh, kw], "stride": list(im2col.stride), "pads": list(im2col.pads), "channels": c,
                    "order": "ky, kx, c"})
    goff: dict[str, int] = {}
    writers: dict[str, list] = {}
    for layer in program.layers:
        writers.setdefault(layer.output, []).append(layer)
    for layer in program.layers:
        if layer.output in layouts:
            continue
        for a, b in zip(layer.inputs, layer.inputs[1:]):
            la, lb = layouts[a], layouts[b]
            if la.groups != lb.groups or not np.array_equal(la.channel_index, lb.channel_index):
                raise FireforgeError(f"layer '{layer.name}': its inputs '{a}' and '{b}' have different channel "
                                     f"layouts in memory (different concat splits); not supported")
        t = program.tensors[layer.output]
        group, index = 0, np.full(t.channels, -1)
        for w in sorted(writers[layer.output], key=lambda l: l.out_channel_offset):
            if any(x not in layouts for x in w.inputs):
                raise FireforgeError(f"layer '{w.name}' writes into '{t.name}' before its input exists")
            g, idx = result_groups(w, layouts, vector)
            n = len(idx)
            index[w.out_channel_offset:w.out_channel_offset + n] = group * vector + idx
            goff[w.name] = group
            group += g
        if np.any(index < 0):
            raise FireforgeError(f"tensor '{t.name}': some channels are written by no layer")
        layouts[t.name] = TensorLayout(t.name, t.height, t.width, group, index)
    return layouts, goff


def allocate(program: Program, layouts: dict[str, TensorLayout], *, reuse: bool = True,
             fused: dict[str, int] | None = None) -> int:
    """First-fit addresses over live ranges (``reuse=False``: every tensor its own words, as in DRAM, where
    every layer's result stays for the check); returns the activation words needed.

    ``fused``: a fused max pool's input tensor -> the index of its first writer (fireforge.sw.schedule.fuse_pools):
    that tensor is never stored (it gets address 0 and no words), and the pool's output is live from the writer
    on (the writers write it while they still read their inputs)."""
    fused = fused or {}
    pool_out = {l.output: fused[l.input] for l in program.layers if l.kind == "maxpool" and l.input in fused}
    first: dict[str, int] = {program.input: -1}
    last: dict[str, int] = {}
    for i, layer in enumerate(program.layers):
        first.setdefault(layer.output, pool_out.get(layer.output, i))
        for x in layer.inputs:
            last[x] = i
    end = len(program.layers)
    last[program.output] = end
    last[program.input] = end      # kept intact: the host may start the engine again on the same input
    placed: list[tuple[int, int, int, int]] = []   # (addr, words, first, last)
    top = 0
    for name in sorted(first, key=lambda n: first[n]):
        lay = layouts[name]
        if name in fused:
            lay.addr = 0
            continue
        live = (first[name], last.get(name, first[name]))
        busy = sorted((a, a + w) for a, w, f, l in placed if not (l < live[0] or live[1] < f))
        addr = 0 if reuse else top
        for a0, a1 in busy if reuse else ():
            if addr + lay.words <= a0:
                break
            addr = max(addr, a1)
        lay.addr = addr
        placed.append((addr, lay.words, *live))
        top = max(top, addr + lay.words)
    return top




def conv_taps(layer: ConvLayer, plan_layouts: dict[str, TensorLayout], packed: ConvLayer | None) -> int:
    """Weight words per output group of a conv: kh·kw·input groups (1×1 over the windows when im2col)."""
    kh, kw = (1, 1) if layer is packed else layer.kernel
    return kh * kw * plan_layouts[layer.input].groups


def plan_memory(program: Program, vector: int, *, reuse: bool = True, fuse_pools: bool = False) -> MemoryPlan:
    """Layouts, activation addresses and ROM word counts of ``program`` on an engine of ``vector`` lanes
    (``reuse``: see :func:`allocate`; ``fuse_pools``: plan for the max pools the resident engine fuses into
    their writers, :attr:`MemoryPlan.fused`)."""
    packed = im2col_conv(program, vector)
    layouts, goff = _plan_layouts(program, vector, packed)
    fused = {}
    if fuse_pools:
        fused = pool_writers(program, goff, lambda l: result_groups(l, layouts, vector)[0],
                             {n: lay.groups for n, lay in layouts.items()})
    index = {l.name: i for i, l in enumerate(program.layers)}
    pools = {l.name: l for l in program.layers}
    act_words = allocate(program, layouts, reuse=reuse,
                         fused={pools[p].input: index[ws[0]] for p, ws in fused.items()})
    weight_words = quant_words = 0
    w_off, q_off = {}, {}
    for layer in program.layers:
        if isinstance(layer, ConvLayer):
            og = channel_groups(layer.out_channels, vector)
            w_off[layer.name], q_off[layer.name] = weight_words, quant_words
            weight_words += og * conv_taps(layer, layouts, packed)
            quant_words += og
    return MemoryPlan(layouts, goff, packed, act_words, weight_words, quant_words, w_off, q_off, vector, fused)


def planned_config(program: Program, config: EngineConfig, plan: MemoryPlan | None = None) -> EngineConfig:
    """``config`` with the automatic depths resolved for ``program`` (the ROM and buffer depths of its memory
    plan; descriptors: one per layer and the end marker) and ``add_unit`` resolved for its Add layers: what
    ``fireforge compile`` writes, and what the board fit check assumes for another MAC count or model."""
    plan = plan or plan_memory(program, config.vector, fuse_pools=not config.dram)
    return config.with_depths(weight_depth=plan.weight_words, quant_depth=plan.quant_words,
                              desc_depth=len(program.layers) + 1, act_depth=plan.act_words
                              ).with_add_unit(program.add_layer_names())


# -- the codec: logical [C, H, W] uint8 tensors <-> activation memory words ---------------------------------

def pack_im2col(x: np.ndarray, layout: TensorLayout, zero_point: int, vector: int) -> np.ndarray:
    """The input as the first conv's windows (see :func:`im2col_conv`): what a host writes.

    Word g of output pixel p holds taps (ky, kx, c) number g·vector .. g·vector+vector−1; taps in the
    padding hold the input zero point (the real value 0).
    """
    spec = layout.im2col
    kh, kw = spec["kernel"]
    sh, sw = spec["stride"]
    pt, pl, pb, pr = spec["pads"]
    c, h, w = x.shape
    xp = np.full((c, h + pt + pb, w + pl + pr), zero_point, np.uint8)
    xp[:, pt:pt + h, pl:pl + w] = x
    oh, ow = layout.height, layout.width
    taps = np.empty((oh, ow, kh, kw, c), np.uint8)
    for ky in range(kh):
        for kx in range(kw):
            taps[:, :, ky, kx, :] = xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw].transpose(1, 2, 0)
    k = kh * kw * c
    words = np.zeros((oh * ow, layout.groups * vector), np.uint8)
    words[:, :k] = taps.reshape(oh * ow, k)
    return words.reshape(oh * ow * layout.groups, vector)


def tensor_words(layout: TensorLayout, t: np.ndarray, zero_point: int, vector: int) -> np.ndarray:
    """The words of a logical [C, H, W] uint8 tensor in its physical layout (written at ``layout.addr``)."""
    if layout.im2col:
        return pack_im2col(t, layout, zero_point, vector)
    c, h, w = t.shape
    words = np.zeros((h * w, layout.groups * vector), np.uint8)
    words[:, np.asarray(layout.channel_index)] = t.reshape(c, h * w).T
    return words.reshape(h * w * layout.groups, vector)


def tensor_from_words(layout: TensorLayout, words: np.ndarray, vector: int) -> np.ndarray:
    """The logical [C, H, W] tensor of its ``layout.words`` memory words (uint8 [words, vector])."""
    pixels = np.asarray(words, np.uint8).reshape(layout.height * layout.width, layout.groups * vector)
    return pixels[:, np.asarray(layout.channel_index)].T.reshape(len(layout.channel_index), layout.height, layout.width)


def read_tensor(layout: TensorLayout, mem: np.ndarray, vector: int) -> np.ndarray:
    """A tensor [C, H, W] read out of an activation memory image (uint8 [depth, vector])."""
    return tensor_from_words(layout, mem[layout.addr:layout.addr + layout.words], vector)


def read_layer_result(descriptor: dict, channel_index: np.ndarray, mem: np.ndarray, vector: int) -> np.ndarray:
    """One layer's own result [C, H, W] (its slice of its output tensor) read out of an activation memory
    image: the words its descriptor wrote, the channels ``channel_index`` of them (a conv's: 0..O−1; a pool's
    or an add's: its input's physical channels)."""
    d = descriptor
    out_h, out_w, pitch, og = d["out_h"], d["out_w"], d["out_pitch"], d["og_count"]
    pix = np.arange(out_h * out_w)
    addrs = d["out_addr"] + pix[:, None] * pitch + np.arange(og)[None, :]
    block = mem[addrs].reshape(out_h * out_w, og * vector)
    idx = np.asarray(channel_index)
    return block[:, idx].T.reshape(len(idx), out_h, out_w)
