"""Whole networks on the Verilated engine, every layer compared with the golden model byte for byte.

One engine config (one Verilated build) runs every network here; 224x224 runs are ``--runslow``.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import random_input

from fireforge.models.squeezenet import build_squeezenet
from support.zoo_style import build_caffe_zoo, build_torchvision_export
from fireforge.sim import golden
from fireforge.sim.hw_run import rtl_run
from fireforge.sw.compile import compile_model
from fireforge.core.config import EngineConfig
from fireforge.core.program import Program

#: with the add unit for every network (a bypass-free one would otherwise get an engine without it, a second build)
NETWORK_CONFIG = EngineConfig(mac_units=64, weight_depth=24576, quant_depth=1024, desc_depth=64, act_depth=131072,
                              add_unit=True)


def _compile(model, tmp_path, name, config=NETWORK_CONFIG):
    onnx.save(model, tmp_path / f"{name}.onnx")
    compile_model(tmp_path / f"{name}.onnx", tmp_path / name, config=config)
    return tmp_path / name


def _assert_every_layer_exact(out, x):
    from fireforge.core.compiled import Compiled
    compiled = Compiled.load(out)
    program = compiled.program
    want = golden.run(program, x)
    hw = rtl_run(out, x, dump_layers=True)
    stored = [e.name for e in compiled.layers if e.stored]      # a fused max pool's writers store nothing
    assert sorted(hw.layer_outputs) == sorted(stored)
    bad = {n: int(np.count_nonzero(hw.layer_outputs[n] != want.layer_outputs[n])) for n in stored}
    assert not any(bad.values()), {k: v for k, v in bad.items() if v}
    np.testing.assert_array_equal(hw.output, want.output)
    assert len(hw.layer_cycles) == len(compiled.rom_layers) and sum(hw.layer_cycles) <= hw.cycles
    return hw


@pytest.mark.parametrize("version,bypass", [("v1_0", "none"), ("v1_1", "none"), ("v1_1", "simple"),
                                            ("v1_1", "complex"), ("v1_0", "simple"), ("v1_0", "complex")])
def test_squeezenet_at_64(tmp_path, version, bypass):
    out = _compile(build_squeezenet(version, input_size=64, classes=10, bypass=bypass), tmp_path, version)
    _assert_every_layer_exact(out, random_input((1, 3, 64, 64), 1))


def test_torchvision_style_export_on_the_engine(tmp_path):
    out = _compile(build_torchvision_export("v1_1", input_size=64, classes=10), tmp_path, "tv")
    _assert_every_layer_exact(out, random_input((1, 3, 64, 64), 2))


def test_model_zoo_style_graph_on_the_engine(tmp_path):
    """Caffe-converted graph: 7x7 conv1, floor-mode pools, padded 1x1 conv10, Dropout + Softmax tail."""
    out = _compile(build_caffe_zoo("v1_0", input_size=99, classes=10), tmp_path, "zoo")
    _assert_every_layer_exact(out, random_input((1, 3, 99, 99), 3))


def test_second_inference_reuses_the_build(tmp_path):
    out = _compile(build_squeezenet("v1_1", input_size=48, classes=10), tmp_path, "v11")
    first = _assert_every_layer_exact(out, random_input((1, 3, 48, 48), 4))
    second = _assert_every_layer_exact(out, random_input((1, 3, 48, 48), 5))
    assert first.build_dir == second.build_dir


@pytest.mark.slow
@pytest.mark.parametrize("version", ["v1_0", "v1_1"])
def test_squeezenet_at_224(tmp_path, version):
    config = EngineConfig(mac_units=64)
    out = _compile(build_squeezenet(version), tmp_path, version, config=config)
    x = random_input((1, 3, 224, 224), 6)
    hw = rtl_run(out, x)
    np.testing.assert_array_equal(hw.output, golden.run(Program.load(out), x).output)
