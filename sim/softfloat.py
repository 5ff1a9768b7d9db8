"""IEEE-754 binary32 arithmetic as integers: the building blocks of the requantization spec.

ONNX Runtime requantizes in float32 with x86 instructions (FMA3, CVTPS2DQ); the spec reproduces those
steps twice (see :mod:`fireforge.sim.requant`). Here are the pieces both need:

* integer rounding helpers (:func:`bitlen`, :func:`rshift_rne`) - what a leading-zero counter and a
  round-half-even shifter do in hardware;
* the NumPy float32 twins of the two x86 steps NumPy lacks: a single-rounding :func:`fma_f32` and
  :func:`cvtps2dq` (with its "integer indefinite" result);
* a vectorised soft float (``sf_*``) over int64 arrays, in which every fl(), fma() and division is
  "exact integer result, then round to 24 significant bits half-to-even (or at 2^-149 for subnormals)".

Notation used by the formulas of the requant modules: ``fl`` = float32 round-to-nearest-even, ``fma`` =
single-rounding fused multiply-add, ``rint`` = round half to even, ``cvt`` = x86 CVTPS2DQ: rint, and
INT32_MIN if the result does not fit int32 or is NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INT32_MIN", "bitlen", "rshift_rne", "fma_f32", "cvtps2dq", "sf_round", "sf_from_f32", "sf_from_int",
           "sf_to_f32", "sf_mul", "sf_add", "sf_fma", "sf_div", "sf_neg", "sf_cvt"]

INT32_MIN = -(2**31)
_F32 = np.float32


# ----------------------------------------------------------------------------------------------
# Integer helpers (int64 numpy)
# ----------------------------------------------------------------------------------------------


def bitlen(x: np.ndarray) -> np.ndarray:
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


def rshift_rne(x: np.ndarray, r: np.ndarray) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------
# Float32 helpers for the emulations
# ----------------------------------------------------------------------------------------------


def fma_f32(x, y, z) -> np.ndarray:
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


def cvtps2dq(r) -> np.ndarray:
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


def sf_round(neg, x, e, ovf=False):
    """Round the exact value (-1)^neg * x * 2^e (int64 0 <= x < 2^63) to float32, RNE with subnormals."""
    x = np.asarray(x, np.int64)
    e = np.asarray(e, np.int64)
    bl = bitlen(x)
    et = np.maximum(e + bl - 24, _EMIN)  # exponent of the result's LSB
    r = et - e
    m_dn = rshift_rne(x, np.maximum(r, 0))
    m_up = x << np.clip(-r, 0, 62)
    m = np.where(r > 0, m_dn, m_up)
    carry = m == 2**24
    m = np.where(carry, 2**23, m)
    et = et + carry
    zero = m == 0
    et = np.where(zero, 0, et)
    of = np.asarray(ovf, bool) | (~zero & (et + bitlen(m) > 128))
    return (np.asarray(neg, bool) & ~zero, m, et, of)


def sf_from_f32(x):
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


def sf_from_int(i):
    """Exact (unrounded) integer as a soft value (used as an fma/mul operand)."""
    i = np.asarray(i, np.int64)
    return (i < 0, np.abs(i), np.zeros(i.shape, np.int64), np.zeros(i.shape, bool))


def sf_to_f32(v) -> np.ndarray:
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


def sf_mul(a, b):
    """fl(a * b): exact product of mantissas (<= 48 bits for two float32), one rounding."""
    na, ma, ea, oa = a
    nb, mb, eb, ob = b
    return sf_round(np.logical_xor(na, nb), ma * mb, ea + eb, np.asarray(oa) | np.asarray(ob))


def sf_add(a, b):
    """fl(a + b) of exact operands with mantissas <= 48 bits (e.g. an unrounded int*fp32 product).

    The operand with the higher top bit is placed with its top bit at position 62 (two's complement
    headroom), the other is aligned to it; bits falling below that window are ORed into a sticky LSB.
    That is enough because when any bit is shifted out the sum keeps >= 60 bits and rounding to 24
    bits discards >= 36, so the sticky only has to say "strictly between".
    """
    na, ma, ea, oa = (np.asarray(t) for t in a)
    nb, mb, eb, ob = (np.asarray(t) for t in b)
    na, ma, ea, oa, nb, mb, eb, ob = np.broadcast_arrays(na, ma, ea, oa, nb, mb, eb, ob)
    bla, blb = bitlen(ma), bitlen(mb)
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
    return sf_round(tot < 0, np.abs(tot), base - 1, oa | ob)


def sf_fma(x, y, z):
    """fma(x, y, z): exact x*y (<= 48-bit mantissa product), exact add, single rounding."""
    nx, mx, ex, ox = x
    ny, my, ey, oy = y
    prod = (np.logical_xor(nx, ny), mx * my, ex + ey, np.asarray(ox) | np.asarray(oy))
    return sf_add(prod, z)


def sf_div(a, b):
    """fl(a / b) for b != 0: 50/24-bit integer division, quotient 26-27 bits + sticky, one rounding."""
    na, ma, ea, oa = a
    nb, mb, eb, ob = b
    ma, mb = np.asarray(ma, np.int64), np.asarray(mb, np.int64)
    if np.any(mb == 0):
        raise ZeroDivisionError("soft-float division by zero")
    sa = 24 - bitlen(ma)
    sb = 24 - bitlen(mb)
    na_ = np.where(ma > 0, ma << np.clip(sa, 0, 24), 0)
    nb_ = mb << np.clip(sb, 0, 24)
    num = na_ << 26
    q = num // nb_
    rem = num - q * nb_
    x = (q << 1) | (rem != 0).astype(np.int64)
    e = (ea - sa) - 26 - (eb - sb) - 1
    return sf_round(np.logical_xor(na, nb), x, e, np.asarray(oa) | np.asarray(ob))


def sf_neg(a):
    n, m, e, o = a
    return (~np.asarray(n, bool) & (np.asarray(m) != 0), m, e, o)


def sf_cvt(v) -> np.ndarray:
    """CVTPS2DQ on a soft value: RNE to integer, INT32_MIN when |result| >= 2^31 or overflowed."""
    neg, m, e, of = (np.asarray(t) for t in v)
    m = m.astype(np.int64)
    e = e.astype(np.int64)
    big = (m != 0) & (e >= 0) & (e + bitlen(m) > 31)
    mag = np.where(e >= 0, m << np.clip(e, 0, 31), rshift_rne(m, np.clip(-e, 0, 200)))
    out = np.where(neg, -mag, mag)
    return np.where(big | of, INT32_MIN, out)
