"""QLinearGlobalAveragePool and QLinearAveragePool (com.microsoft, NCHW), twice: float32 emulation and
integer formulation (notation in :mod:`fireforge.sim.softfloat`).

QLinearGlobalAveragePool (channels_last=0)::

    acc   = int32( sum(x) - x_zp * N )                   # N = H*W, integer sum (wraps like int32)
    scale = fl(x_scale / fl(y_scale * float(N)))         # ORT throws unless 2^-32 <= scale < 256, N < 2^24
    y     = rint(clamp(fl(fl(acc) * scale), -y_zp, 255 - y_zp)) + y_zp   # = conv requant

QLinearAveragePool (ceil_mode=0).  If the kernel covers the whole image and all pads are 0 ORT falls back
to the global-average-pool formula above.  Otherwise::

    d_i = fl(x_scale * float(x_i - x_zp));  s = (((0 + d_0) + d_1) + ...)  in float32, window row-major
    v   = fl(s / float(count));  y = clamp(cvt(fl(fl(v / y_scale) + float(y_zp))), 0, 255)
"""

from __future__ import annotations

import numpy as np

from fireforge.core.numerics import QMAX, QMIN, requant_multiplier
from fireforge.sim.requant_conv import check_zero_point, requantize, requantize_float32
from fireforge.sim.softfloat import cvtps2dq, sf_add, sf_cvt, sf_div, sf_from_f32, sf_from_int, sf_mul, sf_round

__all__ = ["global_average_pool_scale", "global_average_pool", "global_average_pool_int", "qlinear_average_pool",
           "qlinear_average_pool_int"]

_F32 = np.float32


def global_average_pool_scale(x_scale, y_scale, image_size: int) -> np.float32:
    """``fl(x_scale / fl(y_scale * N))``; ValueError where ORT throws (N >= 2^24, scale outside [2^-32, 256))."""
    n = int(image_size)
    if n <= 0 or n >= 2**24:
        raise ValueError(f"QLinearGlobalAveragePool image size out of range: {image_size!r}")
    with np.errstate(all="ignore"):
        s = _F32(_F32(x_scale) / _F32(_F32(y_scale) * _F32(n)))
    if not (s >= _F32(2.0**-32) and s < _F32(256.0)):
        raise ValueError(f"QLinearGlobalAveragePool parameter out of computation range: scale {float(s)!r}")
    return s


def _gap_acc(x, x_zp):
    x = np.asarray(x, np.uint8)
    if x.ndim < 3:
        raise ValueError("global average pool input must be [C,H,W] or [N,C,H,W]")
    n = int(np.prod(x.shape[-2:]))
    s = x.reshape(x.shape[:-2] + (n,)).astype(np.int64).sum(-1) - int(x_zp) * n
    s = ((s + 2**31) % 2**32) - 2**31  # ORT sums in int32
    return s, n


def global_average_pool(x, x_scale, x_zp, y_scale, y_zp) -> np.ndarray:
    """Float32 emulation of ORT QLinearGlobalAveragePool (NCHW): int32 sum, then conv-style requant.

    ``x`` is [C,H,W] (or [N,C,H,W]); returns uint8 of shape [C] (or [N,C]).
    """
    check_zero_point(x_zp, "x_zp")
    acc, n = _gap_acc(x, x_zp)
    return requantize_float32(acc, global_average_pool_scale(x_scale, y_scale, n), y_zp)


def global_average_pool_int(x, x_scale, x_zp, y_scale, y_zp) -> np.ndarray:
    """Integer formulation: integer sum (8 b + log2 N bits; 32 b for N < 2^24) minus ``x_zp*N`` then
    :func:`requantize` with the multiplier of :func:`global_average_pool_scale` (a host constant)."""
    check_zero_point(x_zp, "x_zp")
    acc, n = _gap_acc(x, x_zp)
    m, sh = requant_multiplier(global_average_pool_scale(x_scale, y_scale, n))
    return requantize(acc, m, sh, y_zp)


def _pool_windows(shape, kernel_shape, strides, pads, count_include_pad: bool):
    """(output shape, taps, count) of a 2-D pool: ``taps`` lists each kernel tap (row-major) as (the index of
    that tap of every window, clipped into the image; whether it lies in the image), ``count`` the divisor
    of every window."""
    h, w = shape[-2:]
    kh, kw = kernel_shape
    sh, sw = strides
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    hs = np.arange(oh) * sh - pt
    ws = np.arange(ow) * sw - pl
    taps = []
    for i in range(kh):
        hi = hs + i
        vh = (hi >= 0) & (hi < h)
        for j in range(kw):
            wj = ws + j
            vw = (wj >= 0) & (wj < w)
            index = (..., np.clip(hi, 0, h - 1)[:, None], np.clip(wj, 0, w - 1)[None, :])
            taps.append((index, vh[:, None] & vw[None, :]))
    if count_include_pad:
        return (oh, ow), taps, np.full((oh, ow), kh * kw)
    he, we = np.minimum(hs + kh, h), np.minimum(ws + kw, w)
    hs0, ws0 = np.maximum(hs, 0), np.maximum(ws, 0)
    return (oh, ow), taps, (he - hs0)[:, None] * (we - ws0)[None, :]


def _pool_input(x, x_zp, y_zp) -> np.ndarray:
    check_zero_point(x_zp, "x_zp")
    check_zero_point(y_zp, "y_zp")
    return np.asarray(x, np.uint8)


def _is_global_fallback(shape, kernel_shape, pads):
    return tuple(shape[-2:]) == tuple(kernel_shape) and all(int(p) == 0 for p in pads)


def qlinear_average_pool(x, x_scale, x_zp, y_scale, y_zp, kernel_shape, strides=(1, 1),
                         pads=(0, 0, 0, 0), count_include_pad: bool = False) -> np.ndarray:
    """Float32 emulation of ORT QLinearAveragePool (2-D, NCHW, ceil_mode=0, explicit pads).

    ORT dequantizes to float32, sums the window in row-major order in float32, divides by the count,
    then ``nearbyintf(fl(v / y_scale) + y_zp)``.  Kernel == image with zero pads uses the global path.
    """
    x = _pool_input(x, x_zp, y_zp)
    if _is_global_fallback(x.shape, kernel_shape, pads):
        return global_average_pool(x, x_scale, x_zp, y_scale, y_zp)[..., None, None]
    out_hw, taps, count = _pool_windows(x.shape, kernel_shape, strides, pads, count_include_pad)
    with np.errstate(all="ignore"):  # inf/NaN are legitimate here (CVTPS2DQ turns them into 0)
        deq = (x.astype(np.int32) - int(x_zp)).astype(_F32) * _F32(x_scale)
        acc = np.zeros(x.shape[:-2] + out_hw, _F32)
        for idx, valid in taps:
            acc = acc + np.where(valid, deq[idx], _F32(0))  # +0.0 is exact
        v = acc / count.astype(_F32)
        v = (v / _F32(y_scale)) + _F32(int(y_zp))
    return np.clip(cvtps2dq(v), QMIN, QMAX).astype(np.uint8)


def qlinear_average_pool_int(x, x_scale, x_zp, y_scale, y_zp, kernel_shape, strides=(1, 1),
                             pads=(0, 0, 0, 0), count_include_pad: bool = False) -> np.ndarray:
    """Integer formulation of :func:`qlinear_average_pool` (same float32 steps on integer mantissas).

    Per window: kh*kw roundings of ``(x - zp) * Mxs`` (8 b x 24 b products), a chain of kh*kw - 1
    aligned adds each rounded to 24 bits, two 24-bit divisions (count, y_scale) and the rounded add of
    y_zp before the final RNE.  Practical only as a sequential multi-cycle unit (it is float32 in all
    but name); the global-pool fallback uses :func:`global_average_pool_int`.
    """
    x = _pool_input(x, x_zp, y_zp)
    if _is_global_fallback(x.shape, kernel_shape, pads):
        return global_average_pool_int(x, x_scale, x_zp, y_scale, y_zp)[..., None, None]
    out_hw, taps, count = _pool_windows(x.shape, kernel_shape, strides, pads, count_include_pad)
    xs = sf_from_f32(_F32(x_scale))
    deq = sf_mul(sf_from_int(x.astype(np.int64) - int(x_zp)), xs)
    out_shape = x.shape[:-2] + out_hw
    z = np.zeros(out_shape, np.int64)
    acc = (np.zeros(out_shape, bool), z, z, np.zeros(out_shape, bool))
    for idx, valid in taps:
        term = (deq[0][idx] & valid, np.where(valid, deq[1][idx], 0), np.where(valid, deq[2][idx], 0),
                deq[3][idx] & valid)
        acc = sf_add(acc, term)
    cnt_sf = sf_round(np.zeros(count.shape, bool), count.astype(np.int64), np.zeros(count.shape, np.int64))
    v = sf_div(acc, cnt_sf)
    v = sf_div(v, sf_from_f32(_F32(y_scale)))
    v = sf_add(v, sf_from_int(np.int64(int(y_zp))))
    return np.clip(sf_cvt(v), QMIN, QMAX).astype(np.uint8)
