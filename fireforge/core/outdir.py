"""Output directories that appear whole or not at all, and never at the cost of the command's own inputs.

Every command that writes a directory (compile, generate, the board flow) builds it in a hidden sibling and
renames it into place only when everything succeeded, so a failed or killed run never leaves an ``OUT/``
that looks valid; hidden leftovers of killed runs are swept on the next run.

``--force`` replaces a previous *output*: an ``OUT/`` that is, or holds, a file the command reads (the model,
the calibration data, the compiled program) is refused before anything is written. A symlinked ``OUT`` is
written through: the new directory replaces the link's target and the link stays.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from fireforge.errors import FireforgeError

__all__ = ["prepare_output_dir", "commit_output_dir"]


def prepare_output_dir(out_dir: Path, force: bool, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Check ``out_dir`` can be (re)written and return a fresh temporary directory beside it (beside the
    link's target for a symlink). ``inputs``: the files and folders the command reads (``None`` entries are
    skipped); ``out_dir`` equal to or holding one of them is refused."""
    out_dir = Path(out_dir)
    _refuse_inputs_inside(out_dir, inputs)
    target = _target(out_dir)
    if target.exists():
        if not target.is_dir():
            raise FireforgeError(f"output {out_dir} exists and is not a directory")
        if any(target.iterdir()) and not force:
            raise FireforgeError(f"output directory {out_dir} is not empty; pass --force to replace it")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _sweep_abandoned(parent, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as e:
        raise FireforgeError(f"cannot write the output directory {out_dir}: {e.strerror}") from None
    return tmp


def _target(out_dir: Path) -> Path:
    """Where ``out_dir``'s contents really live: symlinks (of it or of a parent) resolved."""
    return Path(os.path.realpath(out_dir))


def _refuse_inputs_inside(out_dir: Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an ``out_dir`` that is or holds one of ``inputs``, as written or with symlinks resolved."""
    outs = {Path(os.path.abspath(out_dir)), _target(out_dir)}
    for given in inputs:
        if given is None:
            continue
        for path in {Path(os.path.abspath(given)), Path(os.path.realpath(given))}:
            for out in outs:
                if path == out or out in path.parents:
                    relation = "is" if path == out else "holds"
                    raise FireforgeError(f"output directory {out_dir} {relation} the input {given} this command "
                                         f"reads, which replacing it would delete; write to another directory")


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
    """Replace ``out_dir`` (a symlink's target) by the finished ``tmp`` (a rename: readers never see a
    half-written directory)."""
    target = _target(Path(out_dir))
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)
