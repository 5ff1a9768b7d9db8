"""The bad-input corpus's one check: a command refused the way a user deserves.

``refuse(args, *words, where=DIR)`` runs ``fireforge ARGS`` in-process and asserts exit status 2, exactly one
line on stderr that starts ``fireforge: error:`` and names every one of ``words``, no traceback, and that
``DIR`` (every file under it, hidden ones included, with its contents) and ``$TMPDIR`` are exactly as they
were: nothing changed, nothing left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from fireforge.cli import main


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and directory under ``roots`` (hidden ones too) with a hash of its contents or link."""
    out = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                if p.is_symlink():
                    out[str(p)] = "-> " + os.readlink(p)
                elif p.is_dir():
                    out[str(p)] = "dir"
                else:
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``fireforge ARGS`` in this process: (exit status, stdout, stderr)."""
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@contextlib.contextmanager
def private_tmpdir():
    """A fresh, empty ``$TMPDIR`` for one command (other processes' scratch files cannot confuse the check);
    yields its path."""
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    d = Path(tempfile.mkdtemp(prefix="ff-refuse-"))
    os.environ["TMPDIR"], tempfile.tempdir = str(d), str(d)
    try:
        yield d
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(d, ignore_errors=True)


def refuse(capsys, args, *words, where: Path | None = None) -> str:
    """Assert ``fireforge ARGS`` is refused cleanly (see the module docstring); returns the message."""
    before = snapshot(where) if where else {}
    with private_tmpdir() as tmp:
        rc, _, err = run_cli(args, capsys)
        left_in_tmp = sorted(p.name for p in tmp.iterdir())
    err = err.strip()
    assert rc == 2, f"exit {rc}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("fireforge: error:"), err
    for w in words:
        assert str(w).lower() in err.lower(), (w, err)
    after = snapshot(where) if where else {}
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"changed or left behind: {changed[:5]}"
    assert not left_in_tmp, f"left in TMPDIR: {left_in_tmp}"
    return err
