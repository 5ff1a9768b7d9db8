"""The explorer's design space: axes from flags or a spec file, the seed's presets, and the points they span.

An axis is a list of values; the space is their product. Model axes are the paper's knobs (Iandola et al. 2016,
sec. 5 and 6: squeeze ratio, share of 3x3 filters, base_e / incr_e / freq, bypass) plus input size and classes,
or a list of ONNX files instead of built networks; engine axes are the MAC units and the memory mode; the board
axis names catalogue boards. A spec file (TOML or YAML) holds the same keys as the flags, each a value or a list:

.. code-block:: toml

    preset = "squeeze-ratio"        # optional: start from a preset's axes
    version = ["v1_0", "v1_1"]
    squeeze_ratio = [0.125, 0.25, 0.5]
    board = ["ulx3s-85f", "kc705"]
    mac_units = [64, 256]

Presets are the seed's own sweeps: ``squeeze-ratio`` (SR 0.125 ... 1.0 at pct3x3 0.5), ``pct3x3`` (1 % ... 99 % at
SR 0.5, as the paper ran it) and ``bypass`` (none, simple, complex). Flags and spec keys override a preset's axes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fireforge.core.config import MAC_UNITS
from fireforge.errors import FireforgeError

__all__ = ["ModelPoint", "Point", "Space", "PRESETS", "AXES", "load_spec", "make_space"]

#: axis -> (type, default values); the model knobs' defaults are torchvision's SqueezeNets
AXES: dict[str, tuple[type, tuple]] = {
    "version": (str, ("v1_1",)),
    "squeeze_ratio": (float, (0.125,)),
    "pct3x3": (float, (0.5,)),
    "base_e": (int, (128,)),
    "incr_e": (int, (128,)),
    "freq": (int, (2,)),
    "bypass": (str, ("none",)),
    "input_size": (int, (224,)),
    "classes": (int, (1000,)),
    "onnx": (str, ()),
    "mac_units": (int, (64,)),
    "memory": (str, ("auto",)),
    "board": (str, ("ulx3s-85f",)),
}
CHOICES = {"version": ("v1_0", "v1_1"), "bypass": ("none", "simple", "complex"),
           "memory": ("auto", "resident", "dram"), "mac_units": MAC_UNITS}

#: axis -> (low, high, low open, high open): values outside are refused before the sweep starts
RANGES = {"squeeze_ratio": (0, 1, True, False), "pct3x3": (0, 1, True, True), "base_e": (1, 4096, False, False),
          "incr_e": (0, 4096, False, False), "freq": (1, 8, False, False), "input_size": (1, 4096, False, False),
          "classes": (1, 65536, False, False)}

PRESETS: dict[str, dict[str, tuple]] = {
    "squeeze-ratio": {"squeeze_ratio": (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0), "pct3x3": (0.5,)},
    "pct3x3": {"pct3x3": (0.01, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 0.99), "squeeze_ratio": (0.5,)},
    "bypass": {"bypass": ("none", "simple", "complex")},
}


@dataclass(frozen=True)
class ModelPoint:
    """One network: built from the knobs, or an ONNX file (then the knobs are not used)."""
    version: str = "v1_1"
    squeeze_ratio: float = 0.125
    pct3x3: float = 0.5
    base_e: int = 128
    incr_e: int = 128
    freq: int = 2
    bypass: str = "none"
    input_size: int = 224
    classes: int = 1000
    onnx: str | None = None

    @property
    def label(self) -> str:
        if self.onnx:
            return Path(self.onnx).name
        return (f"{self.version} sr{self.squeeze_ratio:g} 3x3:{self.pct3x3:g} e{self.base_e}+{self.incr_e}/{self.freq}"
                f"{'' if self.bypass == 'none' else ' ' + self.bypass} {self.input_size}px")

    def key(self) -> str:
        """Content hash: the knobs, or the ONNX file's bytes."""
        d = asdict(self)
        if self.onnx:
            d = {"onnx_sha256": hashlib.sha256(Path(self.onnx).read_bytes()).hexdigest()}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Point:
    """One network on one engine on one board."""
    model: ModelPoint
    mac_units: int = 64
    memory: str = "auto"
    board: str = "ulx3s-85f"

    def key(self, salt: str = "") -> str:
        d = {"model": self.model.key(), "mac_units": self.mac_units, "memory": self.memory, "board": self.board,
             "salt": salt}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def row(self) -> dict:
        """The point's parameters as a results row's first columns."""
        m = asdict(self.model)
        if self.model.onnx:
            m = {k: (v if k == "onnx" else None) for k, v in m.items()}
        return {"model": self.model.label, **m, "mac_units": self.mac_units, "memory": self.memory,
                "board": self.board}


@dataclass(frozen=True)
class Space:
    axes: dict[str, tuple]

    def points(self) -> list[Point]:
        a = self.axes
        if a["onnx"]:
            models = [ModelPoint(onnx=str(f)) for f in a["onnx"]]
        else:
            names = [f.name for f in fields(ModelPoint) if f.name != "onnx"]
            models = [ModelPoint(**dict(zip(names, vals))) for vals in itertools.product(*(a[n] for n in names))]
        return [Point(m, mac, mem, b) for m, mac, mem, b in
                itertools.product(models, a["mac_units"], a["memory"], a["board"])]


def _coerce(source: str, key: str, value) -> tuple:
    if key not in AXES:
        raise FireforgeError(f"{source}: unknown key '{key}' (known: preset, {', '.join(AXES)})")
    kind = AXES[key][0]
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise FireforgeError(f"{source}: '{key}' is an empty list; give at least one value")
    out = []
    for v in values:
        try:
            if kind is int and (isinstance(v, bool) or (isinstance(v, float) and not v.is_integer())):
                raise ValueError
            out.append(kind(v))
        except (TypeError, ValueError):
            raise FireforgeError(f"{source}: '{key}' value {v!r} is not {'an integer' if kind is int else 'a ' + kind.__name__}")
    choices = CHOICES.get(key)
    for v in out:
        if key in RANGES:
            lo, hi, lo_open, hi_open = RANGES[key]
            if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
                raise FireforgeError(f"{source}: '{key}' value {v!r} is out of range: "
                                     f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
        if choices and v not in choices:
            raise FireforgeError(f"{source}: '{key}' value {v!r} is not one of {', '.join(map(str, choices))}")
        if key == "onnx" and not Path(v).is_file():
            raise FireforgeError(f"{source}: 'onnx' file {v} does not exist")
    return tuple(dict.fromkeys(out))            # in order, without repeats


def load_spec(path: str | Path) -> dict:
    """A spec file's keys (TOML by its .toml suffix, else YAML); a syntax error or a non-table names the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FireforgeError(f"{path}: cannot read the spec file ({e.strerror})")
    try:
        if path.suffix == ".toml":
            doc = tomllib.loads(text)
        else:
            import yaml
            doc = yaml.safe_load(text)
    except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise FireforgeError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: "
                             f"{str(e).splitlines()[0]}")
    if not isinstance(doc, dict):
        raise FireforgeError(f"{path}: expected a table of axes (key = value or list), got {type(doc).__name__}")
    return doc


def make_space(*, preset: str | None = None, spec: dict | None = None, spec_name: str = "spec",
               flags: dict | None = None) -> Space:
    """Axes from a preset, then a spec file's keys, then flags (each overriding the one before)."""
    spec = dict(spec or {})
    preset = preset or spec.pop("preset", None)
    spec.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise FireforgeError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    axes = {k: v[1] for k, v in AXES.items()}
    axes.update(PRESETS.get(preset, {}))
    for source, given in ((spec_name, spec), ("flags", flags or {})):
        for k, v in given.items():
            if v is not None:
                axes[k] = _coerce(source if source != "flags" else f"--{k.replace('_', '-')}", k, v)
    from fireforge.hw.board.catalogue import BOARDS
    for b in axes["board"]:
        if b not in BOARDS:
            raise FireforgeError(f"unknown board '{b}' (known: {', '.join(BOARDS)})")
    return Space(axes)
