"""One explorer point evaluated with the compiler's own models: no simulation, no synthesis.

Two stages, so a network is quantized once however many engines and boards it is tried on:

* :func:`lower_model` — build the network (or read the ONNX file), quantize it with onnxruntime.quantization on
  one calibration tensor (the scales do not change any shape, so they change no cycle, byte or block) and lower
  it to the integer program, exactly as ``fireforge compile`` does;
* :func:`evaluate` — the engine ``compile --board`` would choose for the board (:func:`board_config`, resident
  where everything fits on chip, else DRAM mode with the buffers that fit), its predicted cycles (the resident
  model of :mod:`fireforge.sw.perf`, or the DRAM command stream timed by :mod:`fireforge.sw.dram_perf`), DRAM
  traffic, frames per second at the clock those cycles are counted at, and the fit check's resources.

A network that fits no engine on the board is a point like any other: ``fits`` false, ``misfit`` saying why,
and the resident engine's needs and cycles so the table still shows how far off it is.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import onnx

from fireforge.core.config import EngineConfig
from fireforge.core.program import Program
from fireforge.errors import FireforgeError
from fireforge.explorer.space import ModelPoint, Point

__all__ = ["LoweredModel", "lower_model", "evaluate", "model_file"]


class LoweredModel:
    """A network's integer program and the figures that do not depend on the engine."""

    def __init__(self, program: Program):
        self.program = program
        convs = [l for l in program.layers if l.kind == "conv"]
        self.weight_bytes = sum(l.weights.size for l in convs)          # int8: one byte each
        self.macs = sum(program.macs(l) for l in convs)
        # weights and biases as the program holds them: the same count for a float, QDQ or QOperator model
        self.params = sum(l.weights.size + l.bias.size for l in convs)


def model_file(m: ModelPoint, directory: Path) -> Path:
    """The point's ONNX file: its own, or the network built from its knobs, written into ``directory``."""
    from fireforge.models.squeezenet import build_squeezenet

    if m.onnx:
        return Path(m.onnx)
    path = Path(directory) / "model.onnx"
    onnx.save(build_squeezenet(m.version, input_size=m.input_size, classes=m.classes, bypass=m.bypass,
                               base_e=m.base_e, incr_e=m.incr_e, pct3x3=m.pct3x3, squeeze_ratio=m.squeeze_ratio,
                               freq=m.freq), path)
    return path


def lower_model(m: ModelPoint) -> LoweredModel:
    """Build / read, quantize (one calibration tensor) and lower one network."""
    from fireforge.sw import compile as steps

    with tempfile.TemporaryDirectory(prefix="ff-explore-") as tmp:
        path = model_file(m, Path(tmp))
        options = steps.CompileOptions(path, Path(tmp) / "out", check=False)

        def one_tensor(state, o):
            batch = state.calibration
            return state if batch is None else replace(state, calibration=batch[:1])

        chosen = (steps.Step("load", steps.load), steps.Step("one", one_tensor), steps.Step("outdir", steps.outdir),
                  steps.Step("quantize", steps.quantize), steps.Step("lower", steps.lower))
        state, _ = steps.run_steps(options, chosen)
        return LoweredModel(state.program)


def _resources(rep) -> dict:
    """resource -> used, available, margin (the share left free; negative when over)."""
    have = dict(rep.resources)
    have["bram"] = [rep.needs["bram_blocks"], rep.board.bram_blocks]
    have.pop("bram_bits", None)
    return {k: {"used": u, "available": a, "margin": round((a - u) / a, 4) if a else None}
            for k, (u, a) in have.items()}


def evaluate(point: Point, lowered: LoweredModel) -> dict:
    """The point's row: its parameters, the network's figures, and the engine's on its board."""
    from fireforge.core.layout import planned_config
    from fireforge.hw.board.catalogue import get_board
    from fireforge.hw.board.fit import fit_check
    from fireforge.sw import dram_perf
    from fireforge.sw.board_config import choose_config
    from fireforge.sw.perf import predict_program

    program, board = lowered.program, get_board(point.board)
    base = EngineConfig(mac_units=point.mac_units)
    row = {**point.row(), "status": "ok", "error": None, "params": lowered.params,
           "weight_bytes": lowered.weight_bytes, "macs": lowered.macs}
    misfit = None
    try:
        choice = choose_config(program, point.board, base, memory=point.memory)
    except FireforgeError as e:
        misfit = str(e)
        config = planned_config(program, replace(base, memory="resident").with_add_unit(program.add_layer_names()))
        choice = None
    else:
        config = choice.config
    if config.dram:
        cycles, moved = choice.dram_cycles, choice.dram_bytes        # the search already timed it
        clock = dram_perf.bus_for(point.board).clock_mhz
        rep = fit_check(config, board, suggest=False)
    else:
        cycles, moved = predict_program(program, config).cycles, 0
        clock = board.default_clock_mhz
        rep = fit_check(config, board, suggest=False, act_memory="on-chip")
    res = _resources(rep)
    row.update(memory=config.memory, engine={"mac_units": config.mac_units, "act_depth": config.act_depth,
                                              "weight_depth": config.weight_depth, "quant_depth": config.quant_depth},
               cycles=cycles, dram_bytes=moved, clock_mhz=clock, fps=round(clock * 1e6 / cycles, 3),
               fits=misfit is None and rep.fits, misfit=misfit, resources=res,
               luts=res["lut"]["used"], ffs=res["ff"]["used"], dsps=res["dsp"]["used"],
               bram_blocks=res["bram"]["used"])
    return row
