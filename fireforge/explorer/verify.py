"""An explorer point made real: compiled for its board, run on the Verilated engine, or synthesized / routed.

``explore --verify N`` checks the explorer's cycle figures against the hardware they predict: the point is
compiled exactly as ``fireforge compile --board`` would (same engine, same buffers) and simulated on one input —
the resident engine alone, or the DRAM-mode engine with LiteDRAM's controller — and its measured cycles are set
beside the predicted ones. ``--synth`` / ``--pnr`` run the board flow of ``fireforge generate --board``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fireforge.core.config import EngineConfig
from fireforge.explorer.space import Point

__all__ = ["compile_point", "verify_point", "hardware_point"]


def compile_point(point: Point, work: Path):
    """``fireforge compile --board`` of the point into ``work/out`` (its model file written beside it)."""
    from fireforge.core.compiled import Compiled
    from fireforge.explorer.point import model_file
    from fireforge.sw.compile import compile_model

    work.mkdir(parents=True, exist_ok=True)
    path = model_file(point.model, work)
    res = compile_model(path, work / "out", config=EngineConfig(mac_units=point.mac_units), board=point.board,
                        memory=point.memory, force=True)
    return Compiled.load(res.out_dir)


def verify_point(point: Point, row: dict, work: Path) -> dict:
    """Measured cycles on the Verilated engine for one input (the first default calibration tensor)."""
    from fireforge.sw.compile import input_shape
    from fireforge.sw.inputs import default_calibration
    from fireforge.sw.simulate import check_board, simulate

    # a Dask worker logs at INFO; the Verilator builds' command lines are noise on the sweep's terminal
    logging.getLogger("Verilator").setLevel(logging.WARNING)
    compiled = compile_point(point, work)
    x = default_calibration(input_shape(compiled.program))[:1]
    board = None
    if compiled.config.dram:
        board = point.board
        check_board(compiled, board)
    rep = simulate(compiled, x, board=board)
    measured = rep.total_cycles
    return {"id": row["id"], "status": "ok", "measured_cycles": measured,
            "cycle_error": round((row["cycles"] - measured) / measured, 5), "mismatches": rep.mismatches}


def hardware_point(point: Point, row: dict, work: Path, pnr: bool) -> dict:
    """Synthesis (and place-and-route with ``pnr``) of the point's board top: resources and Fmax, or why not."""
    from fireforge.errors import FireforgeError
    from fireforge.hw.board import board_generate

    try:
        compiled = compile_point(point, work)
        res = board_generate(compiled, work / "rtl", point.board, synth=True, pnr=pnr, force=True)
    except FireforgeError as e:
        return {"id": row["id"], "status": "failed", "error": str(e).splitlines()[0]}
    except Exception as e:  # a tool crash or timeout: recorded, the sweep goes on
        return {"id": row["id"], "status": "failed", "error": f"{type(e).__name__}: {e}"}
    return {"id": row["id"], "status": "ok", "resources": res.get("resources"), "fmax_mhz": res.get("fmax_mhz"),
            "clock_mhz": res.get("clock_mhz")}
