"""QLinearAdd (com.microsoft, uint8; MLAS's ``MlasQLinearAddKernelAvx2Helper``), twice: its float32
emulation and its integer formulation (notation in :mod:`fireforge.sim.softfloat`)::

    ra = fl(a_scale / y_scale);  rb = fl(b_scale / y_scale)
    F  = fl(float(y_zp) - fma(ra, float(a_zp), fl(rb * float(b_zp))))   # zero points folded in once
    r  = fma(float(a), ra, fma(float(b), rb, F))                         # raw a, b; B term first
    y  = clamp(cvt(r), 0, 255)            # clamp AFTER conversion; |r| >= 2^31 -> INT32_MIN -> 0 (!)

The FMA chain is ``qladd_avx2.cpp``'s, the reason for the formula's odd shape. See
:func:`qlinear_add_int` for the hardware's view.
"""

from __future__ import annotations

import numpy as np

from fireforge.core.numerics import QMAX, QMIN
from fireforge.sim.requant_conv import check_zero_point
from fireforge.sim.softfloat import (cvtps2dq, fma_f32, sf_add, sf_cvt, sf_div, sf_fma, sf_from_f32, sf_from_int,
                                     sf_mul, sf_neg)

__all__ = ["qlinear_add_params", "qlinear_add", "qlinear_add_int"]

_F32 = np.float32


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
        f = _F32(_F32(int(y_zp)) - fma_f32(ra, _F32(int(a_zp)), t))
    return ra, rb, f


def qlinear_add(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) -> np.ndarray:
    """Float32 emulation of ORT QLinearAdd (uint8, per-tensor), NumPy broadcasting (scalars verified).

    ``r = fma(a, ra, fma(b, rb, F))`` on the *raw* uint8 values, then CVTPS2DQ and saturating packs
    (so values >= 2^31 after scaling become 0, as in ORT).
    """
    a = np.asarray(a, np.uint8)
    b = np.asarray(b, np.uint8)
    for zp, name in ((a_zp, "a_zp"), (b_zp, "b_zp"), (y_zp, "y_zp")):
        check_zero_point(zp, name)
    ra, rb, f = qlinear_add_params(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp)
    a, b = np.broadcast_arrays(a, b)
    t = fma_f32(b.astype(_F32), rb, f)
    r = fma_f32(a.astype(_F32), ra, t)
    return np.clip(cvtps2dq(r), QMIN, QMAX).astype(np.uint8)


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
        check_zero_point(zp, name)
    sa, sb, sy = (sf_from_f32(_F32(s)) for s in (a_scale, b_scale, y_scale))
    ra = sf_div(sa, sy)
    rb = sf_div(sb, sy)
    t0 = sf_mul(rb, sf_from_int(int(b_zp)))
    f = sf_add(sf_from_int(int(y_zp)), sf_neg(sf_fma(ra, sf_from_int(int(a_zp)), t0)))
    a, b = np.broadcast_arrays(a, b)
    if np.any(ra[3]) or np.any(rb[3]) or np.any(f[3]):
        return np.zeros(a.shape, np.uint8)  # inf*0 = NaN or +-inf everywhere -> CVTPS2DQ -> 0
    t = sf_fma(sf_from_int(b.astype(np.int64)), rb, f)
    r = sf_fma(sf_from_int(a.astype(np.int64)), ra, t)
    return np.clip(sf_cvt(r), QMIN, QMAX).astype(np.uint8)
