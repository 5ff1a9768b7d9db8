"""LiteDRAM controllers for the simulator: one board profile per board, a generated core cached by its
config's hash, and the initialisation sequence as data.

``litedram_gen CONFIG.yml --sim --no-compile`` (PyPI: litedram / litex / migen / liteeth / litescope /
liteiclink 2024.12) writes ``gateware/litedram_core.v``: LiteDRAM's real controller (bank machines,
refresher, crossbar, AXI-to-native bridge) with ``SDRAMPHYModel`` in place of the FPGA PHY — a model of
the DRAM chip that keeps its contents in Verilog arrays and answers with the module's timings in
controller clock cycles (tRP, tRCD, tWR, tRFC, tREFI, CL... from ``litedram.modules``, rounded at the
profile's ``sys_clk_freq``). The cycles a simulation reports therefore include refreshes, row misses and
read/write turnarounds of the real controller. ``--no-compile`` skips the BIOS (there is no CPU).

Profiles and where each setting comes from
------------------------------------------
Every profile is ``cpu: None`` (no soft CPU: the core gets a ``wb_ctrl`` Wishbone slave port instead,
through which the init sequence below is driven) and has one AXI4 user port ``axi_0`` whose data width
is a parameter of :func:`core_config` (the engine's AXI width; LiteDRAM's crossbar converts it to the
controller's native width: ``sdram_module_nb`` x 8 x 2 (DDR) x phases).

``ulx3s``  Radiona ULX3S. ``examples/ulx3s.yml`` of LiteDRAM (GitHub; the wheel does not ship it):
           ``memtype SDR``, ``sdram_phy GENSDRPHY``, ``sys_clk_freq 50e6`` (SDR clock = sys clock),
           ``sdram_module MT48LC16M16``, ``sdram_module_nb 2`` (2 byte groups = the chip's 16-bit bus),
           ``cmd_buffer_depth 16``. The chip: ULX3S revisions up to v3.0.3 carry a 32 MB 16M x 16 SDR chip
           (MT48LC16M16A2 or its IS42S16160 twin); some later boards carry the 64 MB AS4C32M16SB.
           MT48LC16M16 is what LiteDRAM's example and litex-boards' ``radiona_ulx3s`` default use, and a
           program that fits 32 MB fits both; the timings differ by a few ns (at 50 MHz: the same cycle
           counts except tRFC). ``dataclasses.replace(PROFILES["ulx3s"], sdram_module="AS4C32M16")`` gives
           the 64 MB variant.
``arty``   Digilent Arty A7. ``examples/arty.yml``: ``memtype DDR3``, ``sdram_phy A7DDRPHY``,
           ``sdram_module MT41K128M16`` (the board's 256 MB DDR3L), ``sdram_module_nb 2`` (16 bits),
           ``sys_clk_freq 100e6`` (DDR clock = 4 x sys clock, PHY rate 1:4), ``cmd_latency 0``,
           ``rtt_nom/rtt_wr 60ohm``, ``ron 34ohm``, ``input_clk_freq 100e6``, ``iodelay_clk_freq 200e6``.
``kc705``  Xilinx KC705. No LiteDRAM example; settings as litex-boards' ``xilinx_kc705`` target:
           ``sdram_phy K7DDRPHY``, the kit's 1 GB SODIMM ``MT8JTF12864`` (64-bit, ``sdram_module_nb 8``),
           ``sys_clk_freq 125e6`` (DDR3-1000, rate 1:4), electrical settings and ``cmd_latency`` as
           LiteDRAM's ``examples/genesys2.yml`` (the other Kintex-7 example), ``input_clk_freq 200e6``
           (the KC705's 200 MHz system clock).

With ``--sim`` only ``memtype``, ``sdram_module``, ``sdram_module_nb``, ``sys_clk_freq``,
``cmd_buffer_depth`` and the user ports shape the core (``litedram.gen``: a ``SimPlatform`` gets
``SDRAMPHYModel`` with ``litedram.phy.model.get_sdram_phy_settings``); the PHY and electrical keys are kept
so the same YAML generates the board's core without ``--sim`` (issue #9/#20).

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

import csv
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

from fireforge.sim.build_cache import cached_build, build_info

__all__ = ["DramProfile", "PROFILES", "LiteDRAMCore", "WishboneWrite", "core_config", "config_yaml",
           "generate", "init_sequence", "write_sim_top", "SIM_TOP", "AXI_PREFIX", "DFII_CONTROL_SEL", "DFII_CONTROL_CKE",
           "DFII_CONTROL_ODT", "DFII_CONTROL_RESET_N", "DFII_COMMAND_WRDATA", "DFII_COMMAND_RDDATA",
           "BACKDOOR_VERSION", "DramGeometry", "dram_geometry", "dram_location", "dram_byte_address",
           "write_backdoor_core", "write_dram_image", "dump_index_range", "backdoor_plusargs", "read_dram_dump"]

#: the user port's signal prefix in the generated core (``user_port_<name>_*``, name ``axi_0``)
AXI_PREFIX = "user_port_axi_0"

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

_PACKAGES = ("litedram", "litex", "migen")


@dataclass(frozen=True, kw_only=True)
class DramProfile:
    """One board's DRAM as LiteDRAM's YAML keys (see the module docstring for where each comes from).

    Parameters
    ----------
    name : str
        Profile name (``ulx3s``, ``arty``, ``kc705``).
    memtype, sdram_module, sdram_module_nb, sdram_phy, sys_clk_freq : str, str, int, str, float
        LiteDRAM's keys of the same names: DRAM type, module class in ``litedram.modules``, byte groups
        (data bus width / 8), FPGA PHY class, controller clock in Hz.
    board_keys : dict
        The rest of the board's YAML (electrical settings, PHY clocks, device); unused by ``--sim``.
    """

    name: str
    memtype: str
    sdram_module: str
    sdram_module_nb: int
    sdram_phy: str
    sys_clk_freq: float
    cmd_buffer_depth: int = 16
    board_keys: dict = field(default_factory=dict)

    @property
    def dram_data_bits(self) -> int:
        return 8 * self.sdram_module_nb

    @property
    def clock_mhz(self) -> float:
        return self.sys_clk_freq / 1e6

    @property
    def size_bytes(self) -> int:
        """Capacity: banks x rows x columns x data bus bytes (``litedram.modules``)."""
        import litedram.modules

        m = getattr(litedram.modules, self.sdram_module)
        return m.nbanks * m.nrows * m.ncols * self.sdram_module_nb


PROFILES: dict[str, DramProfile] = {
    "ulx3s": DramProfile(name="ulx3s", memtype="SDR", sdram_module="MT48LC16M16", sdram_module_nb=2,
                         sdram_phy="GENSDRPHY", sys_clk_freq=50e6,
                         board_keys={"device": "LFE5U-85F-6BG381C"}),
    # the same chip and PHY with the controller (and, in the simulation, the engine) at 100 MHz: the
    # MT48LC16M16A2-75 runs CL2 up to 100 MHz; LiteDRAM's ULX3S example runs 50 MHz
    "ulx3s-100": DramProfile(name="ulx3s-100", memtype="SDR", sdram_module="MT48LC16M16", sdram_module_nb=2,
                             sdram_phy="GENSDRPHY", sys_clk_freq=100e6,
                             board_keys={"device": "LFE5U-85F-6BG381C"}),
    "arty": DramProfile(name="arty", memtype="DDR3", sdram_module="MT41K128M16", sdram_module_nb=2,
                        sdram_phy="A7DDRPHY", sys_clk_freq=100e6,
                        board_keys={"speedgrade": -1, "cmd_latency": 0, "sdram_rank_nb": 1,
                                    "rtt_nom": "60ohm", "rtt_wr": "60ohm", "ron": "34ohm",
                                    "input_clk_freq": 100e6, "iodelay_clk_freq": 200e6}),
    "kc705": DramProfile(name="kc705", memtype="DDR3", sdram_module="MT8JTF12864", sdram_module_nb=8,
                         sdram_phy="K7DDRPHY", sys_clk_freq=125e6,
                         board_keys={"speedgrade": -2, "cmd_latency": 1, "sdram_rank_nb": 1,
                                     "rtt_nom": "60ohm", "rtt_wr": "60ohm", "ron": "34ohm",
                                     "input_clk_freq": 200e6, "iodelay_clk_freq": 200e6}),
}


def core_config(profile: DramProfile, *, axi_data_width: int = 32, axi_id_width: int = 4) -> dict:
    """The ``litedram_gen`` config for *profile* with one AXI user port of *axi_data_width* bits."""
    if axi_data_width not in (8, 16, 32, 64, 128, 256, 512):
        raise ValueError(f"axi_data_width must be a power of two from 8 to 512, not {axi_data_width!r}")
    if not 1 <= axi_id_width <= 32:
        raise ValueError(f"axi_id_width must be 1..32, not {axi_id_width!r}")
    return {
        **profile.board_keys,
        "cpu": None,
        "memtype": profile.memtype,
        "sdram_module": profile.sdram_module,
        "sdram_module_nb": profile.sdram_module_nb,
        "sdram_phy": profile.sdram_phy,
        "sys_clk_freq": profile.sys_clk_freq,
        "cmd_buffer_depth": profile.cmd_buffer_depth,
        "user_ports": {"axi_0": {"type": "axi", "id_width": axi_id_width, "data_width": axi_data_width}},
    }


def config_yaml(config: dict) -> str:
    """*config* as the YAML ``litedram_gen`` reads (a flow mapping; ``None`` is written as LiteDRAM's
    examples write it, and ``litedram_gen`` turns the string back into ``None``)."""
    body = json.dumps(config, indent=4, sort_keys=True)
    return "# Generated by fireforge.sim.litedram (do not edit)\n" + body.replace(": null", ": None") + "\n"


@dataclass(frozen=True)
class LiteDRAMCore:
    """A generated core: its directory, config, and the CSR map read from ``csr.csv``."""

    out_dir: Path
    profile: DramProfile
    config: dict
    csr: dict[str, int]          # CSR register name -> byte address on wb_ctrl
    generate_seconds: float

    @property
    def verilog(self) -> Path:
        return self.out_dir / "gateware" / "litedram_core.v"

    @property
    def sdram_phy_h(self) -> Path:
        return self.out_dir / "software" / "include" / "generated" / "sdram_phy.h"

    @property
    def sim_top(self) -> Path:
        """``ff_litedram_sim.v``: see :func:`write_sim_top`."""
        return self.out_dir / "ff_litedram_sim.v"

    @property
    def axi_data_width(self) -> int:
        return self.config["user_ports"]["axi_0"]["data_width"]


def _read_csr(out_dir: Path) -> dict[str, int]:
    regs = {}
    with open(out_dir / "csr.csv", newline="") as f:
        for row in csv.reader(f):
            if row and row[0] == "csr_register":
                regs[row[1]] = int(row[2], 0)
    return regs


def _default_root() -> Path:
    from fireforge.sim.hw_run import default_build_root

    return default_build_root()


def generate(profile: DramProfile | str, *, axi_data_width: int = 32, axi_id_width: int = 4,
             build_root: Path | None = None) -> LiteDRAMCore:
    """Generate (or reuse) the ``--sim`` core of *profile*: ``litedram_gen CONFIG.yml --sim --no-compile``
    into ``<build root>/litedram/<profile>-<key16>``, the key hashing the YAML and the versions of
    litedram, litex and migen. A finished directory carries ``ff_build.json`` (written last) and is not
    regenerated."""
    if isinstance(profile, str):
        try:
            profile = PROFILES[profile]
        except KeyError:
            raise ValueError(f"unknown DRAM profile {profile!r}; known: {', '.join(PROFILES)}") from None
    config = core_config(profile, axi_data_width=axi_data_width, axi_id_width=axi_id_width)
    text = config_yaml(config)
    versions = {p: version(p) for p in _PACKAGES}
    key = hashlib.sha256(json.dumps({"yaml": text, "versions": versions, "args": "--sim --no-compile"},
                                    sort_keys=True).encode()).hexdigest()
    root = Path(build_root) if build_root is not None else _default_root()

    def make(out: Path) -> dict:
        (out / "config.yml").write_text(text)
        # litedram_gen is run as a module of this interpreter (its console script may not be on PATH)
        cmd = [sys.executable, "-c", "import sys; from litedram.gen import main; sys.argv[0] = 'litedram_gen'; main()",
               "config.yml", "--sim", "--no-compile", "--output-dir", "."]
        proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
        (out / "litedram_gen.log").write_text(proc.stdout + proc.stderr)
        wanted = [out / "gateware" / "litedram_core.v", out / "csr.csv",
                  out / "software" / "include" / "generated" / "sdram_phy.h"]
        # With --sim, litex's Verilator toolchain exits 1 *after* writing everything we use: it looks
        # for pythondata-misc-tapcfg (the Ethernet TAP of litex_sim's C++ harness, not on PyPI) to
        # write its sim Makefile variables. Only that failure is tolerated.
        tapcfg_only = proc.returncode != 0 and "pythondata_misc_tapcfg" in proc.stderr
        if (proc.returncode != 0 and not tapcfg_only) or not all(p.is_file() for p in wanted):
            raise RuntimeError(f"litedram_gen failed for profile {profile.name} (exit {proc.returncode}):\n"
                               + "\n".join((proc.stdout + proc.stderr).splitlines()[-30:]))
        return {"key": key, "profile": profile.name, "config": config, "versions": versions}

    out = cached_build(root / "litedram" / f"{profile.name}-{key[:16]}", make)
    return LiteDRAMCore(out_dir=out, profile=profile, config=config, csr=_read_csr(out),
                        generate_seconds=build_info(out)["build_seconds"])


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
    tmp = core.sim_top.with_suffix(".v.tmp")
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


# ----------------------------------------------------------------------------------------------------------
# Backdoor: the chip's contents preloaded and dumped by the simulator, not over the bus
# ----------------------------------------------------------------------------------------------------------
# SDRAMPHYModel keeps each bank in one Verilog array (``reg [W-1:0] mem[0:N-1]``, ``mem_1``, ...), indexed
# ``row · ncols + col`` (``slice_proxy = row * ncols | col`` in the generated Verilog). The controller maps a
# native word address ROW_BANK_COL (litedram.core.crossbar: col in the low bits, then the bank, then the
# row), and the AXI port's byte address is the native word address × native bytes + the byte lane. So for
# the ULX3S (16-bit native words, 512 columns, 4 banks, 8192 rows):
#     word = addr >> 1; col = word[8:0]; bank = word[10:9]; row = word[23:11]; lane = addr[0]
#     index = row · 512 + col
# measured, not assumed: tests/test_dram_sim.py preloads by backdoor and reads over AXI, and writes over AXI
# and dumps (both byte-exact at random addresses across banks and rows).

#: bump when the backdoor patch changes (part of the patched file's content, so of its name and build key)
BACKDOOR_VERSION = 1
_MEM_DECL = r"^reg \[(\d+):0\] (mem(?:_\d+)?)\[0:(\d+)\];$"


@dataclass(frozen=True)
class DramGeometry:
    """Where a byte of the AXI address space lives in SDRAMPHYModel's arrays (see :func:`dram_location`).

    ``word_bytes`` native word (array width / 8), ``col_bits`` / ``bank_bits`` / ``row_bits`` of the
    module, ``arrays`` the bank arrays' names in bank order, ``depth`` words per array."""

    word_bytes: int
    col_bits: int
    bank_bits: int
    row_bits: int
    arrays: tuple[str, ...]
    depth: int

    @property
    def banks(self) -> int:
        return len(self.arrays)

    @property
    def size_bytes(self) -> int:
        return self.banks * self.depth * self.word_bytes


def dram_geometry(core: LiteDRAMCore) -> DramGeometry:
    """The backdoor geometry of *core*: its bank arrays read from the generated Verilog, the column / bank /
    row bits from the module. Only SDR (one phase, burst length 1: the column address is the native word's
    low bits) is supported; that is the ULX3S profile, the only one simulated."""
    import re

    import litedram.modules

    if core.profile.memtype != "SDR":
        raise ValueError(f"the DRAM backdoor supports SDR (ULX3S) only, not {core.profile.memtype}")
    m = getattr(litedram.modules, core.profile.sdram_module)
    decls = re.findall(_MEM_DECL, core.verilog.read_text(), re.M)
    widths = {int(w) + 1 for w, _, _ in decls}
    depths = {int(d) + 1 for _, _, d in decls}
    names = sorted((n for _, n, _ in decls), key=lambda n: 0 if n == "mem" else int(n[4:]))
    if len(names) != m.nbanks or len(widths) != 1 or depths != {m.nrows * m.ncols}:
        raise ValueError(f"{core.verilog}: expected {m.nbanks} bank arrays of {m.nrows * m.ncols} words, "
                         f"found {decls}")
    (width,) = widths
    if width != core.profile.dram_data_bits:
        raise ValueError(f"{core.verilog}: bank arrays are {width} bits, the SDR bus {core.profile.dram_data_bits}")
    return DramGeometry(word_bytes=width // 8, col_bits=(m.ncols - 1).bit_length(),
                        bank_bits=(m.nbanks - 1).bit_length(), row_bits=(m.nrows - 1).bit_length(),
                        arrays=tuple(names), depth=m.nrows * m.ncols)


def dram_location(geometry: DramGeometry, byte_address: int) -> tuple[int, int, int]:
    """``(bank, index, lane)`` of AXI byte address *byte_address*: the bank array, the word in it, the byte
    in that word (0 = bits 7:0)."""
    g = geometry
    if not 0 <= byte_address < g.size_bytes:
        raise ValueError(f"byte address {byte_address:#x} outside the DRAM ({g.size_bytes:#x} bytes)")
    word, lane = divmod(byte_address, g.word_bytes)
    col = word & ((1 << g.col_bits) - 1)
    bank = (word >> g.col_bits) & ((1 << g.bank_bits) - 1)
    row = word >> (g.col_bits + g.bank_bits)
    return bank, (row << g.col_bits) | col, lane


def dram_byte_address(geometry: DramGeometry, bank: int, index: int, lane: int = 0) -> int:
    """The inverse of :func:`dram_location`."""
    g = geometry
    row, col = index >> g.col_bits, index & ((1 << g.col_bits) - 1)
    return (((row << g.bank_bits | bank) << g.col_bits) | col) * g.word_bytes + lane


def _locate(g: DramGeometry, addrs):
    import numpy as np

    word, lane = np.divmod(addrs, g.word_bytes)
    col = word & ((1 << g.col_bits) - 1)
    bank = (word >> g.col_bits) & ((1 << g.bank_bits) - 1)
    row = word >> (g.col_bits + g.bank_bits)
    return bank, (row << g.col_bits) | col, lane


def _backdoor_text(core: LiteDRAMCore, g: DramGeometry) -> str:
    src = core.verilog.read_text()
    end = src.rstrip().rfind("endmodule")
    if end < 0 or src.count("\nendmodule") != 1:
        raise ValueError(f"{core.verilog}: expected exactly one module")
    k = range(g.banks)
    lines = [
        "",
        f"// ---- fireforge backdoor v{BACKDOOR_VERSION} (fireforge.sim.litedram.write_backdoor_core) ----",
        "// +dram_init_bank<k>=FILE   $readmemh into bank k's array at time 0 (sparse: @index records)",
        "// +dram_dump_bank<k>=FILE   $writememh of bank k's words +dram_dump_lo .. +dram_dump_hi (inclusive,",
        "//                           decimal indices) when the simulation ends (final block)",
        "reg [8*1024-1:0] ff_bd_path;",
        "integer ff_bd_lo, ff_bd_hi, ff_bd_fd;",
        "initial begin",
        *(f"    if ($value$plusargs(\"dram_init_bank{b}=%s\", ff_bd_path)) begin\n"
          f"        ff_bd_fd = $fopen(ff_bd_path, \"r\");\n"
          f"        if (ff_bd_fd == 0) begin\n"
          f"            $display(\"litedram backdoor: ERROR: cannot open +dram_init_bank{b}=%0s\", ff_bd_path);\n"
          f"            $finish;\n"
          f"        end else begin\n"
          f"            $fclose(ff_bd_fd);\n"
          f"            $readmemh(ff_bd_path, {g.arrays[b]});\n"
          f"        end\n"
          f"    end" for b in k),
        "end",
        "final begin",
        "    if ($value$plusargs(\"dram_dump_lo=%d\", ff_bd_lo) && $value$plusargs(\"dram_dump_hi=%d\", ff_bd_hi)) begin",
        *(f"        if ($value$plusargs(\"dram_dump_bank{b}=%s\", ff_bd_path))\n"
          f"            $writememh(ff_bd_path, {g.arrays[b]}, ff_bd_lo, ff_bd_hi);" for b in k),
        "    end",
        "end",
        "// ---- end of the fireforge backdoor ----",
        "",
    ]
    return src[:end] + "\n".join(lines) + src[end:]


def write_backdoor_core(core: LiteDRAMCore) -> Path:
    """A copy of *core*'s ``litedram_core.v`` with the backdoor added before ``endmodule`` (the generated file
    is never edited): ``gateware/litedram_core.backdoor-<sha16>.v`` beside it, named by the hash of its own
    text, written atomically (an existing file is reused). Same module name ``litedram_core``: build it
    *instead of* :attr:`LiteDRAMCore.verilog`, with :func:`write_sim_top` as usual. Plusargs: see
    :func:`backdoor_plusargs`."""
    text = _backdoor_text(core, dram_geometry(core))
    path = core.verilog.with_name(f"litedram_core.backdoor-{hashlib.sha256(text.encode()).hexdigest()[:16]}.v")
    if not path.is_file():
        tmp = path.with_suffix(f".v.tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def write_dram_image(image: dict[int, bytes], out_dir: Path, geometry: DramGeometry) -> dict[int, Path]:
    """The per-bank ``$readmemh`` files of *image* (DRAM byte address → bytes) in *out_dir*:
    ``{bank: out_dir/dram_init_bank<bank>.hex}`` for the banks it touches. Sparse: ``@index`` (hex) before
    every run of consecutive words. A native word the image covers only partly gets 0 in its other bytes
    (the DRAM starts as zeros); where image entries overlap, the later one wins."""
    import numpy as np

    from fireforge.core.hexfile import format_words

    g = geometry
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [(a, np.frombuffer(bytes(b), np.uint8)) for a, b in image.items() if len(b)]
    files: dict[int, Path] = {}
    if not parts:
        return files
    for a, b in parts:
        if a < 0 or a + len(b) > g.size_bytes:
            raise ValueError(f"image bytes {a:#x}..{a + len(b):#x} outside the DRAM ({g.size_bytes:#x} bytes)")
    addrs = np.concatenate([np.arange(a, a + len(b), dtype=np.int64) for a, b in parts])
    data = np.concatenate([b for _, b in parts])
    # later entries win: keep the last occurrence of each address
    order = np.argsort(addrs, kind="stable")
    addrs, data = addrs[order], data[order]
    last = np.ones(len(addrs), bool)
    last[:-1] = addrs[1:] != addrs[:-1]
    addrs, data = addrs[last], data[last]
    bank, index, lane = _locate(g, addrs)
    for b in np.unique(bank):
        sel = bank == b
        idx, ln, d = index[sel], lane[sel], data[sel]
        words_idx, inv = np.unique(idx, return_inverse=True)
        words = np.zeros((len(words_idx), g.word_bytes), np.uint8)
        words[inv, ln] = d
        starts = np.flatnonzero(np.diff(words_idx, prepend=-2) != 1)
        stops = np.append(starts[1:], len(words_idx))
        text = "".join(f"@{words_idx[s]:x}\n" + format_words(words[s:e]) for s, e in zip(starts, stops))
        path = out_dir / f"dram_init_bank{int(b)}.hex"
        path.write_text(text)
        files[int(b)] = path
    return files


def dump_index_range(geometry: DramGeometry, lo: int, hi: int) -> tuple[int, int]:
    """The bank-array indices (first, last, inclusive; the same for every bank) that hold the bytes
    ``[lo, hi)``: whole rows from the row of *lo* to the row of ``hi - 1``."""
    g = geometry
    if not 0 <= lo < hi <= g.size_bytes:
        raise ValueError(f"dump range [{lo:#x}, {hi:#x}) empty or outside the DRAM ({g.size_bytes:#x} bytes)")
    shift = g.col_bits + g.bank_bits
    row_lo, row_hi = (lo // g.word_bytes) >> shift, ((hi - 1) // g.word_bytes) >> shift
    return row_lo << g.col_bits, ((row_hi + 1) << g.col_bits) - 1


def backdoor_plusargs(geometry: DramGeometry, init_files: dict[int, Path] | None = None,
                      dump: tuple[Path, int, int] | None = None) -> tuple[dict[str, object], dict[int, Path]]:
    """Plusargs for a model built from :func:`write_backdoor_core`: ``+dram_init_bank<k>`` for *init_files*
    (:func:`write_dram_image`), and with ``dump = (directory, lo_byte, hi_byte)`` the dump of every bank's
    :func:`dump_index_range` into ``directory/dram_dump_bank<k>.hex``. Returns ``(plusargs, dump files)``."""
    plus: dict[str, object] = {f"dram_init_bank{b}": Path(p) for b, p in (init_files or {}).items()}
    files: dict[int, Path] = {}
    if dump is not None:
        d, lo, hi = dump
        first, last = dump_index_range(geometry, lo, hi)
        plus.update(dram_dump_lo=str(first), dram_dump_hi=str(last))
        for b in range(geometry.banks):
            files[b] = Path(d) / f"dram_dump_bank{b}.hex"
            plus[f"dram_dump_bank{b}"] = files[b]
    return plus, files


def read_dram_dump(dump_files: dict[int, Path], lo: int, hi: int, geometry: DramGeometry) -> bytes:
    """The bytes ``[lo, hi)`` from the per-bank dumps of :func:`backdoor_plusargs` (each holds the words of
    :func:`dump_index_range`, first to last, as ``$writememh`` writes them; ``@`` records are honoured)."""
    import numpy as np

    from fireforge.core.hexfile import read_words

    g = geometry
    first, last = dump_index_range(g, lo, hi)
    n = last - first + 1
    banks = []
    for b in range(g.banks):
        path = Path(dump_files[b])
        if not path.is_file():
            raise FileNotFoundError(f"no DRAM dump {path} (did the simulation end normally?)")
        words = read_words(path, g.word_bytes)
        # $writememh with a range may or may not write an @first record: both parse to the right place
        if len(words) >= first + n:
            words = words[first:first + n]
        elif len(words) != n:
            raise ValueError(f"{path}: {len(words)} words, expected {n} (indices {first}..{last})")
        banks.append(words)
    stack = np.stack(banks)                        # [bank, index - first, lane]
    addrs = np.arange(lo, hi, dtype=np.int64)
    bank, index, lane = _locate(g, addrs)
    return stack[bank, index - first, lane].tobytes()
