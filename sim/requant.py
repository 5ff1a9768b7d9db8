"""Integer-exact requantization specification, byte-exact with ONNX Runtime 1.32 (CPU, MLAS).

Why this module exists: the accelerator must produce the *same bytes* as ONNX Runtime's CPU integer
kernels.  ORT does every requantization in IEEE float32 (with particular operation orders, one
fused multiply-add chain, and x86 conversion quirks), so "nearly the same arithmetic" differs in a few
outputs per thousand.  This file pins each operator down twice:

* a NumPy float32 *emulation* that mirrors the MLAS instruction sequence (the reference twin), and
* an *integer* formulation (numpy int64 / Python int, no float arithmetic per element) that a
  pipelined integer circuit can implement and that is bit-identical to the emulation.

Measured on onnxruntime 1.32.0, Linux x86-64.  The test machine is an AMD Zen3 (AVX2 + FMA3, *no*
AVX-512, no VNNI); the formulas below are the ones of the AVX2/FMA3 MLAS kernels that ORT dispatches to
there (QLinearAdd uses ``qladd_avx2.cpp``, whose FMA chain is the reason for its odd formula).

Scope: requantization only.  On this AVX2 machine ORT's u8 x s8 conv *accumulator* is not the exact
sum: VPMADDUBSW adds pairs of raw ``x*w`` products (consecutive K elements, K ordered (kh, kw, ci))
with int16 saturation before the int32 sum; ``x_zp * sum(w)`` is subtracted separately.  With
``|w| <= 64`` no pair can saturate (255*64*2 < 2^15) and the accumulator is exact.

Formulas (``fl`` = float32 round-to-nearest-even, ``fma`` = single-rounding fused multiply-add,
``rint`` = round half to even, ``cvt`` = x86 CVTPS2DQ: rint, and INT32_MIN if the result does not fit
int32 or is NaN):

QLinearConv / MatMul requant (MlasRequantizeOutput, ConvSym post-process)::

    scale_c = fl(fl(x_scale * w_scale_c) / y_scale)
    y = rint(clamp(fl(fl(acc) * scale_c), -zp, 255 - zp)) + zp          # clamp BEFORE rounding

QLinearAdd (com.microsoft, uint8; MlasQLinearAddKernelAvx2Helper)::

    ra = fl(a_scale / y_scale);  rb = fl(b_scale / y_scale)
    F  = fl(float(y_zp) - fma(ra, float(a_zp), fl(rb * float(b_zp))))   # zero points folded in once
    r  = fma(float(a), ra, fma(float(b), rb, F))                         # raw a, b; B term first
    y  = clamp(cvt(r), 0, 255)            # clamp AFTER conversion; |r| >= 2^31 -> INT32_MIN -> 0 (!)

QLinearConcat (com.microsoft; per input with (scale, zp) != (y_scale, y_zp) a 256-entry table)::

    table[i] = rint(clamp(fl(fl(x_scale * float(i - x_zp)) / y_scale), -y_zp, 255 - y_zp)) + y_zp
    (identity copy when x_scale == y_scale and x_zp == y_zp)

QLinearGlobalAveragePool (com.microsoft, channels_last=0)::

    acc   = int32( sum(x) - x_zp * N )                   # N = H*W, integer sum (wraps like int32)
    scale = fl(x_scale / fl(y_scale * float(N)))         # ORT throws unless 2^-32 <= scale < 256, N < 2^24
    y     = rint(clamp(fl(fl(acc) * scale), -y_zp, 255 - y_zp)) + y_zp   # = conv requant

QLinearAveragePool (com.microsoft, NCHW, ceil_mode=0).  If the kernel covers the whole image and all
pads are 0 ORT falls back to the global-average-pool formula above.  Otherwise::

    d_i = fl(x_scale * float(x_i - x_zp));  s = (((0 + d_0) + d_1) + ...)  in float32, window row-major
    v   = fl(s / float(count));  y = clamp(cvt(fl(fl(v / y_scale) + float(y_zp))), 0, 255)

The integer versions implement IEEE float32 with explicit integer mantissas/exponents (``_sf_*`` helpers):
every fl(), fma() and division above is "exact integer result, then round to 24 significant bits
half-to-even (or at 2^-149 for subnormals)".  See :func:`requantize` for the hardware pipeline of the
conv requant with bit widths, and :func:`qlinear_add_int` for the add.
"""

from __future__ import annotations

import numpy as np

from fireforge.core.numerics import (QMAX, QMIN, check_scale_value, conv_requant_scales, requant_multiplier,
                                     requant_multipliers)

__all__ = [
    "requant_multiplier",
    "requant_multipliers",
    "conv_requant_scales",
    "requantize",
    "requantize_float32",
    "qlinear_add_params",
    "qlinear_add",
    "qlinear_add_int",
    "concat_requant_table",
    "qlinear_concat",
    "global_average_pool_scale",
    "global_average_pool",
    "global_average_pool_int",
    "qlinear_average_pool",
    "qlinear_average_pool_int",
]

INT32_MIN = -(2**31)
_F32 = np.float32

# ----------------------------------------------------------------------------------------------
# Scales
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Integer helpers (int64 numpy)
# ----------------------------------------------------------------------------------------------


def _bitlen(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (< 2**63); 0 for 0.  frexp then exact correction."""
    x = np.asarray(x, dtype=np.int64)
    bl = np.frexp(x.astype(np.float64))[1].astype(np.int64)
    bl = np.where(x == 0, 0, bl)
    # float64 rounding may overshoot by one for x >= 2**53; fix exactly with integer shifts.
    hi = np.minimum(np.maximum(bl - 1, 0), 63)
    over = (bl > 0) & ((x >> hi) == 0)
    bl = np.where(over, bl - 1, bl)
    under = (x >> np.minimum(bl, 63)) != 0
    return np.where(under, bl + 1, bl)


def _rshift_rne(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``x / 2**r`` rounded half to even, for int64 ``0 <= x < 2**63`` and any ``r >= 0``."""
    x = np.asarray(x, dtype=np.int64)
    r = np.asarray(r, dtype=np.int64)
    rc = np.clip(r, 0, 63)
    q = x >> rc
    rem = x - (q << rc)
    half = np.where(rc > 0, np.left_shift(np.int64(1), np.maximum(rc - 1, 0)), 0)
    up = (rc > 0) & ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    out = q + up.astype(np.int64)
    return np.where(r > 63, 0, out)  # x < 2**63 <= half-ulp: rounds to 0


def _as_int_array(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64)


def _check_zero_point(zp, name="zero_point") -> np.ndarray:
    z = _as_int_array(zp, name)
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
    a = _as_int_array(acc, "acc")
    if np.any((a < INT32_MIN) | (a > 2**31 - 1)):
        raise ValueError("acc must fit in int32")
    m = _as_int_array(mantissa, "mantissa")
    if np.any((m < 2**23) | (m >= 2**24)):
        raise ValueError(f"mantissa must satisfy 2**23 <= m < 2**24, got {mantissa!r}")
    sh = _as_int_array(shift, "shift")
    zp = _check_zero_point(zero_point)
    a, m, sh, zp = np.broadcast_arrays(a, m, sh, zp)

    neg = a < 0
    u = np.abs(a)  # int64: 2**31 fits
    # S1: int32 -> float32, round to 24 significant bits.
    d = np.maximum(_bitlen(u) - 24, 0)
    ma = _rshift_rne(u, d)
    carry = ma == 2**24
    ma = np.where(carry, 2**23, ma)
    d = d + carry
    # S2: exact 48-bit product.
    p = ma * m
    # S3: float32 multiply rounding.
    k = np.maximum(_bitlen(p) - 24, 0)
    mp = _rshift_rne(p, k)
    # S4: round half to even at the binary point.
    e = d + k - sh
    up_shift = np.clip(e, 0, 16)  # e >= 0 means >= 2^23: saturates below anyway
    mag = np.where(e >= 0, mp << up_shift, _rshift_rne(mp, np.clip(-e, 0, 26)))
    # S5: sign, clamp, zero point.
    v = np.where(neg, -mag, mag)
    lo = np.zeros_like(zp) if relu else -zp
    v = np.clip(v, lo, QMAX - zp)
    return (v + zp).astype(np.uint8)


def requantize_float32(acc, scale_f32, zero_point, relu: bool = False) -> np.ndarray:
    """NumPy float32 twin of MLAS requant: ``rint(clamp(fl(fl(acc)*scale), lo, 255-zp)) + zp``.

    Mirrors CVTDQ2PS, MULPS, MAXPS/MINPS (clamp before rounding, so no INT32_MIN quirk), CVTPS2DQ.
    """
    a = _as_int_array(acc, "acc")
    if np.any((a < INT32_MIN) | (a > 2**31 - 1)):
        raise ValueError("acc must fit in int32")
    s = np.asarray(scale_f32, dtype=_F32)
    zp = _check_zero_point(zero_point)
    with np.errstate(over="ignore"):
        v = a.astype(np.int32).astype(_F32) * s
    lo = np.zeros(zp.shape, _F32) if relu else (-zp).astype(_F32)
    v = np.minimum(np.maximum(v, lo), (QMAX - zp).astype(_F32))
    return (np.rint(v).astype(np.int64) + zp).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Float32 helpers for the emulations
# ----------------------------------------------------------------------------------------------


def _fma_f32(x, y, z) -> np.ndarray:
    """Single-rounding float32 fma(x, y, z) for x*y exact in float64 (<= 53 significant bits).

    Why: x86 FMA3 rounds once; NumPy has no fma.  The float64 sum is made round-to-odd (TwoSum error
    term tells whether it was inexact), and round-to-odd at 53 bits followed by RNE to float32's
    24 bits (or fewer, subnormal) equals a single RNE rounding of the exact value.
    """
    with np.errstate(all="ignore"):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        z = np.asarray(z, np.float64)
        p = x * y
        s = p + z
        bp = s - z
        err = (p - bp) + (z - (s - bp))
        odd = (np.asarray(s, np.float64).view(np.int64) & 1) == 1
        fix = np.isfinite(s) & (err != 0) & ~odd
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
        return s.astype(_F32)


def _cvtps2dq(r) -> np.ndarray:
    """x86 CVTPS2DQ: round half to even; NaN or out-of-int32 -> INT32_MIN ("integer indefinite")."""
    r = np.asarray(r, np.float64)
    with np.errstate(invalid="ignore"):
        q = np.rint(r)
        bad = ~((q >= -(2.0**31)) & (q < 2.0**31))  # also catches NaN
    return np.where(bad, INT32_MIN, np.where(bad, 0, q)).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Integer IEEE-754 binary32 model ("soft float"), vectorised over int64 arrays
# ----------------------------------------------------------------------------------------------
# A value is (neg, M, E, ovf): (-1)^neg * M * 2^E with 0 <= M < 2^24 after rounding (M == 0 is zero),
# ovf = the float32 result overflowed to +-inf.  Every operation forms the exact result as an integer
# (sticky bit for discarded low parts where the window is exceeded) and rounds once.

_EMIN = -149  # exponent of the float32 LSB in the subnormal range
_BIG_NEG = -(10**6)


def _sf_round(neg, x, e, ovf=False):
    """Round the exact value (-1)^neg * x * 2^e (int64 0 <= x < 2^63) to float32, RNE with subnormals."""
    x = np.asarray(x, np.int64)
    e = np.asarray(e, np.int64)
    bl = _bitlen(x)
    et = np.maximum(e + bl - 24, _EMIN)  # exponent of the result's LSB
    r = et - e
    m_dn = _rshift_rne(x, np.maximum(r, 0))
    m_up = x << np.clip(-r, 0, 62)
    m = np.where(r > 0, m_dn, m_up)
    carry = m == 2**24
    m = np.where(carry, 2**23, m)
    et = et + carry
    zero = m == 0
    et = np.where(zero, 0, et)
    of = np.asarray(ovf, bool) | (~zero & (et + _bitlen(m) > 128))
    return (np.asarray(neg, bool) & ~zero, m, et, of)


def _sf_from_f32(x):
    """Exact decomposition of finite float32 values (normal or subnormal)."""
    b = np.asarray(x, _F32).view(np.uint32).astype(np.int64)
    be = (b >> 23) & 0xFF
    if np.any(be == 0xFF):
        raise ValueError("non-finite float32 value where a finite one is required")
    frac = b & 0x7FFFFF
    m = np.where(be == 0, frac, frac | 0x800000)
    e = np.where(be == 0, _EMIN, be - 150)
    e = np.where(m == 0, 0, e)
    return (((b >> 31) & 1) == 1, m, e, np.zeros(m.shape, bool))


def _sf_from_int(i):
    """Exact (unrounded) integer as a soft value (used as an fma/mul operand)."""
    i = np.asarray(i, np.int64)
    return (i < 0, np.abs(i), np.zeros(i.shape, np.int64), np.zeros(i.shape, bool))


def _sf_to_f32(v) -> np.ndarray:
    """Pack a rounded soft value back into float32 bits (for checks and host constants)."""
    neg, m, e, of = v
    m = np.asarray(m, np.int64)
    e = np.asarray(e, np.int64)
    normal = m >= 2**23
    be = np.where(normal, e + 150, 0)
    frac = np.where(normal, m - 2**23, m)
    bits = (np.asarray(neg, np.int64) << 31) | (be << 23) | frac
    bits = np.where(of, (np.asarray(neg, np.int64) << 31) | (0xFF << 23), bits)
    return bits.astype(np.uint32).view(_F32)


def _sf_mul(a, b):
    """fl(a * b): exact product of mantissas (<= 48 bits for two float32), one rounding."""
    na, ma, ea, oa = a
    nb, mb, eb, ob = b
    return _sf_round(np.logical_xor(na, nb), ma * mb, ea + eb, np.asarray(oa) | np.asarray(ob))


def _sf_add(a, b):
    """fl(a + b) of exact operands with mantissas <= 48 bits (e.g. an unrounded int*fp32 product).

    The operand with the higher top bit is placed with its top bit at position 62 (two's complement
    headroom), the other is aligned to it; bits falling below that window are ORed into a sticky LSB.
    That is enough because when any bit is shifted out the sum keeps >= 60 bits and rounding to 24
    bits discards >= 36, so the sticky only has to say "strictly between".
    """
    na, ma, ea, oa = (np.asarray(t) for t in a)
    nb, mb, eb, ob = (np.asarray(t) for t in b)
    na, ma, ea, oa, nb, mb, eb, ob = np.broadcast_arrays(na, ma, ea, oa, nb, mb, eb, ob)
    bla, blb = _bitlen(ma), _bitlen(mb)
    ta = np.where(ma > 0, ea + bla, _BIG_NEG)
    tb = np.where(mb > 0, eb + blb, _BIG_NEG)
    swap = tb > ta
    nl, ml, el, bll = (np.where(swap, q, p) for p, q in ((na, nb), (ma, mb), (ea, eb), (bla, blb)))
    ns, ms, es = (np.where(swap, q, p) for p, q in ((nb, na), (mb, ma), (eb, ea)))
    base = np.where(ml > 0, el + bll - 61, 0)  # LSB exponent of the 61-bit window
    l2 = (ml << np.clip(el - base, 0, 62)) << 1
    sh = es - base
    s_exact = ms << np.clip(sh, 0, 62)
    s_int = ms >> np.clip(-sh, 0, 63)
    s_int = np.where(-sh > 63, 0, s_int)
    sticky = (ms != 0) & ((s_int << np.clip(-sh, 0, 62)) != ms) & (sh < 0)
    sticky = sticky | ((ms != 0) & (-sh > 62))
    s2 = np.where(sh >= 0, s_exact << 1, (s_int << 1) | sticky.astype(np.int64))
    s2 = np.where(ms > 0, s2, 0)
    tot = np.where(nl, -l2, l2) + np.where(ns, -s2, s2)
    return _sf_round(tot < 0, np.abs(tot), base - 1, oa | ob)


def _sf_fma(x, y, z):
    """fma(x, y, z): exact x*y (<= 48-bit mantissa product), exact add, single rounding."""
    nx, mx, ex, ox = x
    ny, my, ey, oy = y
    prod = (np.logical_xor(nx, ny), mx * my, ex + ey, np.asarray(ox) | np.asarray(oy))
    return _sf_add(prod, z)


def _sf_div(a, b):
    """fl(a / b) for b != 0: 50/24-bit integer division, quotient 26-27 bits + sticky, one rounding."""
    na, ma, ea, oa = a
    nb, mb, eb, ob = b
    ma, mb = np.asarray(ma, np.int64), np.asarray(mb, np.int64)
    if np.any(mb == 0):
        raise ZeroDivisionError("soft-float division by zero")
    sa = 24 - _bitlen(ma)
    sb = 24 - _bitlen(mb)
    na_ = np.where(ma > 0, ma << np.clip(sa, 0, 24), 0)
    nb_ = mb << np.clip(sb, 0, 24)
    num = na_ << 26
    q = num // nb_
    rem = num - q * nb_
    x = (q << 1) | (rem != 0).astype(np.int64)
    e = (ea - sa) - 26 - (eb - sb) - 1
    return _sf_round(np.logical_xor(na, nb), x, e, np.asarray(oa) | np.asarray(ob))


def _sf_neg(a):
    n, m, e, o = a
    return (~np.asarray(n, bool) & (np.asarray(m) != 0), m, e, o)


def _sf_cvt(v) -> np.ndarray:
    """CVTPS2DQ on a soft value: RNE to integer, INT32_MIN when |result| >= 2^31 or overflowed."""
    neg, m, e, of = (np.asarray(t) for t in v)
    m = m.astype(np.int64)
    e = e.astype(np.int64)
    big = (m != 0) & (e >= 0) & (e + _bitlen(m) > 31)
    mag = np.where(e >= 0, m << np.clip(e, 0, 31), _rshift_rne(m, np.clip(-e, 0, 200)))
    out = np.where(neg, -mag, mag)
    return np.where(big | of, INT32_MIN, out)


# ----------------------------------------------------------------------------------------------
# QLinearAdd
# ----------------------------------------------------------------------------------------------


def qlinear_add_params(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp):
    """Host-side float32 constants of MLAS's AVX2 QLinearAdd: ``(ra, rb, F)``.

    ``F = fl(y_zp - fma(ra, a_zp, fl(rb*b_zp)))``: the C++ expression
    ``(float)ZeroPointC - (ScaleRatio_AC*ZeroPointA + ScaleRatio_BC*ZeroPointB)`` compiled with FMA
    contraction (the first product is fused).  Verified against ORT where the variants differ.
    """
    sa, sb, sy = _F32(a_scale), _F32(b_scale), _F32(y_scale)
    with np.errstate(all="ignore"):
        ra = _F32(sa / sy)
        rb = _F32(sb / sy)
        t = _F32(rb * _F32(int(b_zp)))
        f = _F32(_F32(int(y_zp)) - _fma_f32(ra, _F32(int(a_zp)), t))
    return ra, rb, f


def qlinear_add(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) -> np.ndarray:
    """Float32 emulation of ORT QLinearAdd (uint8, per-tensor), NumPy broadcasting (scalars verified).

    ``r = fma(a, ra, fma(b, rb, F))`` on the *raw* uint8 values, then CVTPS2DQ and saturating packs
    (so values >= 2^31 after scaling become 0, as in ORT).
    """
    a = np.asarray(a, np.uint8)
    b = np.asarray(b, np.uint8)
    for zp, name in ((a_zp, "a_zp"), (b_zp, "b_zp"), (y_zp, "y_zp")):
        _check_zero_point(zp, name)
    ra, rb, f = qlinear_add_params(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp)
    a, b = np.broadcast_arrays(a, b)
    t = _fma_f32(b.astype(_F32), rb, f)
    r = _fma_f32(a.astype(_F32), ra, t)
    return np.clip(_cvtps2dq(r), QMIN, QMAX).astype(np.uint8)


def qlinear_add_int(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) -> np.ndarray:
    """Integer formulation of :func:`qlinear_add` (bit-identical).

    Host constants (ra, rb, F) are derived with the integer float model too (24-bit divisions and one
    fma), then per element the hardware does two fused multiply-adds::

      t  = RNE24( b * Mrb * 2^Erb + F )      b: 8 b unsigned, Mrb: 24 b -> product 32 b, exact add
      r  = RNE24( a * Mra * 2^Era + t )      in a ~64-bit alignment window with sticky, 1 rounding each
      q  = RNE(r) to integer; |q| >= 2^31 or fp32 overflow -> INT32_MIN; clamp to [0, 255]

    Alternative for hardware: the output depends only on (a, b), so a 256x256 byte ROM built from this
    function per Add layer is exact by construction; or a 256-entry table of t (fp32) per layer + one
    multiply-add unit.  If a host constant overflows float32 (a scale ratio >= 2^128) every element
    becomes +-inf or NaN in ORT, i.e. INT32_MIN, i.e. 0: the output is then all zeros.
    """
    a = np.asarray(a, np.uint8)
    b = np.asarray(b, np.uint8)
    for zp, name in ((a_zp, "a_zp"), (b_zp, "b_zp"), (y_zp, "y_zp")):
        _check_zero_point(zp, name)
    sa, sb, sy = (_sf_from_f32(_F32(s)) for s in (a_scale, b_scale, y_scale))
    ra = _sf_div(sa, sy)
    rb = _sf_div(sb, sy)
    t0 = _sf_mul(rb, _sf_from_int(int(b_zp)))
    f = _sf_add(_sf_from_int(int(y_zp)), _sf_neg(_sf_fma(ra, _sf_from_int(int(a_zp)), t0)))
    a, b = np.broadcast_arrays(a, b)
    if np.any(ra[3]) or np.any(rb[3]) or np.any(f[3]):
        return np.zeros(a.shape, np.uint8)  # inf*0 = NaN or +-inf everywhere -> CVTPS2DQ -> 0
    t = _sf_fma(_sf_from_int(b.astype(np.int64)), rb, f)
    r = _sf_fma(_sf_from_int(a.astype(np.int64)), ra, t)
    return np.clip(_sf_cvt(r), QMIN, QMAX).astype(np.uint8)


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
    xz, yz = int(_check_zero_point(x_zp, "x_zp")), int(_check_zero_point(y_zp, "y_zp"))
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


# ----------------------------------------------------------------------------------------------
# QLinearGlobalAveragePool / QLinearAveragePool
# ----------------------------------------------------------------------------------------------


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
    _check_zero_point(x_zp, "x_zp")
    acc, n = _gap_acc(x, x_zp)
    return requantize_float32(acc, global_average_pool_scale(x_scale, y_scale, n), y_zp)


def global_average_pool_int(x, x_scale, x_zp, y_scale, y_zp) -> np.ndarray:
    """Integer formulation: integer sum (8 b + log2 N bits; 32 b for N < 2^24) minus ``x_zp*N`` then
    :func:`requantize` with the multiplier of :func:`global_average_pool_scale` (a host constant)."""
    _check_zero_point(x_zp, "x_zp")
    acc, n = _gap_acc(x, x_zp)
    m, sh = requant_multiplier(global_average_pool_scale(x_scale, y_scale, n))
    return requantize(acc, m, sh, y_zp)


def _pool_geometry(shape, kernel_shape, strides, pads):
    h, w = shape[-2:]
    kh, kw = kernel_shape
    sh, sw = strides
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    hs = np.arange(oh) * sh - pt
    ws = np.arange(ow) * sw - pl
    he, we = np.minimum(hs + kh, h), np.minimum(ws + kw, w)
    hs0, ws0 = np.maximum(hs, 0), np.maximum(ws, 0)
    return oh, ow, hs, ws, (he - hs0)[:, None] * (we - ws0)[None, :]


def _is_global_fallback(shape, kernel_shape, pads):
    return tuple(shape[-2:]) == tuple(kernel_shape) and all(int(p) == 0 for p in pads)


def qlinear_average_pool(x, x_scale, x_zp, y_scale, y_zp, kernel_shape, strides=(1, 1),
                         pads=(0, 0, 0, 0), count_include_pad: bool = False) -> np.ndarray:
    """Float32 emulation of ORT QLinearAveragePool (2-D, NCHW, ceil_mode=0, explicit pads).

    ORT dequantizes to float32, sums the window in row-major order in float32, divides by the count,
    then ``nearbyintf(fl(v / y_scale) + y_zp)``.  Kernel == image with zero pads uses the global path.
    """
    x = np.asarray(x, np.uint8)
    _check_zero_point(x_zp, "x_zp")
    _check_zero_point(y_zp, "y_zp")
    if _is_global_fallback(x.shape, kernel_shape, pads):
        return global_average_pool(x, x_scale, x_zp, y_scale, y_zp)[..., None, None]
    h, w = x.shape[-2:]
    kh, kw = kernel_shape
    oh, ow, hs, ws, cnt = _pool_geometry(x.shape, kernel_shape, strides, pads)
    with np.errstate(all="ignore"):  # inf/NaN are legitimate here (CVTPS2DQ turns them into 0)
        deq = (x.astype(np.int32) - int(x_zp)).astype(_F32) * _F32(x_scale)
        acc = np.zeros(x.shape[:-2] + (oh, ow), _F32)
        for i in range(kh):
            hi = hs + i
            vh = (hi >= 0) & (hi < h)
            for j in range(kw):
                wj = ws + j
                vw = (wj >= 0) & (wj < w)
                term = deq[..., np.clip(hi, 0, h - 1)[:, None], np.clip(wj, 0, w - 1)[None, :]]
                acc = acc + np.where(vh[:, None] & vw[None, :], term, _F32(0))  # +0.0 is exact
        count = np.full((oh, ow), kh * kw) if count_include_pad else cnt
        v = acc / count.astype(_F32)
        v = (v / _F32(y_scale)) + _F32(int(y_zp))
    return np.clip(_cvtps2dq(v), QMIN, QMAX).astype(np.uint8)


def qlinear_average_pool_int(x, x_scale, x_zp, y_scale, y_zp, kernel_shape, strides=(1, 1),
                             pads=(0, 0, 0, 0), count_include_pad: bool = False) -> np.ndarray:
    """Integer formulation of :func:`qlinear_average_pool` (same float32 steps on integer mantissas).

    Per window: kh*kw roundings of ``(x - zp) * Mxs`` (8 b x 24 b products), a chain of kh*kw - 1
    aligned adds each rounded to 24 bits, two 24-bit divisions (count, y_scale) and the rounded add of
    y_zp before the final RNE.  Practical only as a sequential multi-cycle unit (it is float32 in all
    but name); the global-pool fallback uses :func:`global_average_pool_int`.
    """
    x = np.asarray(x, np.uint8)
    _check_zero_point(x_zp, "x_zp")
    _check_zero_point(y_zp, "y_zp")
    if _is_global_fallback(x.shape, kernel_shape, pads):
        return global_average_pool_int(x, x_scale, x_zp, y_scale, y_zp)[..., None, None]
    h, w = x.shape[-2:]
    kh, kw = kernel_shape
    oh, ow, hs, ws, cnt = _pool_geometry(x.shape, kernel_shape, strides, pads)
    xs = _sf_from_f32(_F32(x_scale))
    deq = _sf_mul(_sf_from_int(x.astype(np.int64) - int(x_zp)), xs)
    out_shape = x.shape[:-2] + (oh, ow)
    z = np.zeros(out_shape, np.int64)
    acc = (np.zeros(out_shape, bool), z, z, np.zeros(out_shape, bool))
    for i in range(kh):
        hi = hs + i
        vh = (hi >= 0) & (hi < h)
        for j in range(kw):
            wj = ws + j
            vw = (wj >= 0) & (wj < w)
            valid = vh[:, None] & vw[None, :]
            idx = (..., np.clip(hi, 0, h - 1)[:, None], np.clip(wj, 0, w - 1)[None, :])
            term = (deq[0][idx] & valid, np.where(valid, deq[1][idx], 0), np.where(valid, deq[2][idx], 0),
                    deq[3][idx] & valid)
            acc = _sf_add(acc, term)
    count = np.full((oh, ow), kh * kw) if count_include_pad else cnt
    cnt_sf = _sf_round(np.zeros(count.shape, bool), count.astype(np.int64), np.zeros(count.shape, np.int64))
    v = _sf_div(acc, cnt_sf)
    v = _sf_div(v, _sf_from_f32(_F32(y_scale)))
    v = _sf_add(v, _sf_from_int(np.int64(int(y_zp))))
    return np.clip(_sf_cvt(v), QMIN, QMAX).astype(np.uint8)
