"""The op registry: one small handler per ONNX op and graph form (hls4ml's ``@onnx_handler``).

A handler is registered with the op(s) it reads, the graph form it reads them in, and the conditions it
supports, as one phrase ``fireforge compile --list-ops`` prints::

    @handler("QLinearConv", form="qoperator", supports="2-D, group 1, ...")
    def qlinear_conv(g: Graph, node) -> LayerRecord: ...

It turns one node into one of

* a :class:`LayerRecord`, the plain record lowering turns into a layer (QOperator and QDQ forms);
* an :class:`Alias`: the node passes a tensor through under a new name (Flatten, Reshape, Dropout, ...);
* a :class:`Marker`: kept for the quantizer (float form), folded into its neighbours (QuantizeLinear /
  DequantizeLinear pairs, a Relu fused into its conv, Constant nodes), or part of the float tail after
  the program's result (Softmax, the last DequantizeLinear);

and raises one :class:`FireforgeError` line naming the node for anything it does not support. An op no
handler reads is refused by :func:`handler_for`, naming the node and pointing to ``--list-ops``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable

import onnx

from fireforge.errors import FireforgeError
from fireforge.sw.frontend.graph import Graph, node_label

__all__ = ["FORMS", "Handler", "LayerRecord", "Alias", "Marker", "handler", "lookup", "handlers", "known_ops",
           "handler_for", "unknown_op_error", "format_ops", "keep", "fold", "tail", "LIST_OPS", "CONSTANT"]

#: graph forms, in the order ``--list-ops`` prints them, with the heading it prints
FORMS = {
    "float": "float graphs (opset >= 7; quantized by onnxruntime.quantization, then read in QOperator form)",
    "qoperator": "QOperator graphs (QuantizeLinear -> QLinear* ops -> DequantizeLinear)",
    "qdq": "QDQ graphs (every quantized op between DequantizeLinear and one QuantizeLinear)",
}
FORM_NAMES = {"float": "float", "qoperator": "QOperator", "qdq": "QDQ"}
CONSTANT = "read as an initializer"
LIST_OPS = "`fireforge compile --list-ops` lists the supported ops"


@dataclass
class LayerRecord:
    """One quantized operation, whichever ONNX form it came from: what lowering turns into a layer."""
    kind: str                    # conv | maxpool | concat | add | gap
    node: onnx.NodeProto         # the node that names it (the float op in QDQ form)
    inputs: list[str]            # quantized (uint8) tensor names
    output: str                  # quantized tensor name
    out_scale: float | None = None
    out_zp: int | None = None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Alias:
    """The node's output is its quantized input under another name."""
    node: onnx.NodeProto
    input: str
    output: str


class Marker(enum.Enum):
    """What a node that becomes no layer is."""
    KEEP = "kept as it is for the quantizer"                     # float form only
    FOLDED = "folded into its neighbours"
    TAIL = "part of the float tail after the program's result"


Result = LayerRecord | Alias | Marker


@dataclass(frozen=True)
class Handler:
    op: str
    form: str
    supports: str                # the conditions, as one phrase
    read: Callable[[Graph, onnx.NodeProto], Result]


_HANDLERS: dict[tuple[str, str], Handler] = {}


def handler(*ops: str, form: str | tuple[str, ...], supports: str):
    """Register the decorated ``(graph, node) -> record`` function for ``ops`` in ``form`` (or forms)."""
    forms = (form,) if isinstance(form, str) else tuple(form)

    def register(fn):
        for f in forms:
            if f not in FORMS:
                raise ValueError(f"unknown graph form {f!r}; one of {', '.join(FORMS)}")
            for op in ops:
                if (op, f) in _HANDLERS:
                    raise ValueError(f"two handlers for {op} in {f} form")
                _HANDLERS[(op, f)] = Handler(op, f, supports, fn)
        return fn

    return register


def keep(g: Graph, node: onnx.NodeProto) -> Marker:
    return Marker.KEEP


def fold(g: Graph, node: onnx.NodeProto) -> Marker:
    return Marker.FOLDED


def tail(g: Graph, node: onnx.NodeProto) -> Marker:
    return Marker.TAIL


def lookup(op: str, form: str) -> Handler | None:
    return _HANDLERS.get((op, form))


def handlers(form: str | None = None) -> list[Handler]:
    """Every handler (of one form), in registration order."""
    return [h for h in _HANDLERS.values() if form is None or h.form == form]


def known_ops() -> set[str]:
    return {op for op, _ in _HANDLERS}


def unknown_op_error(path, node: onnx.NodeProto) -> FireforgeError:
    return FireforgeError(f"{path}: {node_label(node)}: operator '{node.op_type}' is not supported ({LIST_OPS})")


def handler_for(g: Graph, node: onnx.NodeProto, form: str) -> Handler:
    """The handler reading ``node`` in a ``form`` graph, or one error line naming the node."""
    h = lookup(node.op_type, form)
    if h is not None:
        return h
    elsewhere = [FORM_NAMES[f] for f in FORMS if lookup(node.op_type, f)]
    if not elsewhere:
        raise unknown_op_error(g.path, node)
    raise g.error(node, f"not supported in a {FORM_NAMES[form]} graph (only in {' and '.join(elsewhere)} "
                        f"graphs; {LIST_OPS})")


def format_ops() -> str:
    """The text of ``fireforge compile --list-ops``: every op by graph form, with its conditions."""
    lines = ["Operators fireforge compile reads, by graph form; any other node is refused, naming it."]
    for form, heading in FORMS.items():
        hs = handlers(form)
        width = max(len(h.op) for h in hs)
        lines += ["", heading] + [f"  {h.op:<{width}}  {h.supports}" for h in hs]
    return "\n".join(lines)
