"""Compile time (v1.1 at 224, calibration on 16 inputs) and golden-model vs ONNX Runtime time per image.

    python benchmarks/compile_and_golden.py [--repeats N]

Prints measured figures; nothing here asserts a speed.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from fireforge.models.squeezenet import build_squeezenet
from fireforge.sim import golden
from fireforge.sw.compile import compile_model
from fireforge.core.compiled import Compiled


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--version", default="v1_1")
    ap.add_argument("--input-size", type=int, default=224)
    args = ap.parse_args()
    s = args.input_size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx.save(build_squeezenet(args.version, input_size=s), tmp / "model.onnx")
        t = time.perf_counter()
        res = compile_model(tmp / "model.onnx", tmp / "out")
        compile_s = time.perf_counter() - t
        program = Compiled.load(tmp / "out").program
        x = np.random.default_rng(0).standard_normal((1, 3, s, s)).astype(np.float32)
        golden.run(program, x)  # warm-up
        golden_s = _median_time(lambda: golden.run(program, x), args.repeats)
        sess = ort.InferenceSession(str(tmp / "out" / "quantized.onnx"), providers=["CPUExecutionProvider"])
        feed = {program.input_name: x}
        sess.run(None, feed)
        ort_s = _median_time(lambda: sess.run(None, feed), max(args.repeats, 50))
    print(f"model: {args.version} at {s}x{s}, 1000 classes")
    print(f"compile (load + calibrate on 16 inputs + quantize + lower + images): {compile_s:.2f} s "
          f"(steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in res.timings.items() if k != "total") + ")")
    print(f"golden model per image:  {golden_s * 1e3:.1f} ms (median of {args.repeats})")
    print(f"ONNX Runtime int8 (QOperator) per image: {ort_s * 1e3:.2f} ms (median, {ort.get_device()}, "
          f"default threads)")
    print(f"golden / ORT time ratio: {golden_s / ort_s:.1f}x")


if __name__ == "__main__":
    main()
