"""``fireforge compile``: ONNX → quantized ONNX → integer program → ROM images, as an ordered list of steps.

Outputs are written to a temporary sibling directory and moved into place only when every step
succeeded, so a failed compile never leaves an ``OUT/`` that looks valid.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from fireforge.errors import FireforgeError
from fireforge.core.outdir import commit_output_dir, prepare_output_dir
from fireforge.sw import onnx_import
from fireforge.core.config import EngineConfig
from fireforge.core.program import Program

__all__ = ["compile_model", "CompileResult"]


@dataclass
class CompileResult:
    out_dir: Path
    program: Program
    config: EngineConfig
    timings: dict[str, float] = field(default_factory=dict)


def compile_model(model_path: str | Path, out_dir: str | Path, *, calib: str | Path | None = None,
                  config: EngineConfig | None = None, preprocess: str = "torchvision",
                  force: bool = False, log=lambda msg: None) -> CompileResult:
    """Compile one ONNX model into ``out_dir`` (see the module docstring for the steps)."""
    from fireforge.sw import images, inputs, lower, quantize

    out_dir = Path(out_dir)
    config = config or EngineConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = onnx_import.load_model(model_path)
    input_name, shape = onnx_import.check_model(model, model_path)
    form = onnx_import.graph_form(model)
    if form == "float":
        # validate calibration data and the float graph before anything is written
        batch = inputs.load_batch(calib, shape, preprocess) if calib else inputs.default_calibration(shape)
        float_model = onnx_import.prepare_float_model(model, model_path)
    elif calib:
        log(f"note: {model_path} is already quantized ({form}); --calib is ignored")
    timings["load"] = time.perf_counter() - t0

    tmp = prepare_output_dir(out_dir, force)
    try:
        t = time.perf_counter()
        qpath = tmp / "quantized.onnx"
        if form == "float":
            log(f"quantizing with onnxruntime.quantization on {batch.shape[0]} calibration input(s)")
            quantize.quantize_model(float_model, input_name, batch, qpath)
            qmodel = onnx.load(qpath)
        else:
            qmodel = model
            onnx.save(qmodel, qpath)
        timings["quantize"] = time.perf_counter() - t
        t = time.perf_counter()
        program = lower.lower(qmodel, str(model_path))
        program.meta.update({"source": str(model_path), "form": form,
                             "calibration": str(calib) if calib else "default: 16 standard-normal tensors, seed 0"})
        program.save(tmp)
        timings["lower"] = time.perf_counter() - t
        t = time.perf_counter()
        resolved = images.write_images(program, config, tmp)
        timings["images"] = time.perf_counter() - t
        commit_output_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    timings["total"] = time.perf_counter() - t0
    return CompileResult(out_dir, program, resolved, timings)


def input_shape(program: Program) -> tuple[int, int, int, int]:
    t = program.tensors[program.input]
    return (1, t.channels, t.height, t.width)

