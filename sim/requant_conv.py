"""Conv / MatMul requantization and QLinearConcat's tables: ONNX Runtime's per-tensor float32 requant.

Scope: requantization only.  On the AVX2 machine measured, ORT's u8 x s8 conv *accumulator* is not the
exact sum: VPMADDUBSW adds pairs of raw ``x*w`` products (consecutive K elements, K ordered (kh, kw, ci))
with int16 saturation before the int32 sum; ``x_zp * sum(w)`` is subtracted separately.  With
``|w| <= 64`` no pair can saturate (255*64*2 < 2^15) and the accumulator is exact.

Formulas (notation in :mod:`fireforge.sim.softfloat`):

QLinearConv / MatMul requant (MlasRequantizeOutput, ConvSym post-process)::

    scale_c = fl(fl(x_scale * w_scale_c) / y_scale)
    y = rint(clamp(fl(fl(acc) * scale_c), -zp, 255 - zp)) + zp          # clamp BEFORE rounding

QLinearConcat (com.microsoft; per input with (scale, zp) != (y_scale, y_zp) a 256-entry table)::

    table[i] = rint(clamp(fl(fl(x_scale * float(i - x_zp)) / y_scale), -y_zp, 255 - y_zp)) + y_zp
    (identity copy when x_scale == y_scale and x_zp == y_zp)

See :func:`requantize` for the hardware pipeline of the conv requant with bit widths.
"""

from __future__ import annotations

import numpy as np

from fireforge.core.numerics import QMAX, QMIN
from fireforge.sim.softfloat import INT32_MIN, bitlen, rshift_rne

__all__ = ["requantize", "requantize_float32", "concat_requant_table", "qlinear_concat"]

_F32 = np.float32


# ----------------------------------------------------------------------------------------------
# Argument checks shared by the requant modules
# ----------------------------------------------------------------------------------------------


def as_int_array(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64)


def check_zero_point(zp, name="zero_point") -> np.ndarray:
    z = as_int_array(zp, name)
    if np.any((z < QMIN) | (z > QMAX)):
        raise ValueError(f"{name} must be in [0, 255], got {zp!r}")
    return z


# ----------------------------------------------------------------------------------------------
# Conv / MatMul requantization
# ----------------------------------------------------------------------------------------------


def requantize(acc, mantissa, shift, zero_point, relu: bool = False) -> np.ndarray:
    """Integer-only requantization, bit-exact with MLAS's float32 requant (see :func:`requantize_float32`).

    ``acc`` int32 accumulators (bias included); ``mantissa``/``shift`` from :func:`requant_multiplier`
    and ``zero_point`` broadcast against ``acc`` (put the channel axis where the caller's broadcasting
    needs it).  ``relu=True`` clamps at ``zero_point`` (real 0) instead of 0.  Returns uint8.

    Pipeline (all sign-magnitude; IEEE round-to-nearest-even is symmetric in the sign)::

      S0  acc            : int32, two's complement                               32 b
      S1  u = |acc|      : unsigned magnitude (|-2^31| = 2^31)                     32 b
          int->fp32      : L = bitlen(u) (LZC), d = max(0, L-24) in [0,8]           4 b
                           Ma = RNE(u / 2^d)  (guard + sticky); if Ma == 2^24 then   24 b
                           Ma = 2^23, d += 1.  Exact for |acc| < 2^24 (d = 0).
      S2  P = Ma * m     : 24 x 24 unsigned multiplier                            48 b
      S3  fp32 multiply  : Lp = bitlen(P) (LZC over 48 b), k = max(0, Lp-24)       5 b
          rounding       : Mp = RNE(P / 2^k) (guard + sticky over <= 24 bits)      25 b (2^24 ok)
      S4  to integer     : E = d + k - shift (shift in [-104,149], E 10 b signed),
                           r = -E.  Mp >= 2^23 whenever acc != 0, so r <= 15 means
                           |value| >= 256 (saturate) and r >= 26 means <= 1/4 (-> 0):
                           mag = RNE(Mp / 2^r) needs r in [16, 25] only            9 b
      S5  sign, clamp    : v = +-mag clamped to [lo, 255-zp], lo = -zp or 0 (relu)  10 b signed
          + zero point   : q = v + zp                                              8 b

    Double rounding is intentional: S1 and S3 reproduce the two float32 roundings of ORT, S4 the
    CVTPS2DQ round-half-even.  Underflow: if the true product |acc|*scale is below 2^-126 (fp32
    subnormal range) both fp32 (coarser subnormal rounding) and S3/S4 give a magnitude <= 2^-126, which
    S4 rounds to 0, so subnormal handling needs no extra hardware.  Overflow (fp32 inf for scale >~ 2^96)
    saturates exactly like ORT's clamp.
    """
    a = as_int_array(acc, "acc")
    if np.any((a < INT32_MIN) | (a > 2**31 - 1)):
        raise ValueError("acc must fit in int32")
    m = as_int_array(mantissa, "mantissa")
    if np.any((m < 2**23) | (m >= 2**24)):
        raise ValueError(f"mantissa must satisfy 2**23 <= m < 2**24, got {mantissa!r}")
    sh = as_int_array(shift, "shift")
    zp = check_zero_point(zero_point)
    a, m, sh, zp = np.broadcast_arrays(a, m, sh, zp)

    neg = a < 0
    u = np.abs(a)  # int64: 2**31 fits
    # S1: int32 -> float32, round to 24 significant bits.
    d = np.maximum(bitlen(u) - 24, 0)
    ma = rshift_rne(u, d)
    carry = ma == 2**24
    ma = np.where(carry, 2**23, ma)
    d = d + carry
    # S2: exact 48-bit product.
    p = ma * m
    # S3: float32 multiply rounding.
    k = np.maximum(bitlen(p) - 24, 0)
    mp = rshift_rne(p, k)
    # S4: round half to even at the binary point.
    e = d + k - sh
    up_shift = np.clip(e, 0, 16)  # e >= 0 means >= 2^23: saturates below anyway
    mag = np.where(e >= 0, mp << up_shift, rshift_rne(mp, np.clip(-e, 0, 26)))
    # S5: sign, clamp, zero point.
    v = np.where(neg, -mag, mag)
    lo = np.zeros_like(zp) if relu else -zp
    v = np.clip(v, lo, QMAX - zp)
    return (v + zp).astype(np.uint8)


def requantize_float32(acc, scale_f32, zero_point, relu: bool = False) -> np.ndarray:
    """NumPy float32 twin of MLAS requant: ``rint(clamp(fl(fl(acc)*scale), lo, 255-zp)) + zp``.

    Mirrors CVTDQ2PS, MULPS, MAXPS/MINPS (clamp before rounding, so no INT32_MIN quirk), CVTPS2DQ.
    """
    a = as_int_array(acc, "acc")
    if np.any((a < INT32_MIN) | (a > 2**31 - 1)):
        raise ValueError("acc must fit in int32")
    s = np.asarray(scale_f32, dtype=_F32)
    zp = check_zero_point(zero_point)
    with np.errstate(over="ignore"):
        v = a.astype(np.int32).astype(_F32) * s
    lo = np.zeros(zp.shape, _F32) if relu else (-zp).astype(_F32)
    v = np.minimum(np.maximum(v, lo), (QMAX - zp).astype(_F32))
    return (np.rint(v).astype(np.int64) + zp).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# QLinearConcat
# ----------------------------------------------------------------------------------------------


def concat_requant_table(x_scale, x_zp, y_scale, y_zp) -> np.ndarray:
    """The 256-entry uint8 table ORT's QLinearConcat applies to an input (identity if params equal).

    ``fl(x_scale * (i - x_zp))`` (QlinearBuildLookupTable) then MlasQuantizeLinear: DIVPS by y_scale,
    clamp, CVTPS2DQ, + zp.  On hardware this is a per-input constant LUT, so no integer datapath is
    needed; the table itself is computed offline.
    """
    xs, ys = _F32(x_scale), _F32(y_scale)
    xz, yz = int(check_zero_point(x_zp, "x_zp")), int(check_zero_point(y_zp, "y_zp"))
    if xs == ys and xz == yz:
        return np.arange(256, dtype=np.uint8)
    with np.errstate(all="ignore"):
        deq = (np.arange(256, dtype=np.int32) - xz).astype(_F32) * xs
        v = deq / ys
    v = np.minimum(np.maximum(v, _F32(QMIN - yz)), _F32(QMAX - yz))
    return (np.rint(v).astype(np.int64) + yz).astype(np.uint8)


def qlinear_concat(inputs, x_scales, x_zps, y_scale, y_zp, axis: int) -> np.ndarray:
    """QLinearConcat: each input mapped through its :func:`concat_requant_table`, then concatenated."""
    parts = [concat_requant_table(s, z, y_scale, y_zp)[np.asarray(x, np.uint8)]
             for x, s, z in zip(inputs, x_scales, x_zps)]
    return np.concatenate(parts, axis=axis)
