"""Handlers for QDQ graphs: every quantized op is a float op between DequantizeLinear nodes (on its inputs,
weights and bias) and one QuantizeLinear (on its output, or on the Relu after a Conv)."""

from __future__ import annotations

import numpy as np
import onnx

from fireforge.sw.frontend import conditions as cond
from fireforge.sw.frontend.graph import Graph, qparams
from fireforge.sw.frontend.registry import CONSTANT, Alias, LayerRecord, Marker, fold, handler, tail

FORM = "qdq"


def _dequantized(g: Graph, node: onnx.NodeProto, name: str) -> onnx.NodeProto:
    """The DequantizeLinear producing input ``name`` of ``node``."""
    dq = g.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        raise g.error(node, f"input '{name}' is not dequantized from uint8 (QDQ form needs DequantizeLinear "
                            f"before every quantized op)")
    return dq


def _quantized_by(g: Graph, name: str) -> onnx.NodeProto | None:
    """The QuantizeLinear that is the only consumer of ``name``, if it has one."""
    cons = g.consumers.get(name, [])
    qs = [c for c in cons if c.op_type == "QuantizeLinear"]
    return qs[0] if len(cons) == 1 and qs else None


def _q_params(g: Graph, q: onnx.NodeProto, what: str) -> tuple[float, int]:
    """The (scale, zero point) of a QuantizeLinear or DequantizeLinear node."""
    return qparams(g, q, q.input[1], q.input[2] if len(q.input) > 2 else "", what)


def _output(g: Graph, node: onnx.NodeProto, name: str) -> tuple[str, float, int]:
    """The quantized output of ``node`` (tensor ``name``): its name, scale and zero point."""
    q = _quantized_by(g, name)
    if q is None:
        raise g.error(node, "output is not quantized by a single QuantizeLinear (QDQ form)")
    return (q.output[0], *_q_params(g, q, "output"))


def _dequantized_inputs(g: Graph, node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """The DequantizeLinear behind each non-constant input of ``node``."""
    return [_dequantized(g, node, n) for n in node.input if n and n not in g.inits]


def _io(g: Graph, node: onnx.NodeProto):
    """A node between DequantizeLinear and one QuantizeLinear: its uint8 inputs and their (scale, zero point), its quantized output, the output's
    scale and zero point."""
    dqs = _dequantized_inputs(g, node)
    out, y_scale, y_zp = _output(g, node, node.output[0])
    return [d.input[0] for d in dqs], [_q_params(g, d, "input") for d in dqs], out, y_scale, y_zp


handler("QuantizeLinear", "DequantizeLinear", form=FORM,
        supports="per-tensor uint8 activations; weights and bias as Conv says")(fold)


@handler("Conv", form=FORM, supports=f"{cond.CONV}; {cond.WEIGHTS}; then an optional Relu")
def conv(g, node):
    xdq = _dequantized(g, node, node.input[0])
    wdq = _dequantized(g, node, node.input[1])
    w = cond.int8_weights(g, node, wdq.input[0], wdq.input[2] if len(wdq.input) > 2 else "")
    w_scale = g.const(wdq.input[1], node, "weight scale").astype(np.float32).reshape(-1)
    if len(node.input) > 2 and node.input[2]:
        bias = g.const(_dequantized(g, node, node.input[2]).input[0], node, "bias").astype(np.int64)
    else:
        bias = np.zeros(w.shape[0], np.int64)
    x_scale, _ = _q_params(g, xdq, "input")
    out = node.output[0]
    cons = g.consumers.get(out, [])
    relu = len(cons) == 1 and cons[0].op_type == "Relu"
    name, y_scale, y_zp = _output(g, node, cons[0].output[0] if relu else out)
    return LayerRecord("conv", node, [xdq.input[0]], name, y_scale, y_zp,
                       {"weights": w, "w_scale": w_scale, "bias": bias, "x_scale": x_scale, "relu": relu,
                        **cond.conv_attrs(g, node, w.shape)})


@handler("Relu", form=FORM, supports="directly after a Conv (fused into it)")
def relu(g, node):
    p = g.producer.get(node.input[0])
    if p is not None and p.op_type == "Conv":
        return Marker.FOLDED
    raise g.error(node, "a Relu that does not follow a Conv is not supported in QDQ form")


@handler("MaxPool", form=FORM, supports=f"{cond.POOL}; may requantize")
def maxpool(g, node):
    names, qps, out, y_scale, y_zp = _io(g, node)
    return LayerRecord("maxpool", node, names, out, y_scale, y_zp, {**cond.pool_attrs(g, node), "in_qparams": qps})


@handler("GlobalAveragePool", form=FORM, supports="NCHW -> NC11")
def global_average_pool(g, node):
    names, _, out, y_scale, y_zp = _io(g, node)
    return LayerRecord("gap", node, names, out, y_scale, y_zp)


@handler("Add", form=FORM, supports=cond.ADD)
def add(g, node):
    names, qps, out, y_scale, y_zp = _io(g, node)
    if len(names) != 2:
        raise g.error(node, "Add needs two quantized inputs")
    return LayerRecord("add", node, names, out, y_scale, y_zp, {"a": qps[0], "b": qps[1]})


@handler("Concat", form=FORM, supports=cond.CONCAT)
def concat(g, node):
    names, qps, out, y_scale, y_zp = _io(g, node)
    cond.check_concat_axis(g, node)
    return LayerRecord("concat", node, names, out, y_scale, y_zp, {"in_qparams": qps})


@handler("Flatten", "Reshape", "Dropout", "Identity", form=FORM,
         supports="pass-through (float tail if not requantized)")
def pass_through(g, node):
    _dequantized_inputs(g, node)
    if _quantized_by(g, node.output[0]) is None:
        return Marker.TAIL
    names, _, out, _, _ = _io(g, node)
    return Alias(node, names[0], out)


handler("Softmax", "QLinearSoftmax", form=FORM, supports="float tail (after the program's result)")(tail)
handler("Constant", form=FORM, supports=CONSTANT)(fold)
