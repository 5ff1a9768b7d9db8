"""Handlers for float graphs, and the pass that runs them before quantization.

A float graph is not lowered directly: :func:`prepare_float_model` runs every node's handler, which
checks the node against what the engine supports (so an unsupported conv is refused naming the user's
node, before calibration), drops inference-time identities and rewrites a whole-map AveragePool as
GlobalAveragePool. onnxruntime.quantization then turns the graph into QOperator form, which
:mod:`~fireforge.sw.frontend.qoperator_ops` reads.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import shape_inference

from fireforge.errors import FireforgeError
from fireforge.sw.frontend import conditions as cond
from fireforge.sw.frontend.graph import Graph, attr, node_label, opset, value_shapes
from fireforge.sw.frontend.registry import CONSTANT, Alias, Marker, handler, handler_for, keep

__all__ = ["prepare_float_model"]

FORM = "float"


def _checked(check):
    """A handler that refuses what ``check(graph, node)`` refuses and keeps the rest for the quantizer."""
    def read(g, node):
        check(g, node)
        return Marker.KEEP
    return read


handler("Conv", form=FORM, supports=cond.CONV)(
    _checked(lambda g, node: cond.conv_attrs(g, node, g.shapes.get(node.input[1]))))


@handler("Relu", form=FORM, supports="folded into its producer by the quantizer (the producer's only reader)")
def relu(g, node):
    """The quantizer drops a Relu after a quantized op and gives that op's output the Relu's range [0, max]; it
    narrows the range only if the Relu is its input's only reader, so a Relu sharing its input would vanish."""
    others = [c for c in g.consumers.get(node.input[0], []) if c is not node]
    if others:
        raise g.error(node, f"its input '{node.input[0]}' is also read by {node_label(others[0])}; the quantizer "
                            f"fuses a Relu only into a tensor it alone reads (ReLU the tensor once, then share it)")
    return Marker.KEEP
handler("MaxPool", form=FORM, supports=cond.POOL)(_checked(cond.pool_attrs))


@handler("AveragePool", form=FORM, supports="only over the whole map (kernel = input size, no pads)")
def average_pool(g, node):
    """Rewrites the node in place as the GlobalAveragePool it is."""
    shp = g.shapes.get(node.input[0])
    k = attr(node, "kernel_shape")
    pads = attr(node, "pads", [0, 0, 0, 0])
    if shp is None or list(k) != list(shp[2:]) or any(pads):
        raise g.error(node, f"only an AveragePool over the whole map (kernel = input size "
                            f"{shp[2:] if shp else '?'}, no pads) is supported, kernel is {list(k)}")
    node.op_type = "GlobalAveragePool"
    del node.attribute[:]
    return Marker.KEEP


handler("GlobalAveragePool", form=FORM, supports="NCHW -> NC11")(keep)
handler("Concat", form=FORM, supports=cond.CONCAT)(_checked(cond.check_concat_axis))


@handler("Add", form=FORM, supports=cond.ADD)
def add(g, node):
    a, b = (g.shapes.get(n) for n in node.input[:2])
    if a and b and -1 not in a + b and a != b:
        raise g.error(node, f"Add of tensors with different shapes {list(a[1:])} and {list(b[1:])} "
                            f"(broadcasting) is not supported")
    return Marker.KEEP


@handler("Dropout", "Identity", form=FORM, supports="removed (an identity at inference)")
def identity(g, node):
    cond.check_inference_dropout(g, node)
    return Alias(node, node.input[0], node.output[0])


@handler("Flatten", "Reshape", form=FORM, supports=cond.RESHAPE)
def reshape(g, node):
    cond.check_layout_kept(g, node, g.shapes.get(node.input[0]), g.shapes.get(node.output[0]))
    return Marker.KEEP


#: ops that may stand between a tail Softmax and the graph output
_AFTER_SOFTMAX = {"Flatten", "Reshape", "Identity", "Dropout", "Softmax"}


@handler("Softmax", form=FORM, supports=cond.SOFTMAX)
def softmax(g, node):
    """Left in float by the quantizer: only right at the end, where it keeps the order of the scores."""
    outputs = {o.name for o in g.model.graph.output}
    todo, seen = [node.output[0]], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for c in g.consumers.get(name, []):
            if c.op_type not in _AFTER_SOFTMAX:
                raise g.error(node, f"a Softmax is only supported at the end of the graph, but its output feeds "
                                    f"{node_label(c)}")
            todo.extend(c.output)
        if not g.consumers.get(name) and name not in outputs:
            raise g.error(node, f"its output '{name}' is neither read nor a graph output")
    cond.check_softmax_axis(g, node, g.shapes.get(node.input[0]), opset(g.model))
    return Marker.KEEP


handler("Constant", form=FORM, supports=CONSTANT)(keep)


def prepare_float_model(model: onnx.ModelProto, path: str | Path = "model") -> onnx.ModelProto:
    """Check every node with its handler and normalise the graph for the quantizer: opset >= 13, named
    nodes, no Dropout/Identity, full-map AveragePool as GlobalAveragePool, shapes inferred. The graph's
    meaning is unchanged (inference semantics)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if opset(m) < 13:
        try:
            m = onnx.version_converter.convert_version(m, 13)
        except Exception as e:
            raise FireforgeError(f"{path}: could not convert opset {opset(model)} to 13 for quantization: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    _name_nodes(m)
    # old exporters list initializers as inputs; the quantizer wants them as initializers only
    inits = {t.name for t in m.graph.initializer}
    keep_inputs = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(keep_inputs)
    g = Graph(m, str(path), value_shapes(_infer_shapes(m, path)))
    for node in list(m.graph.node):
        result = handler_for(g, node, FORM).read(g, node)
        if isinstance(result, Alias):
            _remove_alias(m, result)
    return _infer_shapes(m, path)


def _name_nodes(m: onnx.ModelProto) -> None:
    """The quantizer addresses nodes by name; the version converter adds unnamed ones."""
    taken = {n.name for n in m.graph.node if n.name}
    for i, n in enumerate(m.graph.node):
        if not n.name:
            name = f"{n.op_type}_{i}"
            while name in taken:
                name += "_"
            n.name = name
            taken.add(name)


def _infer_shapes(m: onnx.ModelProto, path) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(m, strict_mode=True)
    except Exception as e:
        raise FireforgeError(f"{path}: shape inference failed: {str(e).splitlines()[0] if str(e) else e!r}") from None


def _remove_alias(m: onnx.ModelProto, alias: Alias) -> None:
    """Drop the node; its consumers read its input (a graph output keeps its name: the producer is renamed)."""
    src, dst = alias.input, alias.output
    m.graph.node.remove(alias.node)
    if dst in {o.name for o in m.graph.output}:
        for n in m.graph.node:
            for names in (n.input, n.output):
                for k, name in enumerate(names):
                    if name == src:
                        names[k] = dst
        return
    for n in m.graph.node:
        for k, name in enumerate(n.input):
            if name == dst:
                n.input[k] = src
