"""SqueezeNet v1.0 / v1.1 as ONNX graphs, built with onnx.helper + NumPy only (no torch).

Why this exists: the compiler needs reference networks it can import, quantise and compare
against, and the test suite cannot depend on torch or on downloading the ONNX model zoo.  So the
graphs are generated here, with torchvision's topology, the SqueezeNet paper's design-space knobs
(base_e, incr_e, pct3x3, squeeze_ratio, freq) and its simple/complex bypass variants.

Naming scheme (readable, stable, used by downstream tools and tests):

* graph input ``"input"`` (float32, NCHW ``[1, 3, S, S]``, static), graph output ``"output"``;
* every node is named after its Caffe-style layer (``conv1``, ``pool1``, ``fire2/squeeze1x1``,
  ``fire2/expand1x1``, ``fire2/expand3x3``, ``fire2/concat``, ``fire2/bypass_conv``,
  ``fire3/bypass_add``, ``conv10``, ``gap``, ``flatten``); the ReLU after a conv is
  ``<conv>/relu`` (``conv1/relu``, ``fire2/squeeze1x1/relu``, ...);
* every tensor is named after the node that produces it (the last one is ``"output"``);
* initializers are ``<conv>/weight`` (OIHW) and ``<conv>/bias``.

Weights are deterministic in ``seed``: each conv draws from its own generator keyed by
``(seed, layer name)``, so a layer gets the same weights in every variant and exporter (the
zoo-style graphs of the tests' ``support/zoo_style.py`` included), which lets tests compare
differently-exported graphs numerically.  The one exception: inside a Fire module wrapped by a
bypass, the expand convs and the bypass conv are scaled by 1/sqrt(2) (residual-style init) so the
Adds do not blow the activation scale up.
"""

from __future__ import annotations

import math
import numbers
import zlib
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fireforge.errors import FireforgeError

MODEL_NAMES = ("v1_0", "v1_1", "fire", "conv")
VERSIONS = ("v1_0", "v1_1")
BYPASS_MODES = ("none", "simple", "complex")

OPSET = 13
# onnxruntime 1.32 loads IR 3..11; 8 is what torch.onnx emits for opset 13..17 and is widely read.
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "output"

# Per-version stem (conv1 out channels, kernel) and the sequence of layers after conv1.
# Pools are named after the layer they follow, as in the Caffe prototxts (pool4, pool8 / pool3,
# pool5), so names match the paper's "pool_{1,4,8}" / "pool_{1,3,5}".
_TOPOLOGY = {
    "v1_0": ((96, 7), ("pool1", "fire2", "fire3", "fire4", "pool4", "fire5", "fire6", "fire7",
                       "fire8", "pool8", "fire9")),
    "v1_1": ((64, 3), ("pool1", "fire2", "fire3", "pool3", "fire4", "fire5", "pool5", "fire6",
                       "fire7", "fire8", "fire9")),
}
_POOL_KERNEL = 3
_POOL_STRIDE = 2
_CONV1_STRIDE = 2
_SIMPLE_BYPASS = ("fire3", "fire5", "fire7", "fire9")
_COMPLEX_BYPASS = ("fire2", "fire4", "fire6", "fire8")
_BYPASS_BRANCH_SCALE = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True)
class FireSize:
    """Channel counts of one Fire module (squeeze 1x1 -> expand 1x1 || expand 3x3)."""

    squeeze: int
    expand1x1: int
    expand3x3: int

    @property
    def out_channels(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class Layer:
    """One step of the network plan, independent of how an exporter names or encodes it.

    kind is "conv" (conv + ReLU), "pool" (3x3/2 max pool) or "fire"; bypass is only meaningful
    for fire layers ("none", "simple" identity Add, or "complex" 1x1-conv Add).
    """

    kind: str
    name: str
    in_channels: int
    out_channels: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    fire: FireSize | None = None
    bypass: str = "none"


# --------------------------------------------------------------------------------------------
# argument validation


def _int_arg(name: str, value, minimum: int) -> int:
    """Accept Python/NumPy integers (not bools, not floats) >= minimum; one-line error otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FireforgeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise FireforgeError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _real_arg(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FireforgeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise FireforgeError(f"{name} must be finite, got {value}")
    return value


def _choice_arg(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise FireforgeError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def fire_sizes(*, base_e: int = 128, incr_e: int = 128, pct3x3: float = 0.5,
               squeeze_ratio: float = 0.125, freq: int = 2) -> tuple[FireSize, ...]:
    """Fire2..Fire9 sizes from the paper's design-space knobs (Iandola et al. 2016, sec. 5).

    e_i = base_e + incr_e * floor(i / freq); s_i = round(squeeze_ratio * e_i);
    e3_i = round(pct3x3 * e_i); e1_i = e_i - e3_i, for i = 0..7.  ``round`` is Python's
    (round-half-to-even).  The defaults reproduce torchvision's SqueezeNet sizes.
    """
    base_e = _int_arg("base_e", base_e, 1)
    incr_e = _int_arg("incr_e", incr_e, 0)
    freq = _int_arg("freq", freq, 1)
    pct3x3 = _real_arg("pct3x3", pct3x3)
    squeeze_ratio = _real_arg("squeeze_ratio", squeeze_ratio)
    if not 0.0 < pct3x3 < 1.0:
        raise FireforgeError(
            f"pct3x3 must be strictly between 0 and 1, got {pct3x3} "
            "(0 leaves every expand3x3 empty, 1 leaves every expand1x1 empty)")
    if not 0.0 < squeeze_ratio <= 1.0:
        raise FireforgeError(
            f"squeeze_ratio must be in (0, 1], got {squeeze_ratio} "
            "(a squeeze layer wider than its expand layers is not a Fire module)")
    sizes = []
    for i in range(8):
        fire = f"fire{i + 2}"
        e = base_e + incr_e * (i // freq)
        s = round(squeeze_ratio * e)
        e3 = round(pct3x3 * e)
        e1 = e - e3
        for part, n, why in (("squeeze1x1", s, f"squeeze_ratio {squeeze_ratio} * e {e}"),
                             ("expand3x3", e3, f"pct3x3 {pct3x3} * e {e}"),
                             ("expand1x1", e1, f"e {e} - expand3x3 {e3}")):
            if n < 1:
                raise FireforgeError(
                    f"{fire}/{part} would have {n} channels ({why}); adjust base_e, pct3x3 or "
                    "squeeze_ratio so every Fire layer has at least 1 channel")
        sizes.append(FireSize(s, e1, e3))
    return tuple(sizes)


# --------------------------------------------------------------------------------------------
# network plan and spatial checks


def plan_layers(version: str, *, classes: int = 1000, sizes: tuple[FireSize, ...] | None = None,
                bypass: str = "none") -> tuple[Layer, ...]:
    """The ordered layers of a SqueezeNet (conv1 ... conv10; GAP/Flatten tail is implicit).

    Shared by every exporter so they all describe the same network.
    """
    version = _choice_arg("version", version, VERSIONS)
    bypass = _choice_arg("bypass", bypass, BYPASS_MODES)
    classes = _int_arg("classes", classes, 1)
    if sizes is None:
        sizes = fire_sizes()
    (c1, k1), rest = _TOPOLOGY[version]
    layers = [Layer("conv", "conv1", 3, c1, kernel=k1, stride=_CONV1_STRIDE)]
    ch = c1
    for name in rest:
        if name.startswith("pool"):
            layers.append(Layer("pool", name, ch, ch, kernel=_POOL_KERNEL, stride=_POOL_STRIDE))
            continue
        fs = sizes[int(name[4:]) - 2]
        mode = "none"
        if bypass in ("simple", "complex") and name in _SIMPLE_BYPASS:
            mode = "simple"
            if ch != fs.out_channels:
                raise FireforgeError(
                    f"simple bypass around {name} would add {ch} input channels to "
                    f"{fs.out_channels} output channels; use knobs where consecutive Fire "
                    "modules have equal widths (e.g. freq even) or bypass='none'")
        elif bypass == "complex" and name in _COMPLEX_BYPASS:
            mode = "complex"
        layers.append(Layer("fire", name, ch, fs.out_channels, fire=fs, bypass=mode))
        ch = fs.out_channels
    layers.append(Layer("conv", "conv10", ch, classes, kernel=1))
    return tuple(layers)


def _out_size(layer: Layer, h: int, ceil_mode: bool, conv10_pad: int) -> int | None:
    """Spatial size after ``layer`` for an h x h input, or None if the kernel does not fit.

    We require every conv/pool window to fit in the (padded) input, which is stricter than ONNX's
    ceil-mode rule but is what a hardware line buffer can implement without special cases.
    """
    if layer.kind == "fire":
        return h  # 1x1 convs and 3x3 convs with pad 1 preserve size
    pad = conv10_pad if layer.name == "conv10" else layer.padding
    span = h + 2 * pad - layer.kernel
    if span < 0:
        return None
    if layer.kind == "pool" and ceil_mode:
        out = -(-span // layer.stride) + 1
        if (out - 1) * layer.stride >= h + pad:  # last window must start inside the input
            out -= 1
        return out
    return span // layer.stride + 1


def _trace(layers, input_size: int, ceil_mode: bool, conv10_pad: int):
    """(sizes after each layer, first failing (layer, in_size, needed) or None)."""
    h = input_size
    sizes = []
    for layer in layers:
        out = _out_size(layer, h, ceil_mode, conv10_pad)
        if out is None:
            pad = conv10_pad if layer.name == "conv10" else layer.padding
            return sizes, (layer.name, h, layer.kernel - 2 * pad)
        sizes.append(out)
        h = out
    return sizes, None


def check_input_size(layers, input_size, *, ceil_mode: bool = True, conv10_pad: int = 0,
                     what: str = "SqueezeNet") -> tuple[int, ...]:
    """Spatial size after each layer; FireforgeError naming the layer and the minimum size if
    the input is too small for some layer to produce at least a 1x1 map."""
    input_size = _int_arg("input_size", input_size, 1)
    sizes, fail = _trace(layers, input_size, ceil_mode, conv10_pad)
    if fail is None:
        return tuple(sizes)
    minimum = next(s for s in range(input_size + 1, 1 << 16)
                   if _trace(layers, s, ceil_mode, conv10_pad)[1] is None)
    name, got, need = fail
    raise FireforgeError(
        f"input_size {input_size} is too small for {what}: layer {name} gets a {got}x{got} "
        f"map but needs at least {need}x{need}; the minimum input_size is {minimum}")


# --------------------------------------------------------------------------------------------
# weights and graph assembly


def he_weights(seed: int, key: str, out_channels: int, in_channels: int, kernel: int):
    """(weight OIHW float32, bias float32) for one conv, deterministic in (seed, key).

    He-normal (std sqrt(2/fan_in)) keeps the activation scale roughly constant through the ReLU
    stack, so a standard-normal input gives sane values at every layer (neither overflowing a
    fixed-point format nor underflowing to zero); small biases keep them nonzero but mild.
    """
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    fan_in = in_channels * kernel * kernel
    w = rng.standard_normal((out_channels, in_channels, kernel, kernel)) * math.sqrt(2.0 / fan_in)
    b = rng.standard_normal(out_channels) * 0.01
    return w.astype(np.float32), b.astype(np.float32)


class _Builder:
    """Accumulates nodes and initializers with the naming scheme of this module."""

    def __init__(self, seed: int):
        self.seed = seed
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def node(self, op: str, name: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or name
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, name: str, x: str, cin: int, cout: int, kernel: int, *, stride: int = 1,
             pad: int = 0, relu: bool = True, out: str | None = None, key: str | None = None,
             scale: float = 1.0) -> str:
        w, b = he_weights(self.seed, key or name, cout, cin, kernel)
        w = w * np.float32(scale)
        self.inits += [numpy_helper.from_array(w, f"{name}/weight"),
                       numpy_helper.from_array(b, f"{name}/bias")]
        y = self.node("Conv", name, [x, f"{name}/weight", f"{name}/bias"],
                      out=None if relu else out, kernel_shape=[kernel, kernel],
                      strides=[stride, stride], pads=[pad] * 4)
        if relu:
            y = self.node("Relu", f"{name}/relu", [y], out=out)
        return y

    def fire(self, name: str, x: str, cin: int, fs: FireSize, bypass: str = "none",
             out: str | None = None) -> str:
        sq = self.conv(f"{name}/squeeze1x1", x, cin, fs.squeeze, 1)
        # Residual-style init: in a bypassed module the weighted branches are scaled by 1/sqrt(2)
        # so each Add roughly keeps the activation scale (otherwise 8 complex Adds grow it ~50x).
        scale = 1.0 if bypass == "none" else _BYPASS_BRANCH_SCALE
        e1 = self.conv(f"{name}/expand1x1", sq, fs.squeeze, fs.expand1x1, 1, scale=scale)
        e3 = self.conv(f"{name}/expand3x3", sq, fs.squeeze, fs.expand3x3, 3, pad=1, scale=scale)
        last = bypass == "none"
        y = self.node("Concat", f"{name}/concat", [e1, e3], out=out if last else None, axis=1)
        if bypass == "simple":
            y = self.node("Add", f"{name}/bypass_add", [y, x], out=out)
        elif bypass == "complex":
            sc = self.conv(f"{name}/bypass_conv", x, cin, fs.out_channels, 1, relu=False,
                           scale=scale)
            y = self.node("Add", f"{name}/bypass_add", [y, sc], out=out)
        return y

    def model(self, graph_name: str, in_shape, out_shape, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="fireforge.models", doc_string=doc)
        model.ir_version = IR_VERSION
        return model


def build_squeezenet(version: str, *, input_size: int = 224, classes: int = 1000, seed: int = 0,
                     bypass: str = "none", base_e: int = 128, incr_e: int = 128,
                     pct3x3: float = 0.5, squeeze_ratio: float = 0.125,
                     freq: int = 2) -> onnx.ModelProto:
    """A full SqueezeNet v1.0/v1.1 (torchvision topology, eval mode so no Dropout).

    The paper's knobs size the Fire modules (see :func:`fire_sizes`); ``bypass`` adds the paper's
    simple (identity) or complex (identity + 1x1 conv) residual Adds.  Output is ``[1, classes]``.
    """
    seed = _int_arg("seed", seed, 0)
    sizes = fire_sizes(base_e=base_e, incr_e=incr_e, pct3x3=pct3x3,
                       squeeze_ratio=squeeze_ratio, freq=freq)
    layers = plan_layers(version, classes=classes, sizes=sizes, bypass=bypass)
    check_input_size(layers, input_size, ceil_mode=True, what=f"SqueezeNet {version}")
    b = _Builder(seed)
    x = INPUT_NAME
    for layer in layers:
        if layer.kind == "conv":
            x = b.conv(layer.name, x, layer.in_channels, layer.out_channels, layer.kernel,
                       stride=layer.stride, pad=layer.padding)
        elif layer.kind == "pool":
            x = b.node("MaxPool", layer.name, [x], kernel_shape=[layer.kernel] * 2,
                       strides=[layer.stride] * 2, pads=[0] * 4, ceil_mode=1)
        else:
            x = b.fire(layer.name, x, layer.in_channels, layer.fire, layer.bypass)
    x = b.node("GlobalAveragePool", "gap", [x])
    b.node("Flatten", "flatten", [x], out=OUTPUT_NAME, axis=1)
    doc = (f"SqueezeNet {version} bypass={bypass} base_e={base_e} incr_e={incr_e} "
           f"pct3x3={pct3x3} squeeze_ratio={squeeze_ratio} freq={freq} seed={seed}; fire sizes "
           + " ".join(f"{f.squeeze}/{f.expand1x1}/{f.expand3x3}" for f in sizes))
    return b.model(f"squeezenet_{version}", [1, 3, input_size, input_size], [1, classes], doc)


def build_fire(*, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int,
               input_size: int, seed: int = 0) -> onnx.ModelProto:
    """A single Fire module (input ``[1, in_channels, S, S]`` -> concat), for unit-testing the
    compiler's Fire lowering without a whole network.  Node names are ``fire/...``."""
    in_channels = _int_arg("in_channels", in_channels, 1)
    fs = FireSize(_int_arg("squeeze", squeeze, 1), _int_arg("expand1x1", expand1x1, 1),
                  _int_arg("expand3x3", expand3x3, 1))
    input_size = _int_arg("input_size", input_size, 1)
    b = _Builder(_int_arg("seed", seed, 0))
    b.fire("fire", INPUT_NAME, in_channels, fs, out=OUTPUT_NAME)
    return b.model("fire", [1, in_channels, input_size, input_size],
                   [1, fs.out_channels, input_size, input_size],
                   f"Fire in={in_channels} s={fs.squeeze} e1={fs.expand1x1} e3={fs.expand3x3}")


def build_conv(*, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
               padding: int = 0, input_size: int, seed: int = 0) -> onnx.ModelProto:
    """A single Conv + ReLU (nodes ``conv`` and ``conv/relu``), the compiler's smallest unit."""
    in_channels = _int_arg("in_channels", in_channels, 1)
    out_channels = _int_arg("out_channels", out_channels, 1)
    kernel = _int_arg("kernel", kernel, 1)
    stride = _int_arg("stride", stride, 1)
    padding = _int_arg("padding", padding, 0)
    if padding > kernel:
        # a pad of up to the kernel size still puts real pixels in every window's reach (Caffe's
        # SqueezeNet v1.0 conv10 is a 1x1 conv with pad 1); more would make all-padding rows
        raise FireforgeError(f"padding {padding} must not exceed the kernel size {kernel}")
    layer = Layer("conv", "conv", in_channels, out_channels, kernel, stride, padding)
    (out,) = check_input_size([layer], input_size, what=f"a {kernel}x{kernel} conv")
    b = _Builder(_int_arg("seed", seed, 0))
    b.conv("conv", INPUT_NAME, in_channels, out_channels, kernel, stride=stride, pad=padding,
           out=OUTPUT_NAME)
    return b.model("conv", [1, in_channels, input_size, input_size],
                   [1, out_channels, out, out],
                   f"Conv {in_channels}->{out_channels} k={kernel} s={stride} p={padding} + ReLU")


def count_parameters(model: onnx.ModelProto) -> int:
    """Number of float weights and biases (all float initializers) in ``model``."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer
               if t.data_type == TensorProto.FLOAT)
