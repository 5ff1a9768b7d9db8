"""``fireforge simulate``: the compiled program on the Verilated engine, checked against the golden model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.sim import golden
from fireforge.sim.dram_hw_run import DramHwResult, dram_rtl_run
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
    dram_bytes_read: int | None = None       # DRAM mode: weights, requant words and maps this layer loads
    dram_bytes_written: int | None = None
    predicted_cycles: int | None = None      # DRAM mode: the cycle model's (sw.dram_perf), and what bounds it
    bound: str | None = None
    #: DRAM mode: the ideal cycles of every layer the ``cycles`` cover — this one and those before it without
    #: cycles of their own (a chain through the buffer: a fused pool's writers, a Fire's squeeze and expands)
    span_ideal: int | None = None

    @property
    def utilization(self) -> float | None:
        ideal = self.ideal_cycles if self.span_ideal is None else self.span_ideal
        return None if not self.cycles else ideal / self.cycles


@dataclass
class SimReport:
    layers: list[LayerReport]
    total_cycles: int
    mac_units: int
    top5_hw: list[int]
    top5_golden: list[int]
    output_mismatches: int
    hw: HwResult
    board: str | None = None
    predicted_cycles: int | None = None      # DRAM mode: the cycle model's total for this program

    @property
    def mismatches(self) -> int:
        return sum(l.mismatches or 0 for l in self.layers) + self.output_mismatches

    @property
    def ideal_cycles(self) -> int:
        return sum(l.ideal_cycles for l in self.layers)

    @property
    def utilization(self) -> float:
        return self.ideal_cycles / self.total_cycles if self.total_cycles else 0.0

    @property
    def dram(self) -> bool:
        return isinstance(self.hw, DramHwResult)

    @property
    def fps(self) -> float | None:
        return self.hw.clock_mhz * 1e6 / self.total_cycles if self.dram and self.total_cycles else None

    def dram_json(self) -> dict:
        """DRAM mode's top-level figures (measured by the engine's counters in the simulation)."""
        h = self.hw
        return {"board": self.board, "memory": "dram", "dram_bytes_read": h.dram_bytes_read,
                "dram_bytes_written": h.dram_bytes_written, "stall_cycles": h.stall_cycles,
                "compute_cycles": h.compute_cycles, "clock_mhz": h.clock_mhz, "fps": self.fps,
                "predicted_cycles": self.predicted_cycles}

    def to_json(self) -> dict:
        extra = self.dram_json() if self.dram else {"board": self.board, "memory": "resident"}
        return {"layers": [{"name": l.name, "kind": l.kind, "cycles": l.cycles, "ideal_cycles": l.ideal_cycles,
                            "utilization": l.utilization, "mismatches": l.mismatches, "size": l.size,
                            **({"dram_bytes_read": l.dram_bytes_read, "dram_bytes_written": l.dram_bytes_written,
                                "predicted_cycles": l.predicted_cycles, "bound": l.bound} if self.dram else {})}
                           for l in self.layers], **extra,
                "total_cycles": self.total_cycles, "ideal_cycles": self.ideal_cycles,
                "utilization": self.utilization, "mac_units": self.mac_units,
                "output_mismatches": self.output_mismatches, "mismatches": self.mismatches,
                "top5": {"hw": self.top5_hw, "golden": self.top5_golden},
                "sim_seconds": self.hw.sim_seconds}


def simulate(compiled: Compiled | str | Path, x: np.ndarray, *, variant: BuildVariant | None = None,
             dump_layers: bool = False, stall_seed: int = 0, read_latency: int | None = None,
             build_root: Path | None = None, progress=None, board: str | None = None) -> SimReport:
    """The compiled program (a :class:`Compiled` or its ``OUT/``) on the engine built as ``variant``, every
    compared layer checked against the golden model; see :func:`fireforge.sim.hw_run.rtl_run`. A DRAM-mode
    program runs on the DRAM-mode engine and the board profile's LiteDRAM core
    (:func:`fireforge.sim.dram_hw_run.dram_rtl_run`; ``stall_seed``: random stalls on its AXI port), every
    layer compared."""
    compiled = Compiled.of(compiled)
    program, config = compiled.program, compiled.config
    g = golden.run(program, x)
    if config.dram:
        if board is not None:               # the engine as that board builds it (products, multipliers)
            from fireforge.hw.board.catalogue import get_board
            variant = BuildVariant.for_family(get_board(board).family)
        hw = dram_rtl_run(compiled, x, variant=variant, stall_seed=stall_seed, stall_pct=30 if stall_seed else 0,
                          build_root=build_root)
    else:
        hw = rtl_run(compiled, x, variant=variant, dump_layers=dump_layers, stall_seed=stall_seed,
                     read_latency=read_latency, build_root=build_root, progress=progress)
    traffic = {l["name"]: l for l in compiled.dram["layers"]} if config.dram else {}
    rows, span = [], 0
    for i, layer in enumerate(program.layers):
        mine = g.layer_outputs[layer.name]
        got = hw.layer_outputs.get(layer.name)
        mism = None if got is None else diff(got, mine)[1]
        entry = compiled.layers[i]      # a fused pool's cycles are its writer's (one descriptor computes both)
        slot = i if config.dram else compiled.slot(entry) if entry.in_rom else None
        cycles = hw.layer_cycles[slot] if slot is not None and slot < len(hw.layer_cycles) else None
        t = traffic.get(layer.name, {})
        ideal = ideal_cycles(program, layer, config)
        span += ideal
        rows.append(LayerReport(layer.name, layer.kind, cycles, ideal, mism, int(mine.size), t.get("dram_bytes_read"),
                                t.get("write_bytes"), t.get("predicted_cycles"), t.get("bound"),
                                span if config.dram and cycles is not None else None))
        span = 0 if cycles is not None else span
    out_mism = diff(hw.output, g.output)[1]
    is_scores = hw.output.shape[1:] == (1, 1)     # class scores: top-5 means something
    return SimReport(rows, hw.cycles, config.mac_units, top5(hw.output) if is_scores else [],
                     top5(g.output) if is_scores else [], out_mism, hw, board,
                     (compiled.dram or {}).get("predicted", {}).get("cycles") if config.dram else None)


#: the boards whose DRAM profile is simulated (the Arty's and the KC705's models would hold 256 MB / 1 GB)
SIMULATED_DRAM = {"ulx3s-85f": "ulx3s"}


def check_board(compiled: Compiled, board: str) -> None:
    """``simulate --board``: the board ``OUT/`` was compiled for, and one whose DRAM profile is simulated."""
    from fireforge.errors import FireforgeError
    from fireforge.hw.board.catalogue import get_board

    name = get_board(board).name
    if compiled.board is not None and compiled.board != name:
        raise FireforgeError(f"{compiled.out_dir} was compiled for {compiled.board}, not {name}; compile it again "
                             f"with --board {name}, or simulate with --board {compiled.board}")
    if compiled.config.dram and name not in SIMULATED_DRAM:
        raise FireforgeError(f"{name}'s DRAM profile is generated but not simulated (its SDRAMPHYModel would hold "
                             f"the whole chip); DRAM-mode simulation runs the {', '.join(SIMULATED_DRAM)} profile")


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
    dram = rep.dram
    head = f"{'layer':<{w}}  {'kind':<8} {'cycles':>10} {'ideal':>10} {'util':>6} {'mismatch':>9} {'of':>8}"
    lines = [head + (f" {'DRAM read':>10} {'written':>9} {'predicted':>10} {'bound':>7}" if dram else "")]
    for l in rep.layers:
        util = "" if l.utilization is None else f"{l.utilization:6.1%}"
        cyc = "" if l.cycles is None else str(l.cycles)
        mm = "-" if l.mismatches is None else str(l.mismatches)
        row = f"{l.name:<{w}}  {l.kind:<8} {cyc:>10} {l.ideal_cycles:>10} {util:>6} {mm:>9} {l.size:>8}"
        pred = "" if l.predicted_cycles is None else str(l.predicted_cycles)
        lines.append(row + (f" {l.dram_bytes_read:>10} {l.dram_bytes_written:>9} {pred:>10} {l.bound or '':>7}"
                            if dram else ""))
    lines.append(f"total cycles {rep.total_cycles}, ideal {rep.ideal_cycles} on {rep.mac_units} MAC units: "
                 f"utilization {rep.utilization:.1%}")
    lines.append(f"output tensor: {rep.output_mismatches} mismatching bytes; all compared layers: "
                 f"{rep.mismatches} mismatching bytes")
    if rep.top5_hw:
        lines.append(f"top-5 hardware: {rep.top5_hw}   golden: {rep.top5_golden}")
    if dram:
        d = rep.dram_json()
        lines.append(f"DRAM ({rep.board or 'ulx3s-85f'} profile, LiteDRAM controller): {d['dram_bytes_read']:,} bytes "
                     f"read, {d['dram_bytes_written']:,} written; {d['stall_cycles']:,} cycles with the engine "
                     f"waiting for memory ({d['stall_cycles'] / rep.total_cycles:.1%}); {d['fps']:.1f} fps at "
                     f"{d['clock_mhz']:g} MHz"
                     + (f"; the cycle model predicted {rep.predicted_cycles:,} ({rep.predicted_cycles / rep.total_cycles - 1:+.1%})"
                        if rep.predicted_cycles else ""))
    if dram:
        lines.append("(a row's cycles and util cover it and the rows above it without cycles: layers chained through "
                     "the buffer; bound: what the cycle model says limits them)")
    lines.append(f"Verilator: {rep.hw.sim_seconds:.1f} s simulated run")
    return "\n".join(lines)
