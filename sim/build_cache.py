"""A content-addressed cache of Verilated models, safe across processes.

A model lives in ``<root>/<toplevel>-<key16>``, where the key hashes everything that determines the
binary (:func:`build_key`). A build is *finished* when its stamp file ``ff_build.json`` exists: it is
written last and atomically, so a killed build is never mistaken for a good one (its leftovers are wiped
and it is redone). Concurrent builds of the same key in several processes are serialised by an ``fcntl``
lock beside the directory; the losers then see the stamp and return.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fireforge.core.tools import OPT_FAST, OPT_GLOBAL, verilator_version

__all__ = ["STAMP", "build_key", "build_info", "is_built", "cached_build"]

log = logging.getLogger(__name__)

#: the stamp of a finished build
STAMP = "ff_build.json"
#: bumped whenever the way builds are made changes, to invalidate old cache entries
_BUILD_SCHEMA = 1


def build_key(sources: Sequence[Path], toplevel: str, parameters: Mapping[str, str],
              defines: Mapping[str, str], args: Sequence[str]) -> str:
    """Hash of everything that determines the binary: source *contents* (not paths or times),
    toplevel, parameters, defines, flags, Verilator and cocotb versions and cocotb's library
    directory (the binary links ``libcocotbvpi_verilator`` from there by rpath)."""
    import cocotb           # deferred: cocotb is imported only when a build is keyed
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


def build_info(build_dir: Path) -> dict:
    """The stamp of a finished build (``key``, ``build_seconds``, ``args`` ...)."""
    return json.loads((Path(build_dir) / STAMP).read_text())


def is_built(build_dir: Path) -> bool:
    return (Path(build_dir) / STAMP).is_file()


def cached_build(out: Path, make: Callable[[Path], dict]) -> Path:
    """``out`` if it holds a finished build; else ``make(out)`` builds into the fresh, empty directory
    ``out`` (under the lock) and returns the stamp's contents, to which ``build_seconds`` and ``built_at``
    are added before the stamp is written. Returns ``out``."""
    out = Path(out)
    if is_built(out):
        log.info("verilator build cache hit: %s", out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if is_built(out):  # another process finished it while we waited
            return out
        if out.exists():
            shutil.rmtree(out)  # leftovers of an interrupted build
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        info = make(out)
        seconds = time.perf_counter() - t0
        info.update(build_seconds=round(seconds, 3), built_at=time.time())
        tmp = out / (STAMP + ".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, out / STAMP)  # the stamp appears atomically, last
        log.info("verilator build %s took %.1f s", out, seconds)
    return out
