"""The frontend's op registry (`compile --list-ops`, refusals naming the node) and compile's step list."""

from __future__ import annotations

import filecmp
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fireforge.cli import main
from fireforge.core.program import Program
from fireforge.errors import FireforgeError
from fireforge.sw.compile import STEPS, CompileOptions, CompileState, compile_model
from fireforge.sw.frontend import format_ops, handlers
from fireforge.sw.frontend.graph import Graph
from fireforge.sw.frontend.registry import FORMS, handler, handler_for, known_ops, lookup

#: every op the compiler read before the registry (sw/onnx_import.py's FLOAT_OPS, QUANT_OPS, Constant)
OPS_BEFORE = {"Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Add", "Dropout", "Flatten",
              "Reshape", "Softmax", "Identity", "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearConcat",
              "QLinearAdd", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSoftmax", "Constant"}


def _run(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr().err.strip()


def _float_model(path, nodes, inits=None, channels=3):
    """input [1, channels, 8, 8] → nodes → the last node's output, opset 13."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, 8, 8])
    out = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["n", "c", "h", "w"])
    graph = helper.make_graph(nodes, "g", [inp], [out],
                              [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _weights(o, i, k=3):
    return np.random.default_rng(0).standard_normal((o, i, k, k)).astype(np.float32)


# -- the registry ---------------------------------------------------------------------------------------------------

def test_every_op_read_before_the_registry_still_has_a_handler():
    assert OPS_BEFORE <= known_ops()
    for form in FORMS:
        assert lookup("Constant", form) is not None
    for h in handlers():
        assert h.form in FORMS and h.supports.strip() and callable(h.read)


def test_a_second_handler_for_an_op_is_refused():
    with pytest.raises(ValueError, match="two handlers for Conv in float form"):
        handler("Conv", form="float", supports="again")(lambda g, node: None)
    with pytest.raises(ValueError, match="unknown graph form"):
        handler("Conv", form="onnx", supports="x")(lambda g, node: None)


def test_list_ops_prints_every_op_by_form_with_its_conditions(capsys):
    assert main(["compile", "--list-ops"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == format_ops()
    sections = {form: block for form, block in zip(FORMS, out.split("\n\n")[1:])}
    for h in handlers():
        assert any(line.split()[0] == h.op and line.endswith(h.supports)
                   for line in sections[h.form].splitlines()[1:]), (h.form, h.op)
    floats = {line.split()[0]: line for line in sections["float"].splitlines()[1:]}
    assert "2-D, group 1, no dilation" in floats["Conv"]
    assert "2-D, floor or ceil mode" in floats["MaxPool"]
    assert "only over the whole map" in floats["AveragePool"]


def test_list_ops_needs_no_model_and_compile_without_one_is_a_usage_error(capsys, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fireforge.cli", "compile", "--list-ops"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "QLinearConv" in proc.stdout
    for args, missing in ((["compile"], "MODEL"), (["compile", str(tmp_path / "m.onnx")], "-o/--output"),
                          (["compile", "-o", str(tmp_path / "out")], "MODEL")):
        rc = main(args)
        err = capsys.readouterr().err
        assert rc == 2 and len(err.splitlines()) == 1 and "usage:" in err and missing in err and "--list-ops" in err


def test_an_op_is_refused_in_a_form_without_its_handler():
    node = helper.make_node("AveragePool", ["x"], ["y"], name="pool9", kernel_shape=[2, 2])
    g = Graph(helper.make_model(helper.make_graph([node], "g", [], [])), "m.onnx")
    with pytest.raises(FireforgeError, match=r"m.onnx: node 'pool9' \(AveragePool\): not supported in a QDQ graph "
                                             r"\(only in float graphs; .*--list-ops"):
        handler_for(g, node, "qdq")
    odd = helper.make_node("Sigmoid", ["x"], ["y"], name="sig")
    with pytest.raises(FireforgeError, match=r"node 'sig' \(Sigmoid\): operator 'Sigmoid' is not supported .*"
                                             r"fireforge compile --list-ops"):
        handler_for(g, odd, "float")
    qpool = helper.make_node("QLinearAveragePool", ["x", "s", "z", "s", "z"], ["y"], name="qp")
    with pytest.raises(FireforgeError, match="re-export it as GlobalAveragePool"):
        handler_for(g, qpool, "qoperator").read(g, qpool)


# -- float handlers refuse before anything is written, naming the user's node ------------------------------------------

FLOAT_REFUSALS = {
    "grouped conv": ([helper.make_node("Conv", ["input", "w"], ["y"], name="conv_g", group=3)],
                     {"w": _weights(3, 1)}, ["conv_g", "grouped convolution"]),
    "dilated conv": ([helper.make_node("Conv", ["input", "w"], ["y"], name="conv_d", dilations=[2, 2])],
                     {"w": _weights(4, 3)}, ["conv_d", "dilated convolution"]),
    "auto_pad": ([helper.make_node("Conv", ["input", "w"], ["y"], name="conv_s", auto_pad="SAME_UPPER")],
                 {"w": _weights(4, 3)}, ["conv_s", "auto_pad=SAME_UPPER", "explicit pads"]),
    "dilated pool": ([helper.make_node("MaxPool", ["input"], ["y"], name="pool_d", kernel_shape=[2, 2],
                                       dilations=[2, 2])], None, ["pool_d", "dilated pooling"]),
    "partial average pool": ([helper.make_node("AveragePool", ["input"], ["y"], name="avg", kernel_shape=[2, 2])],
                             None, ["avg", "whole map", "(8, 8)"]),
    "concat on height": ([helper.make_node("Conv", ["input", "w"], ["a"], name="c1"),
                          helper.make_node("Concat", ["a", "a"], ["y"], name="cat", axis=2)],
                         {"w": _weights(4, 3)}, ["cat", "axis 2", "only channels"]),
    "broadcasting add": ([helper.make_node("Conv", ["input", "w"], ["a"], name="c1"),
                          helper.make_node("Add", ["a", "b"], ["y"], name="plus")],
                         {"w": _weights(4, 3), "b": np.ones((1, 4, 1, 1), np.float32)},
                         ["plus", "broadcasting", "[4, 6, 6]", "[4, 1, 1]"]),
}


@pytest.mark.parametrize("case", FLOAT_REFUSALS)
def test_float_handlers_refuse_naming_the_node(tmp_path, capsys, case):
    nodes, inits, words = FLOAT_REFUSALS[case]
    path = _float_model(tmp_path / "m.onnx", nodes, inits)
    rc, err = _run(["compile", str(path), "-o", str(tmp_path / "out")], capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


# -- compile as a list of steps ----------------------------------------------------------------------------------------

STEP_NAMES = ["load", "outdir", "quantize", "lower", "check", "engine", "images", "commit"]


@pytest.fixture
def fire_model(build_model):
    return build_model("fire", in_channels=8, squeeze=4, expand1x1=8, expand3x3=8, input_size=6)


def test_steps_are_timed_and_the_check_changes_no_output(fire_model, tmp_path):
    assert [s.name for s in STEPS] == STEP_NAMES
    checked = compile_model(fire_model, tmp_path / "a")
    assert list(checked.timings) == [n for n in STEP_NAMES if n != "engine"] + ["total"]    # engine: --board
    unchecked = compile_model(fire_model, tmp_path / "b", check=False)
    assert list(unchecked.timings) == [n for n in STEP_NAMES if n not in ("check", "engine")] + ["total"]
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name


def test_each_step_saves_its_own_artefacts(fire_model, tmp_path):
    made = {"load": set(), "outdir": set(), "quantize": {"quantized.onnx"},
            "lower": {"program.json", "program.npz"}, "check": set(),
            "images": {"weights.bin", "weights.hex", "quant.bin", "quant.hex", "descriptors.bin",
                       "descriptors.hex", "engine.json", "manifest.json"}}
    options = CompileOptions(fire_model, tmp_path / "out")
    state, before = CompileState(), set()
    for step in STEPS[:-1]:
        if not step.when(options):           # engine: only with --board
            continue
        state = step.run(state, options)
        now = {p.name for p in state.tmp.iterdir()} if state.tmp else set()
        assert now - before == made[step.name], step.name
        before = now
    assert not (tmp_path / "out").exists()          # only the commit step puts OUT/ in place
    state = STEPS[-1].run(state, options)
    assert {p.name for p in (tmp_path / "out").iterdir()} == before and not state.tmp.exists()


def test_golden_check_refuses_a_differing_layer_naming_it(fire_model, tmp_path, capsys, monkeypatch):
    from fireforge.sim import golden

    real_run = golden.run

    def off_by_one(program, x, **kw):
        result = real_run(program, x, **kw)
        layer = program.layers[1].name
        result.layer_outputs[layer] = result.layer_outputs[layer] ^ np.uint8(1)
        return result

    monkeypatch.setattr(golden, "run", off_by_one)
    out = tmp_path / "out"
    rc, err = _run(["compile", str(fire_model), "-o", str(out)], capsys)
    err = err.splitlines()[-1]          # after the quantizer's progress line
    assert rc == 2 and err.startswith("fireforge: error:"), err
    assert "golden model differs from ONNX Runtime at layer" in err and "--no-check" in err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    assert _run(["compile", str(fire_model), "-o", str(out), "--no-check"], capsys)[0] == 0
    assert f"at layer '{Program.load(out).layers[1].name}'" in err
