# amaranth: UnusedElaboratable=no
"""The engine's activations in LiteDRAM's real controller (issue #19): ``sim/engine_litedram.py``'s top
(``EngineAxiTop`` + the ULX3S ``--sim`` core with ``SDRAMPHYModel`` + ``DramInitSequencer`` on ``wb_ctrl``, one
clock) Verilated; the input preloaded over AXI, the engine run, every layer's result and the output read back
byte-exact with the golden model."""

import json

import numpy as np
import pytest

pytest.importorskip("litedram")
pytest.importorskip("cocotbext.axi")

from fireforge.core.compiled import Compiled
from fireforge.core.program import Program  # noqa: E402
from fireforge.sim import golden, litedram  # noqa: E402
from fireforge.sim.hw_run import initial_memory, default_build_root, image_plusargs  # noqa: E402

from conftest import compile_fire, random_input  # noqa: E402
from support.bus_replay import assert_exact, replay_writes  # noqa: E402

BASE = 0x4000
ONCHIP_CYCLES = 4897      # the same program and engine with the on-chip ff_act_ram (tests/test_engine_axi.py)


@pytest.fixture(scope="module")
def fire_out(tmp_path_factory):
    return compile_fire(tmp_path_factory.mktemp("englitedram"), in_channels=16, squeeze=8, expand1x1=16,
                        expand3x3=16, input_size=7)


def test_engine_on_litedram_is_byte_exact(fire_out, tmp_path):
    from fireforge.sim import engine_litedram, verilator as V

    compiled, x = Compiled.of(fire_out), random_input((1, 16, 7, 7), 19)
    expected = golden.run(Program.load(fire_out), x)
    core = litedram.generate("ulx3s", axi_data_width=compiled.config.act_word_bits, axi_id_width=1)
    model, name = engine_litedram.build(compiled, core, default_build_root(), base=BASE)
    mem = initial_memory(compiled, x)
    (tmp_path / "init.bin").write_bytes(mem.tobytes())
    spec = {"init": str(tmp_path / "init.bin"), "final": str(tmp_path / "final.bin"), "base": BASE,
            "max_cycles": 200_000}
    (tmp_path / "axi.json").write_text(json.dumps(spec))
    res = V.run(model, name, "fireforge.sim.cocotb_engine_litedram", plusargs=image_plusargs(compiled),
                test_dir=tmp_path / "sim", timeout_s=300, extra_env={"FF_AXI": tmp_path / "axi.json"})
    assert res["init_done"] == 1 and res["init_error"] == 0 and res["seq_error"] == 0
    assert res["error"] == 0
    final = np.frombuffer((tmp_path / "final.bin").read_bytes(), np.uint8).reshape(mem.shape)
    snaps, shadow = replay_writes(mem, res["writes"], res["layer_ends"], BASE, compiled.vector)
    assert_exact(compiled, expected, final, snaps, shadow)
    print(f"\nengine on LiteDRAM (ULX3S sim, one clock): {res['cycles']} cycles "
          f"({res['cycles'] / ONCHIP_CYCLES:.2f}x on-chip {ONCHIP_CYCLES}); init {res['init_cycles']} cycles; "
          f"preload {mem.size} B in {res['preload_cycles']}, read-back in {res['readback_cycles']}; in flight: "
          f"reads {res['max_reads_in_flight']}, writes {res['max_writes_in_flight']}; {len(res['writes'])} writes; "
          f"run {res['run_seconds']:.1f} s")
    assert res["cycles"] > ONCHIP_CYCLES
