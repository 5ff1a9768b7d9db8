"""Run a DRAM-mode compiled program on the DRAM-mode engine and LiteDRAM's real controller: ``dram_rtl_run``.

The mirror of :func:`fireforge.sim.hw_run.rtl_run` for ``config.memory == "dram"``. The DRAM image is what
the host writes before a run (:func:`fireforge.sim.dram_run.program_image`): the weights and requant images
and the command stream at the manifest's ``dram`` map, the quantized input at its tensor's words. The simulation preloads it by the
core's backdoor (:mod:`fireforge.sim.dram_run`), runs the engine from the first command and dumps the
activation region: every tensor has its own DRAM words in DRAM mode, so every layer's result is read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.core.layout import read_layer_result, read_tensor
from fireforge.errors import FireforgeError
from fireforge.sim import dram_run as runner
from fireforge.sim import litedram

__all__ = ["DramHwResult", "dram_rtl_run"]


@dataclass
class DramHwResult:
    cycles: int                                   # engine cycles of the (first) run, start to done
    runs: list[int]                               # cycles of each back-to-back run
    compute_cycles: int                           # of those, cycles with the engine core busy
    dram_bytes_read: int                          # the engine's AXI counters, command fetch included
    dram_bytes_written: int
    layer_cycles: list[int | None]                # per layer, from the layer_done stamps (None: fused into, or stored by, another)
    layer_outputs: dict[str, np.ndarray] = field(default_factory=dict)
    output: np.ndarray | None = None
    clock_mhz: float = 0.0                        # the profile's clock: engine and controller share it here
    sim_seconds: float = 0.0
    build_dir: Path | None = None

    @property
    def stall_cycles(self) -> int:
        return self.cycles - self.compute_cycles


def dram_rtl_run(compiled: Compiled | str | Path, x: np.ndarray, *, variant=None, runs: int = 1,
                 stall_seed: int = 0, stall_pct: int = 0, build_root: Path | None = None,
                 timeout_s: float | None = None, max_cycles: int | None = None,
                 profile: str = runner.PROFILE) -> DramHwResult:
    """One float input (NCHW, batch 1) through a DRAM-mode program on the simulated ULX3S profile; ``runs``
    back-to-back runs of the same program; ``stall_seed`` / ``stall_pct``: random stalls on the AXI port."""
    compiled = Compiled.of(compiled)
    if not compiled.config.dram:
        raise FireforgeError(f"{compiled.out_dir} is a resident-mode program; compile it with --board NAME for a "
                             f"board whose DRAM it needs")
    if compiled.config.act_word_bits % runner.DATA_WIDTH:
        raise FireforgeError(f"the {compiled.config.mac_units}-MAC engine's activation word does not split into "
                             f"the simulated port's {runner.DATA_WIDTH}-bit beats")
    v = compiled.vector
    image, program, dump = runner.program_image(compiled, x)
    res = runner.dram_run(image, program * runs, config=compiled.config, variant=variant, dump=dump,
                          stall_seed=stall_seed, stall_pct=stall_pct, build_root=build_root, timeout_s=timeout_s,
                          max_cycles=max_cycles, profile=profile)
    bad = [i for i, r in enumerate(res.runs) if r.error]
    if bad:
        raise FireforgeError(f"the DRAM-mode engine reported an error in run {bad[0]} (an AXI error response or a "
                             f"bad command); {compiled.rebuild_hint()}")
    words = runner.act_words(compiled, res)
    # a layer fused into another (sw.dram_chains) leaves its result in the buffer only: nothing to read back;
    # a layer stored by another (a Fire's expands) has no mark of its own: its cycles are in that layer's
    layers = compiled.dram["layers"]
    stored = [not l.get("fused_into") for l in layers]
    marked = [kept and not l.get("stored_by") for kept, l in zip(stored, layers)]
    outputs = {e.name: read_layer_result(e.descriptor, compiled.layer_channel_index(e), words, v)
               for e, kept in zip(compiled.layers, stored) if kept}
    first = res.runs[0]
    stamps = iter(np.diff([0, *first.layer_cycles]))
    layer_cycles = ([int(next(stamps)) if m else None for m in marked]
                    if len(first.layer_cycles) == sum(marked) else [])
    return DramHwResult(cycles=first.cycles, runs=[r.cycles for r in res.runs], compute_cycles=first.compute_cycles,
                        dram_bytes_read=first.bytes_read, dram_bytes_written=first.bytes_written,
                        layer_cycles=layer_cycles, layer_outputs=outputs,
                        output=read_tensor(compiled.output_layout, words, v),
                        clock_mhz=litedram.PROFILES[profile].clock_mhz, sim_seconds=res.run_seconds,
                        build_dir=res.model)
