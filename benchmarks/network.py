"""A whole network on the Verilated engine: cycles, utilization, frame rate, simulation time, block RAM.

    python benchmarks/network.py [--version v1_1] [--input-size 224] [--mac-units 64 256] [--json FILE]

For each MAC count: compile (default calibration), build the Verilated model (timed), run one inference
(timed, build excluded), check the output against the golden model, and print total / ideal cycles,
utilization, cycles per layer type, frames per second at 100 and 200 MHz, and the weight bits stored vs
the block-RAM bits the ROMs take on ECP5 (18 Kb blocks) and Xilinx 7-series (36 Kb blocks).
Nothing here asserts a speed.
"""

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

from fireforge.hw.board.resources import bram_bits
from fireforge.models.squeezenet import build_squeezenet
from fireforge.sim import golden
from fireforge.sim.hw_run import build_engine, ideal_cycles, rtl_run
from fireforge.sw.compile import compile_model
from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import DESCRIPTOR
from fireforge.core.program import ConvLayer


def layer_type(layer) -> str:
    name = layer.name.rsplit("/", 1)[-1]
    if layer.kind != "conv":
        return layer.kind
    for key in ("squeeze", "expand1x1", "expand3x3", "bypass"):
        if key in name:
            return key
    return name          # conv1, conv10


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--version", default="v1_1")
    ap.add_argument("--bypass", default="none")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--mac-units", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--json", help="write the figures as JSON here")
    args = ap.parse_args()
    s = args.input_size
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx.save(build_squeezenet(args.version, input_size=s, bypass=args.bypass), tmp / "model.onnx")
        x = np.random.default_rng(0).standard_normal((1, 3, s, s)).astype(np.float32)
        for mac_units in args.mac_units:
            out = tmp / f"out{mac_units}"
            compile_model(tmp / "model.onnx", out, config=EngineConfig(mac_units=mac_units))
            compiled = Compiled.load(out)
            program, cfg = compiled.program, compiled.config
            t = time.perf_counter()
            build_engine(cfg)
            build_s = time.perf_counter() - t
            t = time.perf_counter()
            hw = rtl_run(compiled, x)
            run_s = time.perf_counter() - t
            mism = int(np.count_nonzero(hw.output != golden.run(program, x).output))
            by_type = defaultdict(lambda: [0, 0])
            by_name = {l.name: l for l in program.layers}
            for entry, cycles in zip(compiled.rom_layers, hw.layer_cycles):   # a fused pool: in its writer's
                layer = by_name[entry.name]
                by_type[layer_type(layer)][0] += cycles
                by_type[layer_type(layer)][1] += ideal_cycles(program, layer, cfg)
            ideal = sum(ideal_cycles(program, l, cfg) for l in program.layers)
            weight_bits = cfg.weight_bits * sum(l.weights.size for l in program.layers if isinstance(l, ConvLayer))
            roms = [(cfg.weight_word_bits, cfg.weight_depth), (cfg.quant_word_bits, cfg.quant_depth),
                    (DESCRIPTOR.size, cfg.desc_depth)]
            bram = {fam: {"weights": bram_bits(*roms[0], fam), "all_roms": sum(bram_bits(w, d, fam) for w, d in roms)}
                    for fam in ("ecp5", "xc7")}
            r = {"total_cycles": hw.cycles, "ideal_cycles": ideal, "utilization": ideal / hw.cycles,
                 "cycles_by_type": dict(by_type), "fps_100mhz": 100e6 / hw.cycles, "fps_200mhz": 200e6 / hw.cycles,
                 "verilator_run_seconds": run_s, "simulated_seconds": hw.sim_seconds, "build_seconds": build_s,
                 "weight_bits": weight_bits, "weight_rom_bits": cfg.weight_word_bits * cfg.weight_depth,
                 "bram_bits": bram, "mismatches_vs_golden": mism, "top5": [int(i) for i in
                                                                             np.argsort(-hw.output.reshape(-1), kind="stable")[:5]]}
            report[mac_units] = r
            print(f"\n== {args.version} at {s}x{s}, {mac_units} MAC units (vector {cfg.vector})")
            print(f"total cycles {hw.cycles:,}  ideal {ideal:,}  utilization {r['utilization']:.1%}  "
                  f"output vs golden: {mism} mismatching bytes")
            print(f"{'layer type':<12} {'cycles':>11} {'ideal':>11} {'util':>7}")
            for k, (c, i) in sorted(by_type.items(), key=lambda kv: -kv[1][0]):
                print(f"{k:<12} {c:>11,} {i:>11,} {i / c if c else 0:>7.1%}")
            print(f"frames/s: {r['fps_100mhz']:.1f} at 100 MHz, {r['fps_200mhz']:.1f} at 200 MHz")
            print(f"Verilator: build {build_s:.1f} s, one inference {run_s:.1f} s wall "
                  f"({hw.sim_seconds:.1f} s simulating)")
            print(f"weights {weight_bits / 1e6:.2f} Mb; weight ROM {r['weight_rom_bits'] / 1e6:.2f} Mb "
                  f"({cfg.weight_depth} x {cfg.weight_word_bits} b); block RAM allocated for weights: "
                  + ", ".join(f"{fam} {b['weights'] / 1e6:.2f} Mb ({b['weights'] / weight_bits:.3f}x)"
                              for fam, b in bram.items())
                  + "; all ROMs: " + ", ".join(f"{fam} {b['all_roms'] / 1e6:.2f} Mb ({b['all_roms'] / weight_bits:.3f}x)"
                                               for fam, b in bram.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
