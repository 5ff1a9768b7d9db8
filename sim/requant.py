"""Integer-exact requantization specification, byte-exact with ONNX Runtime 1.32 (CPU, MLAS).

Why this exists: the accelerator must produce the *same bytes* as ONNX Runtime's CPU integer
kernels.  ORT does every requantization in IEEE float32 (with particular operation orders, one
fused multiply-add chain, and x86 conversion quirks), so "nearly the same arithmetic" differs in a few
outputs per thousand.  The spec pins each operator down twice:

* a NumPy float32 *emulation* that mirrors the MLAS instruction sequence (the reference twin), and
* an *integer* formulation (numpy int64 / Python int, no float arithmetic per element) that a
  pipelined integer circuit can implement and that is bit-identical to the emulation.

Measured on onnxruntime 1.32.0, Linux x86-64.  The test machine is an AMD Zen3 (AVX2 + FMA3, *no*
AVX-512, no VNNI); the formulas are the ones of the AVX2/FMA3 MLAS kernels that ORT dispatches to
there (QLinearAdd uses ``qladd_avx2.cpp``, whose FMA chain is the reason for its odd formula).

This module is the spec's one entry point; each operator's formulas live with its code:

* :mod:`fireforge.sim.requant_conv` - QLinearConv / MatMul requant (:func:`requantize`, the hardware
  pipeline with bit widths) and QLinearConcat's tables;
* :mod:`fireforge.sim.requant_add` - QLinearAdd (:func:`qlinear_add_int`, the hardware's view);
* :mod:`fireforge.sim.requant_pool` - QLinearGlobalAveragePool and QLinearAveragePool;
* :mod:`fireforge.sim.softfloat` - the float32 steps as integers (the notation ``fl``, ``fma``, ``rint``,
  ``cvt`` the formulas use), and the float32 twins of the x86 steps NumPy lacks;
* :mod:`fireforge.core.numerics` - the scales and their multipliers (compiler and golden model share them).
"""

from fireforge.core.numerics import conv_requant_scales, requant_multiplier, requant_multipliers
from fireforge.sim.requant_add import qlinear_add, qlinear_add_int, qlinear_add_params
from fireforge.sim.requant_conv import concat_requant_table, qlinear_concat, requantize, requantize_float32
from fireforge.sim.requant_pool import (global_average_pool, global_average_pool_int, global_average_pool_scale,
                                        qlinear_average_pool, qlinear_average_pool_int)

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
