"""Run a compiled program on the Verilated engine: ``rtl_run(compiled, x)`` mirrors ``golden.run(program, x)``.

The Verilated model depends only on the engine config and the build variant (lanes, memory depths, reads in
flight, how products are built), so it is built once per (config, variant) and cached under
``$FIREFORGE_BUILD/verilator``; each run passes the program's images by plusarg (``+desc= +weights=
+quant=``) and the activation memory's initial contents (the quantized input at its address) by
``+act_init``. Python does not run per cycle: the bench pulses start and sleeps until done.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fireforge.core import hexfile
from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.layout import read_layer_result, read_tensor, tensor_words
from fireforge.core.numerics import quantize_input
from fireforge.core.tools import default_build_root
from fireforge.core.program import ConvLayer, Program
from fireforge.errors import FireforgeError
from fireforge.hw.generate import check_supported
from fireforge.hw.top import ACT_RAM_LATENCY, HDL_SOURCES, ROM_IMAGES, write_verilog
from fireforge.sim import verilator

__all__ = ["HwResult", "rtl_run", "build_engine", "default_build_root", "run_dir", "ideal_cycles",
           "image_plusargs", "MAX_READ_LATENCY"]

#: simulation models of the ECP5 primitives (DP16KD, TRELLIS_FF, MULT18X18D), in ``hw/hdl``
ECP5_PRIMITIVES = "ff_dp16kd_sim.v"
#: the longest read latency the simulation memory model (ff_act_ram's +act_latency) can delay a response
MAX_READ_LATENCY = 64


@contextlib.contextmanager
def run_dir(build_root: Path | None, prefix: str) -> Iterator[Path]:
    """A temporary directory for one simulation run under ``<build root>/runs``, removed afterwards."""
    root = Path(build_root or default_build_root()) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=root) as tmp:
        yield Path(tmp)


@dataclass
class HwResult:
    cycles: int                                   # engine cycle counter, start to done (first run)
    runs: list[int]                               # cycles of each back-to-back run
    layer_cycles: list[int]                       # cycles spent in each descriptor (first run; compiled.rom_layers)
    layer_outputs: dict[str, np.ndarray] = field(default_factory=dict)   # every stored layer's own result
    output: np.ndarray | None = None              # the program's output tensor
    sim_seconds: float = 0.0
    build_dir: Path | None = None


def build_engine(config: EngineConfig, variant: BuildVariant | None = None, *,
                 build_root: Path | None = None) -> Path:
    """Verilog for ``config`` built as ``variant`` → a Verilated model (cached by content); returns the
    build directory.

    The activation memory is always the simulation RAM inside the top (``ff_act_ram``, which can stall and
    answer late: ``+act_stall_seed``, ``+act_latency``); ``act_memory="external"`` builds the engine a board
    with DRAM gets in front of it (``variant.reads_in_flight`` reads in flight), ``mac_products="lut"`` the
    one the Lattice boards get, ``multipliers="ecp5"`` the ECP5 boards' requantizer products
    (:meth:`BuildVariant.for_family`)."""

    variant = variant or BuildVariant()
    root = Path(build_root or default_build_root()) / "verilator"
    name = "-".join(f"{k}{v}" for k, v in config.to_dict().items())
    rtl = root / "rtl" / "-".join(filter(None, (name, variant.tag())))
    # the memory stays the simulation RAM; only the engine in front of it changes with the variant
    top = write_verilog(config, rtl, replace(variant, act_memory="on-chip", read_depth=variant.reads_in_flight))
    sources = [top, *(rtl / s for s in HDL_SOURCES)]
    if variant.multipliers == "ecp5":       # MULT18X18D instances: on the primitives' simulation models
        sources.append(verilator.hdl_file(ECP5_PRIMITIVES))
    return verilator.build(sources, "fireforge_top", root)


def image_plusargs(compiled: Compiled) -> dict[str, Path]:
    """The ROM images of a compiled program by the plusargs the Verilated tops read them from."""

    return {plusarg: compiled.images[stem].hex for stem, plusarg in ROM_IMAGES.values()}


def initial_memory(compiled: Compiled, x: np.ndarray) -> np.ndarray:
    """The activation memory before a run: the quantized input at its address, zeros elsewhere."""
    t_in = compiled.program.tensors[compiled.program.input]
    layout = compiled.input_layout
    words = tensor_words(layout, quantize_input(x, t_in.scale, t_in.zero_point), t_in.zero_point, compiled.vector)
    mem = np.zeros((compiled.config.act_depth, compiled.vector), np.uint8)
    mem[layout.addr:layout.addr + len(words)] = words
    return mem


def _watch_progress(path: Path, stop: threading.Event, callback) -> None:
    """Call ``callback(layers_done, cycles)`` as the simulation reports layers (first run only)."""
    seen = 0
    while True:
        finished = stop.wait(0.2)
        try:
            lines = path.read_text().splitlines()
        except OSError:
            lines = []
        for line in lines[seen:]:
            run, layers, cycles = (int(v) for v in line.split())
            if run == 0:
                callback(layers, cycles)
        seen = len(lines)
        if finished:
            return


def _simulate(build_dir: Path, tmp: Path, plusargs: dict, env: dict, timeout_s: float | None, progress) -> dict:
    """One run of the engine bench, with ``progress`` fed from a helper thread."""
    watcher = stop = None
    if progress is not None:
        env["FF_PROGRESS"] = str(tmp / "progress.txt")
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_progress, args=(tmp / "progress.txt", stop, progress), daemon=True)
        watcher.start()
    try:
        return verilator.run(build_dir, "fireforge_top", "fireforge.sim.cocotb_engine", plusargs=plusargs,
                             test_dir=tmp / "sim", timeout_s=timeout_s, extra_env=env)
    finally:
        if watcher is not None:
            stop.set()
            watcher.join()


def _layer_outputs(compiled: Compiled, tmp: Path, final: np.ndarray, dump_layers: bool) -> dict[str, np.ndarray]:
    """Every stored layer's own result from its descriptor's snapshot (``dump_layers``), else the last layer's
    from the final memory (a fused pool's writer stores nothing of its own: it is left out)."""
    v, depth = compiled.vector, compiled.config.act_depth
    if not dump_layers:
        last = compiled.layers[-1]
        return {last.name: read_layer_result(last.descriptor, compiled.layer_channel_index(last), final, v)}
    outputs = {}
    for entry in compiled.layers:
        if not entry.stored:
            continue
        snap = hexfile.read_words(tmp / f"layer.{compiled.slot(entry)}.hex", v, depth)
        outputs[entry.name] = read_layer_result(entry.descriptor, compiled.layer_channel_index(entry), snap, v)
    return outputs


def _check_read_latency(read_latency: int | None) -> int:
    read_latency = ACT_RAM_LATENCY if read_latency is None else read_latency
    if not ACT_RAM_LATENCY <= read_latency <= MAX_READ_LATENCY:
        raise FireforgeError(f"read latency {read_latency} is outside {ACT_RAM_LATENCY}..{MAX_READ_LATENCY} cycles "
                             f"(the on-chip RAM's own pipeline is {ACT_RAM_LATENCY}; {MAX_READ_LATENCY} is the "
                             f"memory model's limit)")
    return read_latency


def rtl_run(compiled: Compiled | str | Path, x: np.ndarray, *, variant: BuildVariant | None = None,
            stall_seed: int = 0, stall_pct: int = 30, read_latency: int | None = None, runs: int = 1,
            dump_layers: bool = False, build_root: Path | None = None, timeout_s: float | None = None,
            max_cycles: int = 500_000_000, progress=None) -> HwResult:
    """Run a compiled program (a :class:`Compiled` or its ``OUT/`` directory) on the engine for one float
    input (NCHW, batch 1).

    ``stall_seed``/``stall_pct``: random back-pressure on the activation memory port; ``read_latency``:
    cycles from an accepted read to its response (None: the on-chip block RAM's own, ``ACT_RAM_LATENCY``;
    20–40 models a DRAM controller); ``variant``: how the engine is built (:func:`build_engine`), e.g.
    ``BuildVariant(act_memory="external")``: as for a board's DRAM, with
    :data:`~fireforge.core.config.EXTERNAL_TAP_DEPTH` reads in flight instead of
    :data:`~fireforge.core.config.TAP_DEPTH`. ``progress(layers_done, cycles)`` is called from a helper
    thread as layers finish."""

    compiled = Compiled.of(compiled)
    read_latency = _check_read_latency(read_latency)
    check_supported(compiled.program, compiled.config)
    build_dir = build_engine(compiled.config, variant, build_root=build_root)
    v, depth = compiled.vector, compiled.config.act_depth
    with run_dir(build_root, "run-") as tmp:
        hexfile.write_words(tmp / "act_init.hex", initial_memory(compiled, x))
        plusargs = {**image_plusargs(compiled), "act_init": tmp / "act_init.hex", "act_dump": tmp / "act_final.hex"}
        if dump_layers:
            plusargs["act_dump_layers"] = tmp / "layer"   # a prefix: the RAM writes layer.<index>.hex
        if stall_seed:
            plusargs.update(act_stall_seed=stall_seed, act_stall_pct=stall_pct)
        if read_latency != ACT_RAM_LATENCY:
            plusargs["act_latency"] = read_latency
        env = {"FF_RUNS": runs, "FF_MAX_CYCLES": max_cycles, "FF_LAYER_CYCLES": 1}
        res = _simulate(build_dir, tmp, plusargs, env, timeout_s, progress)
        final = hexfile.read_words(tmp / "act_final.hex", v, depth)
        outputs = _layer_outputs(compiled, tmp, final, dump_layers)
        output = read_tensor(compiled.output_layout, final, v)
    n_layers = len(compiled.rom_layers)
    stamps = res.get("layer_cycles") or []
    layer_cycles = list(np.diff([0, *stamps[:n_layers]])) if len(stamps) >= n_layers else []
    return HwResult(cycles=res["cycles"], runs=res["runs"], layer_cycles=[int(c) for c in layer_cycles],
                    layer_outputs=outputs, output=output, sim_seconds=res.get("sim_seconds", 0.0),
                    build_dir=build_dir)


def ideal_cycles(program: Program, layer, config: EngineConfig) -> int:
    """MACs ÷ MAC units: the cycles a perfectly used array would need (0 for layers without MACs)."""
    return -(-program.macs(layer) // config.mac_units) if isinstance(layer, ConvLayer) else 0
