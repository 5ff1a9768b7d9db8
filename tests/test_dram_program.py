"""DRAM mode's command stream (``fireforge.sw.dram_program``), checked by the symbolic twin
(``tests/support/dram_twin.py``): with buffers small enough that every layer is tiled — row bands with halo
rows, padding at band edges, ceil-mode max pools across bands, output-group chunks, adds, a GAP in chunks —
every activation word the stream leaves in DRAM must have been produced from the same words, weights and
requant words, in the same order, as the program's own per-layer descriptors produce it."""

from __future__ import annotations

import dataclasses

import pytest

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import COMMAND_BYTES, Buffer, Op, unpack_command
from fireforge.core.program import Program
from fireforge.sw import dram_program
from fireforge.sw.compile import compile_model
from fireforge.sw.schedule import schedule
from tests.support import dram_twin


@pytest.fixture(scope="module")
def bypass_program(build_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("dramprog") / "out"
    compile_model(build_model("v1_1", input_size=48, classes=10, bypass="complex"), out,
                  config=EngineConfig(mac_units=16))
    return Program.load(out)


def _dram(act, weights, quant):
    return EngineConfig(mac_units=16, memory="dram", act_depth=act, weight_depth=weights, quant_depth=quant,
                        desc_depth=2, add_unit=True)


def _run(program, config):
    sched = schedule(program, config)
    dp = dram_program.build(program, sched, config)
    lay = sched.plan.layouts[program.input]
    init = dram_twin.initial_dram(dp, range(lay.addr, lay.addr + lay.words))
    return sched, dp, dram_twin.run_resident(sched.descriptors, init), init


@pytest.mark.parametrize("depths", [(1 << 15, 4096, 64), (2048, 1024, 16)], ids=["roomy", "tiny"])
def test_stream_computes_what_the_layers_compute(bypass_program, depths):
    config = _dram(*depths)
    sched, dp, want, init = _run(bypass_program, config)
    got = dram_twin.run_stream(dp, config, init)
    assert len(want) == sum(t.words for t in sched.plan.layouts.values())      # every word of every tensor
    # every word of every tensor, but the inputs of the max pools fused into their writers (never stored)
    fused = {l.name for l in dp.layers if l.fused_into}
    unstored = {x.output for x in bypass_program.layers if x.name in fused}
    skip = {w for name in unstored for lay in [sched.plan.layouts[name]] for w in range(lay.addr, lay.addr + lay.words)}
    assert "conv1" in fused and "fire5/bypass_add" in fused
    assert [w for w in want if w not in skip and got.get(w) != want[w]] == []
    assert not any(w in got for w in skip)
    if depths[0] == 2048:          # really tiled: bands and chunks
        by = {l.name: l for l in dp.layers}
        # pool1 fused in several bands of pooled rows; pool3's add does not fit beside it: a tiled MAXPOOL
        assert by["conv1"].tiles > 1 and 0 < by["pool1"].height < bypass_program.tensors[next(x.output for x in bypass_program.layers if x.name == "pool1")].height
        assert "fire3/bypass_add" not in fused and any(c["op"] == Op.MAXPOOL for c in dp.commands)
        assert any(c.get("pool_en") and c["pool_pad_t"] == 0 and c["pool_out_h"] > 1 for c in dp.commands)
        assert any(l.chunk and l.tiles > 1 and l.height == bypass_program.tensors[
            next(x.output for x in bypass_program.layers if x.name == l.name)].height for l in dp.layers)
        assert any(c["op"] == Op.CONV and c["pad_t"] and c["out_h"] < 10 for c in dp.commands)


def test_twin_notices_broken_streams(bypass_program):
    config = _dram(2048, 1024, 16)
    sched, dp, want, init = _run(bypass_program, config)
    conv3 = next(c for c in dp.commands if c["op"] == Op.CONV and c["kernel_h"] == 3)
    conv3["pad_t"] ^= 1
    with pytest.raises(dram_twin.TwinError):
        dram_twin.run_stream(dp, config, init)
    sched, dp, want, init = _run(bypass_program, config)
    del dp.commands[next(i for i, c in enumerate(dp.commands) if c["op"] == Op.STORE)]
    with pytest.raises(dram_twin.TwinError, match="nothing has written"):
        dram_twin.run_stream(dp, config, init)
    sched, dp, want, init = _run(bypass_program, config)
    [c for c in dp.commands if c["op"] == Op.CONV][5]["quant_addr"] += 1
    got = dram_twin.run_stream(dp, config, init)
    assert sum(got.get(w) != want[w] for w in want) > 0


def test_traffic_and_encoding(bypass_program):
    config = _dram(2048, 1024, 16)
    _, dp, _, _ = _run(bypass_program, config)
    raw = dp.command_bytes()
    assert len(raw) == COMMAND_BYTES * dp.map.command_count == COMMAND_BYTES * len(dp.commands)
    decoded = [unpack_command(int.from_bytes(raw[i:i + COMMAND_BYTES], "little"))
               for i in range(0, len(raw), COMMAND_BYTES)]
    assert decoded[-1]["op"] == Op.END and [d["op"] for d in decoded] == [c["op"] for c in dp.commands]
    loads = [d for d in decoded if d["op"] == Op.LOAD]
    stores = [d for d in decoded if d["op"] == Op.STORE]
    size = {b: dram_program.word_bytes(config, b) for b in Buffer if b.value < 3}
    assert sum(d["runs"] * d["run_words"] * size[d["buffer"]] for d in loads) + len(raw) == dp.bytes_read
    assert sum(d["runs"] * d["run_words"] * config.vector for d in stores) == dp.bytes_written
    # one mark per layer with stores of its own: all but those fused into or stored by another
    assert sum(d["mark"] for d in stores) == sum(not (l.fused_into or l.stored_by) for l in dp.layers)
    pooled = [(d, c) for d, c in zip(decoded, dp.commands) if c.get("pool_en")]
    assert pooled and all(d[k] == c[k] for d, c in pooled for k in c if k.startswith("pool_"))
    # waits: only where a transfer touches the words of the tile running beside it — not everywhere
    assert 0 < sum(d["wait"] for d in loads + stores) < len(loads + stores)


def test_buffers_too_small_is_one_clear_error(bypass_program):
    from fireforge.errors import FireforgeError
    with pytest.raises(FireforgeError, match="too small"):
        _run(bypass_program, _dram(1024, 512, 8))
