"""LiteDRAM controllers for the simulator: one board profile per board, a generated core cached by its
config's hash, and the initialisation sequence as data.

``litedram_gen CONFIG.yml --sim --no-compile`` (PyPI: litedram / litex / migen / liteeth / litescope /
liteiclink 2024.12) writes ``gateware/litedram_core.v``: LiteDRAM's real controller (bank machines,
refresher, crossbar, AXI-to-native bridge) with ``SDRAMPHYModel`` in place of the FPGA PHY — a model of
the DRAM chip that keeps its contents in Verilog arrays and answers with the module's timings in
controller clock cycles (tRP, tRCD, tWR, tRFC, tREFI, CL... from ``litedram.modules``, rounded at the
profile's ``sys_clk_freq``). The cycles a simulation reports therefore include refreshes, row misses and
read/write turnarounds of the real controller. ``--no-compile`` skips the BIOS (there is no CPU).

Profiles
--------
:class:`DramProfile`, :data:`PROFILES`, :func:`core_config` and :func:`config_yaml` live in
:mod:`fireforge.hw.board.litedram_core` (one source of truth for these ``--sim`` cores and the board cores of
issue #20; ``hw`` may not import ``sim``); its docstring says where each setting comes from and which ULX3S
revisions carry which chip. They are re-exported here.

Initialisation (``cpu: None``)
------------------------------
What LiteX's BIOS ``sdram_init`` (``liblitedram/sdram.c``) does in software, as Wishbone writes on
``wb_ctrl`` (:func:`init_sequence`): ``ddrctrl_init_done/error = 0``; ``sdram_dfii_control =
CKE|ODT|RESET_N`` (software control); per command of ``litedram.init.get_sdram_phy_init_sequence``
(the same list ``sdram_phy.h``'s ``init_sequence()`` is printed from) ``pi0_address``, ``pi0_baddress``,
``pi0_command``, ``pi0_command_issue = 1``, then its delay; ``sdram_dfii_control = SEL`` (hardware
control); ``ddrctrl_init_done = 1``. ``init_done`` / ``init_error`` are plain CSR bits written by
that software, and they gate the user ports (``block_until_ready``). SDRAMPHYModel does not model
mode registers, CKE or the power-up wait, and DFII powers up in hardware control: in simulation
the only write that *must* happen is ``init_done = 1`` (measured: see ``tests/test_litedram_sim.py``);
the full sequence is still driven so that the board top (#20) replays the list that was simulated.
No leveling: the BIOS levels DDR3 only with a leveling-capable PHY, never with SDRAMPHYModel; on the
Arty/KC705 boards #20 must add it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from amaranth import ClockSignal, Instance, Signal
from amaranth.lib.wiring import Out

from fireforge.hw.board.litedram_core import (AXI_PREFIX, PROFILES, BoardCore, DramProfile, config_yaml,  # noqa: F401
                                             core_config, generate_board_core)
from fireforge.sim.verilog_ports import top_port_decls

__all__ = ["DramProfile", "PROFILES", "LiteDRAMCore", "WishboneWrite", "core_config", "config_yaml",
           "generate", "init_sequence", "write_sim_top", "sim_core_instance", "SIM_TOP", "AXI_PREFIX", "DFII_CONTROL_SEL", "DFII_CONTROL_CKE",
           "DFII_CONTROL_ODT", "DFII_CONTROL_RESET_N", "DFII_COMMAND_WRDATA", "DFII_COMMAND_RDDATA"]

# DFII control / command bits (litedram.init's ``sdram_phy.h`` defines)
DFII_CONTROL_SEL = 0x01
DFII_CONTROL_CKE = 0x02
DFII_CONTROL_ODT = 0x04
DFII_CONTROL_RESET_N = 0x08
DFII_COMMAND_WRDATA = 0x10
DFII_COMMAND_RDDATA = 0x20
#: what the BIOS writes to ``sdram_dfii_control`` for software / hardware control (sdram.c)
DFII_CONTROL_SOFTWARE = DFII_CONTROL_CKE | DFII_CONTROL_ODT | DFII_CONTROL_RESET_N
DFII_CONTROL_HARDWARE = DFII_CONTROL_SEL
_DFII_FLAGS = {"DFII_CONTROL_SEL": DFII_CONTROL_SEL, "DFII_CONTROL_CKE": DFII_CONTROL_CKE,
               "DFII_CONTROL_ODT": DFII_CONTROL_ODT, "DFII_CONTROL_RESET_N": DFII_CONTROL_RESET_N,
               "DFII_COMMAND_CS": 0x01, "DFII_COMMAND_WE": 0x02, "DFII_COMMAND_CAS": 0x04,
               "DFII_COMMAND_RAS": 0x08, "DFII_COMMAND_WRDATA": DFII_COMMAND_WRDATA,
               "DFII_COMMAND_RDDATA": DFII_COMMAND_RDDATA}


@dataclass(frozen=True)
class LiteDRAMCore(BoardCore):
    """A generated ``--sim`` core (:func:`fireforge.hw.board.litedram_core.generate_board_core` with ``sim``):
    the board core's fields, and the simulation top beside it."""

    @property
    def sim_top(self) -> Path:
        """``ff_litedram_sim.v``: see :func:`write_sim_top`."""
        return self.out_dir / "ff_litedram_sim.v"


def generate(profile: DramProfile | str, *, axi_data_width: int = 32, axi_id_width: int = 4,
             build_root: Path | None = None) -> LiteDRAMCore:
    """Generate (or reuse) the ``--sim`` core of *profile* (``litedram_gen CONFIG.yml --sim --no-compile``,
    cached by content: :func:`~fireforge.hw.board.litedram_core.generate_board_core`)."""
    from fireforge.sim.hw_run import default_build_root

    core = generate_board_core(profile, axi_data_width=axi_data_width, axi_id_width=axi_id_width,
                               build_root=build_root if build_root is not None else default_build_root(), sim=True)
    return LiteDRAMCore(**core.__dict__)


#: the simulation top around ``litedram_core`` (:func:`write_sim_top`)
SIM_TOP = "ff_litedram_sim"


def write_sim_top(core: LiteDRAMCore) -> Path:
    """Write ``ff_litedram_sim``: ``litedram_core`` with the same ports but ``awsize``/``arsize`` 3 bits
    wide as AXI4 has them (LiteX declares them 4 bits; cocotbext-axi checks widths) and ``sim_trace``
    (litex_sim's trace switch) tied low. Returns its path (inside the core's directory)."""
    from fireforge.sim.verilog_ports import top_port_decls

    decls = top_port_decls([core.verilog], "litedram_core")
    narrowed = {f"{AXI_PREFIX}_awsize", f"{AXI_PREFIX}_arsize"}
    ports, conns = [], []
    for direction, name, width in decls:
        if name == "sim_trace":
            conns.append(".sim_trace(1'b0)")
            continue
        w = 3 if name in narrowed else width
        ports.append(f"    {direction} wire {f'[{w - 1}:0] ' if w > 1 else ''}{name}")
        conns.append(f".{name}({{1'b0, {name}}})" if name in narrowed else f".{name}({name})")
    text = ["// Generated by fireforge.sim.litedram.write_sim_top (do not edit)",
            f"module {SIM_TOP} (", ",\n".join(ports), ");",
            "  litedram_core core (" + ", ".join(conns) + ");", "endmodule", ""]
    tmp = core.sim_top.with_suffix(f".v.{os.getpid()}.tmp")    # test workers may write it side by side
    tmp.write_text("\n".join(text))
    tmp.replace(core.sim_top)
    return core.sim_top


class WishboneWrite(NamedTuple):
    """One step of the init sequence: write *data* to byte *address* on ``wb_ctrl``, then wait
    *wait_cycles* controller cycles (the BIOS's ``cdelay``; a ROM sequencer counts them down)."""

    address: int
    data: int
    wait_cycles: int = 0
    comment: str = ""


def _phy_and_timings(profile: DramProfile):
    """The PHY settings and module timings ``litedram_gen --sim`` builds the core with."""
    import litedram.modules
    from litedram.phy.model import get_sdram_phy_settings

    rate = {"SDR": "1:1", "DDR2": "1:2", "DDR3": "1:4", "DDR4": "1:4"}[profile.memtype]   # as litedram.gen
    module = getattr(litedram.modules, profile.sdram_module)(profile.sys_clk_freq, rate=rate)
    settings = get_sdram_phy_settings(memtype=module.memtype, data_width=profile.dram_data_bits,
                                      clk_freq=profile.sys_clk_freq)
    return settings, module.timing_settings


def init_sequence(core: LiteDRAMCore) -> list[WishboneWrite]:
    """The controller's initialisation as Wishbone writes on ``wb_ctrl`` (byte addresses; the Wishbone
    word address is ``address >> 2``): what the BIOS's ``sdram_init`` does, without leveling or memtest.
    The same list is what a ROM-driven sequencer in the board top replays."""
    from litedram.init import get_sdram_phy_init_sequence

    csr = core.csr
    settings, timings = _phy_and_timings(core.profile)
    commands, _mr = get_sdram_phy_init_sequence(settings, timings)
    seq = [WishboneWrite(csr["ddrctrl_init_done"], 0, 0, "init_done = 0"),
           WishboneWrite(csr["ddrctrl_init_error"], 0, 0, "init_error = 0"),
           WishboneWrite(csr["sdram_dfii_control"], DFII_CONTROL_SOFTWARE, 0, "DFII: software control")]
    for comment, address, bank, command, delay in commands:
        # litedram.init writes each command as C flag names ("DFII_COMMAND_RAS|DFII_COMMAND_CS"); the
        # DFII_CONTROL ones are dfii_control writes in sdram_phy.h, the others command_p0() (see
        # litedram.init.get_sdram_phy_c_header); address and bank are written before either.
        value = sum(_DFII_FLAGS[f.strip()] for f in command.split("|"))
        seq.append(WishboneWrite(csr["sdram_dfii_pi0_address"], address, 0, comment))
        seq.append(WishboneWrite(csr["sdram_dfii_pi0_baddress"], bank, 0, comment))
        if command.startswith("DFII_CONTROL"):
            seq.append(WishboneWrite(csr["sdram_dfii_control"], value, delay, comment))
        else:
            seq.append(WishboneWrite(csr["sdram_dfii_pi0_command"], value, 0, comment))
            seq.append(WishboneWrite(csr["sdram_dfii_pi0_command_issue"], 1, delay, comment))
    seq += [WishboneWrite(csr["sdram_dfii_control"], DFII_CONTROL_HARDWARE, 0, "DFII: hardware control"),
            WishboneWrite(csr["ddrctrl_init_done"], 1, 0, "init_done = 1")]
    return seq


def sim_core_instance(core: LiteDRAMCore, axi_sig, requests: dict, seq_bus, *, init_done, init_error,
                      domain: str = "sync"):
    """The ``ff_litedram_sim`` core of a Verilated bench as an amaranth ``Instance`` on ``domain``'s clock:
    ``wb_ctrl`` driven by the init sequencer's bus ``seq_bus``, ``init_done`` / ``init_error`` out, and its AXI
    port: ``requests`` holds a value for every master → core member of ``axi_sig`` (those the core lacks —
    lock, cache, prot — are left off). Returns ``(instance, responses)``: a new signal per core → master member."""
    ports = {"i_clk": ClockSignal(domain), "o_init_done": init_done, "o_init_error": init_error}
    for n in ("adr", "dat_w", "sel", "cyc", "stb", "we", "cti", "bte"):
        ports[f"i_wb_ctrl_{n}"] = getattr(seq_bus, n)
    for n in ("dat_r", "ack", "err"):
        ports[f"o_wb_ctrl_{n}"] = getattr(seq_bus, n)
    core_ports = {name for _, name, _ in top_port_decls([core.verilog, core.sim_top], SIM_TOP)}
    responses = {}
    for n, member in axi_sig.members.items():
        port = f"{AXI_PREFIX}_{n}"
        if member.flow == Out:
            if port in core_ports:
                ports[f"i_{port}"] = requests[n]
        else:
            if port not in core_ports:
                raise ValueError(f"the core has no {port}")
            responses[n] = ports[f"o_{port}"] = Signal(member.shape, name=f"core_{n}")
    return Instance(SIM_TOP, **ports), responses
