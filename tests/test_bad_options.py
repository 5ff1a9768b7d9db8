"""Bad-input corpus, class 2: numeric options (and the engine config JSON) that used to become a default in
silence or crash later are refused where they are parsed, in one line naming the option and its range."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest

from fireforge.cli import main
from tests.support.cli import refuse, run_cli

# 0, negative, not a number, infinite, huge, not a number at all: what a user mistypes
ZERO, NEGATIVE, NAN, INF, HUGE, WORD = "0", "-3", "nan", "inf", str(2**40), "lots"

V1_1 = ["models", "build", "v1_1", "--input-size", "32", "--classes", "10"]
CONV = ["models", "build", "conv", "--in-channels", "3", "--out-channels", "4", "--kernel", "3", "--input-size", "8"]
FIRE = ["models", "build", "fire", "--in-channels", "4", "--squeeze", "2", "--expand1x1", "2", "--expand3x3", "2",
        "--input-size", "8"]

# (command line without the option, option, bad values, a word of the range the message must state)
OPTIONS = [
    (V1_1, "--input-size", [ZERO, NEGATIVE, NAN, HUGE, WORD], "4096"),
    (V1_1, "--classes", [ZERO, NEGATIVE, INF, HUGE], "65536"),
    (V1_1, "--seed", [NEGATIVE, "1.5", str(2**64)], "0 to"),
    (V1_1, "--base-e", [ZERO, NEGATIVE, HUGE], "4096"),
    (V1_1, "--incr-e", [NEGATIVE, HUGE, NAN], "0 to 4096"),
    (V1_1, "--pct3x3", [ZERO, "1", NAN, INF, "-0.5", WORD], "(0, 1)"),
    (V1_1, "--squeeze-ratio", [ZERO, "1.5", NAN, "-inf", WORD], "(0, 1]"),
    (V1_1, "--freq", [ZERO, NEGATIVE, HUGE], "1 to"),
    (CONV, "--in-channels", [ZERO, NEGATIVE, HUGE], "4096"),
    (CONV, "--out-channels", [ZERO, NAN], "4096"),
    (CONV, "--kernel", [ZERO, "33", "3.0"], "1 to 32"),
    (CONV, "--stride", [ZERO, NEGATIVE, HUGE], "1 to 32"),
    (CONV, "--padding", [NEGATIVE, HUGE], "0 to 32"),
    (FIRE, "--squeeze", [ZERO, WORD], "4096"),
    (FIRE, "--expand1x1", [NEGATIVE], "4096"),
    (FIRE, "--expand3x3", [HUGE], "4096"),
    (["compile", "{model}", "-o", "{out}"], "--mac-units", [ZERO, NEGATIVE, "63", str(2**30), NAN, "64.0", WORD],
     "1024"),
    (["generate", "{compiled}", "-o", "{out}", "--board", "kc705"], "--clock", [ZERO, "-5", NAN, INF, "1e9", WORD],
     "(0, 1000]"),
    (["generate", "{compiled}", "-o", "{out}"], "--clock", [ZERO], "(0, 1000]"),
    (["generate", "{compiled}", "-o", "{out}", "--board", "ulx3s-85f", "--bitstream"], "--seed",
     [NEGATIVE, "3,x", str(2**31), "1.5", ""], "0 to 2147483647"),
    (["simulate", "{compiled}", "--input", "{input}"], "--read-latency", [ZERO, "5", "65", HUGE, NAN], "64"),
    (["simulate", "{compiled}", "--input", "{input}"], "--stall-seed", [NEGATIVE, str(2**31), WORD], "2147483647"),
]

CASES = [pytest.param(base, opt, value, bound, id=f"{base[0]}{'-' + base[2] if base[0] == 'models' else ''}"
                      f"{opt}={value}")
         for base, opt, values, bound in OPTIONS for value in values]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A tiny compiled conv (and its model and an input): what the commands would read if they got that far."""
    d = tmp_path_factory.mktemp("bad-options")
    model, out, x = d / "m.onnx", d / "out", d / "x.npy"
    assert main([*CONV, "-o", str(model)]) == 0
    assert main(["compile", str(model), "-o", str(out)]) == 0
    np.save(x, np.zeros((1, 3, 8, 8), np.float32))
    return {"model": model, "compiled": out, "input": x}


@pytest.mark.parametrize("base, option, value, bound", CASES)
def test_numeric_option_refused_where_parsed(base, option, value, bound, compiled, tmp_path, capsys):
    files = {**compiled, "out": tmp_path / "result"}
    args = [a.format(**files) for a in base]
    # a value argparse would take for an option (-inf) is given as --option=VALUE
    looks_like_option = value.startswith("-") and not re.fullmatch(r"-\d*\.?\d+", value)
    args += [f"{option}={value}"] if looks_like_option else [option, value]
    if base[0] == "models":
        args += ["-o", tmp_path / "m.onnx"]
    err = refuse(capsys, args, option, value, bound, where=tmp_path)
    assert "internal" not in err


def test_a_value_that_looks_like_an_option_is_one_line(compiled, tmp_path, capsys):
    refuse(capsys, ["generate", compiled["compiled"], "-o", tmp_path / "r", "--clock", "-inf"], "--clock",
           "expected one argument", where=tmp_path)


@pytest.mark.parametrize("args, words", [
    (["compile"], ("MODEL", "--list-ops")),
    (["models", "build", "v2"], ("invalid choice", "v2")),
    (["models", "build", "v1_1"], ("-o/--output",)),
    (["compile", "m.onnx", "-o", "x", "--no-such-option"], ("--no-such-option",)),
    (["frobnicate"], ("frobnicate",)),
], ids=["compile-without-model", "unknown-model", "models-build-without-o", "unknown-option", "unknown-command"])
def test_usage_errors_are_one_line(args, words, tmp_path, capsys):
    refuse(capsys, args, *words, where=tmp_path)


@pytest.mark.parametrize("config, words", [
    ({"mac_units": 0}, ("mac_units", "1024", "not 0")),
    ({"mac_units": 2**30}, ("mac_units", str(2**30))),
    ({"mac_units": 48}, ("mac_units", "48")),
    ({"mac_units": "64"}, ("mac_units", "'64'")),
    ({"mac_units": 64.0}, ("mac_units", "64.0")),
    ({"weight_depth": 2**40}, ("weight_depth", "16777216")),
    ({"act_depth": -1}, ("act_depth", "-1")),
    ({"act_depth": float("nan")}, ("act_depth", "nan")),
    ({"quant_depth": True}, ("quant_depth", "True")),
    ({"add_unit": "yes"}, ("add_unit", "'yes'")),
    ({"macs": 64}, ("unknown key", "macs")),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else None)
def test_engine_config_json_is_checked_like_the_options(config, words, compiled, tmp_path, capsys):
    path = tmp_path / "engine.json"
    path.write_text(json.dumps(config))
    refuse(capsys, ["compile", compiled["model"], "-o", tmp_path / "out", "--config", path], *words, where=tmp_path)


@pytest.mark.parametrize("flags, words", [
    (["--board", "ulx3s-85f", "--pnr", "--seed", "2,2"], ("--seed", "names a seed twice", "2,2")),
    (["--board", "ulx3s-85f", "--synth", "--seed", "3"], ("--seed", "--pnr or --bitstream")),
    (["--seed", "3"], ("--seed", "need --board NAME")),
], ids=["twice", "without-pnr", "without-board"])
def test_generate_seeds_are_checked(flags, words, compiled, tmp_path, capsys):
    refuse(capsys, ["generate", compiled["compiled"], "-o", tmp_path / "rtl", *flags], *words, where=tmp_path)


def test_config_and_mac_units_disagree(compiled, tmp_path, capsys):
    path = tmp_path / "engine.json"
    path.write_text(json.dumps({"mac_units": 16}))
    refuse(capsys, ["compile", compiled["model"], "-o", tmp_path / "out", "--config", path, "--mac-units", "64"],
           "--mac-units 64", "mac_units=16", where=tmp_path)


# -- the values that are in range keep working, and the defaults are still the defaults ----------------------------

def test_valid_edges_and_defaults_are_unchanged(compiled, tmp_path, capsys):
    assert run_cli([*V1_1[:3], "-o", tmp_path / "d.onnx"], capsys)[0] == 0     # no --input-size: 224
    dims = onnx.load(tmp_path / "d.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 224, 224]
    assert run_cli([*V1_1, "--incr-e", "0", "--seed", str(2**32 - 1), "--pct3x3", "0.25", "--squeeze-ratio", "1",
                    "-o", tmp_path / "e.onnx"], capsys)[0] == 0
    assert run_cli([*CONV[:-2], "--input-size", "4", "--padding", "0", "--stride", "2", "-o", tmp_path / "c.onnx"],
                   capsys)[0] == 0
    assert run_cli(["compile", compiled["model"], "-o", tmp_path / "o16", "--mac-units", "16"], capsys)[0] == 0
    assert json.loads((tmp_path / "o16" / "engine.json").read_text())["mac_units"] == 16


def test_help_still_exits_zero(capsys):
    assert run_cli(["compile", "--help"], capsys)[0] == 0
    assert run_cli(["--help"], capsys)[0] == 0


def test_board_choices_refused_in_one_line(compiled, tmp_path, capsys):
    """compile --board with an unknown board; simulate of a DRAM-mode OUT without its board, or with another."""
    refuse(capsys, ["compile", compiled["model"], "-o", tmp_path / "out", "--board", "nosuch"], "nosuch",
           "ulx3s-85f", where=tmp_path)
    dram = tmp_path / "dram"
    config = tmp_path / "dram.json"
    config.write_text('{"mac_units": 16, "memory": "dram", "act_depth": 2048, "weight_depth": 1024, '
                      '"quant_depth": 16, "desc_depth": 2}')
    assert main(["compile", str(compiled["model"]), "-o", str(dram), "--config", str(config)]) == 0
    capsys.readouterr()
    refuse(capsys, ["simulate", dram, "--input", compiled["input"]], "DRAM mode", "--board", where=tmp_path)
    refuse(capsys, ["simulate", dram, "--input", compiled["input"], "--board", "arty-a7-100"], "arty-a7-100",
           "not simulated", where=tmp_path)
    refuse(capsys, ["generate", dram, "-o", tmp_path / "rtl", "--board", "ulx3s-85f", "--act-memory", "external"],
           "--act-memory external", "DRAM already", where=tmp_path)
    refuse(capsys, ["generate", dram, "-o", tmp_path / "rtl", "--board", "arty-a7-100"], "arty-a7-100",
           "does not divide", where=tmp_path)
