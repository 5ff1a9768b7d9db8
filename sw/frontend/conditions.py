"""The conditions several handlers share (a Conv is a Conv in every form), each next to the phrase
``--list-ops`` prints for it."""

from __future__ import annotations

import numpy as np
import onnx

from fireforge.sw.frontend.graph import Graph, attr

__all__ = ["CONV", "POOL", "CONCAT", "ADD", "WEIGHTS", "RESHAPE", "SOFTMAX", "conv_attrs", "pool_attrs",
           "check_concat_axis", "int8_weights", "reshaped", "check_layout_kept", "check_softmax_axis",
           "check_inference_dropout"]

CONV = "2-D, group 1, no dilation, explicit pads or VALID"
POOL = "2-D, floor or ceil mode, no dilation, storage_order 0, explicit pads or VALID"
CONCAT = "along channels (axis 1), each input made by a layer and read only by the concat"
ADD = "two tensors of the same shape (no broadcasting)"
WEIGHTS = "int8 weights (zero point 0)"
RESHAPE = "only where the layout keeps its meaning: the [1,C,1,1] <-> [1,C] score vector"
SOFTMAX = "after the program's result, over all its scores"


def _auto_pad(g: Graph, node: onnx.NodeProto) -> str:
    auto_pad = attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise g.error(node, f"auto_pad={auto_pad} is not supported; export with explicit pads")
    return auto_pad


def conv_attrs(g: Graph, node: onnx.NodeProto, weight_shape: tuple[int, ...] | None) -> dict:
    """Stride and pads of a supported conv (:data:`CONV`); ``weight_shape`` None: not known yet."""
    if int(attr(node, "group", 1)) != 1:
        raise g.error(node, f"grouped convolution (group={attr(node, 'group')}) is not supported")
    if any(int(d) != 1 for d in attr(node, "dilations", [1, 1])):
        raise g.error(node, f"dilated convolution (dilations={list(attr(node, 'dilations'))}) is not supported")
    auto_pad = _auto_pad(g, node)
    if weight_shape is not None:
        if len(weight_shape) != 4:
            raise g.error(node, f"only 2-D convolutions are supported (weight rank {len(weight_shape)})")
        ks = attr(node, "kernel_shape")
        if ks is not None and tuple(ks) != tuple(weight_shape[2:]):
            raise g.error(node, f"kernel_shape {list(ks)} disagrees with the weight shape {list(weight_shape)}")
    strides = tuple(int(s) for s in attr(node, "strides", [1, 1]))
    pads = tuple(int(p) for p in attr(node, "pads", [0, 0, 0, 0]))
    if auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    return {"stride": strides, "pads": (pads[0], pads[1], pads[2], pads[3])}


def pool_attrs(g: Graph, node: onnx.NodeProto) -> dict:
    """Kernel, stride, pads and ceil mode of a supported max pool (:data:`POOL`)."""
    if any(int(d) != 1 for d in attr(node, "dilations", [1, 1])):
        raise g.error(node, "dilated pooling is not supported")
    if int(attr(node, "storage_order", 0)) != 0:
        raise g.error(node, "storage_order=1 is not supported")
    auto_pad = _auto_pad(g, node)
    kernel = tuple(int(k) for k in attr(node, "kernel_shape"))
    if len(kernel) != 2:
        raise g.error(node, "only 2-D pooling is supported")
    pads = tuple(int(p) for p in attr(node, "pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else (0, 0, 0, 0)
    return {"kernel": kernel, "stride": tuple(int(s) for s in attr(node, "strides", [1, 1])), "pads": pads,
            "ceil": bool(attr(node, "ceil_mode", 0))}


def check_concat_axis(g: Graph, node: onnx.NodeProto) -> None:
    if int(attr(node, "axis")) not in (1, -3):
        raise g.error(node, f"concat along axis {attr(node, 'axis')} is not supported (only channels, axis 1)")


def int8_weights(g: Graph, node: onnx.NodeProto, w_name: str, zp_name: str) -> np.ndarray:
    """The int8 weights of a conv, whose zero points must be 0 (:data:`WEIGHTS`)."""
    w = g.const(w_name, node, "weight")
    if w.dtype != np.int8:
        raise g.error(node, f"weights are {w.dtype}; fireforge needs int8 weights")
    if zp_name and np.any(g.const(zp_name, node, "weight zero point") != 0):
        raise g.error(node, "weight zero points must be 0 (symmetric int8 weights)")
    return w


def _shape_text(shape) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]" if shape is not None else "an unknown shape"


def reshaped(g: Graph, node: onnx.NodeProto, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of a Flatten or Reshape ``node`` reading a tensor of ``in_shape``."""
    if node.op_type == "Flatten":
        axis = int(attr(node, "axis", 1))
        axis += len(in_shape) if axis < 0 else 0
        return (int(np.prod(in_shape[:axis])), int(np.prod(in_shape[axis:])))
    if node.op_type != "Reshape":
        return tuple(in_shape)
    target = [int(d) for d in g.const(node.input[1], node, "shape").reshape(-1)]
    if not attr(node, "allowzero", 0):
        target = [in_shape[k] if d == 0 and k < len(in_shape) else d for k, d in enumerate(target)]
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(in_shape)) // known if known else -1
    return tuple(target)


def check_layout_kept(g: Graph, node: onnx.NodeProto, in_shape, out_shape) -> None:
    """A Flatten or Reshape (:data:`RESHAPE`): the program keeps every tensor as channels x height x width, so
    only a reshape that does not regroup it — the score vector [1,C,1,1] <-> [1,C] — means the same there."""
    def score_vector(shape):
        return shape is not None and len(shape) in (2, 4) and shape[0] == 1 and shape[1] > 0 and \
            all(d == 1 for d in shape[2:])

    if not (score_vector(in_shape) and score_vector(out_shape) and in_shape[1] == out_shape[1]):
        raise g.error(node, f"{node.op_type} of {_shape_text(in_shape)} to {_shape_text(out_shape)} regroups the "
                            f"tensor, which fireforge's program keeps as channels x height x width; only the "
                            f"[1,C,1,1] <-> [1,C] score vector may be reshaped")


def check_softmax_axis(g: Graph, node: onnx.NodeProto, in_shape, version: int) -> None:
    """A tail Softmax (:data:`SOFTMAX`) keeps the order of the scores only if it runs over all of them at once."""
    if in_shape is None or any(d < 0 for d in in_shape):
        raise g.error(node, "the shape of the Softmax input is unknown; export the model with static shapes")
    rank = len(in_shape)
    given = int(attr(node, "axis", -1 if version >= 13 else 1))
    axis = given + rank if given < 0 else given
    size = int(np.prod(in_shape))
    # opset < 13: the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])]
    whole = int(np.prod(in_shape[:axis])) == 1 if version < 13 else in_shape[axis] == size
    if not whole:
        raise g.error(node, f"Softmax over axis {given} of {_shape_text(in_shape)} normalises "
                            f"groups of scores separately, which changes their order; only a Softmax over all "
                            f"{size} scores (e.g. axis 1 of [1,{size}]) is supported")


def check_inference_dropout(g: Graph, node: onnx.NodeProto) -> None:
    """A Dropout is an identity only at inference: a training_mode input that is not a constant false is refused."""
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        mode = g.inits.get(node.input[2])
        if mode is None or bool(np.any(mode)):
            raise g.error(node, "Dropout in training mode (training_mode input not a constant false) is random; "
                                "export the model for inference")
