"""Quantized ONNX (QOperator or QDQ form) → integer layer program.

Every node goes through its registered handler (:mod:`~fireforge.sw.frontend.registry`), which reads it
into a plain :class:`LayerRecord`, an :class:`Alias` or a marker; the records become layers: conv with
fused bias + requant (+ ReLU), max pool, add with requant, global average pool. A Concat becomes channel
offsets on its producers; Fire modules are grouped into one scheduling unit.
"""

from __future__ import annotations

import re

import numpy as np
import onnx

from fireforge.core.program import (AddLayer, ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program, Tensor,
                                    window_count)
from fireforge.errors import FireforgeError
from fireforge.sim import requant
from fireforge.sw.frontend import conditions as cond
from fireforge.sw.frontend.graph import Graph, graph_inputs, node_label, opset, qparams
from fireforge.sw.frontend.load import graph_form
from fireforge.sw.frontend.registry import Alias, LayerRecord, Marker, handler_for

__all__ = ["lower"]


def lower(model: onnx.ModelProto, path: str = "model") -> Program:
    """Build the integer program of a quantized model."""
    g = Graph(model, path)
    form = graph_form(model)
    version = opset(model)
    b = _ProgramBuilder(g, graph_inputs(model)[0])
    for node in model.graph.node:
        result = handler_for(g, node, form).read(g, node)
        if isinstance(result, LayerRecord):
            b.build(result, [b.resolve(n, node) for n in result.inputs])
        elif isinstance(result, Alias):
            b.alias[result.output] = b.resolve(result.input, node).name
            b.shapes[result.output] = _after_program(g, node, b.shape_of(result.input), version)
        elif node.input and b.shape_of(node.input[0]) is not None:   # a marker on a path from the program
            b.shapes[node.output[0]] = _after_program(g, node, b.shape_of(node.input[0]), version)
    out_name = b.result_tensor()
    _group_fire_units(b.layers)
    return Program(input=b.in_name, output=out_name, tensors=b.tensors, layers=b.layers,
                   input_name=b.input_name, meta={"form": form})


def _after_program(g: Graph, node: onnx.NodeProto, in_shape: tuple[int, ...], version: int) -> tuple[int, ...]:
    """The shape of what a node that makes no layer outputs from a program tensor (or from the float tail after
    the program's result), refusing a node whose meaning the program does not keep: a reshape that regroups
    the tensor, a Softmax over part of the scores, a Relu on the dequantized scores."""
    op = node.op_type
    if op in ("Flatten", "Reshape"):
        out_shape = cond.reshaped(g, node, in_shape)
        cond.check_layout_kept(g, node, in_shape, out_shape)
        return out_shape
    if op in ("Softmax", "QLinearSoftmax"):
        cond.check_softmax_axis(g, node, in_shape, version)
    elif op == "Relu":
        raise g.error(node, "a Relu on the dequantized result changes the scores ONNX Runtime returns (negative "
                            "ones become 0), which fireforge's program does not compute; fuse it into the layer "
                            "before the DequantizeLinear")
    elif op == "Dropout":
        cond.check_inference_dropout(g, node)
    return in_shape


def _layer_name(node) -> str:
    name = node.name or node.output[0]
    return re.sub(r"_quant$", "", name)


class _ProgramBuilder:
    """The program so far: quantized tensors by name, aliases, layers; one method per record kind."""

    def __init__(self, g: Graph, inp: onnx.ValueInfoProto):
        self.g = g
        qin = [c for c in g.consumers.get(inp.name, []) if c.op_type == "QuantizeLinear"]
        if len(qin) != 1 or len(g.consumers[inp.name]) != 1:
            raise FireforgeError(f"{g.path}: input '{inp.name}' must feed exactly one QuantizeLinear")
        q = qin[0]
        scale, zp = qparams(g, q, q.input[1], q.input[2] if len(q.input) > 2 else "", "input")
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        self.input_name = inp.name
        self.in_name = q.output[0]
        self.tensors: dict[str, Tensor] = {self.in_name: Tensor(self.in_name, dims[1], dims[2], dims[3], scale, zp)}
        self.alias: dict[str, str] = {}
        self.layers: list = []
        self.shapes: dict[str, tuple[int, ...]] = {}   # aliases and float-tail tensors computed from the program

    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """The shape of a program tensor, an alias of one, or a tensor of the float tail after it (else None)."""
        if name in self.shapes:
            return self.shapes[name]
        t = self.tensors.get(self.alias.get(name, name))
        return None if t is None else (1, t.channels, t.height, t.width)

    def resolve(self, name: str, node: onnx.NodeProto) -> Tensor:
        name = self.alias.get(name, name)
        if name not in self.tensors:
            if name in self.shapes and name in self.g.producer:
                raise self.g.error(node, f"input '{name}' comes from the float tail after the program's result "
                                         f"(through {node_label(self.g.producer[name])}); fireforge computes no "
                                         f"layer after it")
            raise self.g.error(node, f"input '{name}' is not a quantized tensor of the program (an unsupported "
                                     f"float path, or ops in an unexpected order)")
        return self.tensors[name]

    def _common(self, q: LayerRecord) -> dict:
        name = _layer_name(q.node)
        return dict(name=name, output=q.output, onnx_node=q.node.name or q.node.output[0], ort_tensor=q.output,
                    unit=name)

    def conv(self, q: LayerRecord, ins: list[Tensor]) -> None:
        g, node, p, x = self.g, q.node, q.params, ins[0]
        w = p["weights"]
        if w.shape[1] != x.channels:
            raise g.error(node, f"weights expect {w.shape[1]} input channels, tensor '{x.name}' has {x.channels}")
        kh, kw = w.shape[2:]
        oh = window_count(x.height, kh, p["stride"][0], p["pads"][0], p["pads"][2], False)
        ow = window_count(x.width, kw, p["stride"][1], p["pads"][1], p["pads"][3], False)
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
        self.tensors[q.output] = Tensor(q.output, w.shape[0], oh, ow, q.out_scale, q.out_zp)
        self.layers.append(ConvLayer(**self._common(q), input=x.name, weights=np.ascontiguousarray(w),
                                     bias=bias.astype(np.int32), scale=scale, stride=p["stride"], pads=p["pads"],
                                     relu=bool(p.get("relu", False))))

    def maxpool(self, q: LayerRecord, ins: list[Tensor]) -> None:
        p, x = q.params, ins[0]
        kh, kw = p["kernel"]
        oh = window_count(x.height, kh, p["stride"][0], p["pads"][0], p["pads"][2], p["ceil"])
        ow = window_count(x.width, kw, p["stride"][1], p["pads"][1], p["pads"][3], p["ceil"])
        if oh < 1 or ow < 1:
            raise self.g.error(q.node, f"the {kh}x{kw} window does not fit the {x.height}x{x.width} map")
        # the pads the windows actually reach (ceil mode extends bottom/right)
        pb = (oh - 1) * p["stride"][0] + kh - x.height - p["pads"][0]
        pr = (ow - 1) * p["stride"][1] + kw - x.width - p["pads"][1]
        scale, zp = x.scale, x.zero_point
        lut = None
        if q.out_scale is not None and (q.out_scale, q.out_zp) != (x.scale, x.zero_point):
            lut = requant.concat_requant_table(x.scale, x.zero_point, q.out_scale, q.out_zp)
            scale, zp = q.out_scale, q.out_zp
        self.tensors[q.output] = Tensor(q.output, x.channels, oh, ow, scale, zp)
        self.layers.append(MaxPoolLayer(**self._common(q), input=x.name, kernel=(kh, kw), stride=p["stride"],
                                        pads=(p["pads"][0], p["pads"][1], max(0, pb), max(0, pr)), lut=lut,
                                        lut_from=(x.scale, x.zero_point) if lut is not None else None))

    def add(self, q: LayerRecord, ins: list[Tensor]) -> None:
        a, b = ins
        if a.shape != b.shape:
            raise self.g.error(q.node, f"Add of tensors with different shapes {list(a.shape)} and {list(b.shape)} "
                                       f"(broadcasting) is not supported")
        if (a.scale, a.zero_point) != q.params["a"] or (b.scale, b.zero_point) != q.params["b"]:
            raise self.g.error(q.node, "the input quantization parameters disagree with the producers' outputs")
        self.tensors[q.output] = Tensor(q.output, a.channels, a.height, a.width, q.out_scale, q.out_zp)
        self.layers.append(AddLayer(**self._common(q), input_a=a.name, input_b=b.name))

    def gap(self, q: LayerRecord, ins: list[Tensor]) -> None:
        x = ins[0]
        self.tensors[q.output] = Tensor(q.output, x.channels, 1, 1, q.out_scale, q.out_zp)
        self.layers.append(GlobalAvgPoolLayer(**self._common(q), input=x.name))

    def concat(self, q: LayerRecord, ins: list[Tensor]) -> None:
        """No layer: each input's producers write their channel slice of the output, in its scale."""
        g, node = self.g, q.node
        offset = 0
        height, width = ins[0].height, ins[0].width
        for t in ins:
            if (t.height, t.width) != (height, width):
                raise g.error(node, "concatenated tensors have different spatial sizes")
            producers = [l for l in self.layers if l.output == t.name]
            if not producers or len(g.consumers.get(t.name, [])) != 1 or t.name == self.in_name:
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
            del self.tensors[t.name]
        self.tensors[q.output] = Tensor(q.output, offset, height, width, q.out_scale, q.out_zp)

    _BUILDERS = {"conv": conv, "maxpool": maxpool, "add": add, "gap": gap, "concat": concat}

    def build(self, q: LayerRecord, ins: list[Tensor]) -> None:
        """One record into a layer (a concat: into channel offsets), reading the tensors ``ins``."""
        self._BUILDERS[q.kind](self, q, ins)

    def result_tensor(self) -> str:
        """The program's result: the last quantized tensor that leaves through the float tail."""
        g = self.g
        for o in g.model.graph.output:
            name = o.name
            seen = set()
            while name not in self.tensors and name in g.producer and name not in seen:
                seen.add(name)
                name = self.alias.get(name, g.producer[name].input[0])
            name = self.alias.get(name, name)
            if name in self.tensors and self.layers:
                return name
        raise FireforgeError(f"{g.path}: could not find the quantized result the graph output is computed from")


def _group_fire_units(layers) -> None:
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
