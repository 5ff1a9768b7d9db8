"""The requant word: per output lane, the folded bias, the scale's mantissa and its shift.

Defined once, here, as an Amaranth ``StructLayout``: the compiler packs lanes with :func:`pack_lanes`,
the engine decodes its quant ROM word as ``ArrayLayout(QUANT_LANE, vector)``, and the config sizes the
ROM from ``QUANT_LANE.size``. The arithmetic the fields feed is ``fireforge.sim.requant.requantize``.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["QUANT_LANE", "QUANT_LANE_BYTES", "pack_lanes"]

#: One output lane: int32 bias with the input zero point folded in (``bias − zp_x·Σw``), the requant
#: scale's 24-bit significand and its shift (``scale = mantissa · 2^−shift``).
QUANT_LANE = data.StructLayout({"bias": signed(32), "mantissa": unsigned(24), "shift": unsigned(8)})
QUANT_LANE_BYTES = QUANT_LANE.size // 8


def pack_lanes(bias: np.ndarray, mantissa: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Lanes as uint8 ``[n, QUANT_LANE_BYTES]``, little-endian in the field order of :data:`QUANT_LANE`."""
    n = len(bias)
    fields = {"bias": np.asarray(bias, np.int64), "mantissa": np.asarray(mantissa, np.int64),
              "shift": np.asarray(shift, np.int64)}
    words = np.zeros(n, np.uint64)
    for name, field in QUANT_LANE:
        mask = np.uint64((1 << field.width) - 1)
        words |= (fields[name].astype(np.uint64) & mask) << np.uint64(field.offset)
    return words.astype("<u8").view(np.uint8).reshape(n, QUANT_LANE_BYTES)
