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


@pytest.mark.parametrize("version,mac_units,cycles", [("v1_1", 64, 5_573_368), ("v1_1", 256, 1_410_688)])
def test_known_224_totals(tmp_path, version, mac_units, cycles):
    """The totals at 224x224, 1000 classes, predicted without simulating (the max pools fused; unfused they
    were Verilator's 5,947,699 and 1,597,895)."""
    from fireforge.sw.perf import predict_program
    onnx.save(build_squeezenet(version, input_size=224), tmp_path / "m.onnx")
    r = compile_model(tmp_path / "m.onnx", tmp_path / "out", config=EngineConfig(mac_units=64), check=False)
    assert predict_program(r.program, EngineConfig(mac_units=mac_units)).cycles == cycles


# -- tiling --------------------------------------------------------------------------------------------------

from fireforge.sw.tiling import (BufferBudget, Geometry, band_input_rows, bands, choose, chunks, fits,  # noqa: E402
                                 traffic)

GEOMETRIES = [   # out_h, out_w, og, kh, stride, pad, in_h, in_w, in_groups, taps, depthwise
    Geometry(7, 7, 5, 3, 1, 1, 7, 7, 3, 27, False),           # 3x3 pad 1
    Geometry(6, 6, 4, 3, 2, 1, 11, 11, 2, 18, False),         # stride 2, pad 1
    Geometry(6, 6, 3, 3, 2, 0, 13, 13, 1, 0, True),           # max pool 3/2, ceil mode (13 -> 6)
    Geometry(4, 4, 2, 3, 2, 0, 8, 8, 1, 0, True),             # ceil mode: last window hangs over the map
    Geometry(9, 9, 6, 1, 1, 0, 9, 9, 4, 4, False),            # 1x1
]


def _rows_read(g, oy0, oy1):
    """Input rows the windows of output rows oy0..oy1-1 touch inside the map (brute force)."""
    return {oy * g.stride_h - g.pad_t + ky for oy in range(oy0, oy1) for ky in range(g.kernel_h)} & set(range(g.in_h))


@pytest.mark.parametrize("g", GEOMETRIES)
def test_bands_cover_rows_once_and_halo_is_exact(g):
    for h in range(1, g.out_h + 1):
        rows = [y for a, b in bands(g.out_h, h) for y in range(a, b)]
        assert rows == list(range(g.out_h))
        for a, b in bands(g.out_h, h):
            iy0, iy1 = band_input_rows(a, b, g)
            assert set(range(iy0, iy1)) == _rows_read(g, a, b)
    for c in range(1, g.og + 1):
        assert [x for a, b in chunks(g.og, c) for x in range(a, b)] == list(range(g.og))


def _brute(g, budget, kw):
    best = None
    for h, c, o in itertools.product(range(1, g.out_h + 1), range(1, g.og + 1), ("weights", "input")):
        if fits(g, h, c, budget):
            t = sum(traffic(g, h, c, o, **kw))
            best = t if best is None else min(best, t)
    return best


@pytest.mark.parametrize("g", GEOMETRIES)
@pytest.mark.parametrize("budget", [BufferBudget(60, 40, 40), BufferBudget(200, 60, 100), BufferBudget(4000, 4000, 4000),
                                    BufferBudget(40, 20, 12)])
def test_choice_is_the_brute_force_minimum_within_budget(g, budget):
    kw = {"vector": 8, "weight_word_bytes": 64}
    try:
        h, c, order, t = choose(g, budget, **kw)
    except Exception:
        assert _brute(g, budget, kw) is None     # nothing fits
        return
    assert fits(g, h, c, budget)
    assert c * g.taps <= budget.weight_words
    assert sum(t) == _brute(g, budget, kw)
    # at least: weights once, every input row once, every output once
    weights, maps, out = t
    per_row = g.in_w * (g.in_groups if not g.depthwise else g.og) * 8
    lo, hi = band_input_rows(0, g.out_h, g)
    assert weights >= g.og * g.taps * 64 and maps >= (hi - lo) * per_row and out == g.out_h * g.out_w * g.og * 8
    if budget.input_words >= 4000:      # everything fits: exactly the minimum
        assert (weights, maps) == (g.og * g.taps * 64, (hi - lo) * per_row)


def test_dram_prediction_of_a_small_network(tmp_path):
    """Fusion and the on-chip squeeze only ever remove bytes; compute is the resident engine's without pools."""
    from fireforge.sw.perf import predict_dram, predict_program
    from fireforge.sw.tiling import TilingOptions
    onnx.save(build_squeezenet("v1_1", input_size=64, classes=10), tmp_path / "m.onnx")
    prog = compile_model(tmp_path / "m.onnx", tmp_path / "out", config=CONFIGS[64], check=False).program
    cfg = EngineConfig(mac_units=64)
    budget = BufferBudget(2048, 256, 1024)
    fused = predict_dram(prog, cfg, budget, 1.0)
    plain = predict_dram(prog, cfg, budget, 1.0, TilingOptions(False, False))
    assert fused.total("write_bytes") < plain.total("write_bytes")
    assert fused.total("read_bytes") < plain.total("read_bytes")
    assert fused.total("weight_bytes") == plain.total("weight_bytes")
    assert all(l.cycles >= max(l.compute, l.transfer) for l in fused.layers)
    resident = predict_program(prog, cfg)
    assert plain.compute >= resident.cycles        # tiles only add descriptors and groups
    assert not [l for l in fused.layers if l.kind == "maxpool" and l.tiling.height]
