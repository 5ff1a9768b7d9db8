"""The layer descriptor: one Amaranth ``StructLayout`` the compiler packs and the engine decodes.

Defined once, here; ``fireforge.hw`` uses :data:`DESCRIPTOR` for its descriptor ROM and the compiler packs
words with ``DESCRIPTOR.const(...)``. Field widths bound what one engine can run; :func:`pack` checks
every value against its field and names the layer and field that overflow.
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed
from amaranth.lib import data, enum

from fireforge.errors import FireforgeError

__all__ = ["Op", "Buffer", "DESCRIPTOR", "TRANSFER", "COMMAND_BYTES", "pack", "unpack", "pack_transfer",
           "unpack_command"]


class Op(enum.Enum, shape=3):
    END = 0
    CONV = 1
    MAXPOOL = 2
    ADD = 3
    GAP = 4
    LOAD = 5      # DRAM mode: DRAM → an on-chip buffer (a TRANSFER)
    STORE = 6     # DRAM mode: the activation buffer → DRAM (a TRANSFER)


class Buffer(enum.Enum, shape=2):
    """The on-chip buffers of a DRAM-mode engine a transfer names."""
    ACT = 0       # activation words (``vector`` bytes): input bands and output bands
    WEIGHTS = 1   # weight words (``mac_units`` bytes)
    QUANT = 2     # requant words (``vector`` lanes)


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
    # a max pool fused into this CONV / ADD's output path (fireforge.hw.engine.pool): its output words are not
    # written; the pooled words go to out_addr / out_pitch (the pool's destination) instead
    "pool_en": 1,
    "pool_k": 2, "pool_s": 2,         # square kernel 1..3, stride 1..3
    "pool_pad_t": 2, "pool_pad_l": 2,
    "pool_out_h": 12, "pool_out_w": 12,
})


# DRAM mode (docs/dram.md): the command stream in DRAM holds compute descriptors (above) and transfers, each
# in COMMAND_BYTES bytes; both share the op field in the low bits, so one decoder tells them apart.
# A transfer moves ``runs`` runs of ``run_words`` buffer words: run r is at DRAM byte address
# ``dram_addr + r·dram_stride``; the buffer side is contiguous from ``buf_addr`` (in that buffer's words).
# ``wait``: start only once the engine is idle (the running tile uses the buffer words it touches).
# ``mark``: the last transfer of a layer (the simulator stamps layer boundaries with it).
TRANSFER = data.StructLayout({
    "op": Op,
    "wait": 1,
    "mark": 1,
    "buffer": Buffer,
    "dram_addr": 32,      # bytes, aligned to the buffer word
    "dram_stride": 32,    # bytes between runs
    "run_words": 16,
    "runs": 16,
    "buf_addr": 24,
})
#: bytes one command (a DESCRIPTOR or a TRANSFER, zero-padded) occupies in DRAM
COMMAND_BYTES = 64
assert TRANSFER.size <= DESCRIPTOR.size <= 8 * COMMAND_BYTES


def _check(layout, fields: dict, layer: str) -> dict:
    values = {}
    for name, field in layout:
        v = fields.get(name, 0 if name != "op" else Op.END)
        if name not in ("op", "buffer"):
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
    return values


def pack(fields: dict, *, layer: str = "?") -> int:
    """Pack a descriptor (missing fields are 0) into an integer of ``DESCRIPTOR.size`` bits."""
    return DESCRIPTOR.const(_check(DESCRIPTOR, fields, layer)).as_bits()


def pack_transfer(fields: dict, *, layer: str = "?") -> int:
    """Pack a LOAD / STORE (missing fields are 0) into an integer of ``TRANSFER.size`` bits."""
    if fields.get("op") not in (Op.LOAD, Op.STORE):
        raise ValueError(f"a transfer's op is LOAD or STORE, not {fields.get('op')!r}")
    fields = {**fields, "buffer": Buffer(fields.get("buffer", Buffer.ACT))}
    return TRANSFER.const(_check(TRANSFER, fields, layer)).as_bits()


def _fields(layout, word: int) -> dict:
    c = layout.from_bits(word)
    out = {}
    for name, _ in layout:
        v = getattr(c, name)
        out[name] = Op(v) if name == "op" else Buffer(v) if name == "buffer" else int(v)
    return out


def unpack(word: int) -> dict:
    return _fields(DESCRIPTOR, word)


def unpack_command(word: int) -> dict:
    """A command of the DRAM-mode stream: a transfer's fields for LOAD / STORE, else a descriptor's."""
    op = Op(word & 0b111)
    return _fields(TRANSFER if op in (Op.LOAD, Op.STORE) else DESCRIPTOR, word)
