"""The integer layer program: what the hardware computes, independent of any engine shape.

The compiler lowers a quantized ONNX graph into this; the golden model (``fireforge.sim.golden``)
executes it; the scheduler packs it into ROM images for one :class:`~fireforge.core.config.EngineConfig`.
Tensors are uint8 with a per-tensor scale and zero point, stored logically as ``[C, H, W]``.
Concat is not a layer: each producer writes its channel slice of the concat's tensor
(``out_channel_offset``), already in the concat's scale.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from fireforge.errors import FireforgeError

__all__ = ["window_count", "Tensor", "ConvLayer", "MaxPoolLayer", "AddLayer", "GlobalAvgPoolLayer", "Program", "LAYER_KINDS", "read_json"]


def window_count(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, ceil: bool) -> int:
    """Output size of a window ``kernel`` / ``stride`` over ``size`` padded by ``pad_before`` / ``pad_after``
    (ONNX's rule; in ceil mode the last window may not start in the padding)."""
    span = size + pad_before + pad_after - kernel
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    return out - 1 if ceil and (out - 1) * stride >= size + pad_before else out


@dataclass
class Tensor:
    name: str
    channels: int
    height: int
    width: int
    scale: float          # float32 value stored as Python float
    zero_point: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


@dataclass
class _Layer:
    name: str
    output: str                     # tensor this layer writes
    onnx_node: str                  # the ONNX node it came from (for messages and compare)
    ort_tensor: str                 # ONNX Runtime tensor holding exactly this layer's result
    unit: str                       # scheduling unit (a Fire module name, or the layer's own name)

    @property
    def inputs(self) -> list[str]:
        raise NotImplementedError


@dataclass
class ConvLayer(_Layer):
    input: str
    weights: np.ndarray             # int8 [O, I, kh, kw]
    bias: np.ndarray                # int32 [O] (ONNX Runtime's bias: scale x_scale*w_scale)
    scale: np.ndarray               # float32 [O]: fp32(fp32(x_scale*w_scale)/y_scale), MLAS's multiplier
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    relu: bool
    out_channel_offset: int = 0
    lut: np.ndarray | None = None    # uint8[256] applied after requant (concat into a different scale)
    lut_from: tuple | None = None    # (scale, zero point) the layer requantizes to before its table
    kind = "conv"

    @property
    def inputs(self):
        return [self.input]

    @property
    def out_channels(self) -> int:
        return self.weights.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weights.shape[1]

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weights.shape[2], self.weights.shape[3]


@dataclass
class MaxPoolLayer(_Layer):
    input: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right (windows are clipped to the map)
    out_channel_offset: int = 0
    lut: np.ndarray | None = None
    lut_from: tuple | None = None
    kind = "maxpool"

    @property
    def inputs(self):
        return [self.input]


@dataclass
class AddLayer(_Layer):
    input_a: str
    input_b: str
    out_channel_offset: int = 0
    lut: np.ndarray | None = None
    lut_from: tuple | None = None
    kind = "add"

    @property
    def inputs(self):
        return [self.input_a, self.input_b]


@dataclass
class GlobalAvgPoolLayer(_Layer):
    input: str
    out_channel_offset: int = 0
    lut: np.ndarray | None = None
    lut_from: tuple | None = None
    kind = "gap"

    @property
    def inputs(self):
        return [self.input]


LAYER_KINDS = {cls.kind: cls for cls in (ConvLayer, MaxPoolLayer, AddLayer, GlobalAvgPoolLayer)}
_ARRAY_FIELDS = ("weights", "bias", "scale", "lut")


@dataclass
class Program:
    """A whole network: the input tensor, every tensor, layers in execution order, the output."""

    input: str
    output: str
    tensors: dict[str, Tensor]
    layers: list[_Layer]
    input_name: str = "input"       # the ONNX graph input the host feeds (float NCHW)
    meta: dict = field(default_factory=dict)

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def layer(self, name: str) -> _Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    def add_layer_names(self) -> list[str]:
        """Names of the Add layers, in order: what EngineConfig.add_unit is resolved and checked against."""
        return [l.name for l in self.layers if l.kind == "add"]

    def requant_target(self, layer: _Layer) -> tuple[float, int]:
        """(scale, zero point) a layer requantizes to: its own when a concat table follows, else its tensor's."""
        if layer.lut is not None and layer.lut_from is not None:
            return tuple(layer.lut_from)
        t = self.tensors[layer.output]
        return t.scale, t.zero_point

    def units(self) -> list[tuple[str, list[_Layer]]]:
        """Layers grouped into scheduling units (a Fire module is one unit), in order."""
        out: list[tuple[str, list[_Layer]]] = []
        for l in self.layers:
            if out and out[-1][0] == l.unit:
                out[-1][1].append(l)
            else:
                out.append((l.unit, [l]))
        return out

    def macs(self, layer: _Layer) -> int:
        """Multiply-accumulates a layer needs (0 for layers without multiplications)."""
        if isinstance(layer, ConvLayer):
            t = self.tensors[layer.output]
            kh, kw = layer.kernel
            return t.height * t.width * layer.out_channels * layer.in_channels * kh * kw
        return 0

    # -- persistence: program.json (structure) + program.npz (arrays) -----------------------------
    def save(self, directory: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for i, l in enumerate(self.layers):
            d = {"kind": l.kind}
            for f in fields(l):
                v = getattr(l, f.name)
                if f.name in _ARRAY_FIELDS:
                    if v is not None:
                        arrays[f"{i}.{f.name}"] = v
                    d[f.name] = None if v is None else f"{i}.{f.name}"
                else:
                    d[f.name] = list(v) if isinstance(v, tuple) else v
            layers.append(d)
        doc = {"input": self.input, "output": self.output, "input_name": self.input_name, "meta": self.meta,
               "tensors": [asdict(t) for t in self.tensors.values()], "layers": layers}
        (directory / "program.json").write_text(json.dumps(doc, indent=1))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (directory / "program.npz").write_bytes(buf.getvalue())

    @classmethod
    def load(cls, directory: Path, *, hint: str | None = None) -> "Program":
        """Read ``program.json`` + ``program.npz`` and check them against each other: every field with its type,
        every layer kind known, every tensor a layer names present, every array with the dtype and shape its
        layer and tensors need. A problem is one :class:`FireforgeError` naming the file, what is wrong and
        ``hint`` (the command that rebuilds it)."""
        directory = Path(directory)
        jpath, npath = directory / "program.json", directory / "program.npz"
        hint = hint or f"compile again: fireforge compile MODEL.onnx -o {directory} --force"
        for path in (jpath, npath):
            if not path.is_file():
                what = "is a directory, not the file fireforge compile wrote" if path.is_dir() else "is missing"
                raise FireforgeError(f"{path} {what}; {hint}")
        doc = read_json(jpath, hint)
        try:
            with np.load(npath, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except OSError as e:
            raise FireforgeError(f"cannot read {npath} ({e.strerror}); {hint}") from None
        except Exception as e:       # BadZipFile, a truncated member, a pickled object, ...
            raise FireforgeError(f"{npath} is damaged ({type(e).__name__}: {e}); {hint}") from None
        return _ProgramReader(jpath, npath, arrays, hint).program(doc)


def read_json(path: Path, hint: str):
    """A compile output's JSON file, or one refusal naming it and ``hint`` (the command that rebuilds it)."""
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise FireforgeError(f"cannot read {path} ({e.strerror}); {hint}") from None
    except UnicodeDecodeError:
        raise FireforgeError(f"{path} is damaged (not UTF-8 text); {hint}") from None
    except json.JSONDecodeError as e:
        raise FireforgeError(f"{path} is damaged (not valid JSON: {e.msg} at line {e.lineno}); {hint}") from None


class _ProgramReader:
    """program.json's document (+ program.npz's arrays) -> a :class:`Program`, or one refusal naming the file."""

    def __init__(self, jpath: Path, npath: Path, arrays: dict[str, np.ndarray], hint: str):
        self.jpath, self.npath, self.arrays, self.hint = jpath, npath, arrays, hint

    def fail(self, what: str, path: Path | None = None) -> FireforgeError:
        return FireforgeError(f"{path or self.jpath} is damaged: {what}; {self.hint}")

    def disagree(self, what: str) -> FireforgeError:
        return FireforgeError(f"{self.jpath} and {self.npath.name} disagree: {what}; {self.hint}")

    def field(self, d: dict, key: str, where: str, check, expected: str):
        if key not in d:
            raise self.fail(f"{where} has no \"{key}\"")
        v = d[key]
        if not check(v):
            raise self.fail(f"{where} \"{key}\" must be {expected}, not {v!r}"[:300])
        return v

    def program(self, doc) -> "Program":
        if not isinstance(doc, dict):
            raise self.fail(f"a JSON {type(doc).__name__}, not an object")
        inp, out, input_name = (self.field(doc, k, "the program", _is_str, "a name")
                                for k in ("input", "output", "input_name"))
        meta = self.field(doc, "meta", "the program", lambda v: isinstance(v, dict), "an object")
        tensors: dict[str, Tensor] = {}
        for i, t in enumerate(self.field(doc, "tensors", "the program", lambda v: isinstance(v, list), "a list")):
            tensors_i = self.tensor(t, f"tensors[{i}]")
            if tensors_i.name in tensors:
                raise self.fail(f"tensor \"{tensors_i.name}\" is listed twice")
            tensors[tensors_i.name] = tensors_i
        for key, name in (("input", inp), ("output", out)):
            if name not in tensors:
                raise self.fail(f"its {key} tensor \"{name}\" is not among its tensors")
        layers = [self.layer(d, i, tensors)
                  for i, d in enumerate(self.field(doc, "layers", "the program", lambda v: isinstance(v, list),
                                                   "a list"))]
        if not layers:
            raise self.fail("it has no layers")
        names = [l.name for l in layers]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise self.fail(f"layer \"{dup}\" is listed twice")
        return Program(input=inp, output=out, tensors=tensors, layers=layers, input_name=input_name, meta=meta)

    def tensor(self, t, where: str) -> Tensor:
        if not isinstance(t, dict):
            raise self.fail(f"{where} is not an object")
        name = self.field(t, "name", where, _is_str, "a name")
        where = f"tensor \"{name}\""
        c, h, w = (self.field(t, k, where, _is_positive, "a positive integer") for k in ("channels", "height", "width"))
        scale = self.field(t, "scale", where, lambda v: _is_number(v) and 0 < v < float("inf"), "a positive number")
        zp = self.field(t, "zero_point", where, lambda v: _is_int(v) and 0 <= v <= 255, "an integer 0..255")
        return Tensor(name, c, h, w, float(scale), zp)

    def layer(self, d, i: int, tensors: dict[str, Tensor]) -> _Layer:
        if not isinstance(d, dict):
            raise self.fail(f"layers[{i}] is not an object")
        name = self.field(d, "name", f"layers[{i}]", _is_str, "a name")
        where = f"layer \"{name}\""
        kind = self.field(d, "kind", where, _is_str, "a layer kind")
        if kind not in LAYER_KINDS:
            raise self.fail(f"{where} has kind \"{kind}\", not one of {', '.join(LAYER_KINDS)}")
        kind_cls = LAYER_KINDS[kind]
        kw = {}
        for f in fields(kind_cls):
            if f.name in _ARRAY_FIELDS:
                optional = f.name == "lut"
                ref = self.field(d, f.name, where, lambda v: _is_str(v) or (optional and v is None),
                                 "the name of a program.npz array" + (" or null" if optional else ""))
                if ref is not None and ref not in self.arrays:
                    raise self.fail(f"it has no array \"{ref}\" ({where} {f.name})", self.npath)
                kw[f.name] = None if ref is None else self.arrays[ref]
            else:
                check, expected = _LAYER_FIELDS[f.name]
                v = self.field(d, f.name, where, check, expected)
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        layer = kind_cls(**kw)
        for t in (*layer.inputs, layer.output):
            if t not in tensors:
                raise self.fail(f"{where} {'writes' if t == layer.output else 'reads'} tensor \"{t}\", which is "
                                f"not among its tensors")
        self.shapes(layer, where, tensors)
        return layer

    def shapes(self, layer: _Layer, where: str, tensors: dict[str, Tensor]) -> None:
        """The arrays' dtypes and shapes agree with the layer's tensors."""
        src, dst = tensors[layer.inputs[0]], tensors[layer.output]
        if isinstance(layer, ConvLayer):
            w = layer.weights
            self.array(w, where, "weights", np.int8, 4)
            o, c, kh, kw = w.shape
            for f, dtype in (("bias", np.int32), ("scale", np.float32)):
                self.array(getattr(layer, f), where, f, dtype, 1, (o,))
            if c != src.channels or min(o, kh, kw) < 1:
                raise self.disagree(f"{where} weights are {'x'.join(map(str, w.shape))} but its input "
                                    f"\"{src.name}\" has {src.channels} channels")
            out_hw = (window_count(src.height, kh, layer.stride[0], layer.pads[0], layer.pads[2], False),
                      window_count(src.width, kw, layer.stride[1], layer.pads[1], layer.pads[3], False))
            channels = o
        elif isinstance(layer, MaxPoolLayer):
            kh, kw = layer.kernel
            out_hw = tuple(
                {window_count(size, k, s, pb, pa, ceil) for ceil in (False, True)}
                for size, k, s, pb, pa in ((src.height, kh, layer.stride[0], layer.pads[0], layer.pads[2]),
                                           (src.width, kw, layer.stride[1], layer.pads[1], layer.pads[3])))
            channels = src.channels
        elif isinstance(layer, AddLayer):
            other = tensors[layer.input_b]
            if other.shape != src.shape:
                raise self.fail(f"{where} adds \"{src.name}\" {'x'.join(map(str, src.shape))} and \"{other.name}\" "
                                f"{'x'.join(map(str, other.shape))}")
            out_hw, channels = (src.height, src.width), src.channels
        else:
            out_hw, channels = (1, 1), src.channels
        got_hw = (dst.height, dst.width)
        if not all(g in (want if isinstance(want, set) else {want}) for g, want in zip(got_hw, out_hw)):
            raise self.fail(f"{where} writes \"{dst.name}\" as {dst.height}x{dst.width}, its input "
                            f"{src.height}x{src.width} and window give {out_hw}")
        if layer.out_channel_offset + channels > dst.channels:
            raise self.fail(f"{where} writes channels {layer.out_channel_offset}..{layer.out_channel_offset + channels - 1}"
                            f" of \"{dst.name}\", which has {dst.channels}")
        if layer.lut is not None:
            self.array(layer.lut, where, "lut", np.uint8, 1, (256,))

    def array(self, a: np.ndarray, where: str, name: str, dtype, ndim: int, shape: tuple | None = None) -> None:
        if a.dtype != dtype or a.ndim != ndim or (shape is not None and a.shape != shape):
            want = f"{np.dtype(dtype).name} " + ("x".join(map(str, shape)) if shape else f"{ndim}-d")
            raise self.fail(f"{where} {name} is {a.dtype.name} {'x'.join(map(str, a.shape)) or 'scalar'}, "
                            f"not {want}", self.npath)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_positive(v) -> bool:
    return _is_int(v) and v > 0


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_str(v) -> bool:
    return isinstance(v, str)


def _ints(n: int, low: int):
    return lambda v: isinstance(v, list) and len(v) == n and all(_is_int(x) and x >= low for x in v)


#: program.json's non-array layer fields: (check, what a value must be)
_LAYER_FIELDS = {
    **{k: (_is_str, "a name") for k in ("name", "output", "onnx_node", "ort_tensor", "unit", "input", "input_a", "input_b")},
    "stride": (_ints(2, 1), "two positive integers"),
    "kernel": (_ints(2, 1), "two positive integers"),
    "pads": (_ints(4, 0), "four non-negative integers"),
    "relu": (lambda v: isinstance(v, bool), "true or false"),
    "out_channel_offset": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "lut_from": (lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v)),
                 "null or [scale, zero point]"),
}
