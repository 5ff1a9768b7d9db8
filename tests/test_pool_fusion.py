"""Max pools fused into their writers' output path (resident mode): conv → MaxPool → conv networks with every
pool geometry the pool stage takes (kernel 2/3, stride 1/2, pads, ceil mode, several output groups) and one
it does not (a "same" 3x3/1 pool stays a descriptor of its own), on the Verilated engine, byte-exact against
the golden model, cycles equal to the cycle model's."""

from __future__ import annotations

import math

import onnx
import pytest
from conftest import assert_hw_equals_golden, random_input

from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig
from fireforge.models.squeezenet import INPUT_NAME, OUTPUT_NAME, _Builder
from fireforge.sw.compile import compile_model
from fireforge.sw.perf import predict_compiled

#: test_perf's 64-MAC config: the same Verilated build
CONFIG = EngineConfig(mac_units=64, weight_depth=24576, quant_depth=1024, desc_depth=64, act_depth=131072,
                      add_unit=True)


def _pooled(n, k, s, p, ceil):
    out = (math.ceil if ceil else math.floor)((n + 2 * p - k) / s) + 1
    return out - ((out - 1) * s >= n + p) if ceil else out


def _model(size, k, s, p, ceil, channels=24):
    b = _Builder(3)
    x = b.conv("conv_a", INPUT_NAME, 3, channels, 3, pad=1)
    x = b.node("MaxPool", "pool", [x], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=int(ceil))
    o = _pooled(size, k, s, p, ceil)
    b.conv("conv_b", x, channels, 16, 1, out=OUTPUT_NAME)
    return b.model("pool_net", [1, 3, size, size], [1, 16, o, o], "conv, max pool, conv")


CASES = [  # size, kernel, stride, pad, ceil, fused
    (15, 3, 2, 0, True, True), (16, 3, 2, 0, True, True), (15, 3, 2, 0, False, True), (14, 2, 2, 0, False, True),
    (13, 2, 2, 0, True, True), (12, 3, 2, 1, False, True), (11, 3, 2, 1, True, True), (10, 2, 1, 0, False, True),
    (9, 3, 1, 0, False, True), (10, 3, 1, 1, False, False),
]


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_fused_pool_is_byte_exact(tmp_path, case):
    size, k, s, p, ceil, fused = case
    onnx.save(_model(size, k, s, p, ceil), tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "out", config=CONFIG, check=False)
    c = Compiled.load(tmp_path / "out")
    entries = {e.name: e for e in c.layers}
    assert (entries["pool"].fused_with == "conv_a") == fused and (entries["conv_a"].fused_with == "pool") == fused
    assert len(c.rom_layers) == len(c.layers) - fused
    hw = assert_hw_equals_golden(tmp_path / "out", random_input((1, 3, size, size), 2))
    assert ("conv_a" in hw.layer_outputs) != fused          # a fused pool's writer stores nothing of its own
    pred = predict_compiled(tmp_path / "out")
    assert pred.layer_cycles == hw.layer_cycles and pred.cycles == hw.cycles
