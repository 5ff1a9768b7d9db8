"""Block-RAM arithmetic: how many vendor blocks a memory of a given width × depth takes.

Used by the benchmarks and the board fit check. Each family's block offers a few aspect ratios; a
memory is tiled with the cheapest one (ceil(width/w)·ceil(depth/d) blocks), as synthesis does for
plain ROM/RAM inference.
"""

from dataclasses import dataclass

__all__ = ["BramFamily", "FAMILIES", "bram_blocks", "bram_bits"]


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
