"""DRAM mode, MEASURED: SqueezeNet v1.1 and v1.0 at 224x224 (1000 classes) compiled with ``--board``, run on the
Verilated DRAM-mode engine and LiteDRAM's real controller (the ULX3S SDR profile at 50 MHz and at 100 MHz,
engine and controller on one clock), every layer checked against the golden model; beside it the DRAM cycle
model's prediction (fireforge.sw.dram_perf) and the resident engine's cycles (fireforge.sw.perf: exact on the
resident engine). The Arty's DDR3 profile is generated, not simulated: its rows are predictions (assumed bus).

    python benchmarks/dram.py [--versions v1_1 v1_0] [--mac-units 64 256] [--profiles ulx3s ulx3s-100]

Several minutes: one Verilator build per engine config (~1-2 min), then ~20-60 s per simulated inference.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig
from fireforge.errors import FireforgeError
from fireforge.models.squeezenet import build_squeezenet
from fireforge.sim import golden
from fireforge.sim.dram_hw_run import dram_rtl_run
from fireforge.sim.hw_run import ideal_cycles
from fireforge.sw.compile import compile_model
from fireforge.sw.dram_perf import BUSES, predict_compiled_stream
from fireforge.sw.perf import predict_program


def _row(label, c: Compiled, cycles, pred, clock_mhz, wall, mism, stall):
    d = c.dram
    w = sum(l["weight_bytes"] for l in d["layers"]) / 1e6
    maps_r = sum(l["read_bytes"] for l in d["layers"]) / 1e6
    maps_w = d["bytes_written"] / 1e6
    ideal = sum(ideal_cycles(c.program, l, c.config) for l in c.program.layers)
    cyc = "-" if cycles is None else f"{cycles:,}"
    err = "-" if cycles is None else f"{pred / cycles - 1:+.1%}"
    used = cycles or pred
    return (f"| {label} | {cyc} | {pred:,} ({err}) | {ideal / used:.1%} | {w:.2f} / {maps_r:.2f} / {maps_w:.2f} "
            f"| {'-' if stall is None else f'{stall / used:.0%}'} | {clock_mhz * 1e6 / used:.1f} at {clock_mhz:g} MHz "
            f"| {100e6 / used:.1f} | {'-' if wall is None else f'{wall:.1f}'} | {'-' if mism is None else mism} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", nargs="+", default=["v1_1", "v1_0"])
    ap.add_argument("--mac-units", nargs="+", type=int, default=[64, 256])
    ap.add_argument("--profiles", nargs="+", default=["ulx3s", "ulx3s-100"])
    args = ap.parse_args()
    print("| model, MACs, board / profile | cycles (Verilator) | predicted (error) | util | weights / maps read / "
          "written MB | memory stalls | fps (clock) | fps at 100 MHz | Verilator s | mismatches |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.versions:
            model = Path(tmp) / f"{version}.onnx"
            onnx.save(build_squeezenet(version), model)
            x = np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)
            for macs in args.mac_units:
                res = predict_program(Compiled.of(_compile(model, tmp, version, macs, None)).program,
                                      EngineConfig(mac_units=macs)).cycles
                print(f"| {version}, {macs}, resident (all on chip) | - | {res:,} (exact model) | | - | - | - "
                      f"| {100e6 / res:.1f} | - | - |")
                for board, profiles in (("ulx3s-85f", args.profiles), ("arty-a7-100", ["arty"])):
                    try:
                        out = _compile(model, tmp, version, macs, board)
                    except FireforgeError as e:
                        print(f"| {version}, {macs}, {board} | does not compile: {e} |")
                        continue
                    c = Compiled.load(out)
                    if not c.config.dram:
                        print(f"| {version}, {macs}, {board}: resident (fits on chip) |")
                        continue
                    for prof in profiles:
                        pred = predict_compiled_stream(c, BUSES["ulx3s" if prof.startswith("ulx3s") else prof]).cycles
                        if prof == "arty":
                            print(_row(f"{version}, {macs}, {board} (predicted)", c, None, pred, 100.0, None, None,
                                       None))
                            continue
                        t0 = time.time()
                        hw = dram_rtl_run(c, x, profile=prof)
                        wall = time.time() - t0
                        g = golden.run(c.program, x)
                        mism = sum(int(np.count_nonzero(v != g.layer_outputs[k]))     # every stored layer
                                   for k, v in hw.layer_outputs.items())
                        print(_row(f"{version}, {macs}, {board} / {prof}", c, hw.cycles, pred, hw.clock_mhz,
                                   hw.sim_seconds, mism, hw.stall_cycles), f"(wall {wall:.0f} s incl. build)",
                              flush=True)


def _compile(model, tmp, version, macs, board):
    out = Path(tmp) / f"{version}-{macs}-{board}"
    if not (out / "manifest.json").exists():
        compile_model(model, out, config=EngineConfig(mac_units=macs), board=board)
    return out


if __name__ == "__main__":
    main()
