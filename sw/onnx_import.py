"""Load and check a user's ONNX file, and bring a float graph into the form the quantizer expects.

Every problem becomes one :class:`FireforgeError` line naming the node, tensor or limit; nothing here
lets an ONNX or protobuf traceback reach the user.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from fireforge.errors import FireforgeError

__all__ = ["load_model", "check_model", "graph_form", "prepare_float_model", "FLOAT_OPS", "QUANT_OPS",
           "initializers", "attr", "node_label"]

#: Float ops the compiler lowers (after quantization).
FLOAT_OPS = {"Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Add", "Dropout",
             "Flatten", "Reshape", "Softmax", "Identity"}
#: Ops of already-quantized graphs (QOperator form, and the Q/DQ pairs of QDQ form).
QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearConcat", "QLinearAdd",
             "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSoftmax"}
MIN_OPSET = 7


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


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX file; a missing, truncated or non-ONNX file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FireforgeError(f"{path}: no such file")
    data = path.read_bytes()
    if not data:
        raise FireforgeError(f"{path}: the file is empty, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise FireforgeError(f"{path}: not a readable ONNX model (truncated or another format?): "
                             f"{type(e).__name__}") from None
    if not model.graph.node:
        raise FireforgeError(f"{path}: not an ONNX model with a graph (no nodes found; truncated or another format?)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FireforgeError(f"{path}: invalid ONNX model: {first}") from None
    return model


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 0


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: old exporters also list every initializer as a graph input."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def check_model(model: onnx.ModelProto, path: str | Path = "model") -> tuple[str, tuple[int, int, int, int]]:
    """Check what the compiler needs: one static 4-D image input, known ops, finite weights.

    Returns the input name and its NCHW shape.
    """
    opset = _opset(model)
    if opset < MIN_OPSET:
        raise FireforgeError(f"{path}: opset {opset} is older than the oldest supported ({MIN_OPSET}); "
                             f"convert it with onnx.version_converter")
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise FireforgeError(f"{path}: the model has {len(inputs)} inputs ({names}); fireforge needs exactly one "
                             f"image input")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if tt.elem_type != onnx.TensorProto.FLOAT:
        raise FireforgeError(f"{path}: input '{inp.name}' has element type "
                             f"{onnx.TensorProto.DataType.Name(tt.elem_type)}; a float32 image input is needed")
    if not tt.HasField("shape"):
        raise FireforgeError(f"{path}: input '{inp.name}' has no shape; give it a static NCHW shape such as "
                             f"[1,3,224,224]")
    dims = tt.shape.dim
    if len(dims) != 4:
        raise FireforgeError(f"{path}: input '{inp.name}' has rank {len(dims)}; fireforge needs an image input "
                             f"of rank 4 (NCHW)")
    shape = []
    for axis, d in enumerate(dims):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            what = d.dim_param or "unknown"
            raise FireforgeError(f"{path}: input '{inp.name}' dimension {axis} is dynamic ('{what}'); export the "
                                 f"model with a static shape such as [1,3,224,224]")
        shape.append(d.dim_value)
    if shape[0] != 1:
        raise FireforgeError(f"{path}: input '{inp.name}' has batch {shape[0]}; fireforge compiles batch-1 models "
                             f"(export with batch 1)")
    supported = FLOAT_OPS | QUANT_OPS | {"Constant"}
    for node in model.graph.node:
        if node.op_type not in supported or node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise FireforgeError(f"{path}: {node_label(node)}: operator '{node.op_type}' is not supported; "
                                 f"supported: {', '.join(sorted(FLOAT_OPS | QUANT_OPS))}")
    consumers: dict[str, str] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, node.name or node.output[0])
    for name, value in initializers(model).items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise FireforgeError(f"{path}: initializer '{name}' (used by node '{consumers.get(name, '?')}') holds "
                                 f"{bad} NaN/Inf value(s); fix the weights before compiling")
    return inp.name, tuple(shape)


def graph_form(model: onnx.ModelProto) -> str:
    """'float', 'qoperator' or 'qdq'."""
    ops = {n.op_type for n in model.graph.node}
    if ops & {"QLinearConv", "QLinearConcat", "QLinearAdd", "QLinearGlobalAveragePool", "QLinearAveragePool"}:
        return "qoperator"
    if "DequantizeLinear" in ops:
        return "qdq"
    return "float"


def _rewire(model: onnx.ModelProto, old: str, new: str) -> None:
    for n in model.graph.node:
        for k, i in enumerate(n.input):
            if i == old:
                n.input[k] = new
    for o in model.graph.output:
        if o.name == old:
            o.name = new


def prepare_float_model(model: onnx.ModelProto, path: str | Path = "model") -> onnx.ModelProto:
    """Normalise a float graph for the quantizer: opset ≥ 13, no Dropout/Identity, full-map AveragePool as
    GlobalAveragePool, shapes inferred. The graph's meaning is unchanged (inference semantics)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if _opset(m) < 13:
        try:
            m = onnx.version_converter.convert_version(m, 13)
        except Exception as e:
            raise FireforgeError(f"{path}: could not convert opset {_opset(model)} to 13 for quantization: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    # the quantizer addresses nodes by name; the version converter adds unnamed ones
    taken = {n.name for n in m.graph.node if n.name}
    for i, n in enumerate(m.graph.node):
        if not n.name:
            name = f"{n.op_type}_{i}"
            while name in taken:
                name += "_"
            n.name = name
            taken.add(name)
    # old exporters list initializers as inputs; the quantizer wants them as initializers only
    inits = {t.name for t in m.graph.initializer}
    keep = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    # drop inference-time identities
    graph_outputs = {o.name for o in m.graph.output}
    for node in list(m.graph.node):
        if node.op_type in ("Dropout", "Identity"):
            src, dst = node.input[0], node.output[0]
            m.graph.node.remove(node)
            if dst in graph_outputs:  # keep the graph output's name: rename the producer's output instead
                for n in m.graph.node:
                    for field in (n.input, n.output):
                        for k, name in enumerate(field):
                            if name == src:
                                field[k] = dst
            else:
                _rewire(m, dst, src)
    try:
        m = shape_inference.infer_shapes(m, strict_mode=True)
    except Exception as e:
        raise FireforgeError(f"{path}: shape inference failed: {str(e).splitlines()[0] if str(e) else e!r}") from None
    shapes = value_shapes(m)
    for node in m.graph.node:
        if node.op_type == "AveragePool":
            shp = shapes.get(node.input[0])
            k = attr(node, "kernel_shape")
            pads = attr(node, "pads", [0, 0, 0, 0])
            if shp is None or list(k) != list(shp[2:]) or any(pads):
                raise FireforgeError(f"{path}: {node_label(node)}: only an AveragePool over the whole map "
                                     f"(kernel = input size {shp[2:] if shp else '?'}, no pads) is supported, "
                                     f"kernel is {list(k)}")
            node.op_type = "GlobalAveragePool"
            del node.attribute[:]
    return m


def value_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
    for t in model.graph.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes
