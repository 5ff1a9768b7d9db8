"""Schedule a program for one engine: physical tensor layouts, activation addresses, descriptors.

Physical layout: a tensor is stored pixel-major, one word per channel group of ``vector`` channels:
``addr(y, x, g) = base + (y·W + x)·groups + g``. A concat tensor is the concatenation of its writers'
layouts, each starting on a group boundary, so a writer's channel slice is whole words (channels that
pad a slice to a group are never read with a nonzero weight). Activation memory is reused: a tensor's
words are free again after its last reader (first-fit allocation over live ranges); the input and the
output are never overwritten, so back-to-back runs see the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fireforge.errors import FireforgeError
from fireforge.sim import requant
from fireforge.sw.config import EngineConfig
from fireforge.sw.descriptor import Op
from fireforge.sw.program import AddLayer, ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program

__all__ = ["TensorLayout", "Schedule", "schedule"]


@dataclass
class TensorLayout:
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


@dataclass
class Schedule:
    config: EngineConfig
    layouts: dict[str, TensorLayout]
    descriptors: list[dict]      # descriptor fields per layer, in program order (END not included)
    weight_offsets: list[int]    # first weight word per layer (-1 when the layer has none)
    quant_offsets: list[int]
    weight_words: int
    quant_words: int
    act_words: int
    luts: list[np.ndarray]
    im2col: ConvLayer | None = None   # the conv that reads a host-packed (im2col) input

    def conv_weights(self, layer: ConvLayer) -> np.ndarray:
        """The [O, C, kh, kw] weights the engine runs: an im2col conv is a 1x1 conv over kh·kw·C channels."""
        if layer is self.im2col:
            o, c, kh, kw = layer.weights.shape
            return np.ascontiguousarray(layer.weights.transpose(0, 2, 3, 1).reshape(o, kh * kw * c, 1, 1))
        return layer.weights


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
    packed = -(-(kh * kw * c) // vector)
    plain = kh * kw * -(-c // vector)
    return conv if packed < plain else None


def _result_layout(layer, program: Program, layouts: dict[str, TensorLayout], vector: int):
    """(groups, channel_index) of the words a layer produces (before placing them in its destination)."""
    if isinstance(layer, ConvLayer):
        o = layer.out_channels
        return -(-o // vector), np.arange(o)
    src = layouts[layer.inputs[0]]
    return src.groups, src.channel_index


def _plan_layouts(program: Program, vector: int, im2col: ConvLayer | None):
    layouts: dict[str, TensorLayout] = {}
    t_in = program.tensors[program.input]
    if im2col is None:
        layouts[t_in.name] = TensorLayout(t_in.name, t_in.height, t_in.width, -(-t_in.channels // vector),
                                          np.arange(t_in.channels))
    else:
        o, c, kh, kw = im2col.weights.shape
        t_out = program.tensors[im2col.output]
        layouts[t_in.name] = TensorLayout(
            t_in.name, t_out.height, t_out.width, -(-(kh * kw * c) // vector), np.arange(t_in.channels),
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
            g, idx = _result_layout(w, program, layouts, vector)
            n = len(idx)
            index[w.out_channel_offset:w.out_channel_offset + n] = group * vector + idx
            goff[w.name] = group
            group += g
        if np.any(index < 0):
            raise FireforgeError(f"tensor '{t.name}': some channels are written by no layer")
        layouts[t.name] = TensorLayout(t.name, t.height, t.width, group, index)
    return layouts, goff


def _allocate(program: Program, layouts: dict[str, TensorLayout]) -> int:
    """First-fit addresses over live ranges; returns the activation words needed."""
    first: dict[str, int] = {program.input: -1}
    last: dict[str, int] = {}
    for i, layer in enumerate(program.layers):
        first.setdefault(layer.output, i)
        for x in layer.inputs:
            last[x] = i
    end = len(program.layers)
    last[program.output] = end
    last[program.input] = end      # kept intact: the host may start the engine again on the same input
    placed: list[tuple[int, int, int, int]] = []   # (addr, words, first, last)
    top = 0
    for name in sorted(first, key=lambda n: first[n]):
        lay = layouts[name]
        live = (first[name], last.get(name, first[name]))
        busy = sorted((a, a + w) for a, w, f, l in placed if not (l < live[0] or live[1] < f))
        addr = 0
        for a0, a1 in busy:
            if addr + lay.words <= a0:
                break
            addr = max(addr, a1)
        lay.addr = addr
        placed.append((addr, lay.words, *live))
        top = max(top, addr + lay.words)
    return top


def _float_fields(value, layer: str, what: str) -> tuple[int, int]:
    try:
        return requant.requant_multiplier(float(value))
    except ValueError as e:
        raise FireforgeError(f"layer '{layer}': {what} {value} cannot be requantized: {e}") from None


def _add_fields(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp, layer: str) -> dict:
    """ADD: ORT's r = fma(a, ra, fma(b, rb, F)) constants (see sim.requant.qlinear_add): ra and rb as
    mantissa/shift, F as float32 bits."""
    from fireforge.hw.add_requant import add_constants_supported

    ra, rb, f = requant.qlinear_add_params(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp)
    problem = add_constants_supported(ra, rb, f)
    if problem:
        raise FireforgeError(f"layer '{layer}': the engine's adder cannot represent this add's scales: {problem}")
    mult_a, shift_a = _float_fields(ra, layer, "input A scale ratio")
    mult_b, shift_b = _float_fields(rb, layer, "input B scale ratio")
    for name, shift in (("A", shift_a), ("B", shift_b)):
        if not 0 <= shift < 256:
            raise FireforgeError(f"layer '{layer}': input {name} scale ratio is out of the engine's range")
    return {"mult_a": mult_a, "shift_a": shift_a, "mult_b": mult_b, "shift_b": shift_b,
            "aux": int(np.array(f, np.float32).view(np.uint32))}


def _gap_fields(x_scale, x_zp, y_scale, size: int, layer: str) -> dict:
    """GAP: the conv requantizer on Σx − zp·N with scale fl(x_scale / fl(y_scale·N))."""
    try:
        scale = requant.global_average_pool_scale(x_scale, y_scale, size)
    except ValueError as e:
        raise FireforgeError(f"layer '{layer}': {e}") from None
    mult, shift = _float_fields(scale, layer, "average scale")
    if not 0 <= shift < 256:
        raise FireforgeError(f"layer '{layer}': average scale {scale} is out of the engine's range")
    return {"mult_a": mult, "shift_a": shift, "aux": (-x_zp * size) & 0xFFFFFFFF}


def schedule(program: Program, config: EngineConfig) -> Schedule:
    v = config.vector
    packed = im2col_conv(program, v)
    layouts, goff = _plan_layouts(program, v, packed)
    act_words = _allocate(program, layouts)
    descriptors, w_off, q_off, luts = [], [], [], []
    weight_words = quant_words = 0
    for layer in program.layers:
        out_t = program.tensors[layer.output]
        dst = layouts[layer.output]
        src = layouts[layer.inputs[0]]
        y_scale, y_zp = program.requant_target(layer)
        kh, kw, sh, sw, pt, pl = 1, 1, 1, 1, 0, 0
        if isinstance(layer, (ConvLayer, MaxPoolLayer)):
            kh, kw = layer.kernel
            sh, sw = layer.stride
            pt, pl = layer.pads[0], layer.pads[1]
        elif isinstance(layer, GlobalAvgPoolLayer):
            kh, kw = src.height, src.width
        if layer is packed:      # a 1x1 conv over the packed windows
            kh, kw, sh, sw, pt, pl = 1, 1, 1, 1, 0, 0
        groups = src.groups
        conv = isinstance(layer, ConvLayer)
        g_count = groups if conv else 1
        d = {"og_count": _result_layout(layer, program, layouts, v)[0],
             "out_h": out_t.height, "out_w": out_t.width, "kernel_h": kh, "kernel_w": kw, "g_count": g_count,
             "in_h": src.height, "in_w": src.width, "stride_h": sh, "stride_w": sw, "pad_t": pt, "pad_l": pl,
             "pad_en": int(any(layer.pads)) if isinstance(layer, (ConvLayer, MaxPoolLayer)) and layer is not packed else 0,
             "depthwise": int(not conv),
             "win_addr0": src.addr - (pt * src.width + pl) * groups,
             "row_step": sh * src.width * groups, "pix_step": sw * groups, "ky_step": src.width * groups,
             "kx_step": groups, "taps": kh * kw * g_count,
             "out_addr": dst.addr + goff[layer.name], "out_pitch": dst.groups,
             "in_zp": program.tensors[layer.inputs[0]].zero_point, "out_zp": y_zp}
        if layer.lut is not None:
            d.update(lut_en=1, lut_index=len(luts))
            luts.append(layer.lut)
        w_off.append(-1)
        q_off.append(-1)
        if conv:
            d.update(op=Op.CONV, relu=int(layer.relu), weight_addr=weight_words, quant_addr=quant_words)
            w_off[-1], q_off[-1] = weight_words, quant_words
            weight_words += d["og_count"] * d["taps"]
            quant_words += d["og_count"]
        elif isinstance(layer, MaxPoolLayer):
            d.update(op=Op.MAXPOOL)
        elif isinstance(layer, AddLayer):
            a, b = program.tensors[layer.input_a], program.tensors[layer.input_b]
            p = _add_fields(a.scale, a.zero_point, b.scale, b.zero_point, y_scale, y_zp, layer.name)
            d.update(op=Op.ADD, kernel_w=2, kx_step=layouts[layer.input_b].addr - src.addr, in2_zp=b.zero_point, **p)
        elif isinstance(layer, GlobalAvgPoolLayer):
            x = program.tensors[layer.input]
            p = _gap_fields(x.scale, x.zero_point, y_scale, x.height * x.width, layer.name)
            d.update(op=Op.GAP, **p)
        descriptors.append(d)
    return Schedule(config, layouts, descriptors, w_off, q_off, weight_words, quant_words, act_words, luts, packed)
