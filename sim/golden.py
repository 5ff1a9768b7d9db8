"""The golden model: a NumPy integer executor of the layer program — the executable spec of the hardware.

One function per hardware block (``conv``, ``maxpool``, ``add``, ``global_average_pool``, and the
requantizer in :mod:`fireforge.sim.requant`), each with the integer semantics the engine implements and
ONNX Runtime's integer kernels compute. Convolutions are exact integer sums computed through BLAS: a
float32 GEMM is exact while K·255·128 < 2^24, a float64 GEMM while K·255·128 < 2^53.
"""

from __future__ import annotations

import numpy as np

from fireforge.core.numerics import quantize_input
from fireforge.sim import requant
from fireforge.core.program import AddLayer, ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program

__all__ = ["quantize_input", "conv_accumulate", "conv", "maxpool", "add", "global_average_pool", "run_layer",
           "run", "GoldenResult"]

_F32_EXACT_K = (1 << 24) // (255 * 128)


def _pad(x: np.ndarray, pads, value: int) -> np.ndarray:
    t, l, b, r = pads
    if not any(pads):
        return x
    c, h, w = x.shape
    out = np.full((c, h + t + b, w + l + r), value, dtype=x.dtype)
    out[:, t:t + h, l:l + w] = x
    return out


def _windows(x: np.ndarray, kernel, stride, out_hw) -> np.ndarray:
    """[C, OH, OW, kh, kw] strided view of the (padded) map."""
    kh, kw = kernel
    sh, sw = stride
    oh, ow = out_hw
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return v[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw]


def conv_accumulate(layer: ConvLayer, x: np.ndarray, in_zero_point: int, out_hw) -> np.ndarray:
    """Exact int32 accumulators [O, OH, OW]: Σ w·(x − zp_x) + bias, zero padding in the real domain."""
    w = layer.weights
    o, c, kh, kw = w.shape
    xp = _pad(x, layer.pads, in_zero_point)
    win = _windows(xp, (kh, kw), layer.stride, out_hw)            # [C, OH, OW, kh, kw]
    k = c * kh * kw
    dtype = np.float32 if k <= _F32_EXACT_K else np.float64
    cols = win.transpose(0, 3, 4, 1, 2).reshape(k, -1).astype(dtype)
    wm = w.reshape(o, k).astype(dtype)
    acc = (wm @ cols).astype(np.int64)
    acc -= in_zero_point * _weight_sums(layer)[:, None]
    acc += layer.bias.astype(np.int64)[:, None]
    return acc.reshape(o, *out_hw)


def _weight_sums(layer: ConvLayer) -> np.ndarray:
    """Σw per output channel (cached on the layer: it multiplies the input zero point)."""
    cached = getattr(layer, "_golden_weight_sums", None)
    if cached is None:
        cached = layer.weights.reshape(layer.out_channels, -1).astype(np.int64).sum(axis=1)
        object.__setattr__(layer, "_golden_weight_sums", cached)
    return cached


def _multipliers(layer: ConvLayer):
    cached = getattr(layer, "_golden_multipliers", None)
    if cached is None:
        pairs = [requant.requant_multiplier(float(s)) for s in layer.scale]
        cached = (np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64))
        object.__setattr__(layer, "_golden_multipliers", cached)
    return cached


def conv(layer: ConvLayer, x: np.ndarray, in_zero_point: int, out_zero_point: int, out_hw, *,
         integer_requant: bool = False) -> np.ndarray:
    """Conv + bias + requant (+ ReLU) → uint8 [O, OH, OW] (before any concat table).

    The requantizer's specification is the integer pipeline :func:`fireforge.sim.requant.requantize`
    (what the hardware implements); by default its float32 twin, proven bit-identical by
    tests/test_requant.py and tests/test_golden.py, computes the same bytes several times faster.
    """
    acc = conv_accumulate(layer, x, in_zero_point, out_hw)
    if integer_requant:
        mant, shift = _multipliers(layer)
        return requant.requantize(acc, mant[:, None, None], shift[:, None, None], out_zero_point, relu=layer.relu)
    return _requantize_f32(acc, layer.scale[:, None, None], out_zero_point, layer.relu)


def _requantize_f32(acc: np.ndarray, scale: np.ndarray, zero_point: int, relu: bool) -> np.ndarray:
    """rint(clamp(fl(fl(acc)·scale), lo, 255 − zp)) + zp, in float32 (the twin of requant.requantize)."""
    v = acc.astype(np.int32).astype(np.float32) * scale.astype(np.float32)
    lo = np.float32(0 if relu else -zero_point)
    np.clip(v, lo, np.float32(255 - zero_point), out=v)
    np.rint(v, out=v)
    v += np.float32(zero_point)
    return v.astype(np.uint8)


def maxpool(layer: MaxPoolLayer, x: np.ndarray, out_hw) -> np.ndarray:
    """Max over each window, clipped to the map (padding never wins: 0 is the smallest uint8)."""
    xp = _pad(x, layer.pads, 0)
    kh, kw = layer.kernel
    sh, sw = layer.stride
    oh, ow = out_hw
    out = None
    for dy in range(kh):      # elementwise max of kh·kw strided views: much faster than a window reduce
        for dx in range(kw):
            view = xp[:, dy:dy + (oh - 1) * sh + 1:sh, dx:dx + (ow - 1) * sw + 1:sw]
            out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


def add(a: np.ndarray, a_q, b: np.ndarray, b_q, y_q) -> np.ndarray:
    return requant.qlinear_add(a, a_q[0], a_q[1], b, b_q[0], b_q[1], y_q[0], y_q[1])


def global_average_pool(x: np.ndarray, x_q, y_q) -> np.ndarray:
    return requant.global_average_pool(x, x_q[0], x_q[1], y_q[0], y_q[1]).reshape(-1, 1, 1)


def run_layer(program: Program, layer, tensors: dict[str, np.ndarray], *, integer_requant: bool = False) -> np.ndarray:
    """One layer's own result (its channel slice, before any concat table)."""
    out_t = program.tensors[layer.output]
    out_hw = (out_t.height, out_t.width)
    if isinstance(layer, ConvLayer):
        x_t = program.tensors[layer.input]
        return conv(layer, tensors[layer.input], x_t.zero_point, program.requant_target(layer)[1], out_hw,
                    integer_requant=integer_requant)
    if isinstance(layer, MaxPoolLayer):
        return maxpool(layer, tensors[layer.input], out_hw)
    if isinstance(layer, AddLayer):
        a_t, b_t = program.tensors[layer.input_a], program.tensors[layer.input_b]
        return add(tensors[layer.input_a], (a_t.scale, a_t.zero_point), tensors[layer.input_b],
                   (b_t.scale, b_t.zero_point), program.requant_target(layer))
    if isinstance(layer, GlobalAvgPoolLayer):
        x_t = program.tensors[layer.input]
        return global_average_pool(tensors[layer.input], (x_t.scale, x_t.zero_point), program.requant_target(layer))
    raise TypeError(f"unknown layer {layer!r}")


class GoldenResult:
    """Every tensor of one run, and every layer's own result."""

    def __init__(self, program: Program, tensors: dict[str, np.ndarray], layer_outputs: dict[str, np.ndarray]):
        self.program = program
        self.tensors = tensors
        self.layer_outputs = layer_outputs

    @property
    def output(self) -> np.ndarray:
        return self.tensors[self.program.output]

    def scores(self) -> np.ndarray:
        return self.output.reshape(-1)


def run(program: Program, x: np.ndarray, *, integer_requant: bool = False) -> GoldenResult:
    """Execute the whole program on one float input (NCHW, batch 1).

    ``integer_requant=True`` runs the requantizer's integer specification instead of its float32 twin."""
    t_in = program.tensors[program.input]
    tensors = {program.input: quantize_input(x, t_in.scale, t_in.zero_point)}
    layer_outputs = {}
    for layer in program.layers:
        y = run_layer(program, layer, tensors, integer_requant=integer_requant)
        layer_outputs[layer.name] = y
        if layer.lut is not None:
            y = layer.lut[y]
        t = program.tensors[layer.output]
        if layer.output not in tensors:
            tensors[layer.output] = np.zeros(t.shape, np.uint8)
        c0 = layer.out_channel_offset
        tensors[layer.output][c0:c0 + y.shape[0]] = y
    return GoldenResult(program, tensors, layer_outputs)
