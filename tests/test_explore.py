"""fireforge explore: a sweep on a 2-worker local Dask cluster, a worker killed mid-sweep, the cache, failures.

The networks are small (32x32, 10 classes) so a point costs a fraction of a second; the figures checked are
the parameter counts of the float ONNX models (an independent count: float initializers, not the integer
program the explorer reads) and what the sweep must hold whatever the numbers are.
"""

from __future__ import annotations

import json
import os
import signal

import onnx
import pytest

from fireforge.cli import main
from fireforge.models.squeezenet import build_squeezenet, count_parameters
from fireforge.explorer.sweep import explore
from fireforge.explorer.space import make_space

distributed = pytest.importorskip("distributed")

SMALL = {"input_size": [32], "classes": [10]}


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def _space(**axes):
    return make_space(flags={**SMALL, **axes})


def test_sweep_results_cache_and_failed_points(cluster, tmp_path):
    # 12 points: 3 squeeze ratios x bypass none/simple x freq 1/2; simple bypass with freq 1 puts a 128-channel
    # input beside a 256-channel output (fire3), a network that cannot be built: 3 failing points
    space = _space(squeeze_ratio=[0.125, 0.25, 0.5], bypass=["none", "simple"], freq=[1, 2])
    first = explore(space, tmp_path, scheduler=cluster.scheduler_address, progress=None)
    assert len(first.rows) == 12 and first.computed == 12 and first.cached == 0
    failed = [r for r in first.rows if r["status"] == "failed"]
    assert {(r["bypass"], r["freq"]) for r in failed} == {("simple", 1)} and len(failed) == 3
    assert all("simple bypass around fire3" in r["error"] for r in failed)
    for r in first.rows:
        if r["status"] == "ok":
            model = build_squeezenet("v1_1", input_size=32, classes=10, squeeze_ratio=r["squeeze_ratio"],
                                     bypass=r["bypass"], freq=r["freq"])
            assert r["params"] == count_parameters(model)
            assert r["cycles"] > 0 and r["fps"] == pytest.approx(r["clock_mhz"] * 1e6 / r["cycles"], rel=1e-3)
            assert r["fits"] is True and r["misfit"] is None          # a 32x32 SqueezeNet fits the ULX3S
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert [r["id"] for r in on_disk] == [r["id"] for r in first.rows]
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 13 and csv_lines[0].startswith("id,status,model")
    # the second run recomputes nothing and gives the same rows
    again = explore(space, tmp_path, scheduler=cluster.scheduler_address, progress=None)
    assert again.computed == 0 and again.cached == 12 and again.rows == first.rows


def test_worker_killed_mid_sweep(tmp_path):
    from dask.distributed import LocalCluster

    space = _space(squeeze_ratio=[0.125, 0.25, 0.375, 0.5, 0.625, 0.75], board=["ulx3s-85f", "kc705"])
    killed = []

    def kill_one(row, client):
        if not killed:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        res = explore(space, tmp_path, scheduler=c.scheduler_address, progress=None, on_result=kill_one)
    assert killed
    assert len(res.rows) == 12 and all(r["status"] == "ok" for r in res.rows)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 12


def test_misfit_is_a_point_not_a_failure(cluster, tmp_path):
    res = explore(_space(board=["icebreaker"], mac_units=[64]), tmp_path, scheduler=cluster.scheduler_address,
                  progress=None)
    (r,) = res.rows
    assert r["status"] == "ok" and r["fits"] is False and "icebreaker" in r["misfit"]
    assert r["resources"]["bram"]["used"] > r["resources"]["bram"]["available"] or r["resources"]["dsp"]["margin"] < 0 \
        or r["resources"]["lut"]["margin"] < 0


def test_cli_preset_and_json(tmp_path, capsys):
    rc = main(["explore", "--preset", "bypass", "--input-size", "32", "--classes", "10", "--workers", "2",
               "-o", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and [p["bypass"] for p in out["points"]] == ["none", "simple", "complex"]
    need = {"squeeze_ratio", "pct3x3", "bypass", "mac_units", "board", "params", "cycles", "fps", "fits"}
    assert all(need <= set(p) for p in out["points"])


@pytest.mark.parametrize("text, words", [
    ("squeez_ratio = [0.5]\n", ["spec.toml", "unknown key 'squeez_ratio'"]),
    ("squeeze_ratio = [0.5, 1.5]\n", ["spec.toml", "'squeeze_ratio'", "1.5", "out of range"]),
    ("board = 'ulx4s'\n", ["unknown board 'ulx4s'"]),
    ("mac_units = [65]\n", ["'mac_units'", "65"]),
    ("squeeze_ratio = [0.5\n", ["spec.toml", "not valid TOML"]),
])
def test_bad_spec_file_is_one_line(tmp_path, capsys, text, words):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    rc = main(["explore", "--spec", str(spec), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("fireforge: error:")
    assert all(w in err for w in words), err
    assert not (tmp_path / "out" / "results.json").exists()


def test_yaml_spec(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("preset: pct3x3\nsqueeze_ratio: 0.25\ninput_size: 32\nclasses: 10\npct3x3: [0.25, 0.75]\n")
    from fireforge.explorer.space import load_spec
    space = make_space(spec=load_spec(spec), spec_name=str(spec))
    pts = space.points()
    assert [(p.model.pct3x3, p.model.squeeze_ratio) for p in pts] == [(0.25, 0.25), (0.75, 0.25)]


def test_onnx_files_as_the_model_axis(cluster, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    onnx.save(build_squeezenet("v1_0", input_size=64, classes=10), a)
    b.write_text("not an onnx file")
    res = explore(make_space(flags={"onnx": [str(a), str(b)]}), tmp_path / "out",
                  scheduler=cluster.scheduler_address, progress=None)
    ok, bad = res.rows
    assert ok["status"] == "ok" and ok["onnx"] == str(a) and ok["params"] == count_parameters(onnx.load(a))
    assert bad["status"] == "failed" and "b.onnx" in bad["error"]


def test_verify_measures_cycles_on_the_verilated_engine(cluster, tmp_path):
    res = explore(_space(squeeze_ratio=[0.25], board=["kc705"], mac_units=[16]), tmp_path,
                  scheduler=cluster.scheduler_address, progress=None, verify=1)
    (r,) = res.rows
    assert res.verified == [r]
    assert r["memory"] == "resident" and r["mismatches"] == 0
    assert abs(r["cycles"] - r["measured_cycles"]) <= 0.05 * r["measured_cycles"]


def test_api_explore_stays_a_function_after_a_sweep(cluster, tmp_path):
    import fireforge

    first = fireforge.explore(tmp_path, scheduler=cluster.scheduler_address, input_size=32, classes=10)
    again = fireforge.explore(tmp_path, scheduler=cluster.scheduler_address, input_size=32, classes=10)
    assert callable(fireforge.explore) and len(first) == len(again) == 1 and again.computed == 0


@pytest.mark.slow
def test_pnr_adds_yosys_counts_and_fmax(tmp_path, capsys):
    """--pnr on one ULX3S point (~6 min): yosys's counts within the board and nextpnr's Fmax in the rows, the CSV
    and the terminal summary."""
    out = tmp_path / "pnr"
    assert main(["explore", "--input-size", "32", "--classes", "10", "--board", "ulx3s-85f", "--mac-units", "16",
                 "--squeeze-ratio", "0.125", "--workers", "1", "-o", str(out), "--pnr"]) == 0
    (r,) = json.loads((out / "results.json").read_text())
    hw = r["synth"]
    assert hw["status"] == "ok" and hw["fmax_mhz"] > 0
    for res in ("lut", "ff", "dsp", "bram_bits"):
        used, available = hw["resources"][res]
        assert 0 < used <= available
    assert hw["resources"]["dsp"][0] >= r["mac_units"]        # one multiplier per MAC unit at least
    assert f"Fmax {hw['fmax_mhz']:.2f} MHz" in capsys.readouterr().out
    header, row = (out / "results.csv").read_text().splitlines()
    assert dict(zip(header.split(","), row.split(",")))["fmax_mhz"] == str(hw["fmax_mhz"])
