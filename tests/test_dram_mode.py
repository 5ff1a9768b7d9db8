"""DRAM mode end to end (issue #19): a network compiled for DRAM mode with buffers so small that every layer
is tiled — row bands with halo rows, padding at band edges, ceil-mode max pools across bands (tiled, and in the pool
stage of their writers' tiles), output-group
chunks, bypass adds, a GAP in chunks — on the DRAM-mode engine and LiteDRAM's real controller (ULX3S profile),
every layer byte-exact with the golden model; random stalls on the AXI port; two different programs run back
to back in one simulation on one Verilated model; the engine's DRAM counters equal the compiler's traffic."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("litedram")

from fireforge.core.compiled import Compiled  # noqa: E402
from fireforge.core.config import EngineConfig  # noqa: E402
from fireforge.core.descriptor import Op  # noqa: E402
from fireforge.core.layout import read_layer_result  # noqa: E402
from fireforge.sim import dram_run as runner  # noqa: E402
from fireforge.sim import golden  # noqa: E402
from fireforge.sim.dram_hw_run import dram_rtl_run  # noqa: E402
from fireforge.sw import dram_program  # noqa: E402
from fireforge.sw.dram_perf import predict_compiled_stream  # noqa: E402
from fireforge.sw.compile import compile_model  # noqa: E402
from fireforge.sw.schedule import schedule  # noqa: E402

#: buffers deliberately tiny: 512 activation words per quarter, 512 weight words per half, 8 requant words
TINY = EngineConfig(mac_units=16, memory="dram", act_depth=2048, weight_depth=1024, quant_depth=16, desc_depth=2)


#: buffers where every max pool's bands fit: all three pools computed in their writers' output path
FUSING = EngineConfig(mac_units=16, memory="dram", act_depth=8192, weight_depth=1024, quant_depth=16, desc_depth=2)


@pytest.fixture(scope="module")
def bypass_dram(build_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("dram_mode") / "out"
    compile_model(build_model("v1_1", input_size=48, classes=10, bypass="complex"), out, config=TINY)
    return Compiled.load(out)


def _x(compiled, seed):
    t = compiled.program.tensors[compiled.program.input]
    return np.random.default_rng(seed).standard_normal((1, t.channels, t.height, t.width)).astype(np.float32)


def _stored(compiled) -> set[str]:
    """The layers whose result reaches DRAM: all but the writers of fused max pools."""
    return {l["name"] for l in compiled.dram["layers"] if not l["fused_into"]}


def _mismatches(compiled, got: dict, x) -> dict:
    """Mismatching bytes per layer, every stored layer compared."""
    want = golden.run(compiled.program, x).layer_outputs
    assert set(got) == _stored(compiled)
    return {k: int(np.count_nonzero(got[k] != want[k])) for k in got if np.count_nonzero(got[k] != want[k])}


def test_every_layer_is_tiled(bypass_dram):
    layers = {l["name"]: l for l in bypass_dram.dram["layers"]}
    # the chains (sw.dram_chains): max pools in their writers' output path, the late squeezes computed where
    # their expands read them, the GAP averaging conv10's chunks in the buffer
    fused = {n: l["fused_into"] for n, l in layers.items() if l["fused_into"]}
    assert (fused["conv1"], fused["fire5/bypass_add"], fused["conv10"]) == ("pool1", "pool5", "gap")
    assert {n for n in fused if "squeeze" in n} == {f"fire{i}/squeeze1x1" for i in (6, 7, 8, 9)}
    assert {n for n, l in layers.items() if l["stored_by"]} == {f"fire{i}/expand1x1" for i in (6, 7, 8, 9)}
    # every layer that runs is cut into bands or chunks, but conv10 and the GAP (2 x 2 output, 10 classes = 3
    # groups) and a widened squeeze (one band across both input halves); pool3 runs as tiles of its own
    single = [n for n, l in layers.items() if l["tiles"] < 2 and n not in ("pool1", "pool5")]
    assert sorted(single) == ["conv10", "fire4/squeeze1x1", "gap"]
    kinds = {l.kind for l in bypass_dram.program.layers if layers[l.name]["tiles"] > 1}
    assert kinds == {"conv", "maxpool", "add"}
    cmds = bypass_dram.images["commands"].words
    assert cmds == bypass_dram.dram["map"]["command_count"] > 1000


@pytest.mark.parametrize("stall_seed", [0, 11], ids=["no-stalls", "stalls"])
def test_tiled_network_byte_exact_on_litedram(bypass_dram, stall_seed):
    x = _x(bypass_dram, 5)
    hw = dram_rtl_run(bypass_dram, x, stall_seed=stall_seed, stall_pct=30 if stall_seed else 0)
    assert _mismatches(bypass_dram, hw.layer_outputs, x) == {}
    assert (hw.dram_bytes_read, hw.dram_bytes_written) == (bypass_dram.dram["bytes_read"],
                                                           bypass_dram.dram["bytes_written"])
    assert 0 < hw.compute_cycles < hw.cycles and len(hw.layer_cycles) == len(bypass_dram.layers)
    assert hw.clock_mhz == 50
    if not stall_seed:      # the cycle model (sw.dram_perf) within 5 % of the simulation
        pred = predict_compiled_stream(bypass_dram)
        assert abs(pred.cycles / hw.cycles - 1) < 0.05, (pred.cycles, hw.cycles)
        assert abs(pred.compute_cycles / hw.compute_cycles - 1) < 0.05, (pred.compute_cycles, hw.compute_cycles)


def test_simulate_board_command(bypass_dram, tmp_path, capsys):
    """``fireforge simulate OUT --board ulx3s-85f`` on a DRAM-mode compile: byte-exact, the issue's top-level JSON
    figures, per layer its two byte counts, the cycle model's cycles and bound where the layer has cycles (a
    chain's last layer), within 5 % of the simulation in total; the text report says what a row covers."""
    import json

    from fireforge.cli import main

    np.save(tmp_path / "x.npy", _x(bypass_dram, 3))
    args = ["simulate", str(bypass_dram.out_dir), "--board", "ulx3s-85f", "--input", str(tmp_path / "x.npy")]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0 and doc["memory"] == "dram" and doc["clock_mhz"] == 50
    assert (doc["dram_bytes_read"], doc["dram_bytes_written"]) == (bypass_dram.dram["bytes_read"],
                                                                  bypass_dram.dram["bytes_written"])
    assert 0 < doc["stall_cycles"] < doc["total_cycles"] and doc["fps"] == pytest.approx(50e6 / doc["total_cycles"])
    assert abs(doc["predicted_cycles"] / doc["total_cycles"] - 1) < 0.05
    with_cycles = [l for l in doc["layers"] if l["cycles"] is not None]
    assert with_cycles and all(l["bound"] in ("memory", "compute") and l["predicted_cycles"] > 0 for l in with_cycles)
    assert all(l["bound"] is None for l in doc["layers"] if l["cycles"] is None)
    assert sum(l["dram_bytes_written"] for l in doc["layers"]) == doc["dram_bytes_written"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "predicted" in text and "chained through the buffer" in text and "0 mismatching bytes" in text


def test_fused_pools_byte_exact_on_litedram(build_model, tmp_path):
    """Max pools in their writers' output path (their input never exists whole): every stored layer
    byte-exact, the fused writers' layers reported as not kept, and less DRAM traffic than without fusion."""
    out = tmp_path / "out"
    compile_model(build_model("v1_1", input_size=48, classes=10, bypass="complex"), out, config=FUSING)
    c = Compiled.load(out)
    fused = {l["name"]: l["fused_into"] for l in c.dram["layers"] if l["fused_into"]}
    assert {n: p for n, p in fused.items() if p.startswith("pool")} == {
        "conv1": "pool1", "fire3/bypass_add": "pool3", "fire5/bypass_add": "pool5"}
    x = _x(c, 9)
    hw = dram_rtl_run(c, x)
    assert set(hw.layer_outputs) == {l.name for l in c.layers} - set(fused)
    want = golden.run(c.program, x).layer_outputs
    assert {k: int(np.count_nonzero(v != want[k])) for k, v in hw.layer_outputs.items() if np.any(v != want[k])} == {}
    assert (hw.dram_bytes_read, hw.dram_bytes_written) == (c.dram["bytes_read"], c.dram["bytes_written"])
    unfused = dram_program.build(c.program, schedule(c.program, c.config), c.config, fuse=False)
    assert unfused.bytes_read + unfused.bytes_written > c.dram["bytes_read"] + c.dram["bytes_written"]
    assert [t is None for t in hw.layer_cycles] == [bool(l["fused_into"] or l["stored_by"]) for l in c.dram["layers"]]


def test_two_programs_back_to_back(bypass_dram, build_model, tmp_path):
    """A second program (another network, the same engine) at other DRAM addresses, run after the first in the
    same simulation: the bitstream does not depend on the program."""
    out = tmp_path / "fire"
    compile_model(build_model("fire", in_channels=16, squeeze=8, expand1x1=16, expand3x3=16, input_size=12),
                  out, config=TINY)
    fire = Compiled.load(out)
    xa, xb = _x(bypass_dram, 1), _x(fire, 2)
    image, runs_a, (lo, hi_a) = runner.program_image(bypass_dram, xa)
    end_a = bypass_dram.dram["map"]["commands"] + 64 * bypass_dram.dram["map"]["command_count"]
    base = -(-end_a // 4096) * 4096
    sched = schedule(fire.program, fire.config)
    dp = dram_program.build(fire.program, sched, fire.config, base=base)
    m = dp.map
    t_in = fire.program.tensors[fire.program.input]
    image_b, _, _ = runner.program_image(fire, xb)          # the same bytes, at the relocated addresses below
    old = fire.dram["map"]
    for key in ("weights", "quant"):
        image[m.__dict__[key]] = image_b[old[key]]
    image[m.act + fire.input_layout.addr * fire.vector] = image_b[old["act"] + fire.input_layout.addr * fire.vector]
    image[m.commands] = dp.command_bytes()
    res = runner.dram_run(image, [*runs_a, (m.commands, m.command_count)], config=TINY, dump=(lo, m.act + m.act_bytes))
    assert [r.error for r in res.runs] == [0, 0]
    va = runner.act_words(bypass_dram, res)
    got_a = {e.name: read_layer_result(e.descriptor, bypass_dram.layer_channel_index(e), va, bypass_dram.vector)
             for e in bypass_dram.layers if e.name in _stored(bypass_dram)}
    assert _mismatches(bypass_dram, got_a, xa) == {}
    vb = np.frombuffer(res.dumped(m.act, m.act + m.act_bytes), np.uint8).reshape(-1, fire.vector)
    got_b = {e.name: read_layer_result(e.descriptor, fire.layer_channel_index(e), vb, fire.vector)
             for e in fire.layers if e.name in _stored(fire)}
    assert _mismatches(fire, got_b, xb) == {}
    assert any(c["op"] == Op.LOAD for c in dp.commands) and t_in.height == 12


@pytest.mark.slow
def test_v1_1_224_on_the_ulx3s(build_model, tmp_path):
    """The real thing (--runslow, ~1-2 min): v1.1 at 224x224, 1000 classes, compiled for the ULX3S (DRAM mode,
    the board's buffers), every stored layer byte-exact on the DRAM-mode engine and LiteDRAM's controller, the
    traffic and the cycle model as the compiler says."""
    out = tmp_path / "out"
    compile_model(build_model("v1_1"), out, board="ulx3s-85f")
    c = Compiled.load(out)
    assert c.config.dram and c.board == "ulx3s-85f"
    x = _x(c, 7)
    hw = dram_rtl_run(c, x)
    want = golden.run(c.program, x).layer_outputs
    assert {k: int(np.count_nonzero(v != want[k])) for k, v in hw.layer_outputs.items() if np.any(v != want[k])} == {}
    assert (hw.dram_bytes_read, hw.dram_bytes_written) == (c.dram["bytes_read"], c.dram["bytes_written"])
    assert hw.dram_bytes_read > 1_235_496            # every weight came from DRAM
    assert abs(predict_compiled_stream(c).cycles / hw.cycles - 1) < 0.05
