"""Run the DRAM-mode engine on LiteDRAM's real controller from Python: :func:`dram_run`.

The DRAM image is preloaded by the core's backdoor (``$readmemh`` per bank), the runs go back to back in
one simulation (:mod:`fireforge.sim.cocotb_dram`: no Python per clock cycle), and the bytes asked for are
dumped after the last run (``$writememh`` in a ``final`` block). The Verilated model
(:func:`fireforge.sim.dram_top.build`) is cached by content, so only the first call with a config builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fireforge.sim import litedram
from fireforge.sim import litedram_backdoor as backdoor

__all__ = ["DramRun", "DramRunResult", "dram_run", "build_model", "program_image", "act_words", "PROFILE",
           "DATA_WIDTH", "ID_WIDTH"]

#: the simulated board DRAM and the engine's AXI port on it (spec: ULX3S, 16-bit, ID width 1)
PROFILE = "ulx3s"
DATA_WIDTH = 16
ID_WIDTH = 1


@dataclass
class DramRun:
    """One run's counters (the engine's ports at ``done``)."""

    program_addr: int
    program_commands: int
    cycles: int                   # start → done
    compute_cycles: int           # cycles with the engine core busy
    bytes_read: int               # R beats × beat bytes, command fetch included
    bytes_written: int            # W beats × beat bytes
    error: int
    clock_cycles: int             # simulated cycles from the start pulse to done (cycles + a fixed offset)
    layer_cycles: list[int]       # ``cycles`` at each layer_done pulse

    @property
    def stall_cycles(self) -> int:
        return self.cycles - self.compute_cycles


@dataclass
class DramRunResult:
    runs: list[DramRun]
    dump: bytes                   # DRAM bytes [dump_range[0], dump_range[1]) after the last run
    dump_range: tuple[int, int]
    init_cycles: int              # reset release → the init sequencer's done
    stalls: int                   # cycles in which the AxiStaller held a transfer back (all runs)
    run_seconds: float            # wall time of the simulator process
    build_seconds: float          # of the (cached) model; 0.0 when this call reused it
    model: Path
    raw: dict = field(default_factory=dict, repr=False)   # the cocotb test's JSON

    def dumped(self, lo: int, hi: int) -> bytes:
        """The dumped bytes ``[lo, hi)`` (inside :attr:`dump_range`)."""
        a, b = self.dump_range
        if not a <= lo <= hi <= b:
            raise ValueError(f"[{lo:#x}, {hi:#x}) is not inside the dump [{a:#x}, {b:#x})")
        return self.dump[lo - a:hi - a]


def build_model(config, *, variant=None, build_root: Path | None = None, engine=None,
                max_burst: int = 64, outstanding: int = 2, tag: str | None = None, profile: str = PROFILE):
    """``(core, model dir, toplevel)`` of the bench for *config* (generated and Verilated once per content)."""
    from fireforge.sim import dram_top
    from fireforge.sim.hw_run import default_build_root

    root = Path(build_root) if build_root is not None else default_build_root()
    core = litedram.generate(profile, axi_data_width=DATA_WIDTH, axi_id_width=ID_WIDTH, build_root=root)
    model, top = dram_top.build(config, core, root, variant=variant, engine=engine, max_burst=max_burst,
                                outstanding=outstanding, tag=tag)
    return core, model, top


def dram_run(image: dict[int, bytes], runs: list[tuple[int, int]], *, config, variant=None,
             dump: tuple[int, int], stall_seed: int = 0, stall_pct: int = 0, build_root: Path | None = None,
             timeout_s: float | None = None, max_cycles: int | None = None, engine=None,
             max_burst: int = 64, outstanding: int = 2, tag: str | None = None,
             profile: str = PROFILE) -> DramRunResult:
    """Simulate the DRAM-mode engine for *config* on the ULX3S LiteDRAM ``--sim`` core.

    *image*: DRAM byte address → bytes, preloaded by backdoor (the rest of the DRAM is 0; a partly covered
    16-bit word gets 0 in its other byte). *runs*: ``(program_addr, program_commands)`` per run, back to back
    in one simulation without reset. *dump*: ``(lo, hi)``, the bytes ``[lo, hi)`` returned after the last run.
    *stall_seed* / *stall_pct*: the AxiStaller between engine and controller (0 = off; same model).
    *max_cycles*: the cycle limit of each run (default 50 M); *timeout_s*: wall-clock limit of the simulator.
    *engine*, *max_burst*, *outstanding*, *tag*: see :class:`fireforge.sim.dram_top.DramSimTop`.
    Raises RuntimeError (with the simulator's log tail) when a run does not finish or the init fails.
    """
    from fireforge.sim import verilator
    from fireforge.sim.build_cache import build_info
    from fireforge.sim.hw_run import run_dir

    if not runs:
        raise ValueError("dram_run needs at least one run")
    if not 0 <= stall_pct < 100:
        raise ValueError(f"stall_pct must be 0..99, not {stall_pct!r}")
    size = litedram.PROFILES[profile].size_bytes
    if not 0 <= dump[0] < dump[1] <= size:
        raise ValueError(f"dump range [{dump[0]:#x}, {dump[1]:#x}) empty or outside the DRAM ({size:#x} bytes)")
    import time

    t0 = time.time()
    core, model, top = build_model(config, variant=variant, build_root=build_root, engine=engine,
                                   max_burst=max_burst, outstanding=outstanding, tag=tag, profile=profile)
    info = build_info(model)
    built_now = info.get("built_at", 0.0) >= t0
    g = backdoor.dram_geometry(core)
    lo, hi = dump
    with run_dir(build_root, "dram-run-") as tmp:
        init = backdoor.write_dram_image(image, tmp / "init", g)
        plus, dump_files = backdoor.backdoor_plusargs(g, init, (tmp / "dump", lo, hi))
        (tmp / "dump").mkdir()
        spec = {"runs": [[int(a), int(n)] for a, n in runs], "stall_seed": int(stall_seed) & 0xFFFF_FFFF,
                "stall_pct": int(stall_pct)}
        (tmp / "dram.json").write_text(json.dumps(spec))
        env = {"FF_DRAM": tmp / "dram.json"}
        if max_cycles is not None:
            env["FF_MAX_CYCLES"] = int(max_cycles)
        res = verilator.run(model, top, "fireforge.sim.cocotb_dram", plusargs=plus, test_dir=tmp / "sim",
                            timeout_s=timeout_s, extra_env=env)
        data = backdoor.read_dram_dump(dump_files, lo, hi, g)
    out = [DramRun(program_addr=int(a), program_commands=int(n), **r) for (a, n), r in zip(runs, res["runs"])]
    return DramRunResult(runs=out, dump=data, dump_range=(lo, hi), init_cycles=res["init_cycles"],
                         stalls=res["stalls"], run_seconds=res["run_seconds"],
                         build_seconds=info["build_seconds"] if built_now else 0.0, model=model, raw=res)


def program_image(compiled, x) -> tuple[dict[int, bytes], list[tuple[int, int]], tuple[int, int]]:
    """A DRAM-mode compiled program (``OUT/`` or :class:`~fireforge.core.compiled.Compiled`) and a float input
    as :func:`dram_run`'s arguments: ``(image, runs, dump)`` — the weights, quant and commands images at their
    DRAM map addresses and the quantized input at its tensor's words; one run of the whole command stream; the
    dump of the activation region (word ``w`` at ``map.act + w·vector``: :func:`act_words`)."""
    import numpy as np

    from fireforge.core.compiled import Compiled
    from fireforge.core.layout import tensor_words
    from fireforge.core.numerics import quantize_input

    c = Compiled.of(compiled)
    if not c.config.dram:
        raise ValueError(f"{c.out_dir} is not a DRAM-mode program (engine memory {c.config.memory!r})")
    m, v = c.dram["map"], c.vector
    lay, t_in = c.input_layout, c.program.tensors[c.program.input]
    words = np.asarray(tensor_words(lay, quantize_input(x, t_in.scale, t_in.zero_point), t_in.zero_point, v),
                       np.uint8)
    image = {m["weights"]: c.images["weights"].read().tobytes(), m["quant"]: c.images["quant"].read().tobytes(),
             m["act"] + lay.addr * v: words.tobytes(), m["commands"]: c.images["commands"].read().tobytes()}
    return image, [(m["commands"], m["command_count"])], (m["act"], m["act"] + m["act_bytes"])


def act_words(compiled, result: DramRunResult):
    """The activation region of a :func:`program_image` run's dump as ``uint8 [words, vector]`` (the layout
    ``fireforge.core.layout.read_tensor`` / ``read_layer_result`` read)."""
    import numpy as np

    from fireforge.core.compiled import Compiled

    c = Compiled.of(compiled)
    m = c.dram["map"]
    return np.frombuffer(result.dumped(m["act"], m["act"] + m["act_bytes"]), np.uint8).reshape(-1, c.vector)
