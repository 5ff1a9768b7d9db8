"""Shared pytest options and fixtures: slow runs on demand, models built once per session."""

from __future__ import annotations

import numpy as np
import onnx
import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run slow tests (224x224 networks, long random sweeps)")
    parser.addoption("--engine-shapes", type=int, default=50,
                     help="random conv shapes the engine is checked on (default 50)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def build_model(model_dir):
    """build_model(name, **kwargs) -> path of a float ONNX model built once per session."""
    from fireforge.models import squeezenet

    cache = {}

    def build(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            if name in ("v1_0", "v1_1"):
                m = squeezenet.build_squeezenet(name, **kw)
            elif name == "fire":
                m = squeezenet.build_fire(**kw)
            else:
                m = squeezenet.build_conv(**kw)
            path = model_dir / f"{name}-{abs(hash(key)):x}.onnx"
            onnx.save(m, path)
            cache[key] = path
        return cache[key]

    return build


def compile_fire(directory, *, mac_units: int = 16, **shape):
    """A Fire module (``squeezenet.build_fire(**shape)``) compiled for ``mac_units`` into ``directory / "out"``."""
    from fireforge.core.config import EngineConfig
    from fireforge.models import squeezenet
    from fireforge.sw.compile import compile_model

    onnx.save(squeezenet.build_fire(**shape), directory / "fire.onnx")
    compile_model(directory / "fire.onnx", directory / "out", config=EngineConfig(mac_units=mac_units))
    return directory / "out"


def random_input(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_hw_equals_golden(out, x, **kw):
    """Run the compiled program in ``out`` on the Verilated engine (``rtl_run`` keywords) and require every
    layer's output to equal the golden model's, byte for byte; returns the hardware result."""
    from fireforge.sim import golden
    from fireforge.sim.hw_run import rtl_run
    from fireforge.core.program import Program

    from fireforge.core.compiled import Compiled
    compiled = Compiled.load(out)
    program = compiled.program
    expected = golden.run(program, x)
    hw = rtl_run(out, x, dump_layers=True, **kw)
    stored = {e.name for e in compiled.layers if e.stored}     # a fused pool's writer stores nothing of its own
    assert set(hw.layer_outputs) == stored
    for layer in program.layers:
        if layer.name not in stored:
            continue
        got, want = hw.layer_outputs[layer.name], expected.layer_outputs[layer.name]
        bad = int(np.count_nonzero(got != want))
        assert bad == 0, f"{layer.name}: {bad} of {want.size} bytes differ from the golden model ({kw})"
    np.testing.assert_array_equal(hw.output, expected.output)
    return hw
