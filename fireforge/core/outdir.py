"""Output directories that appear whole or not at all.

Every command that writes a directory (compile, generate, the board flow) builds it in a hidden sibling and
renames it into place only when everything succeeded, so a failed or killed run never leaves an ``OUT/``
that looks valid; hidden leftovers of killed runs are swept on the next run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fireforge.errors import FireforgeError

__all__ = ["prepare_output_dir", "commit_output_dir"]


def prepare_output_dir(out_dir: Path, force: bool) -> Path:
    """Check ``out_dir`` can be (re)written and return a fresh temporary directory beside it."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FireforgeError(f"output {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not force:
            raise FireforgeError(f"output directory {out_dir} is not empty; pass --force to replace it")
    parent = out_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _sweep_abandoned(parent, out_dir.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as e:
        raise FireforgeError(f"cannot write the output directory {out_dir}: {e.strerror}") from None
    return tmp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_abandoned(parent: Path, name: str) -> None:
    """Remove the hidden ``.NAME.tmp-PID-*`` / ``.NAME.old-PID`` siblings of a run that was killed (its
    process is gone): hours of synthesis leave large directories nobody else will clean."""
    for d in parent.iterdir():              # not a glob: NAME may hold glob characters
        if not d.name.startswith(f".{name}."):
            continue
        kind, _, rest = d.name[len(name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("tmp", "old") and pid.isdigit() and d.is_dir() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def commit_output_dir(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``tmp`` (a rename: readers never see a half-written directory)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)
