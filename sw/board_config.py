"""``fireforge compile --board NAME``: the engine config a board gets for a program.

Resident mode when the whole program (ROMs and activations) fits the board's block RAM beside the engine: it
never waits for DRAM, so it is the faster mode wherever it fits. Otherwise DRAM mode, with the buffers
(activations, weights, requant words) as large as the block RAM left after the engine and the room kept for
the DRAM controller allows: for each weight / requant size the deepest activation buffer that fits, and of
those the one the DRAM cycle model (:mod:`fireforge.sw.dram_perf`) predicts fastest. ``simulate --board`` and ``generate --board`` then read this config
from ``OUT/engine.json``, so the three agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fireforge.core.config import EngineConfig
from fireforge.core.layout import planned_config
from fireforge.core.program import Program
from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import get_board
from fireforge.hw.board.fit import fit_check

__all__ = ["board_config", "choose_config", "BoardChoice", "DRAM_DESC_DEPTH"]

#: DRAM mode's descriptor "memory": the running tile and END
DRAM_DESC_DEPTH = 2
#: candidate buffer depths (words): activation and weight buffers in block-RAM rows, requant words
_ACT = (2048, 4096, 8192, 12288, 16384, 24576, 32768, 49152, 65536)
_WEIGHTS = (256, 512, 1024, 2048, 4096, 8192)
_QUANT = (64, 128, 512)


def _dram_cost(program: Program, config: EngineConfig, board) -> tuple[int, int] | None:
    """(predicted cycles, DRAM bytes) of one inference with these buffers (None: some layer does not tile)."""
    from fireforge.sw import dram_perf, dram_program
    from fireforge.sw.schedule import schedule

    try:
        dp = dram_program.build(program, schedule(program, config), config)
    except FireforgeError:
        return None
    bus = dram_perf.BUSES[dram_perf.BOARD_BUS[board.name]]
    return dram_perf.predict_stream(dp.commands, config, bus).cycles, dp.bytes_read + dp.bytes_written


@dataclass(frozen=True)
class BoardChoice:
    """The chosen config and, in DRAM mode, the cycles and DRAM bytes the search predicted for it (the explorer
    reads them instead of building the command stream again)."""
    config: EngineConfig
    dram_cycles: int | None = None
    dram_bytes: int = 0


def board_config(program: Program, board_name: str, base: EngineConfig, log=lambda msg: None, *,
                 memory: str = "auto") -> EngineConfig:
    """The config ``program`` runs with on ``board_name`` (:func:`choose_config`'s)."""
    return choose_config(program, board_name, base, log, memory=memory).config


def choose_config(program: Program, board_name: str, base: EngineConfig, log=lambda msg: None, *,
                  memory: str = "auto") -> BoardChoice:
    """The config ``program`` runs with on ``board_name`` (``base``: the MAC units and add unit asked for).

    ``memory``: ``"auto"`` (resident where it fits, else DRAM mode), or only ``"resident"`` / only ``"dram"``;
    a program that does not fit the mode(s) asked for raises a one-line error saying why."""
    board = get_board(board_name)
    resident = planned_config(program, replace(base, memory="resident"))
    if memory != "dram":
        rep = fit_check(resident, board, suggest=False, act_memory="on-chip")
        if rep.fits:
            log(f"{board.name}: the whole program fits on chip: resident mode")
            return BoardChoice(resident)
        if memory == "resident" or not board.dram_width:
            rep = fit_check(resident, board, act_memory="on-chip")      # again, with what would fit
            raise FireforgeError(rep.message() + ("" if memory == "resident" else
                                                  f"; {board.name} has no DRAM for DRAM mode"))
    elif not board.dram_width:
        raise FireforgeError(f"{board.name} has no DRAM for DRAM mode")
    dram = replace(base, memory="dram", desc_depth=DRAM_DESC_DEPTH).with_add_unit(program.add_layer_names())
    best = None
    for q in _QUANT:
        for w in _WEIGHTS:
            fitting = None                  # the deepest activation buffer that fits beside these
            for a in _ACT:
                cfg = replace(dram, act_depth=a, weight_depth=w, quant_depth=q)
                rep = fit_check(cfg, board, suggest=False)
                if not rep.fits:
                    break
                fitting = (cfg, rep.needs["bram_blocks"])
            if fitting is None:
                continue
            cost = _dram_cost(program, fitting[0], board)
            if cost is not None:
                key = (cost[0], fitting[1], cost[1])
                if best is None or key < best[0]:
                    best = (key, fitting[0])
    if best is None:
        smallest = replace(dram, act_depth=_ACT[0], weight_depth=_WEIGHTS[0], quant_depth=_QUANT[0])
        rep = fit_check(smallest, board, suggest=False)
        raise FireforgeError(f"DRAM mode on {board.name}: " + (
            f"no buffer sizes tile every layer of this program within the block RAM left beside the engine; "
            f"the smallest buffers: {rep.message()}" if rep.fits else rep.message()))
    (cycles, blocks, moved), cfg = best
    log(f"{board.name}: DRAM mode, buffers act {cfg.act_depth} / weights {cfg.weight_depth} / quant "
        f"{cfg.quant_depth} words ({blocks} of {board.bram_blocks} {board.block_name} with the controller's), "
        f"{moved / 1e6:.2f} MB of DRAM traffic and ~{cycles / 1e6:.2f} M cycles per inference (predicted)")
    return BoardChoice(cfg, cycles, moved)
