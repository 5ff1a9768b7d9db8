"""LiteDRAM's real controller in the simulator (issue #19): the generated ``--sim`` core of each board profile,
its init sequence, and a Verilated ULX3S core initialised through ``wb_ctrl`` and written / read back
byte-exact through its AXI port by cocotbext-axi (:mod:`fireforge.sim.cocotb_litedram`).

The Verilated model is built once (cached by content under ``$FIREFORGE_BUILD``); only the ULX3S profile
is simulated here: its SDRAMPHYModel keeps 32 MB in Verilog arrays, the Arty's 256 MB and the KC705's
1 GB would be allocated by every run.
"""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("litedram")
pytest.importorskip("cocotbext.axi")

from fireforge.sim import litedram, verilator  # noqa: E402
from fireforge.sim.hw_run import default_build_root, run_dir  # noqa: E402

AXI_DATA_WIDTH = 32


@pytest.fixture(scope="module")
def ulx3s_core():
    return litedram.generate("ulx3s", axi_data_width=AXI_DATA_WIDTH)


@pytest.fixture(scope="module")
def ulx3s_model(ulx3s_core):
    top = litedram.write_sim_top(ulx3s_core)
    return verilator.build([ulx3s_core.verilog, top], litedram.SIM_TOP, default_build_root() / "verilator")


def _run(model, core, tmp, sequence, seed=1):
    init = tmp / "init.json"
    init.write_text(json.dumps([[w.address, w.data, w.wait_cycles] for w in sequence]))
    return verilator.run(model, litedram.SIM_TOP, "fireforge.sim.cocotb_litedram", test_dir=tmp / "sim",
                         timeout_s=300, extra_env={"FF_LITEDRAM_INIT": init, "FF_LITEDRAM_SEED": seed,
                                                   "FF_LITEDRAM_SIZE": core.profile.size_bytes})


@pytest.mark.parametrize("name", sorted(litedram.PROFILES))
def test_profiles_generate(name, tmp_path):
    """Each profile generates (cached: a second call does not regenerate), with the AXI port at the
    requested width, the CSRs the init sequence writes, and the same commands as sdram_phy.h."""
    core = litedram.generate(name, axi_data_width=64)
    again = litedram.generate(name, axi_data_width=64)
    assert again.out_dir == core.out_dir
    assert (core.out_dir / "ff_build.json").stat().st_mtime == (again.out_dir / "ff_build.json").stat().st_mtime
    ports = verilator.top_port_decls([core.verilog], "litedram_core")
    widths = {n: w for _, n, w in ports}
    assert widths[f"{litedram.AXI_PREFIX}_wdata"] == 64
    # byte addresses: the whole DRAM (LiteDRAM's AXI port addresses all of it)
    assert 1 << widths[f"{litedram.AXI_PREFIX}_awaddr"] == core.profile.size_bytes
    assert {"init_done", "init_error", "wb_ctrl_adr", "clk"} <= set(widths)

    seq = litedram.init_sequence(core)
    assert seq[-1] == (core.csr["ddrctrl_init_done"], 1, 0, "init_done = 1")
    assert (core.csr["sdram_dfii_control"], litedram.DFII_CONTROL_HARDWARE) in [w[:2] for w in seq]
    # the generated C init (what the BIOS would run) writes the same addresses and commands in order
    header = core.sdram_phy_h.read_text()
    body = header[header.index("init_sequence(void)"):]
    c_addresses = [int(a, 0) for a in re.findall(r"sdram_dfii_pi0_address_write\((\w+)\)", body)]
    ours = [w.data for w in seq if w.address == core.csr["sdram_dfii_pi0_address"]]
    assert ours == c_addresses and c_addresses
    c_delays = [int(d) for d in re.findall(r"cdelay\((\d+)\)", body)]
    assert [w.wait_cycles for w in seq if w.wait_cycles] == c_delays


def test_profile_validation():
    with pytest.raises(ValueError, match="axi_data_width"):
        litedram.core_config(litedram.PROFILES["ulx3s"], axi_data_width=24)
    with pytest.raises(ValueError, match="unknown DRAM profile"):
        litedram.generate("de10")


def test_ulx3s_axi_byte_exact(ulx3s_core, ulx3s_model):
    """The full BIOS-style init, then random transfers (1 byte .. 4 KB + 1, unaligned, one across a 4 KB
    boundary) written and read back byte-exact; latency and throughput measured in controller cycles."""
    with run_dir(None, "litedram-") as tmp:
        r = _run(ulx3s_model, ulx3s_core, tmp, litedram.init_sequence(ulx3s_core))
    assert r["before_init"] == {"init_done": 0, "init_error": 0}
    assert r["init_done"] == 1 and r["init_error"] == 0 and r["init_done_readback"] == 1
    assert all(t["mismatches"] == 0 and t["mismatches_at_end"] == 0 for t in r["transfers"])
    assert r["burst_read"]["mismatches"] == 0 and r["stream_read"]["mismatches"] == 0
    mhz = ulx3s_core.profile.clock_mhz
    # SDR, 16 bits: at most 2 bytes per controller cycle
    for k in ("burst_read", "burst_write", "stream_read", "stream_write"):
        assert r[k]["bytes"] / r[k]["cycles"] <= 2.0
    print(f"\nULX3S LiteDRAM sim ({mhz:.0f} MHz, {AXI_DATA_WIDTH}-bit AXI): init {r['init_cycles']} cycles; "
          f"read latency row hit {r['read_latency_hit']} / miss {r['read_latency_miss']} cycles; "
          + "; ".join(f"{k} {r[k]['bytes']} B in {r[k]['cycles']} cycles = {r[k]['bytes'] / r[k]['cycles'] * mhz:.0f} MB/s"
                      for k in ("burst_read", "burst_write", "stream_read", "stream_write"))
          + f"; model built in {verilator.build_info(ulx3s_model)['build_seconds']} s; run {r['run_seconds']} s")


def test_ulx3s_init_done_is_all_the_model_needs(ulx3s_core, ulx3s_model):
    """With SDRAMPHYModel the user port opens on ``init_done = 1`` alone (the model ignores mode
    registers and CKE, and DFII powers up in hardware control); the board needs the full sequence."""
    done = [w for w in litedram.init_sequence(ulx3s_core) if w.comment == "init_done = 1"]
    with run_dir(None, "litedram-min-") as tmp:
        r = _run(ulx3s_model, ulx3s_core, tmp, done, seed=2)
    assert r["init_done"] == 1 and r["init_writes"] == 1
    assert all(t["mismatches"] == 0 and t["mismatches_at_end"] == 0 for t in r["transfers"])
