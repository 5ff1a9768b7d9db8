"""The conditions several handlers share (a Conv is a Conv in every form), each next to the phrase
``--list-ops`` prints for it."""

from __future__ import annotations

import numpy as np
import onnx

from fireforge.sw.frontend.graph import Graph, attr

__all__ = ["CONV", "POOL", "CONCAT", "ADD", "WEIGHTS", "conv_attrs", "pool_attrs", "check_concat_axis", "int8_weights"]

CONV = "2-D, group 1, no dilation, explicit pads or VALID"
POOL = "2-D, floor or ceil mode, no dilation, storage_order 0, explicit pads or VALID"
CONCAT = "along channels (axis 1), each input made by a layer and read only by the concat"
ADD = "two tensors of the same shape (no broadcasting)"
WEIGHTS = "int8 weights (zero point 0)"


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
