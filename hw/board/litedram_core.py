"""LiteDRAM cores for the boards (issue #20): the DRAM profiles (one source of truth for the ``--sim`` cores of
:mod:`fireforge.sim.litedram` and the board cores here), ``litedram_gen CONFIG.yml`` without ``--sim``, cached by
the config's hash, and the controller's initialisation read from the generated core.

Profiles and where each setting comes from
------------------------------------------
Every profile is ``cpu: None`` (no soft CPU: the core gets a ``wb_ctrl`` Wishbone slave port instead, through
which the init sequence is driven) and has one AXI4 user port ``axi_0`` whose data width is a parameter of
:func:`core_config` (the engine's AXI width; LiteDRAM's crossbar converts it to the controller's native width:
``sdram_module_nb`` x 8 x 2 (DDR) x phases).

``ulx3s``  Radiona ULX3S. ``examples/ulx3s.yml`` of LiteDRAM (GitHub; the wheel does not ship it): ``memtype
           SDR``, ``sdram_phy GENSDRPHY``, ``sys_clk_freq 50e6`` (SDR clock = sys clock), ``sdram_module
           MT48LC16M16``, ``sdram_module_nb 2`` (the chip's 16-bit bus), ``cmd_buffer_depth 16``, ``device
           LFE5U-85F-6BG381C`` (the board core's LatticePlatform). **Which ULX3S revisions:** boards up to v3.0.3
           (and most v3.0.x sold) carry a 32 MB 16M x 16 SDR chip, Micron MT48LC16M16A2 or ISSI's IS42S16160
           (same geometry: 4 banks x 8192 rows x 512 columns); some later boards (v3.1.x) carry the 64 MB Alliance
           AS4C32M16SB (8192 rows x 1024 columns). LiteDRAM has a module for each (``MT48LC16M16``,
           ``IS42S16160``, ``AS4C32M16``). The profile uses ``MT48LC16M16`` — LiteDRAM's example and litex-boards'
           ``radiona_ulx3s`` default — because its timings at 50 MHz (litedram.modules, in controller cycles:
           tRP 1, tRCD 1, tWR 1, tRFC 4, tREFI 391) are the same as or longer than the other two chips' (IS42S16160:
           the same, tRFC 70 ns = 4 cycles; AS4C32M16: tRFC 60 ns = 3 cycles), so one core is correct on every
           revision; and a program that fits 32 MB fits both sizes (on the 64 MB chip the core's columns stay
           below 512: half of each row, 32 MB). ``dataclasses.replace(PROFILES["ulx3s"],
           sdram_module="AS4C32M16")`` is the 64 MB core.
``arty``   Digilent Arty A7. ``examples/arty.yml``: ``memtype DDR3``, ``sdram_phy A7DDRPHY``, ``sdram_module
           MT41K128M16`` (the board's 256 MB DDR3L), ``sdram_module_nb 2`` (16 bits), ``sys_clk_freq 100e6``
           (DDR clock = 4 x sys clock, PHY rate 1:4), ``cmd_latency 0``, ``rtt_nom/rtt_wr 60ohm``, ``ron 34ohm``,
           ``input_clk_freq 100e6``, ``iodelay_clk_freq 200e6``.
``kc705``  Xilinx KC705. No LiteDRAM example; settings as litex-boards' ``xilinx_kc705`` target: ``sdram_phy
           K7DDRPHY``, the kit's 1 GB SODIMM ``MT8JTF12864`` (64-bit, ``sdram_module_nb 8``), ``sys_clk_freq
           125e6`` (DDR3-1000, rate 1:4), electrical settings and ``cmd_latency`` as LiteDRAM's
           ``examples/genesys2.yml`` (the other Kintex-7 example), ``input_clk_freq 200e6`` (the KC705's 200 MHz
           system clock).

With ``--sim`` only ``memtype``, ``sdram_module``, ``sdram_module_nb``, ``sys_clk_freq``, ``cmd_buffer_depth``
and the user ports shape the core; the PHY, electrical and clock keys shape the board core.

The board cores (what ``litedram_gen`` puts in them, checked on the generated Verilog)
----------------------------------------------------------------------------------
``ulx3s`` (GENSDRPHY): **no PLL** — the core's ``sys`` clock *is* its ``clk`` input and ``rst`` goes through an
AsyncResetSynchronizer; the pads are registered in the I/O cells (``OFS1P3BX`` / ``IFS1P3BX``, ``TRELLIS_IO``
for DQ), and the SDRAM clock pin is **not** driven by the core: the top drives it (an ``ODDRX1F`` making the
sys clock inverted, the 180° that litex-boards' ``radiona_ulx3s`` uses). ``litedram_gen`` declares
``sdram_dq`` an ``input`` although a ``TRELLIS_IO`` drives it both ways; :func:`generate_board_core` rewrites
it as ``inout``. ``arty`` / ``kc705`` (A7DDRPHY / K7DDRPHY): a ``PLLE2_ADV`` from ``clk`` (``input_clk_freq``)
makes sys, sys4x, sys4x_dqs and the 200 MHz IDELAYCTRL clock; ``pll_locked`` is an output; SERDES and IDELAY
primitives on the pads. All: ``user_clk`` / ``user_rst`` (the controller's sys clock and its reset — the AXI
port's clock domain), ``init_done`` / ``init_error`` (CSR bits), ``wb_ctrl_*`` (Wishbone slave, 30-bit word
address), ``user_port_axi_0_*`` (address bits: log2 of the DRAM's bytes; ``awsize`` / ``arsize`` 4 bits wide,
no ``lock`` / ``cache`` / ``prot``).

Initialisation
--------------
:func:`board_init_sequence` replays LiteX's BIOS ``sdram_init`` (``liblitedram/sdram.c``, 2024.12) as Wishbone
writes, with the PHY's own ``init_sequence()`` read from the generated ``sdram_phy.h`` (the real PHY's CL/CWL
and mode registers differ from SDRAMPHYModel's: the Arty's CL is 7 on the A7DDRPHY, 6 in simulation; and the
CSR map differs: ``ddrphy`` takes 0x800 and DFII moves to 0x1000): ``ddrphy_rdphase`` / ``wrphase`` (where
they exist), DFII software control, the ``ddrphy_rst`` pulse (1000 cycles each way), ``init_done = init_error
= 0``, the header's sequence, DFII hardware control, ``init_done = 1``. Leveling (``sdram_leveling``) is not a
list of writes: on a read-leveling-only PHY (the Arty's A7DDRPHY, :func:`read_leveling`) the board top runs
:class:`~fireforge.hw.dram.read_leveler.DramReadLeveler` between the header's sequence and DFII hardware control;
the KC705's K7DDRPHY also needs write leveling, which is not done. The memtest after init is the board top's.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from fireforge.core.tools import default_build_root

__all__ = ["DramProfile", "PROFILES", "BOARD_PROFILES", "LITEDRAM_PACKAGES", "core_config", "config_yaml",
           "BoardCore", "generate_board_core", "board_init_sequence", "before_hardware_control", "read_leveling",
           "core_ports"]

#: what a generated core depends on besides its YAML
LITEDRAM_PACKAGES = ("litedram", "litex", "migen")


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

#: the profile of each board's DRAM (``Board.name`` -> :data:`PROFILES` key)
BOARD_PROFILES = {"ulx3s-85f": "ulx3s", "arty-a7-100": "arty", "kc705": "kc705"}


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
    # (the header names the module the profiles came from: changing it would change every cached core's key)
    return "# Generated by fireforge.sim.litedram (do not edit)\n" + body.replace(": null", ": None") + "\n"


#: the stamp of a finished core directory (written last)
_STAMP = "ff_build.json"
#: the AXI user port's signal prefix in the generated core
AXI_PREFIX = "user_port_axi_0"


@dataclass(frozen=True)
class BoardCore:
    """A generated board core: its directory, profile, config, CSR map (``csr.csv``: register -> byte address on
    ``wb_ctrl``) and ports (``{name: (direction, width)}`` of ``module litedram_core``)."""

    out_dir: Path
    profile: DramProfile
    config: dict
    csr: dict
    ports: dict
    generate_seconds: float

    @property
    def verilog(self) -> Path:
        return self.out_dir / "gateware" / "litedram_core.v"

    @property
    def sdram_phy_h(self) -> Path:
        return self.out_dir / "software" / "include" / "generated" / "sdram_phy.h"

    @property
    def axi_data_width(self) -> int:
        return self.config["user_ports"]["axi_0"]["data_width"]

    @property
    def axi_id_width(self) -> int:
        return self.config["user_ports"]["axi_0"]["id_width"]

    @property
    def axi_addr_width(self) -> int:
        return self.ports[f"{AXI_PREFIX}_araddr"][1]

    @property
    def has_pll(self) -> bool:
        """Whether the core makes its sys clock itself (7-series: a PLLE2 from ``clk``); else ``clk`` is sys."""
        return "pll_locked" in self.ports


def core_ports(verilog: Path, module: str = "litedram_core") -> dict:
    """``{name: (direction, width)}`` of *module*'s ANSI port list in LiteX's Verilog."""
    text = Path(verilog).read_text()
    start = text.index(f"module {module} (")
    header = text[start:text.index(");", start)]
    ports = {}
    for mt in re.finditer(r"^\s*(input|output|inout)\s+wire\s+(?:\[(\d+):(\d+)\]\s+)?(\w+)", header, re.M):
        width = int(mt.group(2)) - int(mt.group(3)) + 1 if mt.group(2) else 1
        ports[mt.group(4)] = (mt.group(1), width)
    return ports


def generate_board_core(profile: DramProfile | str, *, axi_data_width: int, axi_id_width: int = 1,
                        build_root: Path | None = None, sim: bool = False) -> BoardCore:
    """Generate (or reuse) the core of *profile*: ``litedram_gen CONFIG.yml --no-compile`` (``sim``: with
    ``--sim``, the controller with ``SDRAMPHYModel`` for the simulator) into ``<build root>/litedram/
    <board|sim>-<profile>-<key16>``, the key hashing the YAML, the arguments and the versions of litedram, litex
    and migen. The core is made in a temporary directory beside it and renamed into place with its stamp
    (``ff_build.json``), so a finished directory is always whole; a concurrent generation of the same key loses
    the rename and uses the winner's."""
    if isinstance(profile, str):
        try:
            profile = PROFILES[profile]
        except KeyError:
            raise ValueError(f"unknown DRAM profile {profile!r}; known: {', '.join(PROFILES)}") from None
    config = core_config(profile, axi_data_width=axi_data_width, axi_id_width=axi_id_width)
    text = config_yaml(config)
    versions = {p: version(p) for p in LITEDRAM_PACKAGES}
    args = ["--sim", "--no-compile"] if sim else ["--no-compile"]
    key = hashlib.sha256(json.dumps({"yaml": text, "versions": versions, "args": args, "patch": 1},
                                    sort_keys=True).encode()).hexdigest()
    root = Path(build_root) if build_root is not None else default_build_root()
    out = root / "litedram" / f"{'sim' if sim else 'board'}-{profile.name}-{key[:16]}"
    if not (out / _STAMP).is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        try:
            t0 = time.perf_counter()
            _run_litedram_gen(tmp, text, args, profile)
            info = {"key": key, "profile": profile.name, "config": config, "versions": versions,
                    "build_seconds": round(time.perf_counter() - t0, 3), "built_at": time.time()}
            (tmp / _STAMP).write_text(json.dumps(info, indent=1))
            if out.exists():            # leftovers without a stamp (cannot happen by rename; a hand-made dir)
                shutil.rmtree(out, ignore_errors=True)
            try:
                os.rename(tmp, out)
            except OSError:             # another process renamed its copy first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    info = json.loads((out / _STAMP).read_text())
    return BoardCore(out_dir=out, profile=profile, config=config, csr=_read_csr(out / "csr.csv"),
                     ports=core_ports(out / "gateware" / "litedram_core.v"), generate_seconds=info["build_seconds"])


def _run_litedram_gen(out: Path, text: str, args: list[str], profile: DramProfile) -> None:
    (out / "config.yml").write_text(text)
    # litedram_gen as a module of this interpreter (its console script may not be on PATH)
    cmd = [sys.executable, "-c", "import sys; from litedram.gen import main; sys.argv[0] = 'litedram_gen'; main()",
           "config.yml", *args, "--output-dir", "."]
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
    (out / "litedram_gen.log").write_text(proc.stdout + proc.stderr)
    verilog = out / "gateware" / "litedram_core.v"
    wanted = [verilog, out / "csr.csv", out / "software" / "include" / "generated" / "sdram_phy.h"]
    # With --sim, litex's Verilator toolchain exits 1 *after* writing everything used: it looks for
    # pythondata-misc-tapcfg (the Ethernet TAP of litex_sim's C++ harness, not on PyPI) to write its sim
    # Makefile variables. Only that failure is tolerated.
    tapcfg_only = proc.returncode != 0 and "--sim" in args and "pythondata_misc_tapcfg" in proc.stderr
    if (proc.returncode != 0 and not tapcfg_only) or not all(p.is_file() for p in wanted):
        raise RuntimeError(f"litedram_gen failed for the {profile.name} core (exit {proc.returncode}):\n"
                           + "\n".join((proc.stdout + proc.stderr).splitlines()[-30:]))
    # GENSDRPHY's DQ goes through TRELLIS_IO (B, both ways) but LiteX declares the port an input
    v = verilog.read_text()
    fixed = re.sub(r"^(\s*)input(\s+wire\s+\[\d+:0\]\s+sdram_dq,)", r"\1inout\2", v, count=1, flags=re.M)
    if fixed != v:
        verilog.write_text(fixed)


def _read_csr(path: Path) -> dict:
    regs = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if row and row[0] == "csr_register":
                regs[row[1]] = int(row[2], 0)
    return regs


# DFII control / command bits (litedram.init's sdram_phy.h defines)
_DFII = {"DFII_CONTROL_SEL": 0x01, "DFII_CONTROL_CKE": 0x02, "DFII_CONTROL_ODT": 0x04, "DFII_CONTROL_RESET_N": 0x08,
         "DFII_COMMAND_CS": 0x01, "DFII_COMMAND_WE": 0x02, "DFII_COMMAND_CAS": 0x04, "DFII_COMMAND_RAS": 0x08,
         "DFII_COMMAND_WRDATA": 0x10, "DFII_COMMAND_RDDATA": 0x20}
_SOFTWARE = _DFII["DFII_CONTROL_CKE"] | _DFII["DFII_CONTROL_ODT"] | _DFII["DFII_CONTROL_RESET_N"]
_HARDWARE = _DFII["DFII_CONTROL_SEL"]


def _header_sequence(header: str, csr: dict) -> list[tuple]:
    """``init_sequence()`` of ``sdram_phy.h`` as ``(byte address, data, wait_cycles, comment)`` writes: each
    ``sdram_dfii_<reg>_write(v)`` one write, ``command_p0(flags)`` the ``pi0_command`` and ``pi0_command_issue``
    writes, ``cdelay(n)`` added to the write before it."""
    body = header[header.index("static inline void init_sequence(void)"):]
    body = body[body.index("{") + 1:body.index("\n}")]
    seq, comment = [], ""

    def value(text):
        text = text.strip()
        if text.startswith("DFII_"):
            return sum(_DFII[f.strip()] for f in text.split("|"))
        return int(text, 0)

    for line in body.splitlines():
        line = line.strip()
        if mt := re.fullmatch(r"/\*\s*(.*?)\s*\*/", line):
            comment = mt.group(1)
        elif mt := re.fullmatch(r"sdram_dfii_(\w+)_write\((.+)\);", line):
            seq.append((csr[f"sdram_dfii_{mt.group(1)}"], value(mt.group(2)), 0, comment))
        elif mt := re.fullmatch(r"command_p0\((.+)\);", line):
            seq.append((csr["sdram_dfii_pi0_command"], value(mt.group(1)), 0, comment))
            seq.append((csr["sdram_dfii_pi0_command_issue"], 1, 0, comment))
        elif mt := re.fullmatch(r"cdelay\((\d+)\);", line):
            a, d, w, c = seq[-1]
            seq[-1] = (a, d, w + int(mt.group(1)), c)
        elif line:
            raise ValueError(f"{line!r} in sdram_phy.h's init_sequence() is not a DFII write, command or delay")
    return seq


def _phy_defines(header: str) -> tuple[dict[str, int], set[str]]:
    """``sdram_phy.h``'s ``SDRAM_PHY_*`` defines: those with a number, and the flags without a value."""
    values = {k: int(v) for k, v in re.findall(r"^#define (SDRAM_PHY_\w+) (\d+)\s*$", header, re.M)}
    return values, set(re.findall(r"^#define (SDRAM_PHY_\w+)\s*$", header, re.M))


#: the comment of the write :func:`board_init_sequence` gives the controller the DFII with (leveling goes before it)
HARDWARE_CONTROL = "DFII: hardware control"


def before_hardware_control(sequence) -> tuple[list, list]:
    """:func:`board_init_sequence`'s writes split where the DFII goes to hardware control (what the BIOS levels
    before); a sequence without that write is a ValueError."""
    at = [i for i, step in enumerate(sequence) if step[3:4] == (HARDWARE_CONTROL,)]
    if len(at) != 1:
        raise ValueError(f"the init sequence has {len(at)} writes marked {HARDWARE_CONTROL!r}; one is needed")
    return list(sequence[:at[0]]), list(sequence[at[0]:])


def read_leveling(core: BoardCore) -> dict | None:
    """The PHY parameters of :class:`~fireforge.hw.dram.read_leveler.DramReadLeveler` for a core whose PHY reads
    with per-lane bitslips and delays to level and nothing else (``SDRAM_PHY_READ_LEVELING_CAPABLE`` alone: the
    Arty's A7DDRPHY); None otherwise — no leveling (SDR, the ULX3S), or write leveling first (K7DDRPHY, the KC705:
    not done)."""
    defines, flags = _phy_defines(core.sdram_phy_h.read_text())
    if "SDRAM_PHY_READ_LEVELING_CAPABLE" not in flags or any("WRITE_" in f for f in flags):
        return None
    return {"phases": defines["SDRAM_PHY_PHASES"], "rdphase": defines["SDRAM_PHY_RDPHASE"],
            "wrphase": defines["SDRAM_PHY_WRPHASE"], "modules": defines["SDRAM_PHY_MODULES"],
            "databits": defines["SDRAM_PHY_DATABITS"], "delays": defines["SDRAM_PHY_DELAYS"],
            "bitslips": defines["SDRAM_PHY_BITSLIPS"]}


def board_init_sequence(core: BoardCore) -> list[tuple]:
    """The board core's initialisation as ``(byte address, data, wait_cycles, comment)`` writes on ``wb_ctrl`` (see
    the module docstring: the BIOS's ``sdram_init`` without leveling and memtest)."""
    csr, header = core.csr, core.sdram_phy_h.read_text()
    defines, _ = _phy_defines(header)
    seq = []
    for reg, define in (("ddrphy_rdphase", "SDRAM_PHY_RDPHASE"), ("ddrphy_wrphase", "SDRAM_PHY_WRPHASE")):
        if reg in csr:
            seq.append((csr[reg], defines[define], 0, reg))
    seq.append((csr["sdram_dfii_control"], _SOFTWARE, 0, "DFII: software control"))
    if "ddrphy_rst" in csr:
        seq += [(csr["ddrphy_rst"], 1, 1000, "PHY reset"), (csr["ddrphy_rst"], 0, 1000, "PHY reset released")]
    seq += [(csr["ddrctrl_init_done"], 0, 0, "init_done = 0"), (csr["ddrctrl_init_error"], 0, 0, "init_error = 0")]
    seq += _header_sequence(header, csr)
    seq += [(csr["sdram_dfii_control"], _HARDWARE, 0, HARDWARE_CONTROL),
            (csr["ddrctrl_init_done"], 1, 0, "init_done = 1")]
    return seq
