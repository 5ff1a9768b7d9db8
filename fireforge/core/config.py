"""The one engine configuration shared by the compiler (image layout) and the hardware (ports, memories).

Everything else is derived from these few numbers, in one place, as properties. The config is saved as
JSON beside every artefact so a build can always be traced back to the shape it was made for.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from fireforge.core.quant import QUANT_LANE
from fireforge.errors import FireforgeError


#: the layout's width, computed once: amaranth recomputes a layout's size on every call, and the DRAM-mode
#: compiler asks for it per transfer (a third of an explorer point's time)
_QUANT_LANE_BITS = QUANT_LANE.size

__all__ = ["EngineConfig", "BuildVariant", "channel_groups", "ACT_MEMORY", "MAC_PRODUCTS", "MULTIPLIERS", "TAP_DEPTH",
           "EXTERNAL_TAP_DEPTH", "MAC_UNITS", "MAX_DEPTH", "MEMORY_MODES"]

#: the MAC array sizes: squares of a power of two (a 32 x 32 array is already beyond every supported board)
MAC_UNITS = (4, 16, 64, 256, 1024)
#: where the program and the activations live (EngineConfig.memory)
MEMORY_MODES = ("resident", "dram")
#: the largest memory depth a config may ask for, in words (16 Mi: an external DRAM's worth of 2-channel words)
MAX_DEPTH = 1 << 24


def channel_groups(channels: int, vector: int) -> int:
    """Words of ``vector`` channels that hold ``channels`` channels (the last one padded)."""
    return -(-channels // vector)


@dataclass(frozen=True)
class EngineConfig:
    """Shape of one fireforge engine.

    The MAC array is ``vector × vector`` multipliers: ``vector`` input channels times ``vector``
    output channels per cycle. Activations are stored one channel group (``vector`` channels of one
    pixel) per memory word; weights one ``vector × vector`` block per word.

    Parameters
    ----------
    mac_units:
        Multipliers in the array; a square of a power of two (16, 64, 256, ...).
    act_bits, weight_bits:
        Activation (unsigned) and weight (signed) widths. 8 is what the compiler emits today.
    acc_bits:
        Accumulator width; 32 matches ONNX Runtime's int32 accumulation.
    weight_depth, quant_depth, desc_depth, act_depth:
        Words of the weight ROM, the per-channel requant ROM, the descriptor ROM and the on-chip
        activation buffer. ``0`` means "size to the compiled program" (rounded up to a power of two).
    add_unit:
        Whether the engine has the add requantizers (one per output lane: ONNX Runtime's QLinearAdd, the
        bypass models' residual adds). ``None`` means "if the compiled program has an Add layer": the ROMs
        hold one program, and in a network without bypass the add units are only cost — a third of the
        64-MAC ULX3S design's LUTs (13,317 of 40,263 packed) and its most congested region.
    memory:
        ``"resident"``: the program (descriptors, weights, requant words) is in the engine's ROMs and the
        activations in its activation memory. ``"dram"``: everything is in DRAM, behind one AXI4 port; the
        compiler tiles every layer into on-chip buffers and the depths above are the buffers' sizes
        (docs/dram.md). The bitstream then depends only on the config, not on the program.
    """

    mac_units: int = 64
    act_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    weight_depth: int = 0
    quant_depth: int = 0
    desc_depth: int = 0
    act_depth: int = 0
    add_unit: bool | None = None
    memory: str = "resident"

    def __post_init__(self):
        if self.memory not in MEMORY_MODES:
            raise FireforgeError(f"engine config: memory must be one of {', '.join(MEMORY_MODES)}, "
                                 f"not {self.memory!r}")
        if self.add_unit not in (None, True, False):
            raise FireforgeError(f"engine config: add_unit must be true, false or null (if the program has an "
                                 f"Add layer), not {self.add_unit!r}")
        for f in dataclasses.fields(self):
            if f.name in ("add_unit", "memory"):
                continue
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise FireforgeError(f"engine config: {f.name} must be a non-negative integer, not {v!r}")
            if f.name.endswith("_depth") and v > MAX_DEPTH:
                raise FireforgeError(f"engine config: {f.name} must be at most {MAX_DEPTH} words (0: sized to the "
                                     f"program), not {v}")
        if self.mac_units not in MAC_UNITS:
            raise FireforgeError(
                f"engine config: mac_units must be the square of a power of two: one of "
                f"{', '.join(map(str, MAC_UNITS))}, not {self.mac_units}")
        if self.act_bits != 8 or self.weight_bits != 8:
            raise FireforgeError(
                f"engine config: only 8-bit activations and weights are supported by the compiler today "
                f"(got act_bits={self.act_bits}, weight_bits={self.weight_bits})")
        if self.acc_bits != 32:
            raise FireforgeError(f"engine config: acc_bits must be 32 (ONNX Runtime accumulates in int32), "
                                 f"not {self.acc_bits}")

    # -- derived values -------------------------------------------------------------------------
    @property
    def dram(self) -> bool:
        return self.memory == "dram"

    @property
    def has_add_unit(self) -> bool:
        """The hardware's answer: built unless the config says ``False`` (an unresolved ``None`` builds it)."""
        return self.add_unit is not False

    @property
    def vector(self) -> int:
        """Channels per activation word, and both sides of the MAC array."""
        return math.isqrt(self.mac_units)

    @property
    def act_word_bits(self) -> int:
        return self.vector * self.act_bits

    @property
    def weight_word_bits(self) -> int:
        return self.mac_units * self.weight_bits

    @property
    def quant_channel_bits(self) -> int:
        """Per output channel: one :data:`fireforge.core.quant.QUANT_LANE`."""
        return _QUANT_LANE_BITS

    @property
    def quant_word_bits(self) -> int:
        return self.vector * self.quant_channel_bits

    def groups(self, channels: int) -> int:
        """Channel groups (activation words per pixel, or weight-block rows) for ``channels`` channels."""
        return channel_groups(channels, self.vector)

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "engine config") -> "EngineConfig":
        if not isinstance(d, dict):
            raise FireforgeError(f"{where}: expected a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise FireforgeError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "EngineConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except OSError as e:
            raise FireforgeError(f"cannot read engine config {path}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise FireforgeError(f"engine config {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
        return cls.from_dict(d, where=f"engine config {path}")

    #: Automatic depths round up to a whole number of block-RAM rows (512 words: DP16KD and RAMB18 are
    #: 512 deep at their widest), or to a power of two below that, so block RAM is not wasted on padding.
    DEPTH_GRANULE = 512

    def with_add_unit(self, layer_names: list[str]) -> "EngineConfig":
        """The config with ``add_unit`` resolved for a program whose Add layers are ``layer_names``."""
        if self.add_unit is False and layer_names:
            raise FireforgeError(f"engine config: add_unit is false but layer '{layer_names[0]}' is an Add "
                                 f"({len(layer_names)} in the program); set add_unit to true or null")
        return dataclasses.replace(self, add_unit=bool(layer_names) if self.add_unit is None else self.add_unit)

    def with_depths(self, **depths: int) -> "EngineConfig":
        """The config with the automatic (0) depths resolved to the given sizes (see DEPTH_GRANULE)."""
        resolved = {}
        for name, needed in depths.items():
            current = getattr(self, name)
            if current == 0:
                needed = max(1, needed)
                if needed <= self.DEPTH_GRANULE:
                    resolved[name] = 1 << (needed - 1).bit_length()
                else:
                    resolved[name] = -(-needed // self.DEPTH_GRANULE) * self.DEPTH_GRANULE
            elif current < needed:
                raise FireforgeError(
                    f"engine config: {name}={current} words is too small for this program, which needs "
                    f"{needed}; raise it or set it to 0 to size it automatically")
        return dataclasses.replace(self, **resolved)


#: where the activations live: the engine's own block RAM, or a board's DRAM behind the memory port
ACT_MEMORY = ("on-chip", "external")
#: how the MAC array's products are built: the family's multiplier blocks, or LUT logic
MAC_PRODUCTS = ("dsp", "lut")
#: how the requantizers' products are built (fireforge.hw.dsp): inferred, or ECP5 MULT18X18D instances
MULTIPLIERS = ("inferred", "ecp5")
#: tap FIFO depth = activation reads in flight: covers the on-chip RAM's round trip at one tap per cycle
#: (6 cycles in the RAM, one response register, the response FIFO's own two) ...
TAP_DEPTH = 16
#: ... and external DRAM's (tens of cycles)
EXTERNAL_TAP_DEPTH = 64


@dataclass(frozen=True)
class BuildVariant:
    """How one :class:`EngineConfig` is built: choices that change the hardware, not the program's images.

    The defaults (and the per-family choice in :meth:`for_family`) are defined here and nowhere else.

    Parameters
    ----------
    act_memory:
        ``"on-chip"`` (the engine's activation RAM) or ``"external"`` (the memory port leaves the top, for
        a board's DRAM; more reads in flight).
    mac_products:
        ``"dsp"`` or ``"lut"`` (MAC products from LUT logic, one more cycle of latency).
    multipliers:
        ``"inferred"`` or ``"ecp5"`` (the requantizers' products as registered MULT18X18D instances).
    read_depth:
        Activation reads in flight (the tap FIFO's depth); ``None``: :data:`TAP_DEPTH` on chip,
        :data:`EXTERNAL_TAP_DEPTH` for external memory.
    """

    act_memory: str = "on-chip"
    mac_products: str = "dsp"
    multipliers: str = "inferred"
    read_depth: int | None = None

    def __post_init__(self):
        for name, allowed in (("act_memory", ACT_MEMORY), ("mac_products", MAC_PRODUCTS),
                              ("multipliers", MULTIPLIERS)):
            if getattr(self, name) not in allowed:
                raise FireforgeError(f"build variant: {name} must be one of {', '.join(allowed)}, "
                                     f"not {getattr(self, name)!r}")
        if self.read_depth is not None and (not isinstance(self.read_depth, int) or self.read_depth < 2):
            raise FireforgeError(f"build variant: read_depth must be an integer ≥ 2, not {self.read_depth!r}")

    @property
    def reads_in_flight(self) -> int:
        """The tap FIFO depth this variant builds."""
        if self.read_depth is not None:
            return self.read_depth
        return EXTERNAL_TAP_DEPTH if self.act_memory == "external" else TAP_DEPTH

    @property
    def external(self) -> bool:
        return self.act_memory == "external"

    @classmethod
    def for_family(cls, family: str, act_memory: str = "on-chip") -> "BuildVariant":
        """What a board of ``family`` builds. MAC products in LUT logic on the Lattice parts, whose few
        multipliers sit in a few rows of the die (the 64-MAC ULX3S design with DSP products put 128 of the 156
        MULT18X18D in use and nextpnr could not route the wires converging on them), DSP48E1 on 7-series.
        Requantizer products as MULT18X18D instances with their own input and output registers on ECP5
        (yosys never packs registers into them), inferred elsewhere."""
        return cls(act_memory=act_memory, mac_products="lut" if family in ("ecp5", "ice40") else "dsp",
                   multipliers="ecp5" if family == "ecp5" else "inferred")

    def tag(self) -> str:
        """A short name for build directories: empty for the default variant."""
        parts = []
        if self.reads_in_flight != TAP_DEPTH:
            parts.append(f"reads{self.reads_in_flight}")
        if self.act_memory != "on-chip":
            parts.append(self.act_memory)
        if self.mac_products != "dsp":
            parts.append(self.mac_products)
        if self.multipliers != "inferred":
            parts.append(self.multipliers)
        return "-".join(parts)
