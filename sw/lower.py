"""Quantized ONNX (QOperator or QDQ form) → integer layer program.

Both forms are first read into the same small records (one handler per ONNX op, hls4ml style), then
turned into layers: conv with fused bias + requant (+ ReLU), max pool, add with requant, global average
pool. A Concat becomes channel offsets on its producers; Fire modules are grouped into one unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import onnx

from fireforge.errors import FireforgeError
from fireforge.sw.onnx_import import attr, graph_inputs, initializers, node_label
from fireforge.core.program import AddLayer, ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program, Tensor

__all__ = ["lower"]

_ALIAS_OPS = {"Flatten", "Reshape", "Dropout", "Identity"}
_TAIL_OPS = {"DequantizeLinear", "Softmax", "QLinearSoftmax", "Flatten", "Reshape", "Identity", "Dropout"}


@dataclass
class _QOp:
    """One quantized operation, whichever ONNX form it came from."""
    kind: str                    # conv | maxpool | concat | add | gap | alias
    node: onnx.NodeProto         # the node that names it (the float op in QDQ form)
    inputs: list[str]            # quantized (uint8) tensor names
    output: str                  # quantized tensor name
    out_scale: float | None = None
    out_zp: int | None = None
    params: dict = field(default_factory=dict)


class _Graph:
    def __init__(self, model: onnx.ModelProto, path: str):
        self.model = model
        self.path = path
        self.inits = initializers(model)
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in model.graph.node:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in model.graph.output}

    def const(self, name: str, node: onnx.NodeProto, what: str) -> np.ndarray:
        if name not in self.inits:
            raise FireforgeError(f"{self.path}: {node_label(node)}: {what} '{name}' must be a constant initializer")
        return self.inits[name]

    def scalar(self, name: str, node: onnx.NodeProto, what: str):
        v = self.const(name, node, what)
        if v.size != 1:
            raise FireforgeError(f"{self.path}: {node_label(node)}: {what} '{name}' must be per-tensor (one value), "
                                 f"has {v.size}")
        return v.reshape(())

    def error(self, node: onnx.NodeProto, msg: str) -> FireforgeError:
        return FireforgeError(f"{self.path}: {node_label(node)}: {msg}")


def _qparams(g: _Graph, node, scale_name, zp_name, what):
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


def _conv_attrs(g: _Graph, node, weights: np.ndarray) -> dict:
    if int(attr(node, "group", 1)) != 1:
        raise g.error(node, f"grouped convolution (group={attr(node, 'group')}) is not supported")
    if any(int(d) != 1 for d in attr(node, "dilations", [1, 1])):
        raise g.error(node, f"dilated convolution (dilations={list(attr(node, 'dilations'))}) is not supported")
    auto_pad = attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise g.error(node, f"auto_pad={auto_pad} is not supported; export with explicit pads")
    if weights.ndim != 4:
        raise g.error(node, f"only 2-D convolutions are supported (weight rank {weights.ndim})")
    kh, kw = weights.shape[2:]
    ks = attr(node, "kernel_shape")
    if ks is not None and tuple(ks) != (kh, kw):
        raise g.error(node, f"kernel_shape {list(ks)} disagrees with the weight shape {list(weights.shape)}")
    strides = tuple(int(s) for s in attr(node, "strides", [1, 1]))
    pads = tuple(int(p) for p in attr(node, "pads", [0, 0, 0, 0]))
    if auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    return {"stride": strides, "pads": (pads[0], pads[1], pads[2], pads[3])}


def _pool_attrs(g: _Graph, node) -> dict:
    if any(int(d) != 1 for d in attr(node, "dilations", [1, 1])):
        raise g.error(node, "dilated pooling is not supported")
    if int(attr(node, "storage_order", 0)) != 0:
        raise g.error(node, "storage_order=1 is not supported")
    auto_pad = attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise g.error(node, f"auto_pad={auto_pad} is not supported; export with explicit pads")
    kernel = tuple(int(k) for k in attr(node, "kernel_shape"))
    if len(kernel) != 2:
        raise g.error(node, "only 2-D pooling is supported")
    pads = tuple(int(p) for p in attr(node, "pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else (0, 0, 0, 0)
    return {"kernel": kernel, "stride": tuple(int(s) for s in attr(node, "strides", [1, 1])), "pads": pads,
            "ceil": bool(attr(node, "ceil_mode", 0))}


# -- reading QOperator nodes ---------------------------------------------------------------------------

def _read_qoperator(g: _Graph, node) -> _QOp | None:
    op = node.op_type
    i = list(node.input)
    if op == "QLinearConv":
        w = g.const(i[3], node, "weight")
        if w.dtype != np.int8:
            raise g.error(node, f"weights are {w.dtype}; fireforge needs int8 weights")
        w_zp = g.const(i[5], node, "weight zero point")
        if np.any(w_zp != 0):
            raise g.error(node, "weight zero points must be 0 (symmetric int8 weights)")
        x_scale, _ = _qparams(g, node, i[1], i[2], "input")
        y_scale, y_zp = _qparams(g, node, i[6], i[7], "output")
        w_scale = g.const(i[4], node, "weight scale").astype(np.float32).reshape(-1)
        bias = g.const(i[8], node, "bias").astype(np.int64) if len(i) > 8 and i[8] else np.zeros(w.shape[0], np.int64)
        return _QOp("conv", node, [i[0]], node.output[0], y_scale, y_zp,
                    {"weights": w, "w_scale": w_scale, "bias": bias, "x_scale": x_scale, **_conv_attrs(g, node, w)})
    if op == "MaxPool":
        return _QOp("maxpool", node, [i[0]], node.output[0], params=_pool_attrs(g, node))
    if op == "QLinearConcat":
        if int(attr(node, "axis")) not in (1, -3):
            raise g.error(node, f"concat along axis {attr(node, 'axis')} is not supported (only channels, axis 1)")
        y_scale, y_zp = _qparams(g, node, i[0], i[1], "output")
        ins, scales = [], []
        for k in range(2, len(i), 3):
            ins.append(i[k])
            scales.append(_qparams(g, node, i[k + 1], i[k + 2], f"input {len(ins) - 1}"))
        return _QOp("concat", node, ins, node.output[0], y_scale, y_zp, {"in_qparams": scales})
    if op == "QLinearAdd":
        y_scale, y_zp = _qparams(g, node, i[6], i[7] if len(i) > 7 else "", "output")
        return _QOp("add", node, [i[0], i[3]], node.output[0], y_scale, y_zp,
                    {"a": _qparams(g, node, i[1], i[2], "input A"), "b": _qparams(g, node, i[4], i[5], "input B")})
    if op == "QLinearGlobalAveragePool":
        if int(attr(node, "channels_last", 0)) != 0:
            raise g.error(node, "channels_last=1 is not supported")
        y_scale, y_zp = _qparams(g, node, i[3], i[4], "output")
        return _QOp("gap", node, [i[0]], node.output[0], y_scale, y_zp)
    if op == "QLinearAveragePool":
        raise g.error(node, "QLinearAveragePool is only supported over the whole map; re-export it as "
                            "GlobalAveragePool")
    if op in _ALIAS_OPS:
        return _QOp("alias", node, [i[0]], node.output[0])
    return None


# -- reading QDQ nodes -----------------------------------------------------------------------------------

def _dq_source(g: _Graph, name: str):
    """If ``name`` is a DequantizeLinear output, its (input, scale, zp) names, else None."""
    p = g.producer.get(name)
    if p is None or p.op_type != "DequantizeLinear":
        return None
    return p


def _read_qdq(g: _Graph, node) -> _QOp | None:
    op = node.op_type
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return None
    if op in ("Softmax",):
        return None

    def qin(name):
        dq = _dq_source(g, name)
        if dq is None:
            raise g.error(node, f"input '{name}' is not dequantized from uint8 (QDQ form needs DequantizeLinear "
                                f"before every quantized op)")
        return dq

    def qout(name):
        cons = g.consumers.get(name, [])
        qs = [c for c in cons if c.op_type == "QuantizeLinear"]
        if len(cons) != 1 or not qs:
            return None
        return qs[0]

    if op == "Conv":
        xdq = qin(node.input[0])
        wdq = qin(node.input[1])
        w = g.const(wdq.input[0], node, "weight")
        if w.dtype != np.int8:
            raise g.error(node, f"weights are {w.dtype}; fireforge needs int8 weights")
        if len(wdq.input) > 2 and wdq.input[2] and np.any(g.const(wdq.input[2], node, "weight zero point") != 0):
            raise g.error(node, "weight zero points must be 0 (symmetric int8 weights)")
        w_scale = g.const(wdq.input[1], node, "weight scale").astype(np.float32).reshape(-1)
        if len(node.input) > 2 and node.input[2]:
            bdq = qin(node.input[2])
            bias = g.const(bdq.input[0], node, "bias").astype(np.int64)
        else:
            bias = np.zeros(w.shape[0], np.int64)
        x_scale, _ = _qparams(g, xdq, xdq.input[1], xdq.input[2] if len(xdq.input) > 2 else "", "input")
        relu = False
        out = node.output[0]
        cons = g.consumers.get(out, [])
        if len(cons) == 1 and cons[0].op_type == "Relu":
            relu = True
            out = cons[0].output[0]
        q = qout(out)
        if q is None:
            raise g.error(node, "output is not quantized by a single QuantizeLinear (QDQ form)")
        y_scale, y_zp = _qparams(g, q, q.input[1], q.input[2] if len(q.input) > 2 else "", "output")
        return _QOp("conv", node, [xdq.input[0]], q.output[0], y_scale, y_zp,
                    {"weights": w, "w_scale": w_scale, "bias": bias, "x_scale": x_scale, "relu": relu,
                     **_conv_attrs(g, node, w)})
    if op == "Relu":
        p = g.producer.get(node.input[0])
        if p is not None and p.op_type == "Conv":
            return None  # fused into the conv above
        raise g.error(node, "a Relu that does not follow a Conv is not supported in QDQ form")
    if op in ("MaxPool", "GlobalAveragePool", "Add", "Concat") or op in _ALIAS_OPS:
        ins = [qin(n) for n in node.input if n and n not in g.inits]
        q = qout(node.output[0])
        if op in _ALIAS_OPS and q is None:
            return None  # part of the float tail
        if q is None:
            raise g.error(node, "output is not quantized by a single QuantizeLinear (QDQ form)")
        y_scale, y_zp = _qparams(g, q, q.input[1], q.input[2] if len(q.input) > 2 else "", "output")
        qps = [_qparams(g, d, d.input[1], d.input[2] if len(d.input) > 2 else "", "input") for d in ins]
        names = [d.input[0] for d in ins]
        if op == "MaxPool":
            return _QOp("maxpool", node, names, q.output[0], y_scale, y_zp,
                        {**_pool_attrs(g, node), "in_qparams": qps})
        if op == "GlobalAveragePool":
            return _QOp("gap", node, names, q.output[0], y_scale, y_zp)
        if op == "Add":
            if len(names) != 2:
                raise g.error(node, "Add needs two quantized inputs")
            return _QOp("add", node, names, q.output[0], y_scale, y_zp, {"a": qps[0], "b": qps[1]})
        if op == "Concat":
            if int(attr(node, "axis")) not in (1, -3):
                raise g.error(node, f"concat along axis {attr(node, 'axis')} is not supported (only channels)")
            return _QOp("concat", node, names, q.output[0], y_scale, y_zp, {"in_qparams": qps})
        return _QOp("alias", node, names, q.output[0], y_scale, y_zp, {"in_qparams": qps})
    return None


# -- building the program ----------------------------------------------------------------------------------

def _out_size(size, k, s, p0, p1, ceil):
    span = size + p0 + p1 - k
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p0:  # the last window may not start in the padding
        out -= 1
    return out


def _layer_name(node) -> str:
    name = node.name or node.output[0]
    return re.sub(r"_quant$", "", name)


def lower(model: onnx.ModelProto, path: str = "model") -> Program:
    """Build the integer program of a quantized model."""
    from fireforge.sim import requant

    g = _Graph(model, path)
    inp = graph_inputs(model)[0]
    qin = [c for c in g.consumers.get(inp.name, []) if c.op_type == "QuantizeLinear"]
    if len(qin) != 1 or len(g.consumers[inp.name]) != 1:
        raise FireforgeError(f"{path}: input '{inp.name}' must feed exactly one QuantizeLinear")
    qnode = qin[0]
    in_scale, in_zp = _qparams(g, qnode, qnode.input[1], qnode.input[2] if len(qnode.input) > 2 else "", "input")
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    tensors: dict[str, Tensor] = {}
    in_name = qnode.output[0]
    tensors[in_name] = Tensor(in_name, dims[1], dims[2], dims[3], in_scale, in_zp)
    alias: dict[str, str] = {}
    layers = []
    writers: dict[str, list] = {}
    form = "qdq" if "QLinearConv" not in {n.op_type for n in model.graph.node} else "qoperator"
    reader = _read_qdq if form == "qdq" else _read_qoperator

    def resolve(name, node):
        name = alias.get(name, name)
        if name not in tensors:
            raise g.error(node, f"input '{name}' is not a quantized tensor of the program (an unsupported float "
                                f"path, or ops in an unexpected order)")
        return tensors[name]

    for node in model.graph.node:
        if node is qnode or node.op_type == "Constant":
            continue
        q = reader(g, node)
        if q is None:
            if node.op_type in _TAIL_OPS | {"QuantizeLinear", "Relu"} or form == "qdq":
                continue
            raise g.error(node, "this operator cannot be lowered here")
        ins = [resolve(n, node) for n in q.inputs]
        if q.kind == "alias":
            src = ins[0]
            alias[q.output] = src.name
            continue
        x = ins[0]
        name = _layer_name(node)
        common = dict(name=name, output=q.output, onnx_node=node.name or node.output[0], ort_tensor=q.output,
                      unit=name)
        if q.kind == "conv":
            p = q.params
            w = p["weights"]
            if w.shape[1] != x.channels:
                raise g.error(node, f"weights expect {w.shape[1]} input channels, tensor '{x.name}' has {x.channels}")
            kh, kw = w.shape[2:]
            oh = _out_size(x.height, kh, p["stride"][0], p["pads"][0], p["pads"][2], False)
            ow = _out_size(x.width, kw, p["stride"][1], p["pads"][1], p["pads"][3], False)
            if oh < 1 or ow < 1:
                raise g.error(node, f"the {kh}x{kw} kernel does not fit the {x.height}x{x.width} map")
            w_scale = p["w_scale"]
            if w_scale.size not in (1, w.shape[0]):
                raise g.error(node, f"weight scale has {w_scale.size} values for {w.shape[0]} output channels")
            w_scale = np.broadcast_to(w_scale, (w.shape[0],)).astype(np.float32)
            scale = (np.float32(p["x_scale"]) * w_scale).astype(np.float32) / np.float32(q.out_scale)
            scale = scale.astype(np.float32)
            bias = p["bias"]
            if bias.shape != (w.shape[0],) or np.any(np.abs(bias) >= 2 ** 31):
                raise g.error(node, f"bias must be {w.shape[0]} int32 values")
            for c, s in enumerate(scale):
                try:
                    requant.requant_multiplier(float(s))
                except ValueError as e:
                    raise g.error(node, f"output channel {c}: requant scale {s} is not usable ({e})") from None
            tensors[q.output] = Tensor(q.output, w.shape[0], oh, ow, q.out_scale, q.out_zp)
            layers.append(ConvLayer(**common, input=x.name, weights=np.ascontiguousarray(w),
                                    bias=bias.astype(np.int32), scale=scale, stride=p["stride"], pads=p["pads"],
                                    relu=bool(p.get("relu", False))))
        elif q.kind == "maxpool":
            p = q.params
            kh, kw = p["kernel"]
            oh = _out_size(x.height, kh, p["stride"][0], p["pads"][0], p["pads"][2], p["ceil"])
            ow = _out_size(x.width, kw, p["stride"][1], p["pads"][1], p["pads"][3], p["ceil"])
            if oh < 1 or ow < 1:
                raise g.error(node, f"the {kh}x{kw} window does not fit the {x.height}x{x.width} map")
            # the pads the windows actually reach (ceil mode extends bottom/right)
            pb = (oh - 1) * p["stride"][0] + kh - x.height - p["pads"][0]
            pr = (ow - 1) * p["stride"][1] + kw - x.width - p["pads"][1]
            scale, zp = x.scale, x.zero_point
            lut = None
            if q.out_scale is not None and (q.out_scale, q.out_zp) != (x.scale, x.zero_point):
                lut = requant.concat_requant_table(x.scale, x.zero_point, q.out_scale, q.out_zp)
                scale, zp = q.out_scale, q.out_zp
            tensors[q.output] = Tensor(q.output, x.channels, oh, ow, scale, zp)
            layers.append(MaxPoolLayer(**common, input=x.name, kernel=(kh, kw), stride=p["stride"],
                                       pads=(p["pads"][0], p["pads"][1], max(0, pb), max(0, pr)), lut=lut,
                                       lut_from=(x.scale, x.zero_point) if lut is not None else None))
        elif q.kind == "add":
            a, b = ins
            if a.shape != b.shape:
                raise g.error(node, f"Add of tensors with different shapes {list(a.shape)} and {list(b.shape)} "
                                    f"(broadcasting) is not supported")
            if (a.scale, a.zero_point) != q.params["a"] or (b.scale, b.zero_point) != q.params["b"]:
                raise g.error(node, "the input quantization parameters disagree with the producers' outputs")
            tensors[q.output] = Tensor(q.output, a.channels, a.height, a.width, q.out_scale, q.out_zp)
            layers.append(AddLayer(**common, input_a=a.name, input_b=b.name))
        elif q.kind == "gap":
            tensors[q.output] = Tensor(q.output, x.channels, 1, 1, q.out_scale, q.out_zp)
            layers.append(GlobalAvgPoolLayer(**common, input=x.name))
        elif q.kind == "concat":
            offset = 0
            height, width = ins[0].height, ins[0].width
            for t, qp in zip(ins, q.params["in_qparams"]):
                if (t.height, t.width) != (height, width):
                    raise g.error(node, "concatenated tensors have different spatial sizes")
                producers = [l for l in layers if l.output == t.name]
                if not producers or len(g.consumers.get(t.name, [])) != 1 or t.name == in_name:
                    raise g.error(node, f"input '{t.name}' must be produced by a layer and used only by this "
                                        f"concat (it is realised by writing into channel slices)")
                for l in producers:
                    if l.lut is not None and (t.scale, t.zero_point) != (q.out_scale, q.out_zp):
                        raise g.error(node, f"input '{t.name}' would need two requantization tables")
                    if (t.scale, t.zero_point) != (q.out_scale, q.out_zp):
                        l.lut = requant.concat_requant_table(t.scale, t.zero_point, q.out_scale, q.out_zp)
                        l.lut_from = (t.scale, t.zero_point)
                    l.output = q.output
                    l.out_channel_offset += offset
                offset += t.channels
                del tensors[t.name]
            tensors[q.output] = Tensor(q.output, offset, height, width, q.out_scale, q.out_zp)
        else:  # pragma: no cover - readers only produce the kinds above
            raise g.error(node, f"internal: unknown kind {q.kind}")

    # the program's result: the last quantized tensor that leaves through the float tail
    out_name = None
    for o in model.graph.output:
        name = o.name
        seen = set()
        while name not in tensors and name in g.producer and name not in seen:
            seen.add(name)
            name = alias.get(name, g.producer[name].input[0])
        name = alias.get(name, name)
        if name in tensors:
            out_name = name
            break
    if out_name is None or not layers:
        raise FireforgeError(f"{path}: could not find the quantized result the graph output is computed from")
    _group_fire_units(layers, tensors)
    return Program(input=in_name, output=out_name, tensors=tensors, layers=layers, input_name=inp.name,
                   meta={"form": form})


def _group_fire_units(layers, tensors) -> None:
    """Squeeze 1x1 → (expand 1x1, expand 3x3 → one concat tensor) is a Fire module: one scheduling unit.

    Independent layers between the squeeze and its expands (a complex bypass conv reading the module's
    input) are moved after the expands, so the module runs as one unit."""
    i = 0
    while i < len(layers):
        sq = layers[i]
        i += 1
        if not isinstance(sq, ConvLayer) or sq.kernel != (1, 1):
            continue
        expands = [l for l in layers[i:] if isinstance(l, ConvLayer) and l.input == sq.output]
        if len(expands) != 2 or len({l.output for l in expands}) != 1:
            continue
        between = layers[i:layers.index(expands[1])]
        others = [l for l in between if l not in expands]
        touched = {sq.output, expands[0].output}
        if any(set(l.inputs) & touched or l.output in touched for l in others):
            continue
        for l in others:  # independent: run them after the module
            layers.remove(l)
        j = layers.index(expands[1]) + 1
        layers[j:j] = others
        names = [sq.name] + [l.name for l in expands]
        prefix = names[0].rsplit("/", 1)[0] if "/" in names[0] else ""
        unit = prefix if prefix and all(n.startswith(prefix + "/") for n in names) else f"fire({sq.name})"
        for l in [sq] + expands:
            l.unit = unit
