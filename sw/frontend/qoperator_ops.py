"""Handlers for QOperator graphs: QuantizeLinear at the input, QLinear* ops (and uint8 MaxPool) between,
DequantizeLinear into a float tail. This is also the form every float graph is quantized into."""

from __future__ import annotations

import numpy as np

from fireforge.sw.frontend import conditions as cond
from fireforge.sw.frontend.graph import attr, qparams
from fireforge.sw.frontend.registry import CONSTANT, Alias, LayerRecord, fold, handler, tail

FORM = "qoperator"


handler("QuantizeLinear", form=FORM, supports="the graph input's: per-tensor, uint8")(fold)


@handler("QLinearConv", form=FORM, supports=f"{cond.CONV}; {cond.WEIGHTS}")
def qlinear_conv(g, node):
    i = list(node.input)
    w = cond.int8_weights(g, node, i[3], i[5])
    x_scale, _ = qparams(g, node, i[1], i[2], "input")
    y_scale, y_zp = qparams(g, node, i[6], i[7], "output")
    w_scale = g.const(i[4], node, "weight scale").astype(np.float32).reshape(-1)
    bias = g.const(i[8], node, "bias").astype(np.int64) if len(i) > 8 and i[8] else np.zeros(w.shape[0], np.int64)
    return LayerRecord("conv", node, [i[0]], node.output[0], y_scale, y_zp,
                       {"weights": w, "w_scale": w_scale, "bias": bias, "x_scale": x_scale,
                        **cond.conv_attrs(g, node, w.shape)})


@handler("MaxPool", form=FORM, supports=cond.POOL)
def maxpool(g, node):
    return LayerRecord("maxpool", node, [node.input[0]], node.output[0], params=cond.pool_attrs(g, node))


@handler("QLinearConcat", form=FORM, supports=cond.CONCAT)
def qlinear_concat(g, node):
    i = list(node.input)
    cond.check_concat_axis(g, node)
    y_scale, y_zp = qparams(g, node, i[0], i[1], "output")
    ins, scales = [], []
    for k in range(2, len(i), 3):
        ins.append(i[k])
        scales.append(qparams(g, node, i[k + 1], i[k + 2], f"input {len(ins) - 1}"))
    return LayerRecord("concat", node, ins, node.output[0], y_scale, y_zp, {"in_qparams": scales})


@handler("QLinearAdd", form=FORM, supports=cond.ADD)
def qlinear_add(g, node):
    i = list(node.input)
    y_scale, y_zp = qparams(g, node, i[6], i[7] if len(i) > 7 else "", "output")
    return LayerRecord("add", node, [i[0], i[3]], node.output[0], y_scale, y_zp,
                       {"a": qparams(g, node, i[1], i[2], "input A"), "b": qparams(g, node, i[4], i[5], "input B")})


@handler("QLinearGlobalAveragePool", form=FORM, supports="channels first (channels_last 0)")
def qlinear_global_average_pool(g, node):
    if int(attr(node, "channels_last", 0)) != 0:
        raise g.error(node, "channels_last=1 is not supported")
    y_scale, y_zp = qparams(g, node, node.input[3], node.input[4], "output")
    return LayerRecord("gap", node, [node.input[0]], node.output[0], y_scale, y_zp)


@handler("QLinearAveragePool", form=FORM, supports="refused: export a whole-map average as GlobalAveragePool")
def qlinear_average_pool(g, node):
    raise g.error(node, "QLinearAveragePool is only supported over the whole map; re-export it as "
                        "GlobalAveragePool")


#: ops that keep a float tensor float: after a DequantizeLinear, they are the float tail
_FLOAT_KEEPING = {"Flatten", "Reshape", "Dropout", "Identity", "Softmax", "Relu"}


def _is_float(g, name: str) -> bool:
    """Whether tensor ``name`` is the float tail: dequantized, then only through float-keeping ops."""
    p = g.producer.get(name)
    while p is not None and p.op_type in _FLOAT_KEEPING:
        p = g.producer.get(p.input[0])
    return p is not None and p.op_type == "DequantizeLinear"


@handler("Flatten", "Reshape", "Dropout", "Identity", form=FORM,
         supports=f"pass-through of a uint8 tensor, or float tail; {cond.RESHAPE}")
def pass_through(g, node):
    if _is_float(g, node.input[0]):
        return tail(g, node)
    return Alias(node, node.input[0], node.output[0])


handler("DequantizeLinear", "Softmax", "QLinearSoftmax", "Relu", form=FORM,
        supports="float tail (after the program's result)")(tail)
handler("Constant", form=FORM, supports=CONSTANT)(fold)
