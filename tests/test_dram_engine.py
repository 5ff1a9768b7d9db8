# amaranth: UnusedElaboratable=no
"""The DRAM-mode engine (``hw/dram/dram_engine.py``) in amaranth.sim against a Python AXI slave memory
(``support.axi_slave``) holding a command stream built here: transfers alone (LOADs into every buffer with
several runs and strides, STOREs back, byte-exact DRAM; wait / mark; counters; bad commands), then a real
compute — a compiled Fire module, one tile per layer — byte-exact against the golden model."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import COMMAND_BYTES, Buffer, Op, pack, pack_transfer
from fireforge.hw.dram.dram_engine import DramEngine

from support.axi_slave import AxiSlave

CFG = EngineConfig(mac_units=16, weight_depth=64, quant_depth=16, desc_depth=4, act_depth=256, memory="dram")
PROGRAM = 0x0C00        # command 0's byte address


def stream_bytes(commands: list[int]) -> bytes:
    return b"".join(c.to_bytes(COMMAND_BYTES, "little") for c in commands)


def load(buffer, dram_addr, buf_addr, run_words, runs=1, stride=0, **kw):
    return pack_transfer({"op": Op.LOAD, "buffer": buffer, "dram_addr": dram_addr, "buf_addr": buf_addr,
                          "run_words": run_words, "runs": runs, "dram_stride": stride, **kw})


def store(dram_addr, buf_addr, run_words, runs=1, stride=0, buffer=Buffer.ACT, **kw):
    return pack_transfer({"op": Op.STORE, "buffer": buffer, "dram_addr": dram_addr, "buf_addr": buf_addr,
                          "run_words": run_words, "runs": runs, "dram_stride": stride, **kw})


def run_engine(dut, mem: bytearray, runs, *, data_width, max_cycles=200_000, peek=None, **slave):
    """Run each ``(program_addr, program_commands)`` of ``runs`` to ``done``; per run a dict of the counters,
    ``layer_done`` cycle stamps (from start) and ``done_cycle``; ``peek(ctx)`` is called after the last run."""
    results = []

    async def bench(ctx):
        axi = AxiSlave(dut.m_axi, mem, data_width=data_width, **slave)
        for addr, n in runs:
            ctx.set(dut.program_addr, addr)
            ctx.set(dut.program_commands, n)
            ctx.set(dut.start, 1)
            axi.step(ctx)
            await ctx.tick()
            ctx.set(dut.start, 0)
            res, cycle = {"layer_done": [], "overlap": 0}, 1
            while True:
                beats = axi.r_beats + axi.w_beats
                axi.step(ctx)
                if axi.r_beats + axi.w_beats > beats and ctx.get(dut.core.busy):
                    res["overlap"] += 1         # a data beat while the core computes
                if ctx.get(dut.layer_done):
                    res["layer_done"].append(cycle)
                if ctx.get(dut.done):
                    break
                await ctx.tick()
                cycle += 1
                assert cycle < max_cycles, "the engine did not finish"
            res["done_cycle"] = cycle
            for name in ("cycles", "compute_cycles", "bytes_read", "bytes_written", "error", "busy"):
                res[name] = ctx.get(getattr(dut, name))
            res["slave"] = axi
            results.append(res)
            for _ in range(3):
                axi.step(ctx)
                await ctx.tick()
        if peek:
            peek(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def buffer_words(data: bytes, word_bytes: int) -> list[int]:
    return [int.from_bytes(data[i:i + word_bytes], "little") for i in range(0, len(data), word_bytes)]


@pytest.mark.parametrize("data_width,busy", [(16, 0.0), (16, 0.3), (32, 0.2)])
def test_transfers_are_byte_exact(data_width, busy):
    rng = random.Random(data_width + int(busy * 10))
    mem = bytearray(rng.randbytes(1 << 16))
    for a in range(0x8000, 0x9000):
        mem[a] = 0
    ab, wb, qb = CFG.act_word_bits // 8, CFG.weight_word_bits // 8, CFG.quant_word_bits // 8
    cmds = [
        load(Buffer.ACT, 0x1000, 10, 5, runs=3, stride=64),                 # ACT[10..25)
        load(Buffer.WEIGHTS, 0x1FA0, 4, 3, runs=2, stride=96),               # across a 4 KB boundary
        load(Buffer.QUANT, 0x3000, 1, 2, runs=2, stride=128, mark=1),
        load(Buffer.ACT, 0x4000, 100, 40, wait=1),                           # one run longer than a burst
        store(0x8000, 10, 3, runs=5, stride=40, wait=1, mark=1),            # ACT[10..25) in 5 runs
        store(0x8400, 100, 40),
        load(Buffer.ACT, 0x5000, 0, 0, runs=3),                              # no words
        pack({"op": Op.END}),
    ]
    mem[PROGRAM:PROGRAM + len(cmds) * COMMAND_BYTES] = stream_bytes(cmds)
    original = bytes(mem)
    dut = DramEngine(CFG, data_width=data_width, max_burst=8)
    seen = {}

    def peek(ctx):
        for b, m in dut.buffers.memories.items():
            seen[b] = [ctx.get(m.data[i]) for i in range(m.depth)]

    (res,) = run_engine(dut, mem, [(PROGRAM, len(cmds))], data_width=data_width, peek=peek, busy=busy, r_delay=3,
                        seed=5)
    # the buffers
    act = buffer_words(b"".join(original[0x1000 + 64 * r:0x1000 + 64 * r + 5 * ab] for r in range(3)), ab)
    assert seen[Buffer.ACT][10:25] == act
    assert seen[Buffer.ACT][100:140] == buffer_words(original[0x4000:0x4000 + 40 * ab], ab)
    w = buffer_words(b"".join(original[0x1FA0 + 96 * r:0x1FA0 + 96 * r + 3 * wb] for r in range(2)), wb)
    assert seen[Buffer.WEIGHTS][4:10] == w
    q = buffer_words(b"".join(original[0x3000 + 128 * r:0x3000 + 128 * r + 2 * qb] for r in range(2)), qb)
    assert seen[Buffer.QUANT][1:5] == q
    # DRAM: only the stored bytes changed
    want = bytearray(original)
    stored = b"".join(original[0x1000 + 64 * r:0x1000 + 64 * r + 5 * ab] for r in range(3))
    for r in range(5):
        want[0x8000 + 40 * r:0x8000 + 40 * r + 3 * ab] = stored[r * 3 * ab:(r + 1) * 3 * ab]
    want[0x8400:0x8400 + 40 * ab] = original[0x4000:0x4000 + 40 * ab]
    assert bytes(mem) == bytes(want)
    # counters, flags
    loaded = (15 + 40) * ab + 6 * wb + 4 * qb
    assert res["bytes_read"] == len(cmds) * COMMAND_BYTES + loaded
    assert res["bytes_written"] == (15 + 40) * ab
    assert res["slave"].r_beats * data_width // 8 == res["bytes_read"]
    assert res["error"] == 0 and res["busy"] == 0 and res["compute_cycles"] == 0
    assert res["cycles"] == res["done_cycle"] - 1       # busy from the cycle after start to done
    assert len(res["layer_done"]) == 2 and res["layer_done"][0] < res["layer_done"][1]
    assert all(n <= 8 for _, _, n in res["slave"].bursts)


@pytest.mark.parametrize("data_width", [16, 32])
def test_transfers_stream_at_the_bus_rate(data_width):
    """An ACT LOAD, a STORE and a WEIGHTS LOAD of 1 KB each, back to back against a slave that never pauses:
    each within 3 % + 12 cycles of one beat per cycle (the STORE path's converter and FIFO keep up)."""
    mem = bytearray(1 << 16)
    cmds = [load(Buffer.ACT, 0x4000, 0, 256, mark=1), store(0x8000, 0, 256, mark=1),
            load(Buffer.WEIGHTS, 0x4000, 0, 64, mark=1), pack({"op": Op.END})]
    mem[PROGRAM:PROGRAM + len(cmds) * COMMAND_BYTES] = stream_bytes(cmds)
    (res,) = run_engine(DramEngine(CFG, data_width=data_width), mem, [(PROGRAM, len(cmds))], data_width=data_width)
    beats = 1024 * 8 // data_width
    stamps = res["layer_done"]
    for took in (stamps[1] - stamps[0], stamps[2] - stamps[1]):      # the STORE, the WEIGHTS LOAD
        assert took <= beats * 1.03 + 12, (took, beats)
    assert mem[0x8000:0x8400] == mem[0x4000:0x4400]


def _simple_stream(*extra):
    return [load(Buffer.ACT, 0x1000, 0, 4), *extra]


@pytest.mark.parametrize("bad", ["op7", "store_weights", "buffer3", "no_end", "axi_error"])
def test_errors_stop_the_run_and_clear_at_the_next_start(bad):
    mem = bytearray(1 << 16)
    raw7 = pack({"op": Op.END}) | 7
    cmds = {"op7": _simple_stream(raw7, pack({"op": Op.END})),
            "store_weights": _simple_stream(store(0x9000, 0, 1, buffer=Buffer.WEIGHTS),
                                            store(0x9000, 0, 4), pack({"op": Op.END})),
            "buffer3": _simple_stream(load(Buffer.ACT, 0x1000, 0, 1) | (3 << 5), pack({"op": Op.END})),
            "no_end": _simple_stream(store(0x8000, 0, 4)),
            "axi_error": _simple_stream(load(Buffer.ACT, 0xF000, 0, 4), pack({"op": Op.END}))}[bad]
    assert (load(Buffer.ACT, 0, 0, 1) >> 5) & 3 == Buffer.ACT.value       # the buffer field's place
    good = [load(Buffer.ACT, 0x1000, 0, 4), store(0x8000, 0, 4), pack({"op": Op.END})]
    mem[PROGRAM:PROGRAM + len(cmds) * COMMAND_BYTES] = stream_bytes(cmds)
    mem[0x2000:0x2000 + len(good) * COMMAND_BYTES] = stream_bytes(good)
    mem[0x1000:0x1010] = bytes(range(1, 17))
    dut = DramEngine(CFG, data_width=16)
    first, second = run_engine(dut, mem, [(PROGRAM, len(cmds)), (0x2000, len(good))], data_width=16,
                               error_range=(0xF000, 0x10000))
    assert first["error"] == 1, bad
    assert mem[0x9000:0x9010] == bytes(16)               # stopped: nothing stored
    assert second["error"] == 0 and mem[0x8000:0x8010] == bytes(range(1, 17))
    assert second["bytes_read"] == len(good) * COMMAND_BYTES + 16


def test_zero_commands_is_an_error():
    dut = DramEngine(CFG, data_width=16)
    (res,) = run_engine(dut, bytearray(1 << 16), [(PROGRAM, 0)], data_width=16)
    assert res["error"] == 1 and res["bytes_read"] == 0


def test_parameters_and_needs():
    with pytest.raises(ValueError):
        DramEngine(dataclasses.replace(CFG, memory="resident"), data_width=16)
    with pytest.raises(ValueError):
        DramEngine(CFG, data_width=64)        # wider than the 32-bit activation word
    needs = DramEngine.needs(CFG, data_width=16)
    mems = sorted(needs["memories"])
    for want in ((128, 64), (256, 16)):                # WEIGHTS, QUANT
        assert want in mems
    assert mems.count((16, 256)) == 2                   # ACT: one bank of 256 words in two 16-bit slices


# -- a real compute: a compiled Fire module, one tile per layer -------------------------------------------------

@pytest.fixture(scope="module")
def fire_out(tmp_path_factory):
    from conftest import compile_fire
    return compile_fire(tmp_path_factory.mktemp("dramfire"), in_channels=16, squeeze=8, expand1x1=16,
                        expand3x3=16, input_size=7)


def one_tile_per_layer(compiled, x, *, snapshots: bool):
    """(DRAM image, commands, where each ACT snapshot goes): the weights, quant and initial activation images
    loaded whole, each layer's resident descriptor as one compute command, the whole ACT buffer stored (after
    every layer with ``snapshots``, else once at the end)."""
    from fireforge.sim.hw_run import initial_memory

    cfg, v = compiled.config, compiled.vector
    weights = compiled.images["weights"].read().tobytes()
    quant = compiled.images["quant"].read().tobytes()
    act = initial_memory(compiled, x).tobytes()
    image, at = {}, 0x10000
    for name, data in (("weights", weights), ("quant", quant), ("act", act)):
        image[name] = (at, data)
        at = (at + len(data) + 0xFFF) & ~0xFFF
    cmds = [load(Buffer.WEIGHTS, image["weights"][0], 0, len(weights) // cfg.mac_units),
            load(Buffer.QUANT, image["quant"][0], 0, len(quant) // (cfg.quant_word_bits // 8)),
            load(Buffer.ACT, image["act"][0], 0, cfg.act_depth)]
    descriptors = compiled.images["descriptors"].read()
    dumps = []
    for i, entry in enumerate(compiled.layers):
        cmds.append(int.from_bytes(descriptors[i].tobytes(), "little"))        # the resident descriptor
        if snapshots or i == len(compiled.layers) - 1:
            dumps.append(at)
            cmds.append(store(at, 0, cfg.act_depth, wait=1, mark=1))
            at += cfg.act_depth * v
    cmds.append(pack({"op": Op.END}))
    mem = bytearray(at)
    for addr, data in image.values():
        mem[addr:addr + len(data)] = data
    mem[0:len(cmds) * COMMAND_BYTES] = stream_bytes(cmds)
    return mem, cmds, dumps


@pytest.mark.parametrize("data_width", [16])
def test_fire_module_one_tile_per_layer_is_byte_exact(fire_out, data_width):
    from conftest import random_input
    from fireforge.core.compiled import Compiled
    from fireforge.core.layout import read_layer_result, read_tensor
    from fireforge.sim import golden

    compiled, x = Compiled.of(fire_out), random_input((1, 16, 7, 7), 19)
    expected = golden.run(compiled.program, x)
    cfg = dataclasses.replace(compiled.config, memory="dram")
    mem, cmds, dumps = one_tile_per_layer(compiled, x, snapshots=True)
    dut = DramEngine(cfg, data_width=data_width)
    (res,) = run_engine(dut, mem, [(0, len(cmds))], data_width=data_width, max_cycles=500_000)
    v = compiled.vector
    snaps = [np.frombuffer(bytes(mem[a:a + cfg.act_depth * v]), np.uint8).reshape(cfg.act_depth, v) for a in dumps]
    for entry, snap in zip(compiled.layers, snaps):
        got = read_layer_result(entry.descriptor, compiled.layer_channel_index(entry), snap, v)
        bad = int(np.count_nonzero(got != expected.layer_outputs[entry.name]))
        assert bad == 0, f"{entry.name}: {bad} of {got.size} bytes differ from the golden model"
    out = read_tensor(compiled.output_layout, snaps[-1], v)
    assert np.array_equal(out, expected.output)
    assert res["error"] == 0 and len(res["layer_done"]) == len(compiled.layers)
    print(f"\nFire module, DRAM mode one tile per layer: {res['cycles']} cycles, core busy {res['compute_cycles']}, "
          f"read {res['bytes_read']} B, written {res['bytes_written']} B")


def test_transfers_run_while_the_core_computes(fire_out):
    """LOADs and STOREs with wait=0 beside running tiles: a STORE of the input the squeeze layer is reading
    (the STORE reader before the core on ACT's read port), a LOAD into free ACT words while the layer writes
    (the core before LOAD on the write port), a STORE of them while the next layer runs; the AXI slave pauses
    every channel 30 % of cycles. Every layer and both copies byte-exact."""
    from conftest import random_input
    from fireforge.core.compiled import Compiled
    from fireforge.core.layout import read_layer_result, read_tensor
    from fireforge.sim import golden
    from fireforge.sim.hw_run import initial_memory

    compiled, x = Compiled.of(fire_out), random_input((1, 16, 7, 7), 7)
    expected = golden.run(compiled.program, x)
    cfg, v = dataclasses.replace(compiled.config, memory="dram"), compiled.vector
    used = max(t.addr + t.words for t in compiled.tensors.values())
    free, n_free = used + 8, min(200, cfg.act_depth - used - 8)
    inp = compiled.input_layout
    mem, cmds, dumps = one_tile_per_layer(compiled, x, snapshots=False)
    at = len(mem)
    x_copy, y_src, y_copy = at, at + 0x1000, at + 0x2000
    mem += bytearray(0x3000)
    mem[y_src:y_src + n_free * v] = random.Random(3).randbytes(n_free * v)
    # after the first compute: STORE the input it reads, LOAD free words; after the second: STORE them
    first = 3
    cmds[first + 1:first + 1] = [store(x_copy, inp.addr, inp.words), load(Buffer.ACT, y_src, free, n_free)]
    cmds[first + 4:first + 4] = [store(y_copy, free, n_free)]
    mem[0:len(cmds) * COMMAND_BYTES] = stream_bytes(cmds)
    dut = DramEngine(cfg, data_width=16)
    (res,) = run_engine(dut, mem, [(0, len(cmds))], data_width=16, max_cycles=500_000, busy=0.3, seed=9)
    assert res["error"] == 0 and res["overlap"] > 100
    final = np.frombuffer(bytes(mem[dumps[-1]:dumps[-1] + cfg.act_depth * v]), np.uint8).reshape(cfg.act_depth, v)
    for entry in compiled.layers:
        got = read_layer_result(entry.descriptor, compiled.layer_channel_index(entry), final, v)
        assert np.array_equal(got, expected.layer_outputs[entry.name]), entry.name
    assert np.array_equal(read_tensor(compiled.output_layout, final, v), expected.output)
    init = initial_memory(compiled, x)
    assert bytes(mem[x_copy:x_copy + inp.words * v]) == init[inp.addr:inp.addr + inp.words].tobytes()
    assert mem[y_copy:y_copy + n_free * v] == mem[y_src:y_src + n_free * v]
    assert bytes(final[free:free + n_free].tobytes()) == bytes(mem[y_src:y_src + n_free * v])
    print(f"\nconcurrent transfers: {res['cycles']} cycles, core busy {res['compute_cycles']}, "
          f"{res['overlap']} data beats while the core computed")
