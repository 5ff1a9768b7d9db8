"""The Python API: the command line's jobs as functions, and one object for a compiled network.

``fireforge.compile(model, out_dir, board=...)`` returns an :class:`Accelerator` (also ``fireforge.load(OUT/)``)
whose methods are the commands that read ``OUT/``: ``simulate``, ``compare``, ``generate``, ``run``, ``report``.
``fireforge.explore(...)`` sweeps a design space and returns its table. The CLI (:mod:`fireforge.cli`) is a thin
layer over the same functions; errors are :class:`~fireforge.errors.FireforgeError` with the CLI's one-line
messages. Inputs are an NCHW float array, or a path to a ``.npy`` tensor or an image.
"""

from __future__ import annotations

from pathlib import Path

from fireforge.errors import FireforgeError

__all__ = ["Accelerator", "build_model", "compile", "load", "explore"]


def build_model(version: str, path: str | Path, **knobs) -> Path:
    """``fireforge models build``: a SqueezeNet ``v1_0`` / ``v1_1`` as float ONNX at ``path``. ``knobs``: the
    builder's (input_size, classes, seed, bypass, base_e, incr_e, pct3x3, squeeze_ratio, freq)."""
    import onnx

    from fireforge.models.squeezenet import build_squeezenet

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build_squeezenet(version, **knobs), path)
    return path


class Accelerator:
    """A compiled network (a validated ``OUT/``) and the engine it runs on."""

    def __init__(self, out_dir: str | Path):
        from fireforge.core.compiled import Compiled

        self.compiled = Compiled.load(out_dir)

    def __repr__(self) -> str:
        c = self.config
        return (f"Accelerator({str(self.out_dir)!r}: {len(self.program.layers)} layers, {c.mac_units} MAC units, "
                f"{c.memory} mode{', ' + self.board if self.board else ''})")

    @property
    def out_dir(self) -> Path:
        return self.compiled.out_dir

    @property
    def program(self):
        return self.compiled.program

    @property
    def config(self):
        return self.compiled.config

    @property
    def board(self) -> str | None:
        """The board ``compile`` chose the engine for (None: no board)."""
        return self.compiled.board

    def input(self, x, preprocess: str = "torchvision"):
        """``x`` as the network's input tensor: an array as it is, a ``.npy`` or image path loaded."""
        import numpy as np

        from fireforge.sw.compile import input_shape
        from fireforge.sw.inputs import load_input

        if isinstance(x, np.ndarray):
            shape = input_shape(self.program)
            if tuple(x.shape) != shape:
                raise FireforgeError(f"input array has shape {tuple(x.shape)}; {self.out_dir} takes {shape}")
            return x.astype(np.float32, copy=False)
        return load_input(str(x), input_shape(self.program), preprocess)

    def predicted_cycles(self) -> int:
        """The compiler's cycle model for one inference (the DRAM command stream's in DRAM mode)."""
        if self.config.dram:
            return self.compiled.dram["predicted"]["cycles"]
        from fireforge.sw.perf import predict_compiled

        return predict_compiled(self.compiled).cycles

    def simulate(self, x, *, dump_layers: bool = False, stall_seed: int = 0):
        """``fireforge simulate``: the Verilated engine (with LiteDRAM's controller in DRAM mode) against the
        golden model; a :class:`~fireforge.sw.simulate.SimReport` (``.mismatches``, ``.total_cycles``, ``.to_json()``)."""
        from fireforge.sw.simulate import simulate

        return simulate(self.compiled, self.input(x), dump_layers=dump_layers, stall_seed=stall_seed,
                        board=self.board if self.config.dram else None)

    def compare(self, x, *, hw: bool = False):
        """``fireforge compare``: golden model vs ONNX Runtime per layer (and the Verilated engine with ``hw``)."""
        from fireforge.sw.compare import compare

        return compare(self.compiled, self.input(x), hw=hw)

    def generate(self, rtl_dir: str | Path, *, board: str | None = None, synth: bool = False, pnr: bool = False,
                 bitstream: bool = False, force: bool = False) -> dict:
        """``fireforge generate``: Verilog and ROM images in ``rtl_dir``; with ``board`` the board top (fit check,
        synthesis / place-and-route / bitstream as asked). Returns what ``--json`` prints."""
        if board:
            from fireforge.hw.board import board_generate

            return board_generate(self.compiled, Path(rtl_dir), board, synth=synth, pnr=pnr, bitstream=bitstream,
                                  force=force)
        if synth or pnr or bitstream:
            raise FireforgeError("synth, pnr and bitstream need a board")
        from fireforge.hw.generate import generate

        res = generate(self.out_dir, Path(rtl_dir), force=force)
        return {"top": str(res["top"]), "config": res["config"], "act_memory": res["act_memory"]}

    def run(self, x, *, port: str = "sim", check: bool = True, **options):
        """``fireforge run``: inputs on the board at ``port`` (``"sim"``: the whole board simulated, over its link);
        ``x``: an array, or a path to an image, a ``.npy`` or a folder of them. ``options``: ``run_board``'s
        (line_errors, baud, sim_clock_mhz, ...). A :class:`~fireforge.sw.run.RunReport`."""
        import tempfile

        import numpy as np

        from fireforge.sw.run import run_board

        if not isinstance(x, np.ndarray):
            return run_board(self.compiled.out_dir, port, x, check=check, **options)
        with tempfile.TemporaryDirectory(prefix="ff-run-") as tmp:
            path = Path(tmp) / "input.npy"
            np.save(path, self.input(x))
            return run_board(self.compiled.out_dir, port, path, check=check, **options)

    def report(self, path: str | Path | None = None, *, sim=None, board: dict | None = None) -> Path:
        """``fireforge report``: one self-contained HTML page (default ``OUT/../<name>.html``); ``sim``: a
        :meth:`simulate` result or its JSON."""
        from fireforge.sw.report import write_report

        path = Path(path) if path else self.out_dir.parent / f"{self.out_dir.name}.html"
        if sim is not None and not isinstance(sim, dict):
            sim = sim.to_json()
        return write_report(path, out_dir=self.compiled, sim=sim, board=board)


def compile(model: str | Path, out_dir: str | Path, *, board: str | None = None, mac_units: int | None = None,
            calib: str | Path | None = None, force: bool = False, check: bool = True) -> Accelerator:
    """``fireforge compile``: quantize and lower ``model`` (an ONNX file) into ``out_dir``; ``board`` chooses the
    engine for a board (resident where it fits, else DRAM mode)."""
    from fireforge.core.config import EngineConfig
    from fireforge.sw.compile import compile_model

    config = EngineConfig(mac_units=mac_units) if mac_units else None
    res = compile_model(model, out_dir, calib=calib, config=config, force=force, check=check, board=board)
    return Accelerator(res.out_dir)


def load(out_dir: str | Path) -> Accelerator:
    """An ``OUT/`` compiled earlier (validated: a damaged file is refused)."""
    return Accelerator(out_dir)


def explore(out_dir: str | Path, *, preset: str | None = None, spec: str | Path | dict | None = None,
            scheduler: str | None = None, workers: int | None = None, verify: int = 0, synth: bool = False,
            pnr: bool = False, progress=None, **axes):
    """``fireforge explore``: sweep a design space into ``out_dir``; an :class:`~fireforge.explorer.sweep.ExploreResult`
    (a table: iterate it for the points, ``.best(n)``, ``.fronts()``). ``axes``: value or list per axis, as the
    flags (``squeeze_ratio=[0.125, 0.25]``, ``board="kc705"``, ``mac_units=[16, 64]``, ...). The local cluster's
    workers are processes that import the calling script again: call this under ``if __name__ == "__main__":``."""
    from fireforge.explorer.sweep import explore as run_sweep
    from fireforge.explorer.space import load_spec, make_space

    name = "spec"
    if isinstance(spec, (str, Path)):
        name, spec = str(spec), load_spec(spec)
    space = make_space(preset=preset, spec=spec, spec_name=name, flags=axes)
    return run_sweep(space, out_dir, scheduler=scheduler, workers=workers, verify=verify, synth=synth, pnr=pnr,
                     progress=progress)
