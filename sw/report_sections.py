"""The sections of ``fireforge report`` (:mod:`fireforge.sw.report`), each from the module that owns its numbers:
the cycle models (:mod:`fireforge.sw.perf`, :mod:`fireforge.sw.dram_perf`), the fit check
(:mod:`fireforge.hw.board.fit`), :func:`fireforge.sw.compare.compare` and the explorer's fronts
(:mod:`fireforge.sw.pareto`). A section builder returns ``None`` when it has no data."""

from __future__ import annotations

import html
from dataclasses import dataclass

from fireforge.core.compiled import Compiled
from fireforge.errors import FireforgeError

__all__ = ["Section", "summary", "cycles_section", "traffic_section", "resources_section", "diff_section",
           "pareto_section", "check_sim", "check_board", "check_points"]

#: the point keys shown on hover and in the explorer table, in this order
POINT_KEYS = ("id", "status", "model", "version", "squeeze_ratio", "pct3x3", "base_e", "incr_e", "freq", "bypass",
              "input_size", "classes", "mac_units", "memory", "board", "params", "weight_bytes", "macs", "cycles",
              "dram_bytes", "clock_mhz", "fps", "fits", "misfit", "luts", "ffs", "dsps", "bram_blocks", "error")


@dataclass
class Section:
    anchor: str
    heading: str
    html: str
    charts: int = 0


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


def _pct(v) -> str | None:
    return None if v is None else f"{v:.1%}"


def _table(head: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join(f'<tr class="{c}">' + "".join(f"<td{_align(v)}>{_cell(v)}</td>" for v in r) + "</tr>"
                  for r, c in zip(rows, classes or [""] * len(rows)))
    return f'<div class="table-wrap"><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></div>'


def _align(v) -> str:
    """Text cells left, numbers right (a percentage is text that reads as a number)."""
    return ' style="text-align:left"' if isinstance(v, str) and not v.endswith("%") else ""


def _chart(fig, name: str, height: int = 420, top: int = 40) -> str:
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=top, b=60), template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}",
                       config={"displaylogo": False, "responsive": True})


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def summary(c: Compiled) -> list[tuple[str, str]]:
    p, cfg = c.program, c.config
    t = p.tensors[p.input]
    return [("model", str(p.meta.get("source", "?"))), ("compile output", str(c.out_dir)),
            ("input", f"{t.channels}x{t.height}x{t.width}"), ("layers", str(len(p.layers))),
            ("engine", f"{cfg.mac_units} MAC units, {cfg.memory} mode"), ("board", c.board or "none (no --board)")]


# -- cycles -------------------------------------------------------------------------------------------------------

def _cycle_rows(c: Compiled) -> tuple[list[str], list[int], list[int], list[str], object]:
    """(names, predicted cycles, ideal cycles, the layers each row covers, the DRAM stream prediction or None).

    Resident: one row per descriptor (a fused pool is its writer's). DRAM mode: one row per layer that stores its
    own result — its cycles cover the layers before it chained through the buffer, so their ideal cycles count."""
    from fireforge.sim.hw_run import ideal_cycles

    layers = {l.name: l for l in c.program.layers}
    ideal = {n: ideal_cycles(c.program, l, c.config) for n, l in layers.items()}
    if not c.config.dram:
        from fireforge.sw.perf import predict_compiled

        pred = predict_compiled(c)
        fused = {e.name: e.fused_with for e in c.rom_layers}
        covers = [n + (f" + {fused[n]}" if fused.get(n) else "") for n in pred.names]
        return pred.names, pred.layer_cycles, pred.ideal, covers, None
    from fireforge.sw.dram_perf import bus_for, predict_compiled_stream

    stream = predict_compiled_stream(c, bus_for(c.board))
    names, ideals, covers, chain = [], [], [], []
    for entry in c.dram["layers"]:
        chain.append(entry["name"])
        if not (entry["fused_into"] or entry["stored_by"]):
            names.append(entry["name"])
            ideals.append(sum(ideal[n] for n in chain))
            covers.append(" + ".join(chain))
            chain = []
    n = min(len(names), len(stream.layer_cycles))
    return names[:n], stream.layer_cycles[:n], ideals[:n], covers[:n], stream


def cycles_section(c: Compiled, sim: dict | None) -> Section:
    import plotly.graph_objects as go

    names, cycles, ideal, covers, stream = _cycle_rows(c)
    util = [i / k if k else None for i, k in zip(ideal, cycles)]
    measured = {l["name"]: l.get("cycles") for l in (sim or {}).get("layers", [])}
    fig = go.Figure(go.Bar(name="predicted cycles", x=names, y=cycles, customdata=[u or 0 for u in util],
                           hovertemplate="%{x}<br>%{y:,} cycles<br>utilization %{customdata:.1%}<extra></extra>"))
    got = [measured.get(n) for n in names]
    if any(g is not None for g in got):
        fig.add_bar(name="measured (simulate --json)", x=names, y=got)
    fig.add_scatter(name="MAC utilization", x=names, y=util, yaxis="y2", mode="lines+markers")
    fig.update_layout(barmode="group", yaxis=dict(title="cycles"), legend=dict(orientation="h", y=1.12),
                      yaxis2=dict(title="utilization", overlaying="y", side="right", range=[0, 1], tickformat=".0%"))
    mode = ("DRAM mode: fireforge.sw.dram_perf.predict_stream, the command stream timed on the board's bus"
            if stream else "resident mode: fireforge.sw.perf.predict_compiled, the descriptors' loop nests")
    rows = [[n, cv, k, i, _pct(u), measured.get(n)] for n, cv, k, i, u in zip(names, covers, cycles, ideal, util)]
    total = stream.cycles if stream else sum(cycles)
    head = (f"Predicted by the compiler's cycle model ({mode}): {total:,} cycles per inference on "
            f"{c.config.mac_units} MAC units, utilization {sum(ideal) / total:.1%} (ideal cycles = MACs ÷ MAC units).")
    return Section("cycles", "Per-layer cycles and MAC utilization", _note(head) + _chart(fig, "cycles") +
                   _table(["layer", "computes", "predicted cycles", "ideal cycles", "utilization",
                           "measured cycles"], rows), charts=1)


# -- DRAM traffic -------------------------------------------------------------------------------------------------

def traffic_section(c: Compiled) -> Section | None:
    if not c.config.dram:
        return None
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fireforge.sw.dram_perf import bus_for, predict_compiled_stream

    d, bus = c.dram, bus_for(c.board)
    stream = predict_compiled_stream(c, bus)
    layers = d["layers"]
    marked = [l["name"] for l in layers if not (l["fused_into"] or l["stored_by"])][:len(stream.layer_bus)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("DRAM bytes per layer", "bus vs core busy per stored layer"))
    names = [l["name"] for l in layers]
    fig.add_bar(name="bytes read", x=names, y=[l["dram_bytes_read"] for l in layers], row=1, col=1)
    fig.add_bar(name="bytes written", x=names, y=[l["write_bytes"] for l in layers], row=1, col=1)
    fig.add_bar(name="bus busy (cycles)", x=marked, y=stream.layer_bus, row=1, col=2)
    fig.add_bar(name="core busy (cycles)", x=marked, y=stream.layer_compute, row=1, col=2)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.25))
    span = {n: k for k, n in enumerate(marked)}
    rows, classes = [], []
    for l in layers:
        k = span.get(l["name"])
        bus_c, core_c = (stream.layer_bus[k], stream.layer_compute[k]) if k is not None else (None, None)
        bound = None if k is None else stream.bound(k) == "memory"
        via = l["fused_into"] and f"buffer → {l['fused_into']}" or l["stored_by"] and f"stored by {l['stored_by']}"
        rows.append([l["name"], l["tiles"], l["weight_bytes"], l["read_bytes"], l["write_bytes"], via or None,
                     bus_c, core_c, bound])
        classes.append("bad" if bound else "")
    head = (f"{d['bytes_read']:,} bytes read (the command stream included) and {d['bytes_written']:,} written per "
            f"inference on the {c.board or 'ulx3s-85f'} bus ({bus.read_bytes_per_cycle:g} B/cycle read, "
            f"{bus.write_bytes_per_cycle:g} written, {bus.per_run} cycles per DMA run); predicted "
            f"{stream.cycles:,} cycles, {stream.stall_cycles:,} of them waiting for memory, "
            f"{bus.clock_mhz * 1e6 / stream.cycles:,.1f} fps at {bus.clock_mhz:g} MHz. A stored layer is "
            f"memory-bound when the bus is busier than the core in its span (red rows).")
    return Section("traffic", "DRAM traffic per layer", _note(head) + _chart(fig, "traffic", 480, top=90) + _table(
        ["layer", "tiles", "weight bytes read", "map bytes read", "bytes written", "not stored: via", "bus cycles",
         "core cycles", "memory-bound"], rows, classes), charts=1)


# -- resources ----------------------------------------------------------------------------------------------------

def check_board(board: dict | None, c: Compiled, where: str = "--board") -> str | None:
    """The board the resources are checked against: ``board``'s (``generate --board --json``, checked for shape
    and against the board OUT/ was compiled for), else OUT/'s own; None without either."""
    from fireforge.hw.board.catalogue import get_board

    if board is None:
        return c.board
    ok = isinstance(board, dict) and isinstance(board.get("board"), str) and isinstance(board.get("resources"), dict)
    ok = ok and all(isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
                    for v in board["resources"].values())
    if not ok:
        raise FireforgeError(f"{where}: not the JSON that `fireforge generate OUT/ -o RTL/ --board NAME --json` "
                             f"prints (it needs \"board\" and \"resources\": {{name: [used, available]}})")
    try:
        name = get_board(board["board"]).name
    except FireforgeError as e:
        raise FireforgeError(f"{where}: {e}") from None
    if c.board is not None and c.board != name:
        raise FireforgeError(f"{where} is for {name}, but {c.out_dir} was compiled for {c.board}; give "
                             f"`generate --board {c.board} --json`'s output")
    return name


def resources_section(c: Compiled, board: dict | None) -> Section | None:
    name = check_board(board, c)
    if name is None:
        return None
    from fireforge.hw.board.fit import fit_check

    import plotly.graph_objects as go

    rep = fit_check(c, name)
    b, n = rep.board, rep.needs
    est = {"LUT": (n["lut"], b.luts), "FF": (n["ff"], b.ffs), "DSP": (n["dsp"], b.multipliers),
           f"BRAM ({b.block_name} blocks)": (n["bram_blocks"], b.bram_blocks),
           "BRAM bits": (n["bram_bits"], b.bram_bits)}
    gen = {}
    if board:
        keys = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram_bits": "BRAM bits"}
        gen = {keys.get(k, k): tuple(v) for k, v in board["resources"].items()}
    rows, classes = [], []
    for label, (used, avail) in est.items():
        g = gen.get(label)
        rows.append([label, avail, used, avail - used, _pct(used / avail) if avail else None,
                     g[0] if g else None, (g[1] - g[0]) if g else None])
        classes.append("bad" if used > avail or (g and g[0] > g[1]) else "")
    fig = go.Figure(go.Bar(name="fit check estimate", x=list(est), y=[u / a if a else 0 for u, a in est.values()]))
    if gen:
        fig.add_bar(name="generate --json", x=list(gen), y=[u / a if a else 0 for u, a in gen.values()])
    fig.add_hline(y=1.0, line_dash="dash", annotation_text="capacity")
    fig.update_layout(barmode="group", yaxis=dict(title="used / available", tickformat=".0%"))
    text = (f"{b.name} ({b.device}), {rep.config.mac_units}-MAC {rep.config.memory}-mode engine: "
            f"{'fits' if rep.fits else 'does not fit'} by the fit check (fireforge.hw.board.fit; LUT/FF estimated).")
    extra = ""
    if board:
        facts = [("fits (generate)", board.get("fits")), ("Fmax (nextpnr)", board.get("fmax_mhz")),
                 ("resources from", board.get("resources_source")), ("bitstream", board.get("bitstream"))]
        extra = _note("generate --json: its figures are the fit check's estimate, or yosys's counts after --synth, "
                      "or nextpnr's after --pnr.") + _table(["", "value"], [[k, v] for k, v in facts if v is not None])
    problems = "".join(_note(p) for p in rep.problems + rep.suggestions)
    return Section("resources", "Resources against the board's capacity", _note(text) + problems + _chart(fig, "res")
                   + _table(["resource", "available", "used (estimate)", "margin", "used %", "used (generate)",
                             "margin (generate)"], rows, classes) + extra, charts=1)


# -- HW / golden / ONNX Runtime -----------------------------------------------------------------------------------

def check_sim(sim: dict, c: Compiled, where: str = "--sim") -> None:
    """``--sim``: the ``simulate --json`` of this program (every layer it names is one of OUT/'s)."""
    layers = sim.get("layers") if isinstance(sim, dict) else None
    if not (isinstance(layers, list) and all(isinstance(l, dict) and isinstance(l.get("name"), str) for l in layers)):
        raise FireforgeError(f"{where}: not the JSON that `fireforge simulate OUT/ --input X --json` prints (it "
                             f"needs \"layers\": [{{\"name\", \"mismatches\", ...}}])")
    known = {l.name for l in c.program.layers}
    other = [l["name"] for l in layers if l["name"] not in known]
    if other:
        raise FireforgeError(f"{where}: layer '{other[0]}' is not in {c.out_dir}: the JSON is another program's "
                             f"simulation; simulate this OUT/ with --json")


def diff_section(c: Compiled, sim: dict | None) -> Section:
    from fireforge.sw.compare import compare
    from fireforge.sw.compile import input_shape
    from fireforge.sw.inputs import default_calibration

    x = default_calibration(input_shape(c.program))[:1]
    cmp = compare(c, x)
    hw = {l["name"]: l for l in (sim or {}).get("layers", [])}
    rows, classes = [], []
    for r in cmp.layers:
        h = hw.get(r.name, {})
        rows.append([r.name, r.kind, "x".join(map(str, r.shape)), r.size, r.mismatches, r.max_abs_diff,
                     h.get("mismatches"), h.get("cycles")])
        classes.append("bad" if r.mismatches or h.get("mismatches") else "")
    top = [["golden", cmp.top5_golden], ["ONNX Runtime", cmp.top5_ort]]
    if sim and isinstance(sim.get("top5"), dict) and sim["top5"].get("hw"):
        top.append(["hardware (simulate)", sim["top5"]["hw"]])
    text = (f"Golden model vs ONNX Runtime (OUT/quantized.onnx) on the default calibration's first tensor "
            f"(standard normal, seed 0): {cmp.mismatches} mismatching bytes, top-1 "
            f"{'agrees' if cmp.top1_agree else 'DIFFERS'}. ")
    text += (f"HW columns: simulate --json ({sim.get('mismatches', '?')} mismatching bytes; a dash: that layer's "
             f"output was not compared — simulate --dump-layers compares every one)." if sim else
             "No --sim RESULT.json given: the HW columns are empty.")
    return Section("diff", "HW / golden / ONNX Runtime per layer", _note(text) + _table(
        ["layer", "kind", "shape", "bytes", "golden≠ORT", "max |Δ|", "HW≠golden", "HW cycles"], rows, classes)
        + _table(["top-5", "classes"], [[k, ", ".join(map(str, v))] for k, v in top]))


# -- explorer -----------------------------------------------------------------------------------------------------

def check_points(points) -> list[dict]:
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise FireforgeError("explorer points must be a list of JSON objects (the explorer's results.json)")
    return points


def _hover(p: dict) -> str:
    return "<br>".join(f"{k}: {_cell(p.get(k))}" for k in POINT_KEYS if p.get(k) is not None)


def pareto_section(points: list[dict]) -> Section:
    import plotly.graph_objects as go

    from fireforge.sw.pareto import FRONTS, pareto_front

    charts, on = [], {id(p): [] for p in points}
    for f in FRONTS:
        fig = go.Figure()
        for fits, label, symbol in ((True, "fits", "circle"), (False, "does not fit", "x")):
            pts = [p for p in points if p.get(f.x) is not None and p.get(f.y) is not None and bool(p.get("fits")) == fits]
            if pts:
                fig.add_scatter(name=label, x=[p[f.x] for p in pts], y=[p[f.y] for p in pts], mode="markers",
                                marker=dict(symbol=symbol, size=9), text=[_hover(p) for p in pts],
                                hovertemplate="%{text}<extra></extra>")
        front = pareto_front(points, f)
        for p in front:
            on[id(p)].append(f.name)
        if front:
            fig.add_scatter(name="Pareto front", x=[p[f.x] for p in front], y=[p[f.y] for p in front],
                            mode="lines+markers", line=dict(shape="hv", dash="dot"),
                            marker=dict(symbol="circle-open", size=16), hoverinfo="skip")
        fig.update_layout(title=f"{f.y_label} vs {f.x_label} ({f.name})", xaxis_title=f.x_label,
                          yaxis_title=f.y_label)
        charts.append(_chart(fig, f"pareto-{f.name}", 460))
    rows = [[", ".join(on[id(p)]) or None] + [p.get(k) for k in POINT_KEYS] for p in points]
    classes = ["front" if on[id(p)] else "bad" if p.get("status") == "failed" else "" for p in points]
    failed = sum(p.get("status") == "failed" for p in points)
    text = (f"{len(points)} points ({failed} failed, {sum(bool(p.get('fits')) for p in points)} fit their board). "
            f"Only fitting points take part in a front (fireforge.sw.pareto); hover a point for its details. "
            f"Blue rows: on a front; red: failed.")
    return Section("pareto", "Design-space exploration: Pareto fronts", _note(text) + "".join(charts) +
                   _table(["on front"] + list(POINT_KEYS), rows, classes), charts=len(charts))
