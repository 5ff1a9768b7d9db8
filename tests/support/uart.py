"""One inference over the simulated UART: the Verilated engine behind the host link
(:func:`fireforge.sim.uart_run.build_linked`), driven by the PC-side client from :mod:`support.cocotb_uart`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.errors import FireforgeError
from fireforge.sim import verilator
from fireforge.sim.hw_run import image_plusargs, run_dir
from fireforge.sim.uart_run import TOP, build_linked


def uart_infer(compiled: Compiled | str | Path, x: np.ndarray, *, divisor: int = 4, read_latency: int | None = None,
               stall_seed: int = 0, build_root: Path | None = None, timeout_s: float | None = 600,
               ecp5_memories: bool = False) -> dict:
    """One inference of a compiled program (or its ``OUT/``): ``{"output": uint8 array (the output tensor),
    "cycles": engine cycles, "info": the link's identify reply, "sim_ns": ...}``.

    ``ecp5_memories``: with the ECP5 board's DP16KD memories (see :func:`build_linked`); the activation RAM is
    then the DP16KD one, so ``read_latency`` and ``stall_seed`` do not apply."""
    from fireforge.hw.top import ACT_RAM_LATENCY

    compiled = Compiled.of(compiled)
    read_latency = ACT_RAM_LATENCY if read_latency is None else read_latency
    if ecp5_memories and (read_latency != ACT_RAM_LATENCY or stall_seed):
        raise FireforgeError(f"the ECP5 activation RAM answers in {ACT_RAM_LATENCY} cycles and never stalls: "
                             "no read_latency / stall_seed with ecp5_memories")
    build = build_linked(compiled, divisor, ecp5_memories=ecp5_memories, build_root=build_root)
    with run_dir(build_root, "uart-") as tmp:
        np.save(tmp / "x.npy", np.asarray(x, np.float32))
        plusargs: dict[str, object] = image_plusargs(compiled)
        if read_latency != ACT_RAM_LATENCY:       # ff_act_ram's own latency
            plusargs["act_latency"] = read_latency
        if stall_seed:
            plusargs["act_stall_seed"] = stall_seed
        res = verilator.run(build, TOP, "support.cocotb_uart", plusargs=plusargs, test_dir=tmp / "sim",
                            timeout_s=timeout_s,
                            extra_env={"FF_OUT_DIR": compiled.out_dir.absolute(), "FF_INPUT": tmp / "x.npy",
                                       "FF_DIVISOR": divisor})
    res["output"] = np.asarray(res["output"], np.uint8).reshape(res["shape"])
    return res
