"""``fireforge report``: one self-contained HTML page of what fireforge knows about a compiled program and a sweep.

The page holds the sections whose data it is given (:mod:`fireforge.sw.report_sections` builds them): the cycle
model's per-layer cycles and MAC utilization, DRAM traffic (DRAM mode), resources against the board's capacity
(the fit check, and ``generate --board --json``'s figures), golden vs ONNX Runtime (and the Verilated engine, from
``simulate --json``) per layer, and the explorer's Pareto fronts. Plotly draws the charts; its JavaScript is
inlined once, so the file opens offline — a report is often read on a machine without the package or a network.
"""

from __future__ import annotations

import contextlib
import html
import os
from datetime import datetime, timezone
from pathlib import Path

from fireforge.errors import FireforgeError

__all__ = ["write_report", "render_report", "report_inputs"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 13px; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
tr.bad td { background: #fde8e8; } tr.front td { background: #e8f4fd; }
.note { color: #555; font-size: 13px; } nav a { margin-right: 1em; }
.table-wrap { max-height: 520px; overflow: auto; }
"""


def report_inputs(out_dir, sim_path=None, board_path=None, *, output=None):
    """``fireforge report``'s inputs, each checked before anything is written: (the loaded compile output, the
    parsed ``--sim`` and ``--board`` JSON or None), every refusal one line naming its file. ``output``: the
    report's path, refused when it is one of those JSON files."""
    from fireforge.core.compiled import Compiled
    from fireforge.core.program import read_json
    from fireforge.sw import report_sections as sec

    for given in (sim_path, board_path):
        if given and output and os.path.realpath(given) == os.path.realpath(output):
            raise FireforgeError(f"output {output} is the input {given}; write the report to another file")
    compiled = Compiled.load(out_dir)
    sim = board = None
    if sim_path:
        sim = read_json(Path(sim_path), "give the JSON that `fireforge simulate OUT/ --input X --json` prints")
        sec.check_sim(sim, compiled, where=str(sim_path))
    if board_path:
        board = read_json(Path(board_path), "give the JSON that `fireforge generate OUT/ -o RTL/ --board NAME "
                                            "--json` prints")
        sec.check_board(board, compiled, where=str(board_path))
    return compiled, sim, board


def render_report(*, out_dir=None, sim: dict | None = None, board: dict | None = None,
                  points: list[dict] | None = None, title: str | None = None) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    from fireforge.sw import report_sections as sec

    if out_dir is None and points is None:
        raise FireforgeError("a report needs a compile output (OUT/) or explorer points")
    if out_dir is None and (sim is not None or board is not None):
        raise FireforgeError("--sim and --board describe a compiled program: give its OUT/ too")
    sections, summary = [], []
    if out_dir is not None:
        from fireforge.core.compiled import Compiled

        compiled = Compiled.of(out_dir)
        if sim is not None:
            sec.check_sim(sim, compiled)
        summary = sec.summary(compiled)
        sections += [sec.cycles_section(compiled, sim), sec.traffic_section(compiled),
                     sec.resources_section(compiled, board), sec.diff_section(compiled, sim)]
        title = title or f"fireforge report: {compiled.program.meta.get('source') or compiled.out_dir}"
    if points is not None:
        sections.append(sec.pareto_section(sec.check_points(points)))
    sections = [s for s in sections if s is not None]
    return _page(title or "fireforge report", summary, sections)


def _page(title: str, summary: list[tuple[str, str]], sections: list) -> str:
    """The whole document: plotly's JavaScript once in the head (only when there is a chart), then the sections."""
    charts = any(s.charts for s in sections)
    js = ""
    if charts:
        from plotly.offline import get_plotlyjs

        js = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary)
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.heading)}</a>' for s in sections)
    body = "\n".join(f'<section id="{s.anchor}"><h2>{html.escape(s.heading)}</h2>\n{s.html}</section>'
                     for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>{js}</head>\n<body>"
            f"<h1>{html.escape(title)}</h1><p class=\"note\">written by fireforge report, {when}</p>"
            + (f"<table>{facts}</table>" if facts else "") + f"<nav>{nav}</nav>\n{body}\n</body></html>\n")


def write_report(path, *, out_dir=None, sim: dict | None = None, board: dict | None = None,
                 points: list[dict] | None = None, title: str | None = None) -> Path:
    """Write the report to ``path`` and return it.

    ``out_dir``: a compile output (a path or a :class:`~fireforge.core.compiled.Compiled`); ``sim``: the parsed
    ``fireforge simulate --json`` of it; ``board``: the parsed ``fireforge generate --board ... --json``;
    ``points``: the explorer's point dicts. Written to a temporary file beside ``path`` and renamed into place,
    so a failure never leaves a half-written report (or costs the previous one); a symlinked ``path`` is
    written through. A ``path`` that is a directory, or a file the report is made from, is refused.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise FireforgeError(f"output {path} is a directory; give the HTML file to write, e.g. {path / 'report.html'}")
    if out_dir is not None:
        from fireforge.core.compiled import Compiled

        out_dir = Compiled.of(out_dir)      # loaded (and checked) once, before anything is written
        read = {Path(os.path.realpath(out_dir.out_dir / n)) for n in ("manifest.json", *out_dir.manifest["files"])}
        if target in read:
            raise FireforgeError(f"output {path} is {out_dir.out_dir}'s own {target.name}, which the report reads; "
                                 f"write the report elsewhere")
    text = render_report(out_dir=out_dir, sim=sim, board=board, points=points, title=title)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as e:
        raise FireforgeError(f"cannot write {path}: {e.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return path

