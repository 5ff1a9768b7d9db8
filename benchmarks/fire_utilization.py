"""Cycles, ideal cycles and MAC utilization of v1.1's Fire modules at their 224x224 sizes, on the engine.

    python benchmarks/fire_utilization.py [--mac-units 64 256] [--json FILE]

Each Fire module is compiled on its own (input = the map it sees in v1.1 at 224x224) and run on the
Verilated engine; the outputs are checked against the golden model (0 mismatching bytes expected).
Utilization = ideal cycles (MACs / MAC units) / measured cycles. Also prints the Verilator wall time of
the largest module. Nothing here asserts a speed.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from fireforge.models.squeezenet import build_fire, fire_sizes
from fireforge.sim import golden
from fireforge.sim.hw_run import build_engine, ideal_cycles, rtl_run
from fireforge.sw.compile import compile_model
from fireforge.core.config import EngineConfig
from fireforge.core.compiled import Compiled

# v1.1 at 224x224: the map each Fire module sees and its input channels
V11_FIRE_INPUTS = {"fire2": (64, 55), "fire3": (128, 55), "fire4": (128, 27), "fire5": (256, 27),
                   "fire6": (256, 13), "fire7": (384, 13), "fire8": (384, 13), "fire9": (512, 13)}


def bench_config(mac_units: int) -> EngineConfig:
    """One config (so one Verilated build) that holds every v1.1 Fire module at 224x224."""
    v = int(mac_units ** 0.5)
    weight_words = (512 * 64 + 64 * 256 * 10) // (v * v) + 64   # fire9, the largest
    return EngineConfig(mac_units=mac_units, weight_depth=1 << (weight_words - 1).bit_length(), quant_depth=256,
                        desc_depth=16, act_depth=1 << 17)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mac-units", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    args = ap.parse_args()
    sizes = {f"fire{i + 2}": s for i, s in enumerate(fire_sizes())}
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for mac_units in args.mac_units:
            cfg = bench_config(mac_units)
            t = time.perf_counter()
            build_engine(cfg)
            build_s = time.perf_counter() - t
            rows, walls, mismatches = [], {}, {}
            for fire, (cin, hw) in V11_FIRE_INPUTS.items():
                s = sizes[fire]
                model = build_fire(in_channels=cin, squeeze=s.squeeze, expand1x1=s.expand1x1,
                                   expand3x3=s.expand3x3, input_size=hw)
                onnx.save(model, tmp / f"{fire}.onnx")
                out = tmp / f"{fire}-{mac_units}"
                compile_model(tmp / f"{fire}.onnx", out, config=cfg)
                compiled = Compiled.load(out)
                program = compiled.program
                x = np.random.default_rng(0).standard_normal((1, cin, hw, hw)).astype(np.float32)
                t = time.perf_counter()
                hw_res = rtl_run(compiled, x)
                walls[fire] = time.perf_counter() - t
                mismatches[fire] = int(np.count_nonzero(hw_res.output != golden.run(program, x).output))
                for layer, cycles in zip(program.layers, hw_res.layer_cycles):
                    rows.append({"module": fire, "layer": layer.name, "cycles": cycles,
                                 "ideal_cycles": ideal_cycles(program, layer, cfg)})
            total_c = sum(r["cycles"] for r in rows)
            total_i = sum(r["ideal_cycles"] for r in rows)
            per_layer = [r["ideal_cycles"] / r["cycles"] for r in rows if r["cycles"]]
            macs = {f: sum(r["ideal_cycles"] for r in rows if r["module"] == f) for f in walls}
            largest = max(macs, key=macs.get)       # the module with the most MACs
            report[mac_units] = {"rows": rows, "total_cycles": total_c, "ideal_cycles": total_i,
                                 "utilization": total_i / total_c, "mean_layer_utilization": float(np.mean(per_layer)),
                                 "build_seconds": build_s, "verilator_wall_seconds": walls,
                                 "mismatches": mismatches,
                                 "largest_module": largest}
            print(f"\n== {mac_units} MAC units (vector {cfg.vector}); Verilated model build {build_s:.1f} s")
            print(f"{'layer':<20} {'cycles':>10} {'ideal':>10} {'util':>7}")
            for r in rows:
                print(f"{r['layer'].replace('fire/', r['module'] + '/'):<20} {r['cycles']:>10} {r['ideal_cycles']:>10} "
                      f"{r['ideal_cycles'] / r['cycles']:>7.1%}")
            print(f"Fire layers: {total_c} cycles, ideal {total_i}: utilization {total_i / total_c:.1%} "
                  f"(mean over layers {np.mean(per_layer):.1%}); HW-vs-golden mismatching bytes: "
                  f"{sum(mismatches.values())}")
            print(f"Verilator wall time per module (run only): "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in walls.items()))
            print(f"largest Fire module (most MACs): {largest}, Verilator wall time {walls[largest]:.1f} s "
                  f"for {sum(r['cycles'] for r in rows if r['module'] == largest):,} cycles")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
