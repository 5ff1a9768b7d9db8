"""DRAM-mode performance, PREDICTED by the cycle and traffic model (fireforge.sw.perf / fireforge.sw.tiling):
nothing here is simulated. SqueezeNet v1.1 and v1.0 at 224x224, 1000 classes, default calibration.

    python benchmarks/dram.py [--versions v1_1 v1_0] [--mac-units 64 256] [--clock-mhz 100]

The compute part of the model is exact against Verilator on the resident engine (tests/test_perf.py); the
DRAM part (tiling, transfers at a profile's bandwidth, double buffering) is a model of an engine not built yet.
"""

import argparse
import tempfile
from pathlib import Path

import onnx

from fireforge.core.config import EngineConfig
from fireforge.models.squeezenet import build_squeezenet
from fireforge.sw.compile import compile_model
from fireforge.sw.perf import predict_dram, predict_program
from fireforge.sw.tiling import BufferBudget, TilingOptions

#: engine clock 100 MHz; DRAM bytes per engine cycle = MB/s / 100
PROFILES = [
    ("ulx3s-50", 96.0, "ULX3S SDR SDRAM at 50 MHz, 16-bit AXI port: 96 MB/s measured (docs/dram.md)"),
    ("ulx3s-100", 192.0, "ULX3S SDRAM at 100 MHz: ASSUMED 2x the 50 MHz measurement (not measured)"),
    ("arty", 800.0, "Arty A7 DDR3L-800 x16 (1.6 GB/s peak): ASSUMED 50 % of peak, 800 MB/s (not measured; "
                    "the ULX3S port reached 66-96 % of its peak, DDR3 adds row misses and turnarounds)"),
]


def budget(mac_units: int) -> BufferBudget:
    """A ULX3S-plausible budget (DP16KD as 512 x 36): 208 blocks, ~20 for the DRAM controller, the rest for the
    engine's buffers and FIFOs. 64 MACs: weights 2 x 512 words x 512 bits (30 blocks), input 16384 x 64 bits
    (64 blocks, 128 KB), output 8192 x 64 bits (32 blocks, 64 KB): 126 blocks. 256 MACs: weights 2 x 256 words
    x 2048 bits (57 blocks), input 8192 x 128 bits (64 blocks), output 4096 x 128 bits (32 blocks): 153."""
    return BufferBudget(16384, 512, 8192) if mac_units == 64 else BufferBudget(8192, 256, 4096)


BUDGET_BLOCKS = {64: 126, 256: 153}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--versions", nargs="+", default=["v1_1", "v1_0"])
    ap.add_argument("--mac-units", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    args = ap.parse_args()
    print("PREDICTION (cycle + traffic model, not a simulation); engine clock", args.clock_mhz, "MHz")
    for name, mbs, why in PROFILES:
        print(f"  {name}: {why}")
    for m in args.mac_units:
        b = budget(m)
        print(f"  budget {m} MACs: input {b.input_words} words, weights 2 x {b.weight_words} words, output "
              f"{b.output_words} words (~{BUDGET_BLOCKS[m]} DP16KD of 188 left after ~20 for the controller)")
    print()
    head = (f"| model | MACs | profile | options | cycles | util | weights MB | maps read MB | maps written MB "
            f"| memory-bound layers | fps |")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for version in args.versions:
            onnx.save(build_squeezenet(version, input_size=224), tmp / "m.onnx")
            program = compile_model(tmp / "m.onnx", tmp / "out", config=EngineConfig(mac_units=64),
                                    check=False, force=True).program
            for m in args.mac_units:
                cfg = EngineConfig(mac_units=m)
                res = predict_program(program, cfg)
                print(f"| {version} | {m} | resident (all on chip) | - | {res.cycles:,} | {res.utilization:.1%} "
                      f"| - | - | - | - | {args.clock_mhz * 1e6 / res.cycles:.1f} |")
                for pname, mbs, _ in PROFILES:
                    opts = [("fused+squeeze", TilingOptions())]
                    if pname == "ulx3s-50":
                        opts.append(("no fusion", TilingOptions(fuse_pools=False, squeeze_on_chip=False)))
                    for oname, o in opts:
                        p = predict_dram(program, cfg, budget(m), mbs / args.clock_mhz, o)
                        mem = [l for l in p.layers if l.memory_bound]
                        print(f"| {version} | {m} | {pname} | {oname} | {p.cycles:,} | {p.utilization:.1%} "
                              f"| {p.total('weight_bytes') / 1e6:.2f} | {p.total('read_bytes') / 1e6:.2f} "
                              f"| {p.total('write_bytes') / 1e6:.2f} | {len(mem)} of "
                              f"{sum(1 for l in p.layers if l.tiling.height)} | {p.fps(args.clock_mhz):.1f} |")


if __name__ == "__main__":
    main()
