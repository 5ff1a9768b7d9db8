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


def build_linked(config, divisor: int, build_root: Path | None = None, *, ecp5_memories_of: Path | None = None) -> Path:
    """Verilog of LinkedTop (UART at clock/``divisor``) → a Verilated model (cached by content).

    ``ecp5_memories_of``: a compiled program whose ECP5 board memories (:mod:`fireforge.hw.ecp5_memory`, the
    DP16KD tiles with the ROM images inside) replace the hand-written ones, run on the DP16KD model."""
    import hashlib

    from amaranth.back import verilog

    from fireforge.hw.host_link import LinkedTop
    from fireforge.hw.top import HDL_DIR, HDL_SOURCES
    from fireforge.sim import verilator

    root = Path(build_root or default_build_root()) / "verilator"
    name = "uart-" + "-".join(f"{k}{v}" for k, v in config.to_dict().items()) + f"-div{divisor}"
    modules, cells = {}, None
    if ecp5_memories_of is not None:
        from fireforge.hw import ecp5_memory

        memories = ecp5_memory.memory_modules(config, ecp5_memories_of)
        modules = dict(memories.values())
        cells = {key: module for key, (module, _) in memories.items()}
        digest = hashlib.sha256("".join(modules.values()).encode()).hexdigest()[:12]
        name += f"-ecp5-{digest}"
    rtl = root / "rtl" / name
    rtl.mkdir(parents=True, exist_ok=True)
    # the ECP5 board core: its memories, MAC products and requantizer multipliers as the board top builds them,
    # on the primitive models of SIM_MODEL
    from fireforge.hw.boards import mac_products, requant_multipliers

    products, multipliers = (mac_products("ecp5"), requant_multipliers("ecp5")) if modules else ("dsp", "inferred")
    top = LinkedTop(config, clk_hz=divisor * 1_000_000, baud=1_000_000, memory_cells=cells,
                    mac_products=products, multipliers=multipliers)
    (rtl / f"{TOP}.v").write_text(verilog.convert(top, name=TOP, emit_src=False))
    sources = [rtl / f"{TOP}.v", *(HDL_DIR / s for s in HDL_SOURCES)]
    for module, text in modules.items():
        (rtl / f"{module}.v").write_text(text)
        sources.append(rtl / f"{module}.v")
    if modules:
        sources.append(ecp5_memory.SIM_MODEL)
    return verilator.build(sources, TOP, root)


def uart_infer(out_dir, x: np.ndarray, *, divisor: int = 4, read_latency: int | None = None, stall_seed: int = 0,
               build_root: Path | None = None, timeout_s: float | None = 600, ecp5_memories: bool = False) -> dict:
    """One inference of the program in ``out_dir`` over the simulated UART: ``{"output": uint8 array (the
    output tensor), "cycles": engine cycles, "info": the link's identify reply, "sim_ns": ...}``.

    ``ecp5_memories``: with the ECP5 board's DP16KD memories (see :func:`build_linked`); the activation RAM is
    then the DP16KD one, so ``read_latency`` and ``stall_seed`` do not apply."""
    from fireforge.sim import verilator

    out_dir = Path(out_dir).absolute()
    program, manifest, config = load_compiled(out_dir)
    if divisor < 4:
        raise FireforgeError(f"UART divisor {divisor}: the receiver needs at least 4 clock cycles per bit")
    from fireforge.hw.top import ACT_RAM_LATENCY

    read_latency = ACT_RAM_LATENCY if read_latency is None else read_latency
    if ecp5_memories and (read_latency != ACT_RAM_LATENCY or stall_seed):
        raise FireforgeError(f"the ECP5 activation RAM answers in {ACT_RAM_LATENCY} cycles and never stalls: "
                             "no read_latency / stall_seed with ecp5_memories")
    build = build_linked(config, divisor, build_root, ecp5_memories_of=out_dir if ecp5_memories else None)
    root = Path(build_root or default_build_root()) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="uart-", dir=root) as tmp:
        tmp = Path(tmp)
        np.save(tmp / "x.npy", np.asarray(x, np.float32))
        plusargs = {"desc": out_dir / "descriptors.hex", "weights": out_dir / "weights.hex",
                    "quant": out_dir / "quant.hex"}
        if read_latency != ACT_RAM_LATENCY:       # ff_act_ram's own latency
            plusargs["act_latency"] = read_latency
        if stall_seed:
            plusargs["act_stall_seed"] = stall_seed
        res = verilator.run(build, TOP, "fireforge.sim.cocotb_uart",
                            plusargs={k: str(v) for k, v in plusargs.items()}, test_dir=tmp / "sim",
                            timeout_s=timeout_s,
                            extra_env={"FF_OUT_DIR": out_dir, "FF_INPUT": tmp / "x.npy", "FF_DIVISOR": divisor})
    res["output"] = np.asarray(res["output"], np.uint8).reshape(res["shape"])
    return res
