"""The ports of a Verilog module, read from its header: what the build needs to make the clock wrapper and
the VPI control file. A small parser is enough: it reads ``module top #(...) (...);`` and the port
declarations, which is all Amaranth emits (``input clk;``, ``output [31:0] cycles;``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["top_ports", "top_port_decls"]

_DECL = re.compile(r"\b(input|output|inout)\b([^;,()]*?)\b([A-Za-z_][A-Za-z0-9_$]*)\s*(?=[;,)])")


def _source_text(src: Path) -> str:
    """The text of a Verilog file without comments and ``(* attributes *)``."""
    text = src.read_text(errors="replace")
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)


def _verilog_texts(sources: Sequence[Path]):
    """(path, text) of the Verilog files among *sources* (Verilator control files skipped)."""
    for src in sources:
        if Path(src).suffix != ".vlt":
            yield src, _source_text(Path(src))


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


def _skip_space(text: str, i: int) -> int:
    while text[i].isspace():
        i += 1
    return i


def top_ports(sources: Sequence[Path], toplevel: str) -> list[str]:
    """Port names of module *toplevel* found in *sources* (ANSI or non-ANSI header)."""
    pat = re.compile(r"\bmodule\s+" + re.escape(toplevel) + r"\b")
    for _, text in _verilog_texts(sources):
        m = pat.search(text)
        if not m:
            continue
        i = _skip_space(text, m.end())
        if text[i] == "#":
            _, i = _balanced(text, text.index("(", i))
            i = _skip_space(text, i)
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


def top_port_decls(sources: Sequence[Path], toplevel: str) -> list[tuple[str, str, int]]:
    """(direction, name, width) of each port of *toplevel*, for numeric widths only (what
    Amaranth emits).  Raises ValueError for a width that depends on a parameter."""
    names = top_ports(sources, toplevel)
    pat = re.compile(r"\bmodule\s+" + re.escape(toplevel) + r"\b(.*?)\bendmodule\b", re.S)
    for _, text in _verilog_texts(sources):
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
