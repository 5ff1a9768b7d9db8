"""Activations in external memory: the engine behind a slow memory (Verilator), the external-port top.

A board whose block RAM holds the weights but not the activations (v1_1 at 224x224 on the KC705) puts them
in DRAM behind the engine's two memory channels. What that needs from the engine is exactness whatever the
read latency and back-pressure; ``ff_act_ram``'s ``+act_latency`` models the DRAM in simulation.
"""

import json

import numpy as np
import pytest

from fireforge.cli import main
from fireforge.hw.generate import generate
from fireforge.hw.top import ACT_RAM_LATENCY
from fireforge.sim import golden
from fireforge.sim.hw_run import rtl_run
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.program import Program

from conftest import assert_hw_equals_golden, compile_fire, random_input


@pytest.fixture(scope="module")
def fire_out(tmp_path_factory):
    return compile_fire(tmp_path_factory.mktemp("ext"), in_channels=32, squeeze=16, expand1x1=64, expand3x3=64,
                        input_size=15)


def test_engine_is_exact_behind_a_slow_memory(fire_out):
    x = random_input((1, 32, 15, 15), 11)
    fast = assert_hw_equals_golden(fire_out, x)
    # the on-chip engine (core.config.TAP_DEPTH = 16 reads in flight) stays exact behind a slow memory, but slows down
    slow = assert_hw_equals_golden(fire_out, x, read_latency=12, stall_seed=5, stall_pct=30)
    assert slow.cycles > 1.3 * fast.cycles
    # the engine built for DRAM (EXTERNAL_TAP_DEPTH = 64 reads in flight): exact, and a 40-cycle latency costs < 2 %
    dram_engine = BuildVariant(act_memory="external")
    assert_hw_equals_golden(fire_out, x, read_latency=40, stall_seed=5, stall_pct=30, variant=dram_engine)
    dram = assert_hw_equals_golden(fire_out, x, read_latency=40, variant=dram_engine)
    assert fast.cycles < dram.cycles < 1.02 * fast.cycles


def test_simulate_refuses_an_impossible_latency(fire_out, tmp_path, capsys):
    np.save(tmp_path / "x.npy", random_input((1, 32, 15, 15), 1))
    for latency in (0, ACT_RAM_LATENCY - 1):      # below the on-chip RAM's own pipeline
        assert main(["simulate", str(fire_out), "--input", str(tmp_path / "x.npy"),
                     "--read-latency", str(latency)]) == 2
        err = capsys.readouterr().err
        assert f"--read-latency: must be an integer from {ACT_RAM_LATENCY} to 64" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err


def test_external_port_top_is_lint_clean(fire_out, tmp_path):
    res = generate(fire_out, tmp_path / "rtl", lint_check=True, act_memory="external")
    assert res["act_memory"] == "external"
    v = (tmp_path / "rtl" / "fireforge_top.v").read_text()
    for port in ("mem_rd_valid", "mem_rd_ready", "mem_rd_addr", "mem_rd_resp_valid", "mem_rd_resp_data",
                 "mem_wr_valid", "mem_wr_ready", "mem_wr_addr", "mem_wr_data", "host_rready", "host_wready"):
        assert f" {port}" in v, port
    assert "ff_act_ram" not in v and not (tmp_path / "rtl" / "ff_act_ram.v").exists()


def test_generate_act_memory_auto_needs_a_board(fire_out, tmp_path, capsys):
    assert main(["generate", str(fire_out), "-o", str(tmp_path / "r"), "--act-memory", "auto"]) == 2
    assert "needs --board" in capsys.readouterr().err and not (tmp_path / "r").exists()
