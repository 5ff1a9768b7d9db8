"""Tests for the SqueezeNet ONNX builders (fireforge.models).

They pin what downstream code relies on: torchvision-equal parameter counts, graphs that pass the
strict ONNX checker and run in onnxruntime, the paper's knob formulas, sane activation scales,
seed determinism, the zoo-style exporter conventions, and one-line FireforgeErrors on bad input.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from fireforge.errors import FireforgeError
from fireforge.models.squeezenet import (
    BYPASS_MODES,
    MODEL_NAMES,
    VERSIONS,
    build_conv,
    build_fire,
    build_squeezenet,
    count_parameters,
    fire_sizes,
)
from support.zoo_style import build_caffe_zoo, build_torchvision_export

TORCHVISION_FIRES = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                     (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]
MIN_SIZE = {"v1_0": 29, "v1_1": 25}  # smallest input with every window inside its input


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def randn(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def run(model: onnx.ModelProto, x: np.ndarray, input_name: str = "input") -> np.ndarray:
    return session(model).run(None, {input_name: x})[0]


def with_intermediates(model: onnx.ModelProto, op_types) -> tuple[onnx.ModelProto, list[str]]:
    """Copy of model with the outputs of every node of op_types added as graph outputs."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    final = {o.name for o in m.graph.output}
    names = [n.output[0] for n in m.graph.node
             if n.op_type in op_types and n.output[0] not in final]
    for name in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                 None))
    return m, names


def inits(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def nodes(model):
    return {n.name: n for n in model.graph.node}


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# ------------------------------------------------------------------------- sizes and counts


def test_model_names():
    assert MODEL_NAMES == ("v1_0", "v1_1", "fire", "conv")


def test_default_fire_sizes_are_torchvisions():
    assert [(f.squeeze, f.expand1x1, f.expand3x3) for f in fire_sizes()] == TORCHVISION_FIRES


@pytest.mark.parametrize("version,expected", [("v1_0", 1_248_424), ("v1_1", 1_235_496)])
def test_parameter_count_matches_torchvision(version, expected):
    model = build_squeezenet(version)  # 224x224, 1000 classes; build only, no run
    assert count_parameters(model) == expected
    assert sum(a.size for a in inits(model).values()) == expected


def test_complex_bypass_adds_only_the_bypass_convs():
    plain = count_parameters(build_squeezenet("v1_1", input_size=32, classes=10))
    simple = count_parameters(build_squeezenet("v1_1", input_size=32, classes=10,
                                               bypass="simple"))
    cplx = count_parameters(build_squeezenet("v1_1", input_size=32, classes=10,
                                             bypass="complex"))
    # fire2: 64 -> 128, fire4: 128 -> 256, fire6: 256 -> 384, fire8: 384 -> 512 (1x1 + bias)
    extra = sum(cin * cout + cout for cin, cout in [(64, 128), (128, 256), (256, 384),
                                                     (384, 512)])
    assert simple == plain
    assert cplx == plain + extra


def test_knob_formulas():
    base_e, incr_e, pct3x3, sr, freq = 64, 32, 0.25, 0.25, 1
    expected = []
    for i in range(8):
        e = base_e + incr_e * math.floor(i / freq)
        e3 = round(pct3x3 * e)
        expected.append((round(sr * e), e - e3, e3))
    assert expected[0] == (16, 48, 16) and expected[7] == (72, 216, 72)
    got = fire_sizes(base_e=base_e, incr_e=incr_e, pct3x3=pct3x3, squeeze_ratio=sr, freq=freq)
    assert [(f.squeeze, f.expand1x1, f.expand3x3) for f in got] == expected

    model = build_squeezenet("v1_0", input_size=48, classes=7, base_e=base_e, incr_e=incr_e,
                             pct3x3=pct3x3, squeeze_ratio=sr, freq=freq)
    w = inits(model)
    cin = 96
    for i, (s, e1, e3) in enumerate(expected):
        f = f"fire{i + 2}"
        assert w[f"{f}/squeeze1x1/weight"].shape == (s, cin, 1, 1)
        assert w[f"{f}/expand1x1/weight"].shape == (e1, s, 1, 1)
        assert w[f"{f}/expand3x3/weight"].shape == (e3, s, 3, 3)
        cin = e1 + e3
    assert w["conv10/weight"].shape == (7, cin, 1, 1)
    assert run(model, randn((1, 3, 48, 48))).shape == (1, 7)


# ------------------------------------------------------------------------- validity and naming


@pytest.mark.parametrize("bypass", BYPASS_MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_full_model_checks_and_runs(version, bypass):
    model = build_squeezenet(version, input_size=64, classes=10, bypass=bypass)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    (inp,) = model.graph.input
    assert inp.name == "input"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 64, 64]
    assert [o.name for o in model.graph.output] == ["output"]
    y = run(model, randn((1, 3, 64, 64)))
    assert y.shape == (1, 10) and np.all(np.isfinite(y))

    n = nodes(model)
    assert "Dropout" not in {x.op_type for x in model.graph.node}
    for name in ["conv1", "conv1/relu", "pool1", "fire2/squeeze1x1", "fire2/expand1x1",
                 "fire2/expand3x3/relu", "fire2/concat", "conv10", "conv10/relu", "gap",
                 "flatten"]:
        assert name in n, name
    assert attrs(n["pool1"])["ceil_mode"] == 1
    assert attrs(n["fire2/expand3x3"])["pads"] == [1, 1, 1, 1]
    assert attrs(n["fire2/concat"])["axis"] == 1
    adds = sorted(x.name for x in model.graph.node if x.op_type == "Add")
    bconvs = sorted(x.name for x in model.graph.node if x.name.endswith("bypass_conv"))
    simple = [f"fire{i}/bypass_add" for i in (3, 5, 7, 9)]
    cplx = [f"fire{i}/bypass_add" for i in (2, 4, 6, 8)]
    if bypass == "none":
        assert adds == [] and bconvs == []
    elif bypass == "simple":
        assert adds == sorted(simple) and bconvs == []
        assert list(n["fire3/bypass_add"].input) == ["fire3/concat", "fire2/concat"]
    else:
        assert adds == sorted(simple + cplx)
        assert bconvs == [f"fire{i}/bypass_conv" for i in (2, 4, 6, 8)]
        assert n["fire2/bypass_conv"].op_type == "Conv"
        assert list(n["fire2/bypass_add"].input) == ["fire2/concat", "fire2/bypass_conv"]
    # no ReLU directly after an Add
    relu_inputs = {x.input[0] for x in model.graph.node if x.op_type == "Relu"}
    assert not relu_inputs & set(adds)


@pytest.mark.parametrize("bypass", BYPASS_MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_activations_are_sane(version, bypass):
    size = 65  # odd, to exercise ceil-mode pooling
    model = build_squeezenet(version, input_size=size, classes=10, bypass=bypass)
    probe, names = with_intermediates(model, {"Relu", "Add", "MaxPool"})
    outs = session(probe).run(None, {"input": randn((1, 3, size, size))})
    got = dict(zip(["output"] + names, outs))
    relus = [n for n in names if n.endswith("/relu") or n.endswith("bypass_add")]
    assert len(relus) >= 26
    for name in relus:
        std = float(got[name].std())
        assert np.all(np.isfinite(got[name])), name
        assert 1e-2 <= std <= 1e2, (name, std)
    # ceil-mode pools: 65 -> v1.0 conv1 30 -> 15 -> 7 -> 3 ; v1.1 conv1 32 -> 16 -> 8 -> 4
    pools = [got[n].shape[2] for n in names if n.startswith("pool")]
    assert pools == ([15, 7, 3] if version == "v1_0" else [16, 8, 4])


def test_build_fire_runs_and_matches_numpy():
    model = build_fire(in_channels=5, squeeze=3, expand1x1=4, expand3x3=6, input_size=7, seed=3)
    onnx.checker.check_model(model, full_check=True)
    x = randn((1, 5, 7, 7))
    y = run(model, x)
    assert y.shape == (1, 10, 7, 7)
    w = inits(model)

    def conv_relu(a, name, pad):
        return np.maximum(_np_conv(a, w[f"{name}/weight"], w[f"{name}/bias"], 1, pad), 0)

    s = conv_relu(x, "fire/squeeze1x1", 0)
    ref = np.concatenate([conv_relu(s, "fire/expand1x1", 0), conv_relu(s, "fire/expand3x3", 1)],
                         axis=1)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_build_conv_runs_and_matches_numpy():
    model = build_conv(in_channels=3, out_channels=4, kernel=3, stride=2, padding=1,
                       input_size=9, seed=5)
    onnx.checker.check_model(model, full_check=True)
    assert [n.name for n in model.graph.node] == ["conv", "conv/relu"]
    x = randn((1, 3, 9, 9))
    y = run(model, x)
    assert y.shape == (1, 4, 5, 5)
    w = inits(model)
    ref = np.maximum(_np_conv(x, w["conv/weight"], w["conv/bias"], 2, 1), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def _np_conv(x, w, b, stride, pad):
    """Direct NCHW/OIHW convolution (cross-correlation), the reference semantics."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    out = (x.shape[2] - k) // stride + 1
    y = np.zeros((1, w.shape[0], out, out))
    for i in range(out):
        for j in range(out):
            patch = x[0, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[0, :, i, j] = np.tensordot(w, patch, axes=([1, 2, 3], [0, 1, 2]))
    return y + b[None, :, None, None]


# ------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_different_seed_different():
    a = build_squeezenet("v1_1", input_size=32, classes=10, seed=7, bypass="complex")
    b = build_squeezenet("v1_1", input_size=32, classes=10, seed=7, bypass="complex")
    c = build_squeezenet("v1_1", input_size=32, classes=10, seed=8, bypass="complex")
    assert a.SerializeToString() == b.SerializeToString()
    assert a.SerializeToString() != c.SerializeToString()
    wa, wc = inits(a), inits(c)
    assert all(not np.array_equal(wa[k], wc[k]) for k in wa)
    for build in (lambda s: build_fire(in_channels=4, squeeze=2, expand1x1=3, expand3x3=3,
                                       input_size=5, seed=s),
                  lambda s: build_conv(in_channels=3, out_channels=2, kernel=3, input_size=5,
                                       seed=s)):
        assert build(1).SerializeToString() == build(1).SerializeToString()
        assert build(1).SerializeToString() != build(2).SerializeToString()


def test_weights_are_he_scaled():
    w = inits(build_squeezenet("v1_0", input_size=32, classes=10))
    for name in ["conv1/weight", "fire9/expand3x3/weight", "conv10/weight"]:
        fan_in = int(np.prod(w[name].shape[1:]))
        assert w[name].std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.15), name
    assert np.abs(w["conv1/bias"]).max() < 0.1


# ------------------------------------------------------------------------- zoo-style graphs


@pytest.mark.parametrize("version", VERSIONS)
def test_torchvision_export_matches_clean_model(version):
    model = build_torchvision_export(version, input_size=48, classes=10, seed=4)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    assert model.graph.input[0].name == "x" and model.graph.output[0].name == "logits"
    n, w = nodes(model), inits(model)
    assert "/features/features.0/Conv" in n and "/features/features.3/squeeze/Conv" in n
    assert "/features/features.3/expand3x3_activation/Relu" in n
    assert "/classifier/classifier.3/GlobalAveragePool" in n and "/Flatten" in n
    assert {"features.0.weight", "features.3.squeeze.weight", "classifier.1.weight",
            "classifier.1.bias"} <= set(w)
    pools = [x for x in model.graph.node if x.op_type == "MaxPool"]
    assert len(pools) == 3 and all(attrs(p)["ceil_mode"] == 1 for p in pools)
    assert "Dropout" not in {x.op_type for x in model.graph.node}
    x = randn((1, 3, 48, 48))
    y = session(model).run(None, {"x": x})[0]
    ref = run(build_squeezenet(version, input_size=48, classes=10, seed=4), x)
    assert y.shape == (1, 10)
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("version,size", [("v1_0", 227), ("v1_1", 227), ("v1_0", 64)])
def test_caffe_zoo_checks_and_runs(version, size):
    model = build_caffe_zoo(version, input_size=size, classes=10)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 7 and model.ir_version == 3
    assert model.graph.input[0].name == "data_0"
    assert model.graph.output[0].name == "softmaxout_1"
    graph_inputs = {i.name for i in model.graph.input}
    assert {t.name for t in model.graph.initializer} <= graph_inputs  # IR < 4 rule
    n = nodes(model)
    assert {"conv1", "relu_conv1", "fire2/squeeze1x1", "fire2/relu_expand3x3", "fire2/concat",
            "drop9", "conv10", "relu_conv10", "pool10", "prob"} <= set(n)
    assert "ratio" in attrs(n["drop9"]) and "is_test" not in attrs(n["drop9"])
    for node in model.graph.node:
        if node.op_type == "Conv":
            assert "pads" in attrs(node), node.name
        if node.op_type == "MaxPool":
            assert "ceil_mode" not in attrs(node), node.name
    assert attrs(n["fire2/squeeze1x1"])["pads"] == [0, 0, 0, 0]
    assert attrs(n["conv10"])["pads"] == ([1, 1, 1, 1] if version == "v1_0" else [0, 0, 0, 0])
    y = session(model).run(None, {"data_0": randn((1, 3, size, size))})[0]
    assert y.shape == (1, 10)
    assert y.sum() == pytest.approx(1.0, abs=1e-5) and np.all(y > 0)


def test_caffe_zoo_floor_pools():
    model = build_caffe_zoo("v1_1", input_size=227, classes=10)
    probe, names = with_intermediates(model, {"MaxPool"})
    outs = session(probe).run(None, {"data_0": randn((1, 3, 227, 227))})
    assert [o.shape[2] for o in outs[1:]] == [56, 27, 13]  # Caffe's ceil would give 56, 28, 14


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(pct3x3=0), "pct3x3"),
    (dict(pct3x3=1), "pct3x3"),
    (dict(pct3x3=1.5), "pct3x3"),
    (dict(pct3x3=float("nan")), "pct3x3"),
    (dict(squeeze_ratio=0), "squeeze_ratio"),
    (dict(squeeze_ratio=2.0), "squeeze_ratio"),
    (dict(squeeze_ratio=0.001), "squeeze1x1"),
    (dict(pct3x3=0.001), "expand3x3"),
    (dict(pct3x3=0.999), "expand1x1"),
    (dict(base_e=0), "base_e"),
    (dict(base_e=64.0), "base_e"),
    (dict(incr_e=-1), "incr_e"),
    (dict(freq=0), "freq"),
    (dict(classes=0), "classes"),
    (dict(seed=-1), "seed"),
    (dict(bypass="full"), "bypass"),
    (dict(bypass="simple", freq=1), "fire3"),
    (dict(bypass="complex", incr_e=32, freq=1), "fire3"),
])
def test_bad_knobs_raise(kwargs, fragment):
    with pytest.raises(FireforgeError) as err:
        build_squeezenet("v1_1", input_size=64, **kwargs)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg


def test_bad_version_raises():
    with pytest.raises(FireforgeError, match="version"):
        build_squeezenet("v2_0")


def test_odd_knobs_with_equal_widths_allow_simple_bypass():
    model = build_squeezenet("v1_0", input_size=32, classes=3, bypass="simple", base_e=40,
                             incr_e=24, pct3x3=0.3, squeeze_ratio=0.2, freq=2)
    onnx.checker.check_model(model, full_check=True)
    assert run(model, randn((1, 3, 32, 32))).shape == (1, 3)


@pytest.mark.parametrize("version", VERSIONS)
def test_too_small_input_raises_with_minimum(version):
    minimum = MIN_SIZE[version]
    model = build_squeezenet(version, input_size=minimum, classes=4)
    assert run(model, randn((1, 3, minimum, minimum))).shape == (1, 4)
    with pytest.raises(FireforgeError) as err:
        build_squeezenet(version, input_size=minimum - 1)
    msg = str(err.value)
    assert f"minimum input_size is {minimum}" in msg and "layer pool" in msg
    with pytest.raises(FireforgeError, match="layer conv1"):
        build_squeezenet(version, input_size=2)
    with pytest.raises(FireforgeError, match="input_size"):
        build_squeezenet(version, input_size=0)
    with pytest.raises(FireforgeError, match="minimum input_size"):
        build_torchvision_export(version, input_size=minimum - 1)
    with pytest.raises(FireforgeError, match="minimum input_size"):
        build_caffe_zoo(version, input_size=5)


def test_small_blocks_reject_bad_arguments():
    with pytest.raises(FireforgeError, match="minimum input_size is 5"):
        build_conv(in_channels=3, out_channels=4, kernel=5, input_size=4)
    with pytest.raises(FireforgeError, match="padding"):
        build_conv(in_channels=3, out_channels=4, kernel=3, padding=4, input_size=8)
    with pytest.raises(FireforgeError, match="squeeze"):
        build_fire(in_channels=3, squeeze=0, expand1x1=4, expand3x3=4, input_size=8)
