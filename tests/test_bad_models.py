"""Bad models, the bad-input corpus's model half: every node fireforge would not reproduce exactly is refused,
naming it and why (no silently wrong program); a model with its tensors in a side file compiles from any
working directory. Each case writes its own small ONNX graph; each refusal goes through ``support.cli.refuse``
(exit 2, one line naming the culprit, no traceback, nothing changed or left behind).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fireforge.sw.compile import compile_model
from support.cli import refuse, run_cli

H = 8                                       # input height = width of the hand-made graphs


def _weights(out_ch, in_ch, k=3, seed=0):
    return np.random.default_rng(seed).standard_normal((out_ch, in_ch, k, k)).astype(np.float32)


def _save(path, nodes, inits=None, *, inputs=None, outputs=None, opset=13, dims=(1, 3, H, H)):
    """A float graph: input [1,3,8,8] (or ``inputs``) → ``nodes`` → the last node's output (or ``outputs``)."""
    inputs = inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))]
    if outputs is None:
        outputs = [nodes[-1].output[0]]
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
    graph = helper.make_graph(nodes, "g", inputs, outs,
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    model = onnx.shape_inference.infer_shapes(model)          # the outputs' types, as an exporter writes them
    for o in model.graph.output:
        if not o.type.HasField("tensor_type"):
            o.CopyFrom(helper.make_tensor_value_info(o.name, TensorProto.FLOAT, ["n", "c", "h", "w"]))
    onnx.save(model, path)
    return path


def _conv(name, x, y, **attrs):
    return helper.make_node("Conv", [x, f"{name}/w"], [y], name=name, **attrs)


def _relu(name, x, y):
    return helper.make_node("Relu", [x], [y], name=name)


STEM = [_conv("conv1", "input", "c1", pads=[1, 1, 1, 1]), _relu("relu1", "c1", "r1")]   # [1,4,8,8]
STEM_W = {"conv1/w": _weights(4, 3)}
# conv -> GAP -> [1,4,1,1]
HEAD = STEM + [helper.make_node("GlobalAveragePool", ["r1"], ["gap"], name="gap")]


def _shape(*dims):
    return np.array(dims, np.int64)


# -- class 1: a node whose meaning the program would not keep is refused, naming it ----------------------------------

FLOAT_CASES = {
    "reshape regrouping channels mid-graph": (
        STEM + [helper.make_node("Reshape", ["r1", "s"], ["rs"], name="regroup"),
                _conv("conv2", "rs", "y")],
        {**STEM_W, "s": _shape(1, 16, 4, 4), "conv2/w": _weights(4, 16)}, ["regroup", "[1,4,8,8]", "[1,16,4,4]"]),
    "flatten of a spatial map": (
        STEM + [helper.make_node("Flatten", ["r1"], ["y"], name="flat_map")], STEM_W, ["flat_map", "[1,256]"]),
    "reshape with 0 and -1 keeping rank": (
        HEAD + [helper.make_node("Reshape", ["gap", "s"], ["y"], name="rs0")],
        {**STEM_W, "s": _shape(0, 2, -1, 1)}, ["rs0", "[1,2,2,1]"]),
    "reshape of the scores to [2,2]": (
        HEAD + [helper.make_node("Reshape", ["gap", "s"], ["y"], name="rs22")], {**STEM_W, "s": _shape(2, 2)},
        ["rs22", "[2,2]"]),
    "flatten on axis 2 of a map": (
        STEM + [helper.make_node("Flatten", ["r1"], ["y"], name="flat2", axis=2)], STEM_W, ["flat2", "[4,64]"]),
    "softmax in the middle": (
        STEM + [helper.make_node("Softmax", ["r1"], ["sm"], name="mid_softmax", axis=1),
                _conv("conv2", "sm", "y")], {**STEM_W, "conv2/w": _weights(4, 4)}, ["mid_softmax", "end of the graph"]),
    "softmax over the last axis of [1,C,1,1]": (
        HEAD + [helper.make_node("Softmax", ["gap"], ["y"], name="sm_last")], STEM_W, ["sm_last", "axis -1"]),
    "softmax over the batch axis": (
        HEAD + [helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
                helper.make_node("Softmax", ["f"], ["y"], name="sm_batch", axis=0)], STEM_W, ["sm_batch", "axis 0"]),
    "softmax per pixel": (
        STEM + [helper.make_node("Softmax", ["r1"], ["y"], name="sm_pixel", axis=1)], STEM_W, ["sm_pixel", "axis 1"]),
    "relu sharing its input": (
        [_conv("conv1", "input", "c1", pads=[1, 1, 1, 1]), _relu("relu_shared", "c1", "r1"),
         helper.make_node("Add", ["r1", "c1"], ["y"], name="plus")], STEM_W, ["relu_shared", "plus"]),
    "dropout in training mode": (
        STEM + [helper.make_node("Dropout", ["r1", "ratio", "train"], ["y"], name="drop_train")],
        {**STEM_W, "ratio": np.array(0.5, np.float32), "train": np.array(True)}, ["drop_train", "training"]),
    "transpose": (STEM + [helper.make_node("Transpose", ["r1"], ["y"], name="perm", perm=[0, 1, 3, 2])], STEM_W,
                  ["perm", "Transpose"]),
    "slice": (STEM + [helper.make_node("Slice", ["r1", "st", "en", "ax"], ["y"], name="cut")],
              {**STEM_W, "st": _shape(0), "en": _shape(2), "ax": _shape(1)}, ["cut", "Slice"]),
    "pad": (STEM + [helper.make_node("Pad", ["r1", "p"], ["y"], name="pad")],
            {**STEM_W, "p": _shape(0, 0, 1, 1, 0, 0, 1, 1)}, ["'pad'", "Pad"]),
    "mul by a constant": (STEM + [helper.make_node("Mul", ["r1", "k"], ["y"], name="times")],
                          {**STEM_W, "k": np.array(2.0, np.float32)}, ["times", "Mul"]),
    "sub of a constant": (STEM + [helper.make_node("Sub", ["r1", "k"], ["y"], name="minus")],
                          {**STEM_W, "k": np.array(1.0, np.float32)}, ["minus", "Sub"]),
    "concat on width": (STEM + [helper.make_node("Concat", ["r1", "r1"], ["y"], name="cat_w", axis=-1)], STEM_W,
                        ["cat_w", "axis -1"]),
    "clip": (STEM + [helper.make_node("Clip", ["c1", "lo", "hi"], ["y"], name="relu6")],
             {**STEM_W, "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}, ["relu6", "Clip"]),
    "leaky relu": (STEM[:1] + [helper.make_node("LeakyRelu", ["c1"], ["y"], name="leaky")], STEM_W,
                   ["leaky", "LeakyRelu"]),
    "batch normalization left in": (
        STEM[:1] + [helper.make_node("BatchNormalization", ["c1", "g", "b", "m", "v"], ["y"], name="bn")],
        {**STEM_W, **{k: np.ones(4, np.float32) for k in "gbmv"}}, ["'bn'", "BatchNormalization"]),
    "gemm classifier": (
        HEAD + [helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
                helper.make_node("Gemm", ["f", "fc/w"], ["y"], name="fc", transB=1)],
        {**STEM_W, "fc/w": np.ones((10, 4), np.float32)}, ["'fc'", "Gemm"]),
    "matmul classifier": (
        HEAD + [helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
                helper.make_node("MatMul", ["f", "fc/w"], ["y"], name="mm")],
        {**STEM_W, "fc/w": np.ones((4, 10), np.float32)}, ["'mm'", "MatMul"]),
    "resize": (STEM + [helper.make_node("Resize", ["r1", "", "sc"], ["y"], name="up")],
               {**STEM_W, "sc": np.array([1, 1, 2, 2], np.float32)}, ["'up'", "Resize"]),
    "depthwise conv": ([_conv("dw", "input", "y", group=3, pads=[1, 1, 1, 1])], {"dw/w": _weights(3, 1)},
                       ["'dw'", "group=3"]),
    "dilated conv": ([_conv("dil", "input", "y", dilations=[2, 2])], {"dil/w": _weights(4, 3)}, ["'dil'", "dilat"]),
    "conv auto_pad SAME_UPPER": ([_conv("same", "input", "y", auto_pad="SAME_UPPER")], {"same/w": _weights(4, 3)},
                                 ["'same'", "SAME_UPPER"]),
    "max pool auto_pad SAME_LOWER": (
        STEM + [helper.make_node("MaxPool", ["r1"], ["y"], name="pool_same", kernel_shape=[3, 3],
                                 auto_pad="SAME_LOWER")], STEM_W, ["pool_same", "SAME_LOWER"]),
    "max pool storage order 1": (
        STEM + [helper.make_node("MaxPool", ["r1"], ["y"], name="pool_so", kernel_shape=[2, 2], storage_order=1)],
        STEM_W, ["pool_so", "storage_order"]),
    "average pool over part of the map": (
        STEM + [helper.make_node("AveragePool", ["r1"], ["y"], name="avg3", kernel_shape=[3, 3])], STEM_W,
        ["avg3", "whole map"]),
    "broadcasting add": (STEM + [helper.make_node("Add", ["r1", "k"], ["y"], name="bias_add")],
                         {**STEM_W, "k": np.ones((1, 4, 1, 1), np.float32)}, ["bias_add", "broadcasting"]),
    "sigmoid": (STEM[:1] + [helper.make_node("Sigmoid", ["c1"], ["y"], name="sig")], STEM_W, ["'sig'", "Sigmoid"]),
    "NaN in the weights": ([_conv("nan_conv", "input", "y")], {"nan_conv/w": np.full((4, 3, 3, 3), np.nan, np.float32)},
                           ["nan_conv/w", "NaN"]),
}


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_float_node_not_reproduced_exactly_is_refused(tmp_path, capsys, case):
    nodes, inits, words = FLOAT_CASES[case]
    model = _save(tmp_path / "m.onnx", nodes, inits)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "m.onnx", *words, where=tmp_path)


def test_second_graph_output_is_refused_naming_it(tmp_path, capsys):
    model = _save(tmp_path / "m.onnx", HEAD + [helper.make_node("Flatten", ["gap"], ["y"], name="flat")], STEM_W,
                  outputs=["y", "r1"])
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "2 graph outputs", "'r1'", where=tmp_path)


def test_upsample_of_an_old_opset_is_refused(tmp_path, capsys):
    model = _save(tmp_path / "m.onnx", STEM + [helper.make_node("Upsample", ["r1", "sc"], ["y"], name="up9")],
                  {**STEM_W, "sc": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "up9", "Upsample", where=tmp_path)


# the one image input: anything else is refused before calibration

def _input(dims, elem=TensorProto.FLOAT, name="input"):
    return helper.make_tensor_value_info(name, elem, dims)


INPUT_CASES = {
    "dynamic batch": ([_input(["N", 3, H, H])], ["'input'", "dynamic", "'N'"]),
    "batch 2": ([_input([2, 3, H, H])], ["batch 2"]),
    "float16 input": ([_input([1, 3, H, H], TensorProto.FLOAT16)], ["FLOAT16"]),
    "uint8 input": ([_input([1, 3, H, H], TensorProto.UINT8)], ["UINT8"]),
    "two inputs": ([_input([1, 3, H, H]), _input([1, 3, H, H], name="extra")], ["2 inputs", "extra"]),
    "rank 3 input": ([_input([3, H, H])], ["rank 3"]),
}


@pytest.mark.parametrize("case", INPUT_CASES)
def test_an_input_other_than_one_static_float_image_is_refused(tmp_path, capsys, case):
    inputs, words = INPUT_CASES[case]
    model = _save(tmp_path / "m.onnx", [_conv("conv1", "input", "y")], {"conv1/w": _weights(4, 3)}, inputs=inputs)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], *words, where=tmp_path)


def test_opset_older_than_7_is_refused(tmp_path, capsys):
    model = _save(tmp_path / "m.onnx", [_conv("conv1", "input", "y")], {"conv1/w": _weights(4, 3)}, opset=6)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "opset 6", where=tmp_path)


def test_the_score_vector_may_be_reshaped_and_softmaxed(tmp_path, capsys):
    """What is exact still compiles: [1,C,1,1] -> [1,C] by Reshape, then a Softmax over the scores."""
    model = _save(tmp_path / "m.onnx", HEAD + [helper.make_node("Reshape", ["gap", "s"], ["f"], name="rs"),
                                               helper.make_node("Softmax", ["f"], ["y"], name="sm", axis=1)],
                  {**STEM_W, "s": _shape(1, -1)})
    rc, _, err = run_cli(["compile", model, "-o", tmp_path / "out"], capsys)
    assert rc == 0, err


# -- class 1 in already-quantized graphs: lowering checks the nodes after the program's result ---------------------

@pytest.fixture(scope="module")
def quantized(build_model, tmp_path_factory):
    """A QOperator graph (QuantizeLinear -> QLinearConv [1,8,8,8] -> DequantizeLinear) from a compile."""
    out = tmp_path_factory.mktemp("q") / "out"
    compile_model(build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=8),
                  out)
    return onnx.load(out / "quantized.onnx")


def _edit(quantized, path, extra, *, before_dq=False, outputs=None, inits=None):
    """``quantized`` with ``extra`` nodes after its DequantizeLinear (or between the QLinearConv and it), the last
    one's output the graph output."""
    m = onnx.ModelProto()
    m.CopyFrom(quantized)
    dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear")
    if before_dq:
        extra[0].input[0] = dq.input[0]
        dq.input[0] = extra[-1].output[0]
        m.graph.node.extend(extra)
        nodes = sorted(m.graph.node, key=lambda n: n is dq)   # keep the DequantizeLinear last
        del m.graph.node[:]
        m.graph.node.extend(nodes)
    else:
        extra[0].input[0] = dq.output[0]
        m.graph.node.extend(extra)
        m.graph.output[0].name = extra[-1].output[0]
    for name, value in (inits or {}).items():
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    for name in outputs or []:
        m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.UINT8, [1, 3, H, H]))
    del m.graph.value_info[:]
    onnx.save(m, path)
    return path


QUANTIZED_CASES = {
    "uint8 reshape regrouping the result": (
        dict(extra=[helper.make_node("Reshape", ["?", "s"], ["rq"], name="q_regroup")], before_dq=True,
             inits={"s": _shape(1, 32, 4, 4)}), ["q_regroup", "[1,8,8,8]", "[1,32,4,4]"]),
    "uint8 flatten of a map": (
        dict(extra=[helper.make_node("Flatten", ["?"], ["fq"], name="q_flat")], before_dq=True),
        ["q_flat", "[1,512]"]),
    "float reshape after the result": (
        dict(extra=[helper.make_node("Reshape", ["?", "s"], ["y2"], name="f_reshape")], inits={"s": _shape(8, 64)}),
        ["f_reshape", "[8,64]"]),
    "relu on the dequantized scores": (
        dict(extra=[helper.make_node("Relu", ["?"], ["y2"], name="tail_relu")]), ["tail_relu", "Relu"]),
    "softmax over channels of a map": (
        dict(extra=[helper.make_node("Softmax", ["?"], ["y2"], name="tail_sm", axis=1)]), ["tail_sm", "axis 1"]),
    "requantized float path": (
        dict(extra=[helper.make_node("QuantizeLinear", ["?", "rs", "rz"], ["rq"], name="requant"),
                    helper.make_node("MaxPool", ["rq"], ["y2"], name="pool_after", kernel_shape=[2, 2],
                                     strides=[2, 2])],
             inits={"rs": np.array(0.1, np.float32), "rz": np.array(0, np.uint8)}), ["pool_after", "float tail"]),
}


@pytest.mark.parametrize("case", QUANTIZED_CASES)
def test_quantized_node_not_reproduced_exactly_is_refused(quantized, tmp_path, capsys, case):
    edit, words = QUANTIZED_CASES[case]
    model = _edit(quantized, tmp_path / "q.onnx", **edit)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "q.onnx", *words, where=tmp_path)


def test_quantized_model_with_a_second_output_is_refused(quantized, tmp_path, capsys):
    model = _edit(quantized, tmp_path / "q.onnx", [helper.make_node("Identity", ["?"], ["y2"], name="same")],
                  outputs=["input_quantized"])
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "2 graph outputs", "'input_quantized'",
           where=tmp_path)


# -- class 6: a model with its tensors in a side file ----------------------------------------------------------------

@pytest.fixture
def conv_model(build_model):
    return build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=8)


def _external(src, folder, location="model.onnx.data"):
    folder.mkdir(exist_ok=True)
    onnx.save(onnx.load(src), folder / "model.onnx", save_as_external_data=True, location=location,
              size_threshold=0)
    return folder / "model.onnx"


def test_external_data_model_compiles_from_any_working_directory(conv_model, tmp_path, monkeypatch):
    model = _external(conv_model, tmp_path / "ext")
    compile_model(conv_model, tmp_path / "embedded")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    compile_model(model.resolve(), tmp_path / "out")
    for f in ("weights.bin", "quant.bin", "descriptors.bin"):
        assert (tmp_path / "out" / f).read_bytes() == (tmp_path / "embedded" / f).read_bytes(), f
    # a relative path from another folder too
    monkeypatch.chdir(tmp_path)
    compile_model("ext/model.onnx", tmp_path / "out2")


def test_missing_external_data_file_is_named(conv_model, tmp_path, capsys):
    model = _external(conv_model, tmp_path / "ext")
    (tmp_path / "ext" / "model.onnx.data").unlink()
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "model.onnx.data", "does not exist", where=tmp_path)


def test_truncated_external_data_file_is_named(conv_model, tmp_path, capsys):
    model = _external(conv_model, tmp_path / "ext")
    data = tmp_path / "ext" / "model.onnx.data"
    data.write_bytes(data.read_bytes()[:10])
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "model.onnx.data", "truncated", where=tmp_path)


def test_external_data_outside_the_model_folder_is_refused(conv_model, tmp_path, capsys):
    model = _external(conv_model, tmp_path / "ext")
    m = onnx.load(model, load_external_data=False)
    for t in m.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../elsewhere.data"
    onnx.save(m, model)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out"], "../elsewhere.data", "outside", where=tmp_path)
