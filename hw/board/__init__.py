"""Real boards: the fit check, a board top (engine + UART host link + clock / reset), and the open FPGA flow.

``fireforge generate OUT/ -o RTL/ --board NAME`` is :func:`board_generate`; :func:`fit_check` is the check
it runs first (and that can be called alone). What the flow does and what it measured: ``docs/boards.md``.

=============  =================================================================================
module         holds
=============  =================================================================================
catalogue      the boards (:data:`BOARDS`, :func:`get_board`) and their FPGAs' budgets
resources      block-RAM and DSP tiling per family, the LUT / flip-flop model
needs          what an engine needs on a board (:func:`~.needs.engine_needs`: the engine's own)
fit            :func:`fit_check` / :func:`require_fit` and their :class:`FitReport`
suggest        what would fit instead: other MAC counts, boards, smaller models (the compiler's layout)
clocks         PLL / MMCM settings and primitives
top            :class:`FireforgeBoard`, the board top
floorplan      ECP5 block-RAM sites of the memories' tiles
flow           the YoWASP tools: synthesis, place-and-route, bitstream
logs           yosys / nextpnr log parsers
generate       :func:`board_generate`
dram_top       DRAM mode's board top: the engine side, the LiteDRAM controller, two clocks, the AXI crossing
litedram_core  the DRAM profiles, the boards' LiteDRAM cores (``litedram_gen``, cached), their init sequence
=============  =================================================================================
"""

from fireforge.hw.board.catalogue import BOARDS, DEFAULT_BAUD, TOP_NAME, Board, get_board
from fireforge.hw.board.clocks import clock_plan, ecp5_pll_params, xc7_mmcm_params
from fireforge.hw.board.fit import FitReport, fit_check, require_fit
from fireforge.hw.board.flow import run_tool, sandbox_files, yowasp_environ
from fireforge.hw.board.generate import board_generate
from fireforge.hw.board.logs import parse_nextpnr_log, parse_yosys_stat
from fireforge.hw.board.resources import estimate_logic
from fireforge.hw.board.top import FireforgeBoard

__all__ = ["Board", "BOARDS", "get_board", "TOP_NAME", "DEFAULT_BAUD", "FitReport", "fit_check", "require_fit",
           "estimate_logic", "FireforgeBoard", "board_generate", "yowasp_environ", "run_tool", "sandbox_files",
           "parse_yosys_stat", "parse_nextpnr_log", "clock_plan", "ecp5_pll_params", "xc7_mmcm_params"]
