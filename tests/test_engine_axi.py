# amaranth: UnusedElaboratable=no
"""The engine with its activations in AXI memory (issue #19): ``EngineAxiTop`` (``FireforgeTop`` with
``act_memory="external"`` behind an ``AxiActivationPort``) Verilated against cocotbext-axi's ``AxiRam`` with
random pauses on AR / R / AW / W / B; every layer's result and the output byte-exact with the golden model."""

import json

import numpy as np
import pytest

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.core.program import Program
from fireforge.hw.dram.act_port import RAW_RULES
from fireforge.sim import golden
from fireforge.sim.hw_run import initial_memory, default_build_root, image_plusargs, rtl_run

from conftest import compile_fire, random_input
from support.bus_replay import assert_exact, replay_writes

BASE = 0x4000        # word 0's byte address: not 0, so the address arithmetic is exercised


@pytest.fixture(scope="module")
def fire_out(tmp_path_factory):
    return compile_fire(tmp_path_factory.mktemp("engaxi"), in_channels=16, squeeze=8, expand1x1=16, expand3x3=16,
                        input_size=7)


def _build(compiled, max_writes, raw="addresses"):
    from amaranth.back import verilog

    from fireforge.hw.dram.engine_axi import EngineAxiTop
    from fireforge.hw.top import HDL_DIR, verilog_ports
    from fireforge.sim import verilator as V

    name = "ff_engine_axi"
    top = EngineAxiTop(compiled.config, base=BASE, max_writes=max_writes, raw=raw)
    tag = "-".join(f"{k}{v}" for k, v in compiled.config.to_dict().items())
    src = default_build_root() / "dram" / f"engaxi-{tag}-w{max_writes}-{raw}" / f"{name}.v"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(verilog.convert(top, name=name, emit_src=False, ports=verilog_ports(top)))
    # cocotbext-axi samples handshakes at the rising edge: cocotb's GPI clock
    return V.build([src, HDL_DIR / "ff_rom.v"], name, default_build_root() / "verilator", clock="gpi"), name


def axi_run(compiled, x, tmp_path, *, max_writes=8, raw="addresses", seed=1, busy=0.3, write_lag=0,
            trace=False):
    from fireforge.sim import verilator as V

    model, name = _build(compiled, max_writes, raw)
    mem = initial_memory(compiled, x)
    size = 1 << (BASE + mem.size - 1).bit_length()
    (tmp_path / "init.bin").write_bytes(mem.tobytes())
    spec = {"init": str(tmp_path / "init.bin"), "final": str(tmp_path / "final.bin"), "base": BASE, "size": size,
            "seed": seed, "busy": busy, "write_lag": write_lag, "trace": trace,
            "max_cycles": 2_000_000}
    (tmp_path / "axi.json").write_text(json.dumps(spec))
    res = V.run(model, name, "fireforge.sim.cocotb_engine_axi", plusargs=image_plusargs(compiled),
                test_dir=tmp_path / "sim", timeout_s=600, extra_env={"FF_AXI": tmp_path / "axi.json"})
    final = np.frombuffer((tmp_path / "final.bin").read_bytes(), np.uint8).reshape(mem.shape)
    snaps, shadow = replay_writes(mem, res["writes"], res["layer_ends"], BASE, compiled.vector)
    return res, final, snaps, shadow


def _assert_exact(compiled, expected, res, final, snaps, shadow):
    assert res["error"] == 0
    assert_exact(compiled, expected, final, snaps, shadow)


def test_engine_over_axi_is_byte_exact(fire_out, tmp_path):
    pytest.importorskip("cocotbext.axi", reason="cocotbext-axi (the dev extra) is the AXI memory")
    compiled, x = Compiled.of(fire_out), random_input((1, 16, 7, 7), 19)
    expected = golden.run(Program.load(fire_out), x)
    res, final, snaps, shadow = axi_run(compiled, x, tmp_path, max_writes=4)
    _assert_exact(compiled, expected, res, final, snaps, shadow)
    # the same engine (64 reads in flight) on the on-chip RAM model
    onchip = rtl_run(compiled, x, variant=BuildVariant(act_memory="external"))
    print(f"\nAXI (30 % pauses): {res['cycles']} cycles, on-chip: {onchip.cycles} "
          f"({res['cycles'] / onchip.cycles:.2f}x); in flight: reads {res['max_reads_in_flight']}, "
          f"writes {res['max_writes_in_flight']}; {len(res['writes'])} writes, run {res['run_seconds']:.1f} s")
    assert 1 < res["max_reads_in_flight"] and res["cycles"] > onchip.cycles


@pytest.mark.parametrize("raw", RAW_RULES)
def test_reads_wait_for_writes_that_have_not_landed(fire_out, tmp_path, raw):
    """W open one cycle in every 201: each write lands up to 200 cycles after the port took it, so
    throttled: the next layer asks for its input before the previous layer's last writes have reached the
    memory. Without the port's read-after-write rule this run reads stale words (checked by removing the rule:
    2 bytes of the output differ)."""
    pytest.importorskip("cocotbext.axi", reason="cocotbext-axi (the dev extra) is the AXI memory")
    compiled, x = Compiled.of(fire_out), random_input((1, 16, 7, 7), 23)
    expected = golden.run(Program.load(fire_out), x)
    res, final, snaps, shadow = axi_run(compiled, x, tmp_path, max_writes=64, raw=raw, seed=2,
                                          busy=0.1, write_lag=200)
    _assert_exact(compiled, expected, res, final, snaps, shadow)
    assert res["max_writes_in_flight"] > 1
    print(f"\nAXI with late writes ({raw}): {res['cycles']} cycles, run {res['run_seconds']:.1f} s")


def test_port_parameters_and_needs():
    from fireforge.hw.dram.act_port import AxiActivationPort

    port = AxiActivationPort(vector=4, act_addr_bits=10, base=0x4000)
    assert port.m_axi.signature.data_width == 32 and AxiActivationPort.needs() == {"products": {}, "memories": []}
    for bad in ({"vector": 3}, {"base": 2}, {"base": 1 << 32}, {"max_writes": 0}, {"max_writes": 65},
                {"raw": "never"}):
        with pytest.raises(ValueError):
            AxiActivationPort(**{"vector": 4, "act_addr_bits": 10, **bad})
