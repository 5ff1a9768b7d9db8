"""Run a cocotb test against a prebuilt Verilated model, with a wall-clock limit, and return its result.

No Python runs per clock cycle: the cocotb test (e.g. :mod:`fireforge.sim.cocotb_engine`) pulses
``start`` and sleeps until ``done``, and writes its result as JSON to the file named by ``FF_RESULT``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from fireforge.core.tools import verilator_environ
from fireforge.sim.build_cache import build_info, is_built
from fireforge.sim.verilator_build import log_excerpt

__all__ = ["run", "write_result", "RESULT_FILE"]

#: the environment variable naming the file a cocotb test writes its JSON result to (set by :func:`run`)
RESULT_FILE = "FF_RESULT"

#: the HDL's plusarg buffers hold 1024 characters
_MAX_PLUSARG = 1000


class _SimTimeout(Exception):
    pass


def _execute_cmds_with_timeout(runner, timeout_s: float | None):
    """Replacement for ``Runner._execute_cmds`` that enforces a wall-clock limit.

    cocotb's runner has no timeout, so a hung simulation would hang the caller.  The simulator
    is started in its own session so that its whole process group can be killed.
    """

    def execute(cmds, cwd, stdout=None):
        for cmd in cmds:
            stderr = None if stdout is None else subprocess.STDOUT
            proc = subprocess.Popen(cmd, cwd=cwd, env=runner.env, stdout=stdout,
                                    stderr=stderr, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise _SimTimeout(f"simulation exceeded timeout_s={timeout_s}") from None
            if rc != 0:
                raise subprocess.CalledProcessError(rc, cmd)

    return execute


def write_result(result: dict) -> None:
    """From inside a cocotb test: its result as JSON in the file ``FF_RESULT`` names (nothing without it),
    written aside and renamed, so :func:`run` never reads half a file."""
    path = os.environ.get(RESULT_FILE)
    if not path:
        return
    with open(f"{path}.tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(f"{path}.tmp", path)


def _model(build_dir: Path, toplevel: str) -> tuple[str, str]:
    """(clock kind, the model's real toplevel) of a prebuilt model."""
    clock, sim_top = "gpi", toplevel
    if is_built(build_dir):  # built by build(): it knows the clock wrapper
        info = build_info(build_dir)
        clock = info.get("clock", "gpi")
        sim_top = info.get("sim_toplevel", toplevel)
    if not (build_dir / sim_top).is_file():
        raise FileNotFoundError(f"no Verilated model {build_dir / sim_top}; call build() first")
    return clock, sim_top


def _plusargs(plusargs: Mapping[str, object] | None) -> list[str]:
    plus: list[str] = []
    for k, v in (plusargs or {}).items():
        if isinstance(v, os.PathLike):
            v = Path(v).resolve()  # the simulator runs in test_dir
        if v is not None and len(str(v)) > _MAX_PLUSARG:
            raise ValueError(f"+{k}: value longer than the HDL's 1024-character buffer")
        plus.append(f"+{k}" if v is None else f"+{k}={v}")
    return plus


def _result(toplevel: str, test_dir: Path) -> dict:
    """The test's result, or RuntimeError with the log tail when it failed or wrote none."""
    from cocotb_tools.runner import get_results     # deferred: cocotb only when a simulation runs

    log_file = test_dir / "sim.log"
    try:
        n_tests, n_failed = get_results(test_dir / "results.xml")
    except RuntimeError as e:
        raise RuntimeError(f"{toplevel}: no cocotb results ({e}); log {log_file}:\n"
                           f"{log_excerpt(log_file)}") from None
    if n_tests == 0 or n_failed:
        raise RuntimeError(f"{toplevel}: {n_failed} of {n_tests} cocotb tests failed; log "
                           f"{log_file}:\n{log_excerpt(log_file)}")
    result_file = test_dir / "ff_result.json"
    if not result_file.is_file():
        raise RuntimeError(f"{toplevel}: test wrote no result to FF_RESULT={result_file}; log "
                           f"{log_file}:\n{log_excerpt(log_file)}")
    return json.loads(result_file.read_text())


def run(build_dir: Path, toplevel: str, test_module: str = "fireforge.sim.cocotb_engine", *,
        plusargs: Mapping[str, object] | None = None,
        test_dir: Path,
        timeout_s: float | None = None,
        extra_env: Mapping[str, object] | None = None,
        testcase: str | None = None) -> dict:
    """Run cocotb *test_module* against the prebuilt model in *build_dir* (no build here).

    * *plusargs* ``{"rom_init": path}`` becomes ``+rom_init=path``; a value of ``None`` gives
      a bare ``+name``.  ``Path`` values are made absolute (the simulator's working directory
      is *test_dir*); ``str`` values are passed as they are.
    * *toplevel* is the design's name as given to ``build``; the model's real toplevel
      (the clock wrapper) and clock kind are read from the build stamp.
    * The test writes its result as JSON to the file named by ``FF_RESULT`` (set here to
      ``test_dir/ff_result.json``); that dict is returned, with ``run_seconds`` (wall time of
      the whole simulator process, start-up included) added.
    * *extra_env* reaches the test as environment variables (``FF_MAX_CYCLES``, ``FF_RUNS``...).
    * A failing test, a crashing simulator or a missing result raise RuntimeError with the
      tail of ``test_dir/sim.log``; exceeding *timeout_s* kills the simulator and raises too.

    The process environment is modified during a call (serialised by a lock), so use processes,
    not threads, for parallel runs.
    """
    from cocotb_tools.runner import get_runner      # deferred: cocotb only when a simulation runs

    build_dir = Path(build_dir).resolve()
    clock, sim_top = _model(build_dir, toplevel)
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    log_file = test_dir / "sim.log"
    for f in ("ff_result.json", "results.xml"):
        with contextlib.suppress(FileNotFoundError):
            (test_dir / f).unlink()
    plus = _plusargs(plusargs)
    env = {RESULT_FILE: str(test_dir / "ff_result.json"), "FF_CLOCK": clock}
    env.update({k: str(v) for k, v in (extra_env or {}).items()})

    t0 = time.perf_counter()
    with verilator_environ(env):
        runner = get_runner("verilator")
        # instance override (this runner object is private to this call): adds the timeout
        runner._execute_cmds = _execute_cmds_with_timeout(runner, timeout_s)
        try:
            runner.test(test_module=test_module, hdl_toplevel=sim_top,
                        hdl_toplevel_lang="verilog",  # required when build() was not called here
                        build_dir=build_dir, test_dir=test_dir, plusargs=plus, extra_env=env,
                        results_xml=str(test_dir / "results.xml"), log_file=log_file, testcase=testcase)
        except _SimTimeout as e:
            raise RuntimeError(f"{toplevel}: {e}; log {log_file}:\n{log_excerpt(log_file)}") from None
        except SystemExit as e:  # runner exits when the simulator returns non-zero
            raise RuntimeError(f"{toplevel}: simulator exited with {e.code}; log {log_file}:\n"
                               f"{log_excerpt(log_file)}") from None
    seconds = time.perf_counter() - t0
    result = _result(toplevel, test_dir)
    result["run_seconds"] = round(seconds, 4)
    return result
