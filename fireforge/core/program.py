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

__all__ = ["window_count", "Tensor", "ConvLayer", "MaxPoolLayer", "AddLayer", "GlobalAvgPoolLayer", "Program", "LAYER_KINDS"]


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
    def load(cls, directory: Path) -> "Program":
        directory = Path(directory)
        try:
            doc = json.loads((directory / "program.json").read_text())
            arrays = dict(np.load(directory / "program.npz"))
        except FileNotFoundError as e:
            raise FireforgeError(f"{directory} is not a fireforge compile output: {Path(e.filename).name} is "
                                 f"missing (run `fireforge compile MODEL.onnx -o {directory}`)") from None
        except (ValueError, OSError, json.JSONDecodeError) as e:
            raise FireforgeError(f"{directory}: program files are damaged ({e}); compile again") from None
        tensors = {t["name"]: Tensor(**t) for t in doc["tensors"]}
        layers = []
        for d in doc["layers"]:
            kind_cls = LAYER_KINDS[d.pop("kind")]
            kw = {}
            for f in fields(kind_cls):
                v = d[f.name]
                if f.name in _ARRAY_FIELDS:
                    v = None if v is None else arrays[v]
                elif isinstance(v, list):
                    v = tuple(v)
                kw[f.name] = v
            layers.append(kind_cls(**kw))
        return cls(input=doc["input"], output=doc["output"], tensors=tensors, layers=layers,
                   input_name=doc["input_name"], meta=doc["meta"])
