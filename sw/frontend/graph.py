"""ONNX graph helpers every handler uses: attributes, constants, producers and consumers, quantization
parameters, and errors that name the node."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from fireforge.errors import FireforgeError

__all__ = ["Graph", "attr", "initializers", "node_label", "graph_inputs", "value_shapes", "opset", "qparams"]


def node_label(node: onnx.NodeProto) -> str:
    return f"node '{node.name or node.output[0]}' ({node.op_type})"


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {}
    for t in model.graph.initializer:
        out[t.name] = numpy_helper.to_array(t)
    for n in model.graph.node:  # Constant nodes are initializers in disguise
        if n.op_type == "Constant" and len(n.output) == 1:
            v = attr(n, "value")
            if v is not None:
                out[n.output[0]] = numpy_helper.to_array(v)
    return out


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: old exporters also list every initializer as a graph input."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def value_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
    for t in model.graph.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes


def opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 0


class Graph:
    """One ONNX graph as the handlers see it: constants, who produces and who consumes each tensor, and
    (for a float graph) the inferred shapes."""

    def __init__(self, model: onnx.ModelProto, path: str, shapes: dict[str, tuple[int, ...]] | None = None):
        self.model = model
        self.path = path
        self.shapes = shapes or {}
        self.inits = initializers(model)
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in model.graph.node:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)

    def const(self, name: str, node: onnx.NodeProto, what: str) -> np.ndarray:
        if name not in self.inits:
            raise self.error(node, f"{what} '{name}' must be a constant initializer")
        return self.inits[name]

    def scalar(self, name: str, node: onnx.NodeProto, what: str):
        v = self.const(name, node, what)
        if v.size != 1:
            raise self.error(node, f"{what} '{name}' must be per-tensor (one value), has {v.size}")
        return v.reshape(())

    def error(self, node: onnx.NodeProto, msg: str) -> FireforgeError:
        return FireforgeError(f"{self.path}: {node_label(node)}: {msg}")


def qparams(g: Graph, node: onnx.NodeProto, scale_name: str, zp_name: str, what: str) -> tuple[float, int]:
    """A per-tensor uint8 (scale, zero point) pair read from two constants (no zero point: 0)."""
    scale = np.float32(g.scalar(scale_name, node, f"{what} scale"))
    if zp_name:
        zp_arr = g.scalar(zp_name, node, f"{what} zero point")
        if zp_arr.dtype != np.uint8:
            raise g.error(node, f"{what} is {zp_arr.dtype}; fireforge needs uint8 activations (zero point dtype)")
        zp = int(zp_arr)
    else:
        zp = 0
    if not (np.isfinite(scale) and scale > 0):
        raise g.error(node, f"{what} scale {scale} must be a positive finite number")
    return float(scale), zp
