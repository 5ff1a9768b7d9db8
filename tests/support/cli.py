"""The bad-input corpus's one check: a command refused the way a user deserves.

``refuse(args, *words, where=DIR)`` runs ``fireforge ARGS`` in-process and asserts exit status 2, exactly one
line on stderr that starts ``fireforge: error:`` and names every one of ``words``, no traceback, and that
``DIR`` (every file under it, hidden ones included, with its contents) and ``$TMPDIR`` are exactly as they
were: nothing changed, nothing left behind.
"""

from __future__ import annotations

import hashlib
import os
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


def temp_entries() -> set[str]:
    """The top-level entries of ``$TMPDIR`` (pytest's own folders aside): where a killed or failed run's
    scratch folders would stay."""
    return {p.name for p in Path(tempfile.gettempdir()).iterdir() if not p.name.startswith("pytest-of-")}


def refuse(capsys, args, *words, where: Path | None = None) -> str:
    """Assert ``fireforge ARGS`` is refused cleanly (see the module docstring); returns the message."""
    before, temp_before = snapshot(where) if where else {}, temp_entries()
    rc, _, err = run_cli(args, capsys)
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
    assert temp_entries() <= temp_before, f"left in TMPDIR: {sorted(temp_entries() - temp_before)}"
    return err
