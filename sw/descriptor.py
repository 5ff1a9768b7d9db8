"""The layer descriptor: one Amaranth ``StructLayout`` the compiler packs and the engine decodes.

Defined once, here; ``fireforge.hw`` uses :data:`DESCRIPTOR` for its descriptor ROM and the compiler packs
words with ``DESCRIPTOR.const(...)``. Field widths bound what one engine can run; :func:`pack` checks
every value against its field and names the layer and field that overflow.
"""

from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data, enum

from fireforge.errors import FireforgeError

__all__ = ["Op", "DESCRIPTOR", "pack", "unpack"]


class Op(enum.Enum, shape=3):
    END = 0
    CONV = 1
    MAXPOOL = 2
    ADD = 3
    GAP = 4


# Addresses are in activation / weight / quant words; sizes in pixels and channel groups.
DESCRIPTOR = data.StructLayout({
    "op": Op,
    "relu": 1,
    "lut_en": 1,
    "lut_index": 8,
    "in_addr": 24,        # input tensor base (activation words)
    "in2_addr": 24,       # second input of ADD
    "out_addr": 24,       # destination tensor base
    "in_h": 12, "in_w": 12,
    "in_groups": 10,      # channel groups per input pixel (the input's pitch)
    "out_h": 12, "out_w": 12,
    "out_groups": 10,     # channel groups this layer computes
    "out_pitch": 10,      # channel groups per pixel of the destination tensor
    "out_goff": 10,       # first destination group written (concat slice)
    "kernel_h": 4, "kernel_w": 4,
    "stride_h": 3, "stride_w": 3,
    "pad_t": 4, "pad_l": 4,
    "weight_addr": 24,    # first weight word of a CONV
    "quant_addr": 16,     # first requant word of a CONV
    "in_zp": 8, "in2_zp": 8, "out_zp": 8,
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
