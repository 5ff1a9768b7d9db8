"""Load and check a user's ONNX file; tell its form (float, QOperator, QDQ).

Every problem becomes one :class:`FireforgeError` line naming the node, tensor or limit; nothing here
lets an ONNX or protobuf traceback reach the user.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from fireforge.errors import FireforgeError
from fireforge.sw.frontend.graph import graph_inputs, initializers, opset
from fireforge.sw.frontend.registry import known_ops, unknown_op_error

__all__ = ["load_model", "check_model", "graph_form", "MIN_OPSET"]

MIN_OPSET = 7
#: protobuf cannot serialise a model larger than 2 GB in one message
LARGE_MODEL_BYTES = 2**31 - 1
#: ops that only a QOperator graph has
QOPERATOR_OPS = {"QLinearConv", "QLinearConcat", "QLinearAdd", "QLinearGlobalAveragePool", "QLinearAveragePool"}


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
    external = _load_external_data(model, path)
    try:
        # a model over protobuf's 2 GB limit can only be checked from its files
        onnx.checker.check_model(str(path) if external and model.ByteSize() > LARGE_MODEL_BYTES else model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FireforgeError(f"{path}: invalid ONNX model: {first}") from None
    return model


def _graph_tensors(graph: onnx.GraphProto):
    """Every tensor a graph stores: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _graph_tensors(a.g)
            for g in a.graphs:
                yield from _graph_tensors(g)


def _load_external_data(model: onnx.ModelProto, path: Path) -> bool:
    """Read the tensors a model stores in side files (``model.onnx.data``), relative to the model's folder
    whatever the working directory; a missing, escaping or short side file is one line naming it. Returns
    whether the model had any."""
    tensors = [t for t in _graph_tensors(model.graph) if uses_external_data(t)]
    folder = path.resolve().parent
    for t in tensors:
        info = ExternalDataInfo(t)
        where = Path(info.location)
        side = (folder / where).resolve()
        if where.is_absolute() or folder not in side.parents:
            raise FireforgeError(f"{path}: tensor '{t.name}' is stored in '{info.location}', outside the model's "
                                 f"folder; keep the data file beside the model")
        if not side.is_file():
            raise FireforgeError(f"{path}: tensor '{t.name}' is stored in '{side}', which does not exist; copy "
                                 f"the data file beside the model")
        size = side.stat().st_size
        offset, length = int(info.offset or 0), info.length
        if offset + int(length or 0) > size:
            raise FireforgeError(f"{path}: tensor '{t.name}' needs bytes {offset}..{offset + int(length)} of "
                                 f"'{side}', which has {size}; the data file is truncated or from another export")
    if not tensors:
        return False
    try:
        onnx.load_external_data_for_model(model, str(folder))
    except Exception as e:
        raise FireforgeError(f"{path}: could not read its external data: {str(e).splitlines()[0]}") from None
    return True


def check_model(model: onnx.ModelProto, path: str | Path = "model") -> tuple[str, tuple[int, int, int, int]]:
    """Check what the compiler needs: one static 4-D image input, known ops, finite weights.

    Returns the input name and its NCHW shape.
    """
    version = opset(model)
    if version < MIN_OPSET:
        raise FireforgeError(f"{path}: opset {version} is older than the oldest supported ({MIN_OPSET}); "
                             f"convert it with onnx.version_converter")
    name, shape = _image_input(model, path)
    outputs = [o.name for o in model.graph.output]
    if not outputs:
        raise FireforgeError(f"{path}: the model has no graph output; export it with its scores as the output")
    if len(outputs) > 1:
        raise FireforgeError(f"{path}: the model has {len(outputs)} graph outputs ({', '.join(outputs)}); fireforge "
                             f"computes one, the scores: remove {', '.join(repr(o) for o in outputs[1:])} from "
                             f"graph.output or export a model with one output")
    supported = known_ops()
    for node in model.graph.node:
        if node.op_type not in supported or node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise unknown_op_error(path, node)
    consumers: dict[str, str] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, node.name or node.output[0])
    for init, value in initializers(model).items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise FireforgeError(f"{path}: initializer '{init}' (used by node '{consumers.get(init, '?')}') holds "
                                 f"{bad} NaN/Inf value(s); fix the weights before compiling")
    return name, shape


def _image_input(model: onnx.ModelProto, path) -> tuple[str, tuple[int, int, int, int]]:
    """The one float32 NCHW batch-1 input with static dimensions."""
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
    return inp.name, tuple(shape)


def graph_form(model: onnx.ModelProto) -> str:
    """'float', 'qoperator' or 'qdq'."""
    ops = {n.op_type for n in model.graph.node}
    if ops & QOPERATOR_OPS:
        return "qoperator"
    if "DequantizeLinear" in ops:
        return "qdq"
    return "float"
