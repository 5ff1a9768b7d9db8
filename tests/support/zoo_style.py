"""SqueezeNet graphs shaped like the ONNX files users actually bring ("graphs from the wild").

Why: the compiler's importer must cope with real exporters' conventions, not just our own clean
graphs (:mod:`fireforge.models.squeezenet`).  Without torch or network access we cannot produce
those files, so these builders imitate two common sources closely enough to exercise the same
importer paths:

* :func:`build_torchvision_export` - ``torch.onnx.export(torchvision.models.squeezenetX_Y())``
  (opset 17, IR 8): scoped node names (``/features/features.3/squeeze/Conv``), ``*_output_0``
  tensor names, ``features.N.*`` / ``classifier.1.*`` initializers, fully explicit Conv
  attributes, ceil-mode MaxPools, no Dropout (eval mode), GlobalAveragePool + Flatten tail.
* :func:`build_caffe_zoo` - the ONNX model zoo's Caffe-converted squeezenet (opset 7, IR 3):
  input ``data_0``, Caffe layer names, Caffe2-style tensor names (``conv1_1`` / ``conv1_2``),
  initializers also listed as graph inputs (required for IR < 4), floor-mode MaxPools,
  explicit ``pads`` everywhere, an opset-7 Dropout, v1.0's padded 1x1 ``conv10`` (pad 1, as in
  the Caffe prototxt), and a Reshape + Softmax tail producing ``softmaxout_1``.

Both reuse the seed-keyed weights of :mod:`fireforge.models.squeezenet` (keyed by Caffe layer
name), so e.g. ``build_torchvision_export("v1_1", seed=s)`` computes exactly what
``build_squeezenet("v1_1", seed=s)`` computes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fireforge.models.squeezenet import (
    _int_arg,
    check_input_size,
    he_weights,
    plan_layers,
)

TORCH_OPSET = 17
TORCH_IR_VERSION = 8
TORCH_INPUT = "x"
TORCH_OUTPUT = "logits"

CAFFE_OPSET = 7
CAFFE_IR_VERSION = 3
CAFFE_INPUT = "data_0"
CAFFE_OUTPUT = "softmaxout_1"


def _conv_attrs(kernel: int, stride: int, pad: int) -> dict:
    """Conv attributes spelled out in full, as both exporters do."""
    return dict(dilations=[1, 1], group=1, kernel_shape=[kernel, kernel], pads=[pad] * 4,
                strides=[stride, stride])


def build_torchvision_export(version: str = "v1_1", input_size: int = 224, classes: int = 1000,
                             seed: int = 0) -> onnx.ModelProto:
    """SqueezeNet as ``torch.onnx.export`` (TorchScript exporter, opset 17) writes it.

    Indices follow torchvision's ``nn.Sequential``: v1.1 features = [0 Conv, 1 ReLU, 2 MaxPool,
    3 Fire, 4 Fire, 5 MaxPool, ...]; classifier = [0 Dropout (dropped in eval), 1 Conv, 2 ReLU,
    3 AdaptiveAvgPool2d((1,1)) -> GlobalAveragePool]; ``torch.flatten(x, 1)`` -> ``/Flatten``.
    """
    seed = _int_arg("seed", seed, 0)
    layers = plan_layers(version, classes=classes)
    check_input_size(layers, input_size, ceil_mode=True, what=f"torchvision SqueezeNet {version}")
    nodes, inits = [], []

    def node(op, name, inputs, **attrs):
        out = f"{name}_output_0"
        nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(name, param, key, x, cin, cout, k, stride=1, pad=0):
        w, b = he_weights(seed, key, cout, cin, k)
        inits.extend([numpy_helper.from_array(w, f"{param}.weight"),
                      numpy_helper.from_array(b, f"{param}.bias")])
        return node("Conv", name, [x, f"{param}.weight", f"{param}.bias"],
                    **_conv_attrs(k, stride, pad))

    x, idx = TORCH_INPUT, 0
    for layer in layers:
        scope, param = f"/features/features.{idx}", f"features.{idx}"
        if layer.name == "conv10":
            x = conv("/classifier/classifier.1/Conv", "classifier.1", "conv10", x,
                     layer.in_channels, layer.out_channels, 1)
            x = node("Relu", "/classifier/classifier.2/Relu", [x])
            x = node("GlobalAveragePool", "/classifier/classifier.3/GlobalAveragePool", [x])
        elif layer.kind == "conv":
            x = conv(f"{scope}/Conv", param, layer.name, x, layer.in_channels,
                     layer.out_channels, layer.kernel, layer.stride, layer.padding)
            x = node("Relu", f"/features/features.{idx + 1}/Relu", [x])
            idx += 2
        elif layer.kind == "pool":
            x = node("MaxPool", f"{scope}/MaxPool", [x], ceil_mode=1,
                     kernel_shape=[layer.kernel] * 2, pads=[0] * 4, strides=[layer.stride] * 2)
            idx += 1
        else:
            fs = layer.fire
            sq = conv(f"{scope}/squeeze/Conv", f"{param}.squeeze", f"{layer.name}/squeeze1x1",
                      x, layer.in_channels, fs.squeeze, 1)
            sq = node("Relu", f"{scope}/squeeze_activation/Relu", [sq])
            e1 = conv(f"{scope}/expand1x1/Conv", f"{param}.expand1x1",
                      f"{layer.name}/expand1x1", sq, fs.squeeze, fs.expand1x1, 1)
            e1 = node("Relu", f"{scope}/expand1x1_activation/Relu", [e1])
            e3 = conv(f"{scope}/expand3x3/Conv", f"{param}.expand3x3",
                      f"{layer.name}/expand3x3", sq, fs.squeeze, fs.expand3x3, 3, pad=1)
            e3 = node("Relu", f"{scope}/expand3x3_activation/Relu", [e3])
            x = node("Concat", f"{scope}/Concat", [e1, e3], axis=1)
            idx += 1
    nodes.append(helper.make_node("Flatten", [x], [TORCH_OUTPUT], name="/Flatten", axis=1))
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info(TORCH_INPUT, TensorProto.FLOAT,
                                       [1, 3, input_size, input_size])],
        [helper.make_tensor_value_info(TORCH_OUTPUT, TensorProto.FLOAT, [1, classes])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", TORCH_OPSET)],
                              producer_name="pytorch", producer_version="2.5.1")
    model.ir_version = TORCH_IR_VERSION
    return model


def _caffe_relu_name(layer: str) -> str:
    """Caffe names ReLU layers relu_<conv> within the layer's scope: fire2/relu_squeeze1x1."""
    scope, _, leaf = layer.rpartition("/")
    return f"{scope}/relu_{leaf}" if scope else f"relu_{leaf}"


def build_caffe_zoo(version: str = "v1_0", input_size: int = 227, classes: int = 1000,
                    seed: int = 0) -> onnx.ModelProto:
    """SqueezeNet as the ONNX model zoo's Caffe-converted squeezenet1.0-7 is laid out (opset 7).

    v1_1 applies the same conventions to the DeepScale v1.1 prototxt (whose conv10 has no pad);
    the zoo's actual squeezenet1.1-7 came from MXNet, so treat v1_1 here as a plausible variant.
    Caffe rounds pooling up but the converted zoo graphs carry no ceil_mode (opset 7 has none),
    so MaxPools are floor-mode: at 227x227 v1.0 sizes are unchanged (111-55-27-13), v1.1 gets
    113-56-27-13 instead of Caffe's 113-56-28-14.
    """
    seed = _int_arg("seed", seed, 0)
    layers = plan_layers(version, classes=classes)
    conv10_pad = 1 if version == "v1_0" else 0
    check_input_size(layers, input_size, ceil_mode=False, conv10_pad=conv10_pad,
                     what=f"Caffe-zoo SqueezeNet {version}")
    nodes, inits = [], []

    def conv(name, x, cin, cout, k, stride=1, pad=0):
        w, b = he_weights(seed, name, cout, cin, k)
        inits.extend([numpy_helper.from_array(w, f"{name}_w_0"),
                      numpy_helper.from_array(b, f"{name}_b_0")])
        nodes.append(helper.make_node("Conv", [x, f"{name}_w_0", f"{name}_b_0"], [f"{name}_1"],
                                      name=name, **_conv_attrs(k, stride, pad)))
        # Caffe's ReLUs are in-place; Caffe2/ONNX conversion renames the result <top>_2.
        nodes.append(helper.make_node("Relu", [f"{name}_1"], [f"{name}_2"],
                                      name=_caffe_relu_name(name)))
        return f"{name}_2"

    x = CAFFE_INPUT
    for layer in layers:
        if layer.kind == "conv":
            if layer.name == "conv10":
                nodes.append(helper.make_node("Dropout", [x], ["fire9/concat_2"], name="drop9",
                                              ratio=0.5))
                x = "fire9/concat_2"
            pad = conv10_pad if layer.name == "conv10" else layer.padding
            x = conv(layer.name, x, layer.in_channels, layer.out_channels, layer.kernel,
                     layer.stride, pad)
        elif layer.kind == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [f"{layer.name}_1"], name=layer.name,
                                          kernel_shape=[layer.kernel] * 2, pads=[0] * 4,
                                          strides=[layer.stride] * 2))
            x = f"{layer.name}_1"
        else:
            fs, n = layer.fire, layer.name
            sq = conv(f"{n}/squeeze1x1", x, layer.in_channels, fs.squeeze, 1)
            e1 = conv(f"{n}/expand1x1", sq, fs.squeeze, fs.expand1x1, 1)
            e3 = conv(f"{n}/expand3x3", sq, fs.squeeze, fs.expand3x3, 3, pad=1)
            nodes.append(helper.make_node("Concat", [e1, e3], [f"{n}/concat_1"],
                                          name=f"{n}/concat", axis=1))
            x = f"{n}/concat_1"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool10_1"], name="pool10"))
    # Reshape (shape as an input since opset 5) so the output is [1, classes], then Softmax.
    shape = numpy_helper.from_array(np.array([1, classes], dtype=np.int64), "pool10_shape_0")
    inits.append(shape)
    nodes.append(helper.make_node("Reshape", ["pool10_1", shape.name], ["pool10_2"],
                                  name="pool10_reshape"))
    nodes.append(helper.make_node("Softmax", ["pool10_2"], [CAFFE_OUTPUT], name="prob", axis=1))

    # IR < 4: every initializer must also be declared as a graph input.
    inputs = [helper.make_tensor_value_info(CAFFE_INPUT, TensorProto.FLOAT,
                                            [1, 3, input_size, input_size])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(
        nodes, f"squeezenet{version[1:].replace('_', '.')}", inputs,
        [helper.make_tensor_value_info(CAFFE_OUTPUT, TensorProto.FLOAT, [1, classes])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", CAFFE_OPSET)],
                              producer_name="onnx-caffe2")
    model.ir_version = CAFFE_IR_VERSION
    return model

