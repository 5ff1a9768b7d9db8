"""``fireforge compare``: the golden model against ONNX Runtime, layer by layer; with ``--hw`` the Verilated
engine too (hardware vs golden and vs ONNX Runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from fireforge.core.compiled import Compiled, rebuild_hint
from fireforge.core.program import Program
from fireforge.errors import FireforgeError
from fireforge.sim import golden
from fireforge.sim.hw_run import rtl_run

__all__ = ["LayerDiff", "Comparison", "ort_layer_outputs", "compare", "top5", "diff"]


@dataclass
class LayerDiff:
    name: str
    kind: str
    shape: tuple
    size: int
    max_abs_diff: int           # golden vs ONNX Runtime
    mismatches: int
    hw_mismatches: int | None = None          # hardware vs golden (with --hw)
    hw_ort_mismatches: int | None = None      # hardware vs ONNX Runtime


@dataclass
class Comparison:
    layers: list[LayerDiff]
    top5_golden: list[int]
    top5_ort: list[int]
    top5_hw: list[int] | None = None

    @property
    def top1_agree(self) -> bool:
        return self.top5_golden[:1] == self.top5_ort[:1]

    @property
    def mismatches(self) -> int:
        return sum(l.mismatches for l in self.layers)

    def to_json(self) -> dict:
        layers = []
        for l in self.layers:
            row = {"name": l.name, "kind": l.kind, "shape": list(l.shape), "max_abs_diff": l.max_abs_diff,
                   "mismatches": l.mismatches, "size": l.size}
            if self.top5_hw is not None:
                row.update(hw_mismatches=l.hw_mismatches, hw_ort_mismatches=l.hw_ort_mismatches)
            layers.append(row)
        top5 = {"golden": self.top5_golden, "onnxruntime": self.top5_ort}
        if self.top5_hw is not None:
            top5["hw"] = self.top5_hw
        return {"layers": layers, "top5": top5, "mismatches": self.mismatches, "top1_agree": self.top1_agree}


def top5(scores: np.ndarray) -> list[int]:
    """Indices of the five largest scores; ties go to the lower index (a stable rule both sides share)."""
    s = np.asarray(scores).reshape(-1).astype(np.float64)
    return [int(i) for i in np.argsort(-s, kind="stable")[:5]]


def diff(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(max |a−b|, number of differing elements) of two uint8 tensors of the same size."""
    a = np.asarray(a).reshape(-1).astype(np.int32)
    b = np.asarray(b).reshape(-1).astype(np.int32)
    if a.size != b.size:
        raise FireforgeError(f"internal: comparing tensors of {a.size} and {b.size} elements")
    d = np.abs(a - b)
    return int(d.max(initial=0)), int(np.count_nonzero(d))


def ort_layer_outputs(out_dir: Path, program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run ``OUT/quantized.onnx`` in ONNX Runtime; return every layer's ORT tensor and the model's output."""
    import onnxruntime as ort       # deferred: a heavy import, needed only when ONNX Runtime runs

    path, hint = Path(out_dir) / "quantized.onnx", rebuild_hint(Path(out_dir), {"meta": program.meta})
    model = _load_quantized(path, hint)
    present = {o.name for o in model.graph.output}
    wanted = [program.input] + [l.ort_tensor for l in program.layers]
    for name in dict.fromkeys(wanted):
        if name not in present:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    final = model.graph.output[0].name
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        values = dict(zip(names, sess.run(None, {program.input_name: x.astype(np.float32)})))
    except Exception as e:      # ONNX Runtime's own exception types: the file no longer is the compiled model
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise FireforgeError(f"{path} does not run in ONNX Runtime ({first}); {hint}") from None
    return values, values[final]


def _load_quantized(path: Path, hint: str) -> onnx.ModelProto:
    """``OUT/quantized.onnx``, or one line naming it (also for a directory without a manifest, which the compiler's
    own check compares before it writes one)."""
    if not path.is_file():
        raise FireforgeError(f"{path} is {'a directory' if path.is_dir() else 'missing'}; {hint}")
    try:
        model = onnx.load(path)
        if not model.graph.output:
            raise ValueError("the graph has no outputs")
        return model
    except OSError as e:
        raise FireforgeError(f"cannot read {path} ({e.strerror}); {hint}") from None
    except Exception as e:      # protobuf's DecodeError, ...
        raise FireforgeError(f"{path} is damaged (not an ONNX model: {type(e).__name__}); {hint}") from None


def compare(compiled: Compiled | str | Path, x: np.ndarray, program: Program | None = None, *, hw: bool = False,
            progress=None) -> Comparison:
    """Golden vs ONNX Runtime per layer; with ``hw`` also the Verilated engine (every layer dumped).

    ``compiled``: a :class:`Compiled`, or a directory with at least ``program.json`` and ``quantized.onnx``
    (the compiler checks its program before it writes the images; ``program``: that program, if in hand).
    ``hw`` needs a whole compile output."""
    if isinstance(compiled, Compiled):
        out_dir, program = compiled.out_dir, compiled.program
    else:
        out_dir = Path(compiled)
        program = program or Program.load(out_dir)
    g = golden.run(program, x)
    ort_values, ort_final = ort_layer_outputs(out_dir, program, x)
    hw_res = None
    if hw:
        hw_res = rtl_run(Compiled.of(compiled), x, dump_layers=True, progress=progress)
    rows = []
    t_in = program.tensors[program.input]
    mx, mm = diff(g.tensors[program.input], ort_values[program.input])
    rows.append(LayerDiff("input (quantize)", "quantize", t_in.shape, int(np.prod(t_in.shape)), mx, mm))
    for layer in program.layers:
        mine = g.layer_outputs[layer.name]
        theirs = ort_values[layer.ort_tensor]
        mx, mm = diff(mine, theirs)
        row = LayerDiff(layer.name, layer.kind, mine.shape, int(mine.size), mx, mm)
        if hw_res is not None:
            got = hw_res.layer_outputs.get(layer.name)    # None: a fused pool's writer (nothing stored)
            if got is not None:
                row.hw_mismatches = diff(got, mine)[1]
                row.hw_ort_mismatches = diff(got, theirs)[1]
        rows.append(row)
    return Comparison(rows, top5(g.scores()), top5(ort_final), None if hw_res is None else top5(hw_res.output))


def format_table(cmp: Comparison) -> str:
    w = max(len(r.name) for r in cmp.layers)
    hw = cmp.top5_hw is not None
    head = f"{'layer':<{w}}  {'kind':<8} {'shape':<16} {'max|Δ|':>7} {'mismatch':>9}"
    head += f" {'hw≠gold':>8} {'hw≠ort':>8}" if hw else ""
    lines = [head + f" {'of':>9}"]
    for r in cmp.layers:
        shape = "x".join(str(s) for s in r.shape)
        line = f"{r.name:<{w}}  {r.kind:<8} {shape:<16} {r.max_abs_diff:>7} {r.mismatches:>9}"
        if hw:
            line += f" {'' if r.hw_mismatches is None else r.hw_mismatches:>8}"
            line += f" {'' if r.hw_ort_mismatches is None else r.hw_ort_mismatches:>8}"
        lines.append(line + f" {r.size:>9}")
    total = sum(r.size for r in cmp.layers)
    lines.append(f"total mismatching bytes: {cmp.mismatches} of {total}")
    lines.append(f"top-5 golden:      {cmp.top5_golden}")
    lines.append(f"top-5 onnxruntime: {cmp.top5_ort}")
    if hw:
        lines.append(f"top-5 hardware:    {cmp.top5_hw}")
    lines.append("top-1 agree" if cmp.top1_agree else "top-1 DIFFER")
    return "\n".join(lines)
