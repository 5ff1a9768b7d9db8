"""The cycle and traffic model (``fireforge.sw.perf``, ``fireforge.sw.tiling``): predicted cycles against the
Verilated engine's, cycle for cycle; the DRAM-mode tiling's invariants."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from conftest import random_input

from fireforge.core.config import EngineConfig
from fireforge.models.squeezenet import build_conv, build_fire, build_squeezenet
from fireforge.sim.hw_run import rtl_run
from fireforge.sw.compile import compile_model
from fireforge.sw.perf import predict_compiled

#: fixed depths: one Verilated build per MAC count serves every network here (64: test_network's config)
CONFIGS = {64: EngineConfig(mac_units=64, weight_depth=24576, quant_depth=1024, desc_depth=64, act_depth=131072,
                            add_unit=True),
           16: EngineConfig(mac_units=16, weight_depth=24576, quant_depth=1024, desc_depth=64, act_depth=131072,
                            add_unit=True)}

NETWORKS = [
    ("v1_1", 64, lambda: build_squeezenet("v1_1", input_size=64, classes=10)),
    ("v1_1-complex", 64, lambda: build_squeezenet("v1_1", input_size=64, classes=10, bypass="complex")),
    ("fire", 64, lambda: build_fire(in_channels=32, squeeze=16, expand1x1=32, expand3x3=32, input_size=12)),
    ("fire", 16, lambda: build_fire(in_channels=32, squeeze=16, expand1x1=32, expand3x3=32, input_size=12)),
    ("conv3s2", 64, lambda: build_conv(in_channels=24, out_channels=40, kernel=3, stride=2, padding=1, input_size=13)),
    ("conv3s2", 16, lambda: build_conv(in_channels=24, out_channels=40, kernel=3, stride=2, padding=1, input_size=13)),
]


@pytest.mark.parametrize("name,mac_units,build", NETWORKS, ids=[f"{n}-{m}" for n, m, _ in NETWORKS])
def test_predicted_cycles_match_verilator(tmp_path, name, mac_units, build):
    """Every layer's predicted cycles equal Verilator's (the issue asks for 5 %; the model is exact)."""
    onnx.save(build(), tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "out", config=CONFIGS[mac_units], check=False)
    pred = predict_compiled(tmp_path / "out")
    from fireforge.core.compiled import Compiled
    t = Compiled.load(tmp_path / "out").program
    t_in = t.tensors[t.input]
    hw = rtl_run(tmp_path / "out", random_input((1, t_in.channels, t_in.height, t_in.width), 1))
    errors = {n: (p - m) / m for n, p, m in zip(pred.names, pred.layer_cycles, hw.layer_cycles)}
    assert len(hw.layer_cycles) == len(pred.layer_cycles)
    assert max(abs(e) for e in errors.values()) <= 0.05, errors
    assert abs(pred.cycles - hw.cycles) <= 0.05 * hw.cycles
    assert pred.layer_cycles == hw.layer_cycles and pred.cycles == hw.cycles     # in fact: exact


@pytest.mark.parametrize("version,mac_units,cycles", [("v1_1", 64, 5_947_699), ("v1_1", 256, 1_597_895)])
def test_known_224_totals(tmp_path, version, mac_units, cycles):
    """Verilator's measured totals at 224x224, 1000 classes (docs), predicted without simulating."""
    from fireforge.sw.perf import predict_program
    onnx.save(build_squeezenet(version, input_size=224), tmp_path / "m.onnx")
    r = compile_model(tmp_path / "m.onnx", tmp_path / "out", config=EngineConfig(mac_units=64), check=False)
    assert predict_program(r.program, EngineConfig(mac_units=mac_units)).cycles == cycles
