"""The fireforge engine (see :mod:`fireforge.hw.engine.engine`)."""

from fireforge.core.config import EXTERNAL_TAP_DEPTH, TAP_DEPTH
from fireforge.hw.engine.engine import ROM_LATENCY, WRITE_DEPTH, Engine, _bits_for

__all__ = ["Engine", "ROM_LATENCY", "WRITE_DEPTH", "TAP_DEPTH", "EXTERNAL_TAP_DEPTH"]
