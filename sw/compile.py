"""``fireforge compile``: ONNX → quantized ONNX → integer program → ROM images, as an ordered list of steps.

Each step is a function ``(state, options) -> state`` (FINN's build steps); :data:`STEPS` lists them in
order and :func:`run_steps` runs them with shared timing (``CompileResult.timings``: seconds per step and
``total``). The steps write their artefacts into a temporary sibling of ``OUT/`` that the last step
renames into place, so a failed compile never leaves an ``OUT/`` that looks valid.

========  ===================================================================================================
load      read and check the model; a float model: its calibration data, its handlers' checks, the
          normalised graph (before anything is written)
outdir    the temporary output directory (``OUT/`` must be empty, or ``--force``)
quantize  ``quantized.onnx``: onnxruntime.quantization for a float model, an already-quantized one as it is
lower     ``program.json`` / ``program.npz``: the frontend's handlers read every node, records become layers
check     the golden model against ONNX Runtime (on ``quantized.onnx``) on the first calibration input, every
          layer; a difference is refused, naming the first differing layer (on unless ``check=False``)
engine    ``--board NAME``: the engine config for that board — resident when everything fits on chip, else
          DRAM mode with the buffers the board's block RAM allows (:mod:`fireforge.sw.board_config`)
images    ``weights``, ``quant``, ``descriptors`` ``.hex`` + ``.bin``, ``engine.json``, ``manifest.json``
commit    rename the temporary directory to ``OUT/``
========  ===================================================================================================

The check costs little, so it is on by default. Measured (``timings["check"]``, 10 compiles each, on the
2-core dev machine while other jobs ran): v1.1 at 64x64 median 0.015 s (0.013-0.12 s), with complex
bypass 0.04 s; at 224x224 median 0.14 s (0.05-0.42 s); the whole compile takes 0.25 s and 0.7 s. It is one
golden run and one ONNX Runtime run with every layer's tensor as an output.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from fireforge.core.config import EngineConfig
from fireforge.core.outdir import commit_output_dir, prepare_output_dir
from fireforge.core.program import Program
from fireforge.errors import FireforgeError
from fireforge.sw import compare, frontend, inputs, quantize as quantizer
from fireforge.sw.images import write_images

__all__ = ["compile_model", "CompileResult", "CompileOptions", "CompileState", "Step", "STEPS", "run_steps",
           "input_shape"]

DEFAULT_CALIBRATION = "default: 16 standard-normal tensors, seed 0"


@dataclass(frozen=True)
class CompileOptions:
    """What the user asked for; the same for every step."""
    model_path: str | Path                          # as given: it names the model in messages and the manifest
    out_dir: Path
    engine: EngineConfig = field(default_factory=EngineConfig)
    calib: str | Path | None = None
    preprocess: str = "torchvision"
    force: bool = False
    check: bool = True
    log: Callable[[str], None] = lambda msg: None
    inputs: tuple[str | Path, ...] = ()             # other files read (the engine config): OUT/ must not hold them
    board: str | None = None                        # choose the engine config (memory mode, buffers) for a board
    memory: str = "auto"                            # with board: "auto", or only "resident" / only "dram"


@dataclass(frozen=True)
class CompileState:
    """What the steps have made so far (each step returns a new state)."""
    model: onnx.ModelProto | None = None            # as loaded
    input_name: str = ""
    shape: tuple[int, int, int, int] | None = None  # NCHW of the input
    form: str = ""                                  # float | qoperator | qdq
    calibration: np.ndarray | None = None           # float model: the calibration batch
    float_model: onnx.ModelProto | None = None      # float model: normalised for the quantizer
    tmp: Path | None = None                         # the temporary output directory
    qmodel: onnx.ModelProto | None = None           # quantized.onnx
    program: Program | None = None
    config: EngineConfig | None = None              # the engine config resolved for the program


@dataclass
class CompileResult:
    out_dir: Path
    program: Program
    config: EngineConfig
    timings: dict[str, float] = field(default_factory=dict)


def load(state: CompileState, o: CompileOptions) -> CompileState:
    model = frontend.load_model(o.model_path)
    input_name, shape = frontend.check_model(model, o.model_path)
    form = frontend.graph_form(model)
    state = replace(state, model=model, input_name=input_name, shape=shape, form=form)
    if form != "float":
        if o.calib:
            o.log(f"note: {o.model_path} is already quantized ({form}); --calib is ignored")
        return state
    # validate calibration data and the float graph before anything is written
    batch = inputs.load_batch(o.calib, shape, o.preprocess) if o.calib else inputs.default_calibration(shape)
    return replace(state, calibration=batch, float_model=frontend.prepare_float_model(model, o.model_path))


def outdir(state: CompileState, o: CompileOptions) -> CompileState:
    return replace(state, tmp=prepare_output_dir(o.out_dir, o.force, inputs=(o.model_path, o.calib, *o.inputs)))


def quantize(state: CompileState, o: CompileOptions) -> CompileState:
    qpath = state.tmp / "quantized.onnx"
    if state.form != "float":
        onnx.save(state.model, qpath)
        return replace(state, qmodel=state.model)
    o.log(f"quantizing with onnxruntime.quantization on {state.calibration.shape[0]} calibration input(s)")
    quantizer.quantize_model(state.float_model, state.input_name, state.calibration, qpath)
    return replace(state, qmodel=onnx.load(qpath))


def lower(state: CompileState, o: CompileOptions) -> CompileState:
    program = frontend.lower(state.qmodel, str(o.model_path))
    program.meta.update({"source": str(o.model_path), "form": state.form,
                         "calibration": str(o.calib) if o.calib else DEFAULT_CALIBRATION})
    program.save(state.tmp)
    return replace(state, program=program)


def check(state: CompileState, o: CompileOptions) -> CompileState:
    """The golden model against ONNX Runtime on the first calibration input (an already-quantized model:
    the first default calibration tensor), every layer byte for byte."""
    import onnxruntime      # deferred: a heavy import, needed only by this step


    onnxruntime.set_default_logger_severity(3)   # its warnings about the quantizer's leftovers are noise here
    batch = state.calibration if state.calibration is not None else inputs.default_calibration(state.shape)
    result = compare.compare(state.tmp, batch[:1], state.program)
    bad = next((row for row in result.layers if row.mismatches), None)
    if bad is not None:
        raise FireforgeError(f"{o.model_path}: the golden model differs from ONNX Runtime at layer '{bad.name}' "
                             f"({bad.mismatches} of {bad.size} bytes, up to {bad.max_abs_diff} off) on the first "
                             f"calibration input; compile with --no-check, then `fireforge compare` shows every "
                             f"layer")
    return state


def engine(state: CompileState, o: CompileOptions) -> CompileState:
    from fireforge.sw.board_config import board_config

    state.program.meta["board"] = o.board           # the manifest's meta: simulate / generate --board check it
    return replace(state, config=board_config(state.program, o.board, o.engine, log=o.log,
                                                      memory=o.memory))


def images(state: CompileState, o: CompileOptions) -> CompileState:
    return replace(state, config=write_images(state.program, state.config or o.engine, state.tmp))


def commit(state: CompileState, o: CompileOptions) -> CompileState:
    commit_output_dir(state.tmp, o.out_dir)
    return state


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[CompileState, CompileOptions], CompileState]
    when: Callable[[CompileOptions], bool] = lambda o: True


STEPS: tuple[Step, ...] = (
    Step("load", load),
    Step("outdir", outdir),
    Step("quantize", quantize),
    Step("lower", lower),
    Step("check", check, when=lambda o: o.check),
    Step("engine", engine, when=lambda o: o.board is not None),
    Step("images", images),
    Step("commit", commit),
)


def run_steps(options: CompileOptions, steps=STEPS) -> tuple[CompileState, dict[str, float]]:
    """Run ``steps`` in order, timing each; on any failure remove the temporary output directory."""
    state, timings = CompileState(), {}
    t0 = time.perf_counter()
    try:
        for step in steps:
            if step.when(options):
                t = time.perf_counter()
                state = step.run(state, options)
                timings[step.name] = time.perf_counter() - t
    except BaseException:
        if state.tmp is not None:
            shutil.rmtree(state.tmp, ignore_errors=True)
        raise
    timings["total"] = time.perf_counter() - t0
    return state, timings


def compile_model(model_path: str | Path, out_dir: str | Path, *, calib: str | Path | None = None,
                  config: EngineConfig | None = None, preprocess: str = "torchvision",
                  force: bool = False, check: bool = True, log=lambda msg: None,
                  inputs: tuple[str | Path, ...] = (), board: str | None = None,
                  memory: str = "auto") -> CompileResult:
    """Compile one ONNX model into ``out_dir`` (the steps: see the module docstring). ``inputs``: files read
    besides the model and the calibration data (the engine config), which ``out_dir`` must not hold."""
    options = CompileOptions(model_path, Path(out_dir), config or EngineConfig(), calib, preprocess, force, check,
                             log, tuple(inputs), board, memory)
    state, timings = run_steps(options)
    return CompileResult(options.out_dir, state.program, state.config, timings)


def input_shape(program: Program) -> tuple[int, int, int, int]:
    t = program.tensors[program.input]
    return (1, t.channels, t.height, t.width)
