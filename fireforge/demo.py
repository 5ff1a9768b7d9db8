"""``fireforge demo``: the whole path once, on a network small enough to simulate in a few minutes.

A newcomer's first command: build a SqueezeNet v1.1 (32x32 input, 10 classes; nothing downloaded), compile it for
the board, run it on the hardware as simulated here — the whole board (engine, LiteDRAM controller, host link on a
pseudo-terminal, driven by ``fireforge run``'s client) when the program is DRAM mode on the ULX3S, the Verilated
engine otherwise — check every output byte against the golden model, compare the golden model with ONNX Runtime
layer by layer, and write the HTML report. Every step goes through the Python API (:mod:`fireforge.api`), as a
user's script would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fireforge.errors import FireforgeError

__all__ = ["demo", "DemoResult", "DEMO_MODEL", "next_steps"]

#: the demo's network: the paper's v1.1 at a size a simulation runs in seconds
DEMO_MODEL = {"version": "v1_1", "input_size": 32, "classes": 10}


@dataclass
class DemoResult:
    out_dir: Path
    model: Path
    compiled: Path
    input: Path
    report: Path
    how: str                    # what ran it: "the simulated board" or "the Verilated engine"
    cycles: int
    mismatches: int             # hardware vs golden, output bytes
    golden_vs_ort: int          # golden vs ONNX Runtime, bytes over every layer
    top5: list[int]


def demo(out_dir: str | Path = "build/demo", board: str = "ulx3s-85f", log=lambda msg: None) -> DemoResult:
    import fireforge
    from fireforge.hw.board.catalogue import get_board

    board = get_board(board).name
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FireforgeError(f"{out} exists and is not a directory; give -o a directory")
    out.mkdir(parents=True, exist_ok=True)
    m = DEMO_MODEL
    model = fireforge.build_model(m["version"], out / f"squeezenet_{m['version']}_{m['input_size']}.onnx",
                                  input_size=m["input_size"], classes=m["classes"])
    log(f"[1/5] built SqueezeNet {m['version']} ({m['input_size']}x{m['input_size']}, {m['classes']} classes): {model}")
    acc = fireforge.compile(model, out / "compiled", board=board, force=True)
    log(f"[2/5] compiled for {board}: {acc.config.memory} mode, {acc.config.mac_units} MAC units, "
        f"{acc.predicted_cycles():,} cycles predicted: {acc.out_dir}")
    x = np.random.default_rng(0).standard_normal((1, 3, m["input_size"], m["input_size"])).astype(np.float32)
    xpath = out / "input.npy"
    np.save(xpath, x)
    from fireforge.sw.simulate import SIMULATED_DRAM

    if acc.config.dram and board in SIMULATED_DRAM:
        how = f"the simulated {board} board (engine, LiteDRAM controller, host link on a pty)"
        log(f"[3/5] running on {how}: the Verilator build takes a few minutes the first time")
        rep = acc.run(xpath, port="sim", check=True, log=log)
        image = rep.images[0]
        cycles, mismatches, top5 = image.cycles, image.mismatches, image.top5
    else:
        how = "the Verilated engine" + (" with LiteDRAM's controller" if acc.config.dram else "")
        log(f"[3/5] running on {how}: the Verilator build takes a minute or two the first time")
        rep = acc.simulate(x)
        cycles, mismatches, top5 = rep.total_cycles, rep.mismatches, list(rep.top5_hw)
    log(f"      {cycles:,} cycles, top-5 {top5}, {mismatches} mismatching bytes vs the golden model")
    cmp = acc.compare(x)
    golden_vs_ort = cmp.mismatches
    log(f"[4/5] golden model vs ONNX Runtime: {golden_vs_ort} mismatching bytes over {len(cmp.layers)} layers")
    report = acc.report(out / "report.html")
    log(f"[5/5] report: {report}")
    return DemoResult(out, model, acc.out_dir, xpath, report, how, cycles, mismatches, golden_vs_ort, list(top5))


def next_steps(r: DemoResult, board: str) -> str:
    c, x = r.compiled, r.input
    return "\n".join([
        f"fireforge demo: {r.cycles:,} cycles on {r.how}; {r.mismatches} mismatching bytes hardware vs golden, "
        f"{r.golden_vs_ort} golden vs ONNX Runtime",
        f"  model      {r.model}", f"  compiled   {c}/", f"  input      {x}", f"  report     {r.report}",
        "next:",
        f"  fireforge simulate {c} --board {board} --input {x} --dump-layers   # every layer, engine vs golden",
        f"  fireforge generate {c} -o {r.out_dir}/rtl --board {board} --synth      # the board top, synthesized",
        f"  fireforge explore --preset squeeze-ratio --board {board} -o {r.out_dir}/explore --report",
        "  fireforge models build v1_1 -o build/v1_1.onnx   # the full-size network (224x224, 1000 classes)",
    ])
