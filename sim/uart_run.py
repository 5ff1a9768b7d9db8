"""The board's host path in simulation: the Verilated engine behind the UART host link — what runs on a board
minus the PLL and the pins. A PC-side client (:class:`~fireforge.hw.host_link.HostClient`) drives it from a
cocotb test (the tests' ``support/uart.py``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from amaranth.back import verilog

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.errors import FireforgeError
from fireforge.hw.board import ecp5_memory
from fireforge.hw.host_link import LinkedTop
from fireforge.hw.top import HDL_DIR, HDL_SOURCES
from fireforge.sim import verilator
from fireforge.sim.hw_run import default_build_root

__all__ = ["build_linked", "TOP"]

TOP = "fireforge_uart_top"


def build_linked(compiled: Compiled, divisor: int, *, ecp5_memories: bool = False,
                 build_root: Path | None = None) -> Path:
    """Verilog of LinkedTop for ``compiled``'s engine config (UART at clock/``divisor``) → a Verilated model
    (cached by content).

    ``ecp5_memories``: the ECP5 board's memories for this program (:mod:`fireforge.hw.board.ecp5_memory`, the DP16KD
    tiles with its ROM images inside) replace the hand-written ones, run on the DP16KD model."""
    if divisor < 4:
        raise FireforgeError(f"UART divisor {divisor}: the receiver needs at least 4 clock cycles per bit")
    config = compiled.config
    root = Path(build_root or default_build_root()) / "verilator"
    name = "uart-" + "-".join(f"{k}{v}" for k, v in config.to_dict().items()) + f"-div{divisor}"
    modules, cells = {}, None
    if ecp5_memories:
        memories = ecp5_memory.memory_modules(compiled)
        modules = dict(memories.values())
        cells = {key: module for key, (module, _) in memories.items()}
        digest = hashlib.sha256("".join(modules.values()).encode()).hexdigest()[:12]
        name += f"-ecp5-{digest}"
    rtl = root / "rtl" / name
    rtl.mkdir(parents=True, exist_ok=True)
    # the ECP5 board core: its memories, MAC products and requantizer multipliers as the board top builds them,
    # on the primitive models of SIM_MODEL
    variant = BuildVariant.for_family("ecp5") if modules else BuildVariant()
    top = LinkedTop(config, variant, clk_hz=divisor * 1_000_000, baud=1_000_000, memory_cells=cells)
    (rtl / f"{TOP}.v").write_text(verilog.convert(top, name=TOP, emit_src=False))
    sources = [rtl / f"{TOP}.v", *(HDL_DIR / s for s in HDL_SOURCES)]
    for module, text in modules.items():
        (rtl / f"{module}.v").write_text(text)
        sources.append(rtl / f"{module}.v")
    if modules:
        sources.append(ecp5_memory.SIM_MODEL)
    return verilator.build(sources, TOP, root)
