"""The board's host path end to end: HostClient (the PC side) → UART → HostLink → engine (Verilated).

Everything a board runs except the PLL and the pins: the inference's output must be the golden model's,
byte for byte, and the cycle count the one the engine reports without the link.
"""

import numpy as np
import pytest

from fireforge.sim import golden
from fireforge.sim.hw_run import rtl_run
from fireforge.core.config import EngineConfig
from fireforge.core.program import Program

from conftest import compile_fire, random_input
from support.uart import uart_infer


@pytest.fixture(scope="module")
def small_fire(tmp_path_factory):
    return compile_fire(tmp_path_factory.mktemp("uart"), in_channels=16, squeeze=8, expand1x1=16, expand3x3=16,
                        input_size=6)


def test_inference_over_the_uart_equals_the_golden_model(small_fire):
    x = random_input((1, 16, 6, 6), 21)
    res = uart_infer(small_fire, x)
    want = golden.run(Program.load(small_fire), x).output
    assert res["output"].shape == want.shape
    assert int(np.count_nonzero(res["output"] != want)) == 0
    assert res["info"] == {"version": 1, "word_bytes": 4, "mac_units": 16,
                           "act_depth": EngineConfig.from_dict(
                               __import__("json").loads((small_fire / "engine.json").read_text())).act_depth}
    assert res["cycles"] == rtl_run(small_fire, x).cycles


def test_inference_over_the_uart_behind_a_slow_stalling_memory(small_fire):
    """The host port's reads and writes wait for the memory (an external DRAM answers late)."""
    x = random_input((1, 16, 6, 6), 22)
    res = uart_infer(small_fire, x, read_latency=7, stall_seed=3)
    want = golden.run(Program.load(small_fire), x).output
    assert int(np.count_nonzero(res["output"] != want)) == 0
