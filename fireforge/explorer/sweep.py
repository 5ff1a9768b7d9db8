"""``fireforge explore``: a design space swept on Dask, each point a task, results cached by content hash.

The graph: one ``lower`` task per network (build, quantize, lower: :func:`~fireforge.explorer.point.lower_model`)
and one ``point`` task per (network, engine, board) that depends on it (:func:`~fireforge.explorer.point.evaluate`);
``--verify N`` adds a simulation task for N sampled fitting points and ``--synth`` / ``--pnr`` a hardware task per
fitting point. The cluster is a local one on this machine's cores unless a scheduler address is given. A worker that
dies takes its tasks with it and Dask reruns them elsewhere (the ``lower`` results it held too, from their lineage).

Each finished point is written at once to ``OUT/cache/KEY.json`` (KEY: the point's content hash — the knobs or the
ONNX file's bytes, engine, board, and :data:`CACHE_VERSION`), so a killed sweep resumes where it stopped and a
second run recomputes nothing. A point whose task raises is recorded with ``status: "failed"`` and its reason; a
network that fits no engine on its board is a point that does not fit (``fits: false``, ``misfit``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fireforge.errors import FireforgeError
from fireforge.explorer.point import evaluate, lower_model
from fireforge.explorer.space import Point, Space
from fireforge.sw.pareto import FRONTS, pareto_front

__all__ = ["explore", "ExploreResult", "CACHE_VERSION", "write_table", "format_summary"]

#: bump when a point's figures change meaning (a new cycle model, a new field), so old caches are not reused
CACHE_VERSION = "explore-1"


@dataclass
class ExploreResult:
    rows: list[dict]
    out_dir: Path
    seconds: float
    computed: int                       # points evaluated in this run (the rest came from the cache)
    cached: int

    @property
    def verified(self) -> list[dict]:
        """The points measured on the Verilated engine (``--verify``, this run or an earlier one)."""
        return [r for r in self.rows if r.get("measured_cycles") is not None]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def best(self, n: int = 5, key: str = "fps") -> list[dict]:
        """The ``n`` fitting points with the highest ``key``."""
        fit = [r for r in self.rows if r.get("fits") and r.get(key) is not None]
        return sorted(fit, key=lambda r: -r[key])[:n]

    def fronts(self) -> dict[str, list[dict]]:
        return {f.name: pareto_front(self.rows, f) for f in FRONTS}


# -- tasks (run on the workers; never raise: a failure is a row) ---------------------------------------------------

class _LowerFailure:
    def __init__(self, message: str):
        self.message = message


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if isinstance(e, FireforgeError) else f"{type(e).__name__}: {e}"


def _lower_task(model):
    try:
        return lower_model(model)
    except Exception as e:
        return _LowerFailure(_reason(e))


def _point_task(point: Point, lowered, key: str) -> dict:
    if isinstance(lowered, _LowerFailure):
        return _failed(point, key, lowered.message)
    try:
        return {"id": key, **evaluate(point, lowered)}
    except Exception as e:
        return _failed(point, key, _reason(e))


def _failed(point: Point, key: str, reason: str) -> dict:
    return {"id": key, **point.row(), "status": "failed", "error": reason, "fits": False, "misfit": None,
            **{k: None for k in ("params", "weight_bytes", "macs", "cycles", "dram_bytes", "clock_mhz", "fps",
                                 "luts", "ffs", "dsps", "bram_blocks", "resources", "engine")}}


def _verify_task(point: Point, row: dict, work: Path) -> dict:
    """Compile the point for its board and run it on the Verilated engine: measured against predicted cycles."""
    from fireforge.explorer.verify import verify_point
    try:
        return verify_point(point, row, work)
    except Exception as e:
        return {"id": row["id"], "status": "failed", "error": _reason(e)}


# -- the sweep -----------------------------------------------------------------------------------------------------

def _write_text(path: Path, text: str) -> None:
    """Written beside, then renamed: a killed sweep never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=1, default=str))


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None):
    """A client of the scheduler at ``scheduler``, or of a local cluster that is shut down with it."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise FireforgeError(f"cannot reach the Dask scheduler at {scheduler} ({e}); start one "
                                 f"(`dask scheduler`) or leave --scheduler out for a local cluster")
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


class _Progress:
    """points done / running / failed on one line of ``stream`` (redrawn on a terminal, every 10 % otherwise)."""

    def __init__(self, total: int, stream, client):
        self.total, self.stream, self.client = total, stream, client
        self.done = self.failed = 0
        self.tty = getattr(stream, "isatty", lambda: False)()
        self._last = -1

    def running(self) -> int:
        try:
            return sum(1 for keys in self.client.processing().values() for k in keys if str(k).startswith("point-"))
        except Exception:
            return 0

    def update(self, row: dict | None = None) -> None:
        if row is not None:
            self.done += 1
            self.failed += row.get("status") == "failed"
        if self.stream is None:
            return
        step = self.done * 10 // max(1, self.total)
        if not self.tty and step == self._last and self.done < self.total:
            return
        self._last = step
        width = 30
        fill = width * self.done // max(1, self.total)
        line = (f"[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} points done, "
                f"{self.running()} running, {self.failed} failed")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def explore(space: Space, out_dir: str | Path, *, scheduler: str | None = None, workers: int | None = None,
            verify: int = 0, synth: bool = False, pnr: bool = False, progress=sys.stderr, log=lambda m: None,
            on_result=None) -> ExploreResult:
    """Sweep ``space`` into ``out_dir`` (``cache/``, ``results.json``, ``results.csv``); see the module docstring.

    ``on_result(row, client)``: called on the client as each computed point arrives (tests use it to kill a
    worker mid-sweep)."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FireforgeError(f"{out} exists and is not a directory; give -o a directory")
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    salt = CACHE_VERSION + ("+synth" if synth else "") + ("+pnr" if pnr else "")
    points = space.points()
    keys = [p.key(salt) for p in points]
    rows: dict[str, dict] = {}
    for k in keys:
        try:
            rows[k] = json.loads((cache / f"{k}.json").read_text())
        except (OSError, ValueError):
            pass
    todo = [(p, k) for p, k in zip(points, keys) if k not in rows]
    cached = len(points) - len(todo)
    log(f"{len(points)} points ({cached} from the cache in {cache})")
    if todo or verify or synth or pnr:
        with _client(scheduler, workers) as client:
            if todo:
                _sweep(client, todo, rows, cache, progress, on_result)
            if synth or pnr:
                _hardware(client, points, keys, rows, cache, out, pnr, log)
            if verify:
                _verify(client, points, keys, rows, cache, out, verify, log)
    ordered = [rows[k] for k in keys]
    _write_json(out / "results.json", ordered)
    write_table(ordered, out / "results.csv")
    return ExploreResult(ordered, out, time.perf_counter() - t0, len(todo), cached)


def _sweep(client, todo, rows, cache, progress, on_result) -> None:
    from dask.distributed import as_completed

    lowered = {}
    futures = []
    for p, k in todo:
        mk = p.model.key()
        if mk not in lowered:
            lowered[mk] = client.submit(_lower_task, p.model, key=f"lower-{mk}", retries=2)
        futures.append(client.submit(_point_task, p, lowered[mk], k, key=f"point-{k}", retries=2))
    bar = _Progress(len(futures), progress, client)
    bar.update()
    for fut in as_completed(futures):
        row = fut.result()
        rows[row["id"]] = row
        _write_json(cache / f"{row['id']}.json", row)
        bar.update(row)
        if on_result:
            on_result(row, client)


def _verify(client, points, keys, rows, cache, out, n, log) -> None:
    """N fitting points that can be simulated (resident, or DRAM mode on a board whose DRAM profile is simulated),
    a seeded sample, compiled and run on the Verilated engine."""
    from fireforge.sw.simulate import SIMULATED_DRAM

    fitting = [(p, k) for p, k in zip(points, keys) if rows[k].get("fits")
               and (rows[k]["memory"] == "resident" or rows[k]["board"] in SIMULATED_DRAM)]
    if not fitting:
        log("--verify: no fitting point can be simulated (resident, or DRAM mode on "
            f"{', '.join(SIMULATED_DRAM)}); nothing verified")
        return
    n = min(n, len(fitting))
    picks = sorted(random.Random(0).sample(range(len(fitting)), n))
    todo = [(p, k) for i, (p, k) in enumerate(fitting) if i in picks and "measured_cycles" not in rows[k]]
    futures = [client.submit(_verify_task, p, rows[k], out / "verify" / k, key=f"verify-{k}") for p, k in todo]
    for fut in futures:
        v = fut.result()
        row = rows[v["id"]]
        if v.get("status") == "failed":
            row["verify_error"] = v["error"]
        else:
            row.update(measured_cycles=v["measured_cycles"], cycle_error=v["cycle_error"],
                       mismatches=v["mismatches"])
        _write_json(cache / f"{row['id']}.json", row)
    done = [rows[k] for i, (_, k) in enumerate(fitting) if i in picks]
    for r in done:
        if r.get("measured_cycles") is not None:
            log(f"verified {r['model']} on {r['board']}: {r['cycles']:,} predicted, {r['measured_cycles']:,} "
                f"measured cycles ({r['cycle_error']:+.1%}), {r['mismatches']} mismatching bytes")


def _hardware(client, points, keys, rows, cache, out, pnr, log) -> None:
    from fireforge.explorer.verify import hardware_point

    todo = [(p, k) for p, k in zip(points, keys) if rows[k].get("fits") and "synth" not in rows[k]]
    futures = [client.submit(hardware_point, p, rows[k], out / "hw" / k, pnr, key=f"hw-{k}") for p, k in todo]
    for fut in futures:
        h = fut.result()
        rows[h["id"]]["synth"] = h
        _write_json(cache / f"{h['id']}.json", rows[h["id"]])


# -- tables ----------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "status", "model", "version", "squeeze_ratio", "pct3x3", "base_e", "incr_e", "freq", "bypass",
               "input_size", "classes", "onnx", "mac_units", "memory", "board", "params", "weight_bytes", "macs",
               "cycles", "dram_bytes", "clock_mhz", "fps", "fits", "luts", "ffs", "dsps", "bram_blocks",
               "lut_margin", "ff_margin", "dsp_margin", "bram_margin", "misfit", "error", "measured_cycles",
               "cycle_error", "synth_status", "synth_lut", "synth_ff", "synth_dsp", "synth_bram_bits", "fmax_mhz",
               "synth_error")


def write_table(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        flat = dict(r)
        for res, v in (r.get("resources") or {}).items():
            flat[f"{res}_margin"] = v.get("margin")
        hw = r.get("synth") or {}
        flat.update(synth_status=hw.get("status"), synth_error=hw.get("error"), fmax_mhz=hw.get("fmax_mhz"))
        for res, (used, _) in (hw.get("resources") or {}).items():
            flat[f"synth_{res}"] = used
        w.writerow(flat)
    _write_text(path, buf.getvalue())


def _fmt(v, spec="") -> str:
    return "-" if v is None else format(v, spec)


def format_summary(result: ExploreResult, top: int = 10) -> str:
    """The terminal's view: the fastest fitting points, the misfits and failures counted, the Pareto fronts."""
    rows = result.rows
    ok = [r for r in rows if r["status"] == "ok"]
    fit = sorted((r for r in ok if r["fits"]), key=lambda r: -r["fps"])
    head = f"{'model':<44} {'board':<12} {'MACs':>4} {'mode':<8} {'params':>10} {'cycles':>11} {'fps':>8} " \
           f"{'LUT':>7} {'BRAM':>5}"
    lines = [f"{len(rows)} points: {len(fit)} fit, {len(ok) - len(fit)} do not fit, "
             f"{len(rows) - len(ok)} failed; {result.computed} computed, {result.cached} from the cache, "
             f"{result.seconds:.1f} s", "", f"fastest fitting points (of {len(fit)}):", head]
    for r in fit[:top]:
        lines.append(f"{r['model'][:44]:<44} {r['board']:<12} {r['mac_units']:>4} {r['memory']:<8} "
                     f"{r['params']:>10,} {r['cycles']:>11,} {r['fps']:>8.2f} {r['luts']:>7,} {r['bram_blocks']:>5}")
    for f in FRONTS:
        front = pareto_front(rows, f)
        lines.append("")
        lines.append(f"Pareto front {f.name} ({f.y_label} vs {f.x_label}): {len(front)} points")
        for r in front[:top]:
            lines.append(f"  {r['model'][:44]:<44} {r['board']:<12} {r['mac_units']:>4}  "
                         f"{f.x}={_fmt(r[f.x], ',')}  {f.y}={_fmt(r[f.y], ',')}")
    built = [r for r in rows if r.get("synth")]
    if built:
        lines += ["", "synthesised (--synth / --pnr): yosys's counts, nextpnr's Fmax"]
        for r in built:
            hw = r["synth"]
            if hw.get("status") != "ok":
                lines.append(f"  {r['model'][:44]:<44} {r['board']:<12} {r['mac_units']:>4}  {hw.get('error')}")
                continue
            used = {k: v[0] for k, v in (hw.get("resources") or {}).items()}
            fmax = "" if hw.get("fmax_mhz") is None else f"  Fmax {hw['fmax_mhz']:.2f} MHz"
            lines.append(f"  {r['model'][:44]:<44} {r['board']:<12} {r['mac_units']:>4}  "
                         + "  ".join(f"{k}={v:,}" for k, v in used.items()) + fmax)
    bad = [r for r in rows if r["status"] == "failed"][:5]
    if bad:
        lines += ["", "failed points:"] + [f"  {r['model']} on {r['board']}: {r['error']}" for r in bad]
    return "\n".join(lines)
