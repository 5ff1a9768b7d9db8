"""The board's host path in simulation: the Verilated engine behind the UART host link, driven by the PC-side
client (:class:`~fireforge.hw.host_link.HostClient`) — what runs on a board minus the PLL and the pins."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from fireforge.errors import FireforgeError
from fireforge.sim.hw_run import default_build_root, load_compiled

__all__ = ["uart_infer", "build_linked"]

TOP = "fireforge_uart_top"


def build_linked(config, divisor: int, build_root: Path | None = None) -> Path:
    """Verilog of LinkedTop (UART at clock/``divisor``) → a Verilated model (cached by content)."""
    from amaranth.back import verilog

    from fireforge.hw.host_link import LinkedTop
    from fireforge.hw.top import HDL_DIR, HDL_SOURCES
    from fireforge.sim import verilator

    root = Path(build_root or default_build_root()) / "verilator"
    rtl = root / "rtl" / ("uart-" + "-".join(f"{k}{v}" for k, v in config.to_dict().items()) + f"-div{divisor}")
    rtl.mkdir(parents=True, exist_ok=True)
    top = LinkedTop(config, clk_hz=divisor * 1_000_000, baud=1_000_000)
    (rtl / f"{TOP}.v").write_text(verilog.convert(top, name=TOP, emit_src=False))
    return verilator.build([rtl / f"{TOP}.v", *(HDL_DIR / s for s in HDL_SOURCES)], TOP, root)


def uart_infer(out_dir, x: np.ndarray, *, divisor: int = 4, read_latency: int = 3, stall_seed: int = 0,
               build_root: Path | None = None, timeout_s: float | None = 600) -> dict:
    """One inference of the program in ``out_dir`` over the simulated UART: ``{"output": uint8 array (the
    output tensor), "cycles": engine cycles, "info": the link's identify reply, "sim_ns": ...}``."""
    from fireforge.sim import verilator

    out_dir = Path(out_dir).absolute()
    program, manifest, config = load_compiled(out_dir)
    if divisor < 4:
        raise FireforgeError(f"UART divisor {divisor}: the receiver needs at least 4 clock cycles per bit")
    build = build_linked(config, divisor, build_root)
    root = Path(build_root or default_build_root()) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="uart-", dir=root) as tmp:
        tmp = Path(tmp)
        np.save(tmp / "x.npy", np.asarray(x, np.float32))
        plusargs = {"desc": out_dir / "descriptors.hex", "weights": out_dir / "weights.hex",
                    "quant": out_dir / "quant.hex"}
        if read_latency != 3:       # ff_act_ram's own latency (fireforge.hw.top.ACT_RAM_LATENCY)
            plusargs["act_latency"] = read_latency
        if stall_seed:
            plusargs["act_stall_seed"] = stall_seed
        res = verilator.run(build, TOP, "fireforge.sim.cocotb_uart",
                            plusargs={k: str(v) for k, v in plusargs.items()}, test_dir=tmp / "sim",
                            timeout_s=timeout_s,
                            extra_env={"FF_OUT_DIR": out_dir, "FF_INPUT": tmp / "x.npy", "FF_DIVISOR": divisor})
    res["output"] = np.asarray(res["output"], np.uint8).reshape(res["shape"])
    return res
