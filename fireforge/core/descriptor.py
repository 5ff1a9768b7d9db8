"""The layer descriptor: one Amaranth ``StructLayout`` the compiler packs and the engine decodes.

Defined once, here; ``fireforge.hw`` uses :data:`DESCRIPTOR` for its descriptor ROM and the compiler packs
words with ``DESCRIPTOR.const(...)``. Field widths bound what one engine can run; :func:`pack` checks
every value against its field and names the layer and field that overflow.
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed
from amaranth.lib import data, enum

from fireforge.errors import FireforgeError

__all__ = ["Op", "DESCRIPTOR", "pack", "unpack"]


class Op(enum.Enum, shape=3):
    END = 0
    CONV = 1
    MAXPOOL = 2
    ADD = 3
    GAP = 4


# The engine runs every layer as one loop nest (see fireforge.hw.engine):
#   for og < og_count: for oy < out_h: for ox < out_w: for ky < kernel_h: for kx < kernel_w: for ig < g_count
# reading activation word  window(oy, ox) + ky·ky_step + kx·kx_step + ig  (+ og when depthwise), where
# window(oy, ox) = win_addr0 + oy·row_step + ox·pix_step; taps outside the map (pad_en) read as padding.
# Every address step is precomputed here, so the hardware only adds. Addresses are in words.
DESCRIPTOR = data.StructLayout({
    "op": Op,
    "relu": 1,
    "pad_en": 1,          # check taps against the map (conv / max pool with padding or ceil mode)
    "depthwise": 1,       # group og reads input group og (max pool, add, GAP); else all groups (conv)
    "og_count": 10,       # output channel groups produced
    "out_h": 12, "out_w": 12,
    "kernel_h": 12, "kernel_w": 12,   # GAP: the whole map
    "g_count": 10,        # input groups per tap (conv: the input's groups; depthwise: 1)
    "in_h": 12, "in_w": 12,
    "stride_h": 4, "stride_w": 4,
    "pad_t": 4, "pad_l": 4,
    "win_addr0": signed(26),  # input base − (pad_t·in_w + pad_l)·groups
    "row_step": 26,       # stride_h·in_w·groups
    "pix_step": 16,       # stride_w·groups
    "ky_step": 24,        # in_w·groups
    "kx_step": signed(26),  # groups; ADD: second input base − first input base
    "weight_addr": 24,    # first weight word of a CONV
    "taps": 20,           # weight words per output group: kernel_h·kernel_w·g_count
    "quant_addr": 16,     # first requant word of a CONV
    "out_addr": 24,       # destination base + first group of this layer's slice
    "out_pitch": 10,      # channel groups per pixel of the destination tensor
    "in_zp": 8, "out_zp": 8,
    "mult_a": 24, "shift_a": 8,   # ADD: input A's multiplier; GAP: the averaging multiplier
    "mult_b": 24, "shift_b": 8,   # ADD: input B's multiplier
    "aux": 32,            # ADD/GAP: extra term of the requant (see fireforge.sim.requant)
})


def pack(fields: dict, *, layer: str = "?") -> int:
    """Pack a descriptor (missing fields are 0) into an integer of ``DESCRIPTOR.size`` bits."""
    values = {}
    for name, field in DESCRIPTOR:
        v = fields.get(name, 0 if name != "op" else Op.END)
        if name != "op":
            v = int(v)
            shape = Shape.cast(field.shape)
            width, signed = shape.width, shape.signed
            lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            if not lo <= v <= hi:
                raise FireforgeError(f"layer '{layer}': descriptor field {name}={v} does not fit its {width} bits "
                                     f"(range {lo}..{hi}); the model exceeds what one engine descriptor can express")
        values[name] = v
    unknown = set(fields) - set(values)
    if unknown:
        raise ValueError(f"unknown descriptor fields {sorted(unknown)}")
    return DESCRIPTOR.const(values).as_bits()


def unpack(word: int) -> dict:
    c = DESCRIPTOR.from_bits(word)
    out = {}
    for name, _ in DESCRIPTOR:
        v = getattr(c, name)
        out[name] = Op(v) if name == "op" else int(v)
    return out
