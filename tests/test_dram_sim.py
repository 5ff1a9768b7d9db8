# amaranth: UnusedElaboratable=no
"""The DRAM-mode simulation bench (issue #19, spec "Simulation (sim/)"): LiteDRAM's ULX3S ``--sim`` core with a
backdoor (preload / dump of the chip's bank arrays by plusargs), its byte-address mapping measured over AXI,
the AXI staller, and DramEngine on the real controller end to end (``fireforge.sim.dram_run``)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

pytest.importorskip("litedram")
pytest.importorskip("cocotbext.axi")

from fireforge.sim import litedram, verilator  # noqa: E402
from fireforge.sim import litedram_backdoor as backdoor  # noqa: E402
from fireforge.sim.hw_run import default_build_root, run_dir  # noqa: E402

AXI_DATA_WIDTH = 16     # the engine's port on the ULX3S (docs/dram.md: the native width)


@pytest.fixture(scope="module")
def core():
    return litedram.generate("ulx3s", axi_data_width=AXI_DATA_WIDTH, axi_id_width=1)


@pytest.fixture(scope="module")
def geometry(core):
    return backdoor.dram_geometry(core)


@pytest.fixture(scope="module")
def backdoor_model(core):
    patched = backdoor.write_backdoor_core(core)
    top = litedram.write_sim_top(core)
    return verilator.build([patched, top], litedram.SIM_TOP, default_build_root() / "verilator", clock="gpi")


def test_geometry_and_mapping(core, geometry):
    """ROW_BANK_COL on 16-bit native words: col = word[8:0], bank = word[10:9], row = word[23:11]."""
    g = geometry
    assert (g.word_bytes, g.col_bits, g.bank_bits, g.row_bits) == (2, 9, 2, 13)
    assert g.arrays == ("mem", "mem_1", "mem_2", "mem_3") and g.depth == 1 << 22
    assert g.size_bytes == core.profile.size_bytes == 32 << 20
    assert backdoor.dram_location(g, 0) == (0, 0, 0)
    assert backdoor.dram_location(g, 1) == (0, 0, 1)
    assert backdoor.dram_location(g, 1022) == (0, 511, 0)
    assert backdoor.dram_location(g, 1024) == (1, 0, 0)
    assert backdoor.dram_location(g, 4096) == (0, 512, 0)
    assert backdoor.dram_location(g, (32 << 20) - 1) == (3, (1 << 22) - 1, 1)
    rng = random.Random(3)
    for _ in range(1000):
        a = rng.randrange(g.size_bytes)
        assert backdoor.dram_byte_address(g, *backdoor.dram_location(g, a)) == a
    assert backdoor.dump_index_range(g, 4096, 4097) == (512, 1023)
    assert backdoor.dump_index_range(g, 4095, 8193) == (0, 1535)


def test_image_files(geometry, tmp_path):
    """Sparse per-bank hex: @index records, partial words zero-filled, later entries win."""
    g = geometry
    files = backdoor.write_dram_image({1: b"\xaa\xbb\xcc", 1024: b"\x11\x22", 2: b"\xdd"}, tmp_path, g)
    assert sorted(files) == [0, 1]
    assert files[0].read_text() == "@0\naa00\nccdd\n"      # bytes 0..3: 00 aa dd(wins over bb) cc
    assert files[1].read_text() == "@0\n2211\n"
    assert backdoor.write_dram_image({}, tmp_path / "none", g) == {}
    with pytest.raises(ValueError, match="outside"):
        backdoor.write_dram_image({(32 << 20) - 1: b"12"}, tmp_path, g)


def _regions(rng, size, n, max_len, avoid=()):
    out = list(avoid)
    new = []
    while len(new) < n:
        length = rng.randrange(1, max_len)
        a = rng.randrange(0, size - length)
        if all(a + length <= b or b + m <= a for b, m in out):
            out.append((a, length))
            new.append((a, length))
    return new


def test_backdoor_against_axi(core, geometry, backdoor_model):
    """Preload random bytes by backdoor and read them over AXI (AxiMaster); write random bytes over AXI and
    dump (the core's ``final`` block): both byte-exact, at random addresses across all banks and rows, so the
    mapping of :func:`backdoor.dram_location` is the controller's."""
    g = geometry
    rng = random.Random(11)
    reads = _regions(rng, g.size_bytes, 24, 600)                     # anywhere in the 32 MB
    window = (0x130_0000, 0x134_0000)                                # 256 KB dumped: 64 rows x 4 banks
    in_win = _regions(rng, window[1] - window[0], 12, 3000)
    in_win = [(a + window[0], n) for a, n in in_win]
    preload_in, writes = in_win[:6], in_win[6:]
    image = {a: bytes(rng.getrandbits(8) for _ in range(n)) for a, n in reads + preload_in}
    # a write overlapping a preloaded region partly (the dump must show both)
    a, n = preload_in[0]
    writes.append((a + n // 2, n // 4 + 1))
    wdata = {a: bytes(rng.getrandbits(8) for _ in range(n)) for a, n in writes}
    with run_dir(None, "dram-backdoor-") as tmp:
        init = backdoor.write_dram_image(image, tmp / "init", g)
        plus, dumps = backdoor.backdoor_plusargs(g, init, (tmp, *window))
        spec = {"reads": reads, "writes": [[a, d.hex()] for a, d in wdata.items()]}
        (tmp / "spec.json").write_text(json.dumps(spec))
        res = verilator.run(backdoor_model, litedram.SIM_TOP, "support.cocotb_dram_backdoor", plusargs=plus,
                            test_dir=tmp / "sim", timeout_s=300, extra_env={"FF_BACKDOOR": tmp / "spec.json"})
        assert all(dumps[b].is_file() for b in dumps), "the final block did not run"
        dumped = backdoor.read_dram_dump(dumps, *window, g)
    for (a, n), got in zip(reads, res["reads"]):
        assert bytes.fromhex(got) == image[a], f"backdoor preload at {a:#x} read back wrong over AXI"
    expected = bytearray(window[1] - window[0])
    for a, d in list(image.items()) + list(wdata.items()):
        if window[0] <= a < window[1]:
            lo = a - window[0]
            expected[lo:lo + len(d)] = d
    # preloaded words partly covered are zero-filled, as written by write_dram_image
    diff = np.flatnonzero(np.frombuffer(dumped, np.uint8) != np.frombuffer(bytes(expected), np.uint8))
    assert diff.size == 0, f"{diff.size} dumped bytes differ, first at {window[0] + diff[0]:#x}"
    print(f"\nbackdoor vs AXI: {len(reads)} preloaded regions read, {len(writes)} writes dumped "
          f"({window[1] - window[0]} B window), {res['cycles']} cycles; model built in "
          f"{verilator.build_info(backdoor_model)['build_seconds']} s, run {res['run_seconds']} s")


# -- AxiStaller (amaranth.sim, against a random legal master and slave) -------------------------------------

def _staller_run(pct: int, seed: int, cycles: int = 1500):
    from amaranth.sim import Simulator

    from fireforge.hw.dram.axi import AXI4
    from fireforge.sim.axi_staller import CHANNELS, AxiStaller

    dut = AxiStaller(AXI4(data_width=16, addr_width=12, id_width=1))
    payload = {"ar": "araddr", "aw": "awaddr", "w": "wdata", "r": "rdata", "b": "bresp"}
    width = {"ar": 12, "aw": 12, "w": 16, "r": 16, "b": 2}
    stats = {"hs": {c: 0 for c in CHANNELS}, "closed": 0, "stalls": 0}
    rng = random.Random(seed)

    async def bench(ctx):
        ctx.set(dut.stall_seed, seed)
        ctx.set(dut.stall_pct, pct)
        offer = {c: None for c in CHANNELS}     # the source's pending payload
        last_sink = {c: None for c in CHANNELS}  # payload offered to the sink and not taken last cycle
        for _ in range(cycles):
            for c, (v, r, d) in CHANNELS.items():
                src, sink = (dut.up, dut.down) if d == "fwd" else (dut.down, dut.up)
                if offer[c] is None and rng.random() < 0.5:
                    offer[c] = rng.randrange(1 << width[c])
                ctx.set(getattr(src, v), offer[c] is not None)
                if offer[c] is not None:
                    ctx.set(getattr(src, payload[c]), offer[c])
                ctx.set(getattr(sink, r), rng.random() < 0.6)
            for c, (v, r, d) in CHANNELS.items():
                src, sink = (dut.up, dut.down) if d == "fwd" else (dut.down, dut.up)
                sv, sr = ctx.get(getattr(sink, v)), ctx.get(getattr(sink, r))
                uv, ur = ctx.get(getattr(src, v)), ctx.get(getattr(src, r))
                got = ctx.get(getattr(sink, payload[c]))
                if last_sink[c] is not None:
                    assert sv and got == last_sink[c], f"{c}: valid dropped or payload changed before the handshake"
                if pct == 0:
                    assert (sv, ur) == (uv, sr), f"{c}: not transparent at stall_pct 0"
                assert bool(sv and sr) == bool(uv and ur), f"{c}: handshakes differ on the two sides"
                if not sv and uv:
                    stats["closed"] += 1
                last_sink[c] = got if sv and not sr else None
                if sv and sr:
                    assert got == offer[c]
                    offer[c] = None
                    stats["hs"][c] += 1
            await ctx.tick()
        stats["stalls"] = ctx.get(dut.stalls)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("pct", [0, 30, 80])
def test_axi_staller_is_legal(pct):
    """valid towards a sink never drops and its payload never changes before the handshake; both sides see
    the same handshakes with the same payloads; stall_pct 0 is wires; stalls scale with stall_pct."""
    s = _staller_run(pct, seed=5 + pct)
    assert all(n > 50 for n in s["hs"].values()), s
    if pct == 0:
        assert s["closed"] == 0 and s["stalls"] == 0
    else:
        assert s["stalls"] > 0 and s["closed"] > 0
    print(f"\nstall_pct {pct}: handshakes {s['hs']}, held-back channel-cycles {s['closed']}, stall cycles {s['stalls']}")


# -- DramEngine on the real controller, end to end (fireforge.sim.dram_run) ---------------------------------

# the same engine as the compiled Fire test below (one Verilated model for both)
E2E_CFG = dict(mac_units=16, weight_depth=64, quant_depth=16, desc_depth=2, act_depth=256, memory="dram")
SRC = 0x0123_4000          # source data: rows 0x1234.. (every bank, several rows)
DST = 0x01FF_0000          # stores: across rows near the top of the 32 MB
PROG = (0x0080_0000, 0x0080_1000, 0x0080_2000)   # three command streams


def _e2e_case():
    """Three runs: transfers in every buffer with runs / strides / wait / mark, stored to DRAM; a stream with
    a bad command (op 7); a second good stream. Returns (image, runs, expected dump, expectations)."""
    from fireforge.core.config import EngineConfig
    from fireforge.core.descriptor import COMMAND_BYTES, Buffer, Op, pack, pack_transfer

    cfg = EngineConfig(**E2E_CFG)
    ab, wb, qb = cfg.act_word_bits // 8, cfg.weight_word_bits // 8, cfg.quant_word_bits // 8

    def xfer(op, buffer, dram_addr, buf_addr, run_words, runs=1, stride=0, **kw):
        return pack_transfer({"op": op, "buffer": buffer, "dram_addr": dram_addr, "buf_addr": buf_addr,
                              "run_words": run_words, "runs": runs, "dram_stride": stride, **kw})

    end = pack({"op": Op.END})
    s0 = [xfer(Op.LOAD, Buffer.ACT, SRC, 10, 5, runs=3, stride=0x400),             # ACT[10..25), 3 banks
          xfer(Op.LOAD, Buffer.WEIGHTS, SRC + 0x1FA0, 4, 3, runs=2, stride=96),      # across a 4 KB boundary
          xfer(Op.LOAD, Buffer.QUANT, SRC + 0x3000, 1, 2, runs=2, stride=128, mark=1),
          xfer(Op.LOAD, Buffer.ACT, SRC + 0x5000, 100, 100, wait=1),                 # longer than a burst
          xfer(Op.STORE, Buffer.ACT, DST, 10, 3, runs=5, stride=40, wait=1, mark=1),  # ACT[10..25) in 5 runs
          xfer(Op.STORE, Buffer.ACT, DST + 0x1000, 100, 100, mark=1),
          end]
    s1 = [xfer(Op.LOAD, Buffer.ACT, SRC, 0, 4), 7, xfer(Op.STORE, Buffer.ACT, DST + 0x3000, 0, 4), end]
    s2 = [xfer(Op.STORE, Buffer.ACT, DST + 0x2000, 100, 50, runs=2, stride=0x800, mark=1), end]
    rng = random.Random(23)
    src = rng.randbytes(0x6000)
    image = {SRC: src}
    for p, s in zip(PROG, (s0, s1, s2)):
        image[p] = b"".join(c.to_bytes(COMMAND_BYTES, "little") for c in s)
    lo, hi = DST - 0x100, DST + 0x4000
    want = bytearray(hi - lo)

    def put(addr, data):
        want[addr - lo:addr - lo + len(data)] = data

    act = {}
    for r in range(3):
        for i in range(5):
            act[10 + 5 * r + i] = src[0x400 * r + i * ab:0x400 * r + (i + 1) * ab]
    for i in range(100):
        act[100 + i] = src[0x5000 + i * ab:0x5000 + (i + 1) * ab]
    for r in range(5):
        put(DST + 40 * r, b"".join(act[10 + 3 * r + i] for i in range(3)))
    put(DST + 0x1000, b"".join(act[100 + i] for i in range(100)))
    for r in range(2):                       # run 2: ACT is kept across runs
        put(DST + 0x2000 + 0x800 * r, b"".join(act[100 + 50 * r + i] for i in range(50)))
    expect = [
        {"bytes_read": len(s0) * COMMAND_BYTES + (15 + 100) * ab + 6 * wb + 4 * qb,
         "bytes_written": (15 + 100) * ab, "error": 0, "marks": 3},
        {"error": 1, "marks": 0},
        {"bytes_read": len(s2) * COMMAND_BYTES, "bytes_written": 100 * ab, "error": 0, "marks": 1},
    ]
    runs = [(PROG[0], len(s0)), (PROG[1], len(s1)), (PROG[2], len(s2))]
    return cfg, image, runs, (lo, hi), bytes(want), expect


@pytest.mark.parametrize("stall_pct", [0, 40])
def test_dram_engine_on_litedram(stall_pct):
    """DramEngine on the ULX3S controller with a hand-built command stream: three runs back to back (a bad
    command in the middle one), DRAM bytes exact after the dump, counters exact, layer_done stamped; the same
    model with the AxiStaller at 40 %."""
    from fireforge.sim.dram_run import dram_run

    cfg, image, runs, dump, want, expect = _e2e_case()
    res = dram_run(image, runs, config=cfg, dump=dump, stall_seed=99, stall_pct=stall_pct, timeout_s=600,
                   max_cycles=2_000_000)
    got = np.frombuffer(res.dump, np.uint8)
    diff = np.flatnonzero(got != np.frombuffer(want, np.uint8))
    assert diff.size == 0, f"{diff.size} DRAM bytes differ, first at {dump[0] + diff[0]:#x}"
    for r, e in zip(res.runs, expect):
        assert r.error == e["error"], (r, e)
        for k in ("bytes_read", "bytes_written"):
            if k in e:
                assert getattr(r, k) == e[k], (k, r, e)
        assert r.compute_cycles == 0 and r.stall_cycles == r.cycles
        assert len(r.layer_cycles) == e["marks"] and r.layer_cycles == sorted(r.layer_cycles)
        assert all(0 < c <= r.cycles for c in r.layer_cycles)
        assert r.clock_cycles == r.cycles               # the engine's count = start pulse -> done edge
    assert res.runs[1].bytes_written == 0                    # the bad command stopped the run before its STORE
    assert (res.stalls > 0) == (stall_pct > 0)
    print(f"\nDramEngine on LiteDRAM, stall_pct {stall_pct}: cycles {[r.cycles for r in res.runs]} "
          f"(clock {[r.clock_cycles for r in res.runs]}), "
          f"read {[r.bytes_read for r in res.runs]} B, written {[r.bytes_written for r in res.runs]} B, "
          f"layer stamps {[r.layer_cycles for r in res.runs]}, staller stalls {res.stalls}; init "
          f"{res.init_cycles} cycles; run {res.run_seconds} s, build {res.build_seconds} s")


@pytest.fixture(scope="module")
def fire_dram(tmp_path_factory):
    """A Fire module compiled for DRAM mode with buffers small enough that every layer is tiled."""
    import onnx

    from fireforge.core.config import EngineConfig
    from fireforge.models import squeezenet
    from fireforge.sw.compile import compile_model

    d = tmp_path_factory.mktemp("firedram")
    onnx.save(squeezenet.build_fire(in_channels=16, squeeze=8, expand1x1=16, expand3x3=16, input_size=7),
              d / "fire.onnx")
    compile_model(d / "fire.onnx", d / "out", config=EngineConfig(**E2E_CFG))
    return d / "out"


@pytest.mark.parametrize("stall_pct", [0, 30])
def test_compiled_fire_on_litedram(fire_dram, stall_pct):
    """The compiler's tiled command stream (row bands, output-group chunks, alternating halves) on DramEngine and
    the real controller: every layer byte-exact with the golden model from the dumped activation region, the
    engine's byte counters equal to the compiler's traffic, one layer_done per layer."""
    from conftest import random_input

    from fireforge.core.compiled import Compiled
    from fireforge.core.layout import read_layer_result, read_tensor
    from fireforge.sim import golden
    from fireforge.sim.dram_run import act_words, dram_run, program_image

    c, x = Compiled.of(fire_dram), random_input((1, 16, 7, 7), 19)
    expected = golden.run(c.program, x)
    assert any(layer["tiles"] > 1 for layer in c.dram["layers"])
    image, runs, dump = program_image(c, x)
    res = dram_run(image, runs, config=c.config, dump=dump, stall_seed=3, stall_pct=stall_pct, timeout_s=600,
                   max_cycles=2_000_000)
    act = act_words(c, res)
    for entry in c.layers:
        got = read_layer_result(entry.descriptor, c.layer_channel_index(entry), act, c.vector)
        bad = int(np.count_nonzero(got != expected.layer_outputs[entry.name]))
        assert bad == 0, f"{entry.name}: {bad} of {got.size} bytes differ from the golden model"
    assert np.array_equal(read_tensor(c.output_layout, act, c.vector), expected.output)
    (r,) = res.runs
    assert r.error == 0 and len(r.layer_cycles) == len(c.layers)
    assert (r.bytes_read, r.bytes_written) == (c.dram["bytes_read"], c.dram["bytes_written"])
    assert 0 < r.compute_cycles < r.cycles
    print(f"\ncompiled Fire module (tiles {[l['tiles'] for l in c.dram['layers']]}) on LiteDRAM, stall_pct "
          f"{stall_pct}: {r.cycles} cycles, core busy {r.compute_cycles}, read {r.bytes_read} B, written "
          f"{r.bytes_written} B, layers done at {r.layer_cycles}; run {res.run_seconds} s")


def test_watchdog_and_bad_arguments():
    """A run that does not reach done within max_cycles fails (the Timer watchdog) instead of hanging; bad
    dump ranges and stall_pct are refused before anything is built."""
    from fireforge.core.config import EngineConfig
    from fireforge.sim.dram_run import dram_run

    cfg, image, runs, dump, _, _ = _e2e_case()
    with pytest.raises(RuntimeError, match="did not rise within FF_MAX_CYCLES=100 "):
        dram_run(image, runs[:1], config=cfg, dump=dump, max_cycles=100, timeout_s=300)
    with pytest.raises(ValueError, match="outside the DRAM"):
        dram_run({}, [(0, 1)], config=EngineConfig(**E2E_CFG), dump=(0, (32 << 20) + 1))
    with pytest.raises(ValueError, match="stall_pct"):
        dram_run({}, [(0, 1)], config=EngineConfig(**E2E_CFG), dump=(0, 16), stall_pct=100)
