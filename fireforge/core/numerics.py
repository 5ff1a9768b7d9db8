"""Number formats every layer agrees on: float32 scales as the integer pipeline sees them, input quantization.

The compiler turns scales into ROM fields with these, the hardware's add unit checks its constants with them
and the golden model (``fireforge.sim.requant``) computes with them; they are defined once, here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["QMIN", "QMAX", "check_scale_value", "requant_multiplier", "requant_multipliers",
           "conv_requant_scales", "quantize_input"]

QMIN, QMAX = 0, 255  # uint8 activations
_F32 = np.float32


def check_scale_value(scale) -> np.float32:
    """Return ``scale`` as an exactly equal float32, or raise ValueError naming it (why: exactness)."""
    try:
        f = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a real number, got {scale!r}") from None
    if not np.isfinite(f):
        raise ValueError(f"scale must be finite, got {scale!r}")
    if f <= 0.0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    with np.errstate(over="ignore"):
        s = _F32(f)
    if float(s) != f:
        raise ValueError(
            f"scale {scale!r} is not exactly representable in float32; pass np.float32(scale) "
            "(ORT stores scales as float32, so that is the value it uses)"
        )
    if s < np.finfo(_F32).tiny:
        raise ValueError(f"scale {scale!r} is subnormal in float32; subnormal scales are not supported")
    return s


def requant_multiplier(scale: float) -> tuple[int, int]:
    """Decompose a positive normal float32 ``scale`` into ``(m, shift)`` with ``scale == m * 2**-shift``.

    ``m`` is the 24-bit significand including the hidden bit (``2**23 <= m < 2**24``), ``shift`` is in
    [-104, 149].  Exact by construction (it is just the float32 bit fields), so the integer pipeline
    multiplies by precisely the number ORT multiplies by.
    """
    s = check_scale_value(scale)
    bits = int(np.array(s, dtype=_F32).view(np.uint32))
    biased = (bits >> 23) & 0xFF
    m = (bits & 0x7FFFFF) | 0x800000
    shift = 150 - biased
    return int(m), int(shift)


def requant_multipliers(scales) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`requant_multiplier` (e.g. per output channel); returns int64 arrays."""
    flat = np.atleast_1d(np.asarray(scales))
    pairs = [requant_multiplier(s) for s in flat.ravel()]
    m = np.array([p[0] for p in pairs], dtype=np.int64).reshape(np.shape(scales))
    sh = np.array([p[1] for p in pairs], dtype=np.int64).reshape(np.shape(scales))
    return m, sh


def conv_requant_scales(x_scale, w_scales, y_scale) -> np.ndarray:
    """The float32 per-channel scale MLAS uses for QLinearConv: ``fl(fl(x_scale*w_scale_c)/y_scale)``."""
    xs = _F32(x_scale)
    ws = np.asarray(w_scales, dtype=_F32)
    ys = _F32(y_scale)
    return ((xs * ws).astype(_F32) / ys).astype(_F32)


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float NCHW (batch 1) → uint8 [C, H, W], as ONNX Runtime's QuantizeLinear: round-half-even(x / scale) + zp."""
    x = np.asarray(x, dtype=np.float32).reshape(x.shape[-3:])
    q = np.rint(x / np.float32(scale)) + np.float32(zero_point)
    return np.clip(q, 0, 255).astype(np.uint8)
