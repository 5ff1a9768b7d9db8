"""``fireforge simulate``: the compiled program on the Verilated engine, checked against the golden model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.sim import golden
from fireforge.sim.hw_run import HwResult, ideal_cycles, rtl_run
from fireforge.sw.compare import diff, top5

__all__ = ["LayerReport", "SimReport", "simulate"]


@dataclass
class LayerReport:
    name: str
    kind: str
    cycles: int | None
    ideal_cycles: int
    mismatches: int | None      # None: this layer's output was not kept (use --dump-layers)
    size: int

    @property
    def utilization(self) -> float | None:
        return None if not self.cycles else self.ideal_cycles / self.cycles


@dataclass
class SimReport:
    layers: list[LayerReport]
    total_cycles: int
    mac_units: int
    top5_hw: list[int]
    top5_golden: list[int]
    output_mismatches: int
    hw: HwResult

    @property
    def mismatches(self) -> int:
        return sum(l.mismatches or 0 for l in self.layers) + self.output_mismatches

    @property
    def ideal_cycles(self) -> int:
        return sum(l.ideal_cycles for l in self.layers)

    @property
    def utilization(self) -> float:
        return self.ideal_cycles / self.total_cycles if self.total_cycles else 0.0

    def to_json(self) -> dict:
        return {"layers": [{"name": l.name, "kind": l.kind, "cycles": l.cycles, "ideal_cycles": l.ideal_cycles,
                            "utilization": l.utilization, "mismatches": l.mismatches, "size": l.size}
                           for l in self.layers],
                "total_cycles": self.total_cycles, "ideal_cycles": self.ideal_cycles,
                "utilization": self.utilization, "mac_units": self.mac_units,
                "output_mismatches": self.output_mismatches, "mismatches": self.mismatches,
                "top5": {"hw": self.top5_hw, "golden": self.top5_golden},
                "sim_seconds": self.hw.sim_seconds}


def simulate(compiled: Compiled | str | Path, x: np.ndarray, *, variant: BuildVariant | None = None,
             dump_layers: bool = False, stall_seed: int = 0, read_latency: int | None = None,
             build_root: Path | None = None, progress=None) -> SimReport:
    """The compiled program (a :class:`Compiled` or its ``OUT/``) on the engine built as ``variant``, every
    compared layer checked against the golden model; see :func:`fireforge.sim.hw_run.rtl_run`."""
    compiled = Compiled.of(compiled)
    program, config = compiled.program, compiled.config
    g = golden.run(program, x)
    hw = rtl_run(compiled, x, variant=variant, dump_layers=dump_layers, stall_seed=stall_seed,
                 read_latency=read_latency, build_root=build_root, progress=progress)
    rows = []
    for i, layer in enumerate(program.layers):
        mine = g.layer_outputs[layer.name]
        got = hw.layer_outputs.get(layer.name)
        mism = None if got is None else diff(got, mine)[1]
        cycles = hw.layer_cycles[i] if i < len(hw.layer_cycles) else None
        rows.append(LayerReport(layer.name, layer.kind, cycles, ideal_cycles(program, layer, config), mism,
                                int(mine.size)))
    out_mism = diff(hw.output, g.output)[1]
    is_scores = hw.output.shape[1:] == (1, 1)     # class scores: top-5 means something
    return SimReport(rows, hw.cycles, config.mac_units, top5(hw.output) if is_scores else [],
                     top5(g.output) if is_scores else [], out_mism, hw)


def progress_bar(total_layers: int, stream):
    """A one-line progress bar on ``stream`` (stderr): layers done and cycles so far."""
    def show(done: int, cycles: int) -> None:
        width = 30
        filled = width * done // max(1, total_layers)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total_layers} layers, {cycles:,} cycles")
        if done >= total_layers:
            stream.write("\n")
        stream.flush()
    return show


def format_report(rep: SimReport) -> str:
    w = max(len(l.name) for l in rep.layers)
    lines = [f"{'layer':<{w}}  {'kind':<8} {'cycles':>10} {'ideal':>10} {'util':>6} {'mismatch':>9} {'of':>8}"]
    for l in rep.layers:
        util = "" if l.utilization is None else f"{l.utilization:6.1%}"
        cyc = "" if l.cycles is None else str(l.cycles)
        mm = "-" if l.mismatches is None else str(l.mismatches)
        lines.append(f"{l.name:<{w}}  {l.kind:<8} {cyc:>10} {l.ideal_cycles:>10} {util:>6} {mm:>9} {l.size:>8}")
    lines.append(f"total cycles {rep.total_cycles}, ideal {rep.ideal_cycles} on {rep.mac_units} MAC units: "
                 f"utilization {rep.utilization:.1%}")
    lines.append(f"output tensor: {rep.output_mismatches} mismatching bytes; all compared layers: "
                 f"{rep.mismatches} mismatching bytes")
    if rep.top5_hw:
        lines.append(f"top-5 hardware: {rep.top5_hw}   golden: {rep.top5_golden}")
    lines.append(f"Verilator: {rep.hw.sim_seconds:.1f} s simulated run")
    return "\n".join(lines)
