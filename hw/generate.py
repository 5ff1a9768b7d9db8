"""``fireforge generate``: the Verilog of the engine a compiled program needs, with its ROM images."""

import shutil
import subprocess
from pathlib import Path

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.outdir import commit_output_dir, prepare_output_dir
from fireforge.core.program import Program
from fireforge.core.tools import verilator_environ
from fireforge.errors import FireforgeError
from fireforge.hw.top import HDL_DIR, HDL_SOURCES, ROM_IMAGES, write_verilog

__all__ = ["generate", "check_supported", "lint"]

WAIVERS = "waivers.vlt"


def check_supported(program: Program, config: EngineConfig | None = None) -> None:
    """Refuse, by layer name, what the engine cannot run yet (rather than run it wrongly), or what an
    engine of ``config`` is built without (an Add layer on an engine whose ``add_unit`` is false)."""
    if config is not None:      # resolving add_unit is the check: it raises for an Add without the unit
        config.with_add_unit(program.add_layer_names())
    for layer in program.layers:
        if layer.lut is not None:
            raise FireforgeError(f"layer '{layer.name}': concat into a different scale (a requant table) is not "
                                 f"implemented in the engine yet; quantize with fireforge compile so concat "
                                 f"inputs share the concat's scale")


def lint(rtl_dir: Path) -> str:
    """``verilator --lint-only`` with the waiver file; returns its warnings and errors (empty when clean)."""
    files = [WAIVERS, "fireforge_top.v", *(s for s in HDL_SOURCES if (Path(rtl_dir) / s).exists())]
    with verilator_environ() as env:
        proc = subprocess.run(["verilator", "--lint-only", "--top-module", "fireforge_top", *files],
                              cwd=rtl_dir, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    problems = [l for l in out.splitlines() if l.startswith("%")]
    if proc.returncode and not problems:
        problems = [f"verilator exited with status {proc.returncode}"]
    return "\n".join(problems)


def generate(compiled: Compiled | Path, rtl_dir: Path, *, force: bool = False, lint_check: bool = False,
             act_memory: str = BuildVariant.act_memory) -> dict:
    """``fireforge_top.v`` (+ HDL, ROM images, manifest) for a compiled program, atomically in ``rtl_dir``.

    ``act_memory="external"``: the activation memory is left out and its channels become ``mem_*`` ports
    (see :class:`~fireforge.hw.top.FireforgeTop`)."""
    compiled = Compiled.of(compiled)
    out_dir, config = compiled.out_dir, compiled.config
    check_supported(compiled.program, config)
    tmp = prepare_output_dir(rtl_dir, force, inputs=[out_dir])
    try:
        top = write_verilog(config, tmp, BuildVariant(act_memory=act_memory))
        shutil.copyfile(HDL_DIR / WAIVERS, tmp / WAIVERS)
        for stem, _ in ROM_IMAGES.values():
            shutil.copyfile(compiled.images[stem].hex, tmp / f"{stem}.hex")
        shutil.copyfile(out_dir / "manifest.json", tmp / "manifest.json")
        if lint_check:
            report = lint(tmp)
            if report:
                first = report.splitlines()[0]
                raise FireforgeError(f"verilator --lint-only is not clean: {first}")
        commit_output_dir(tmp, rtl_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"top": Path(rtl_dir) / top.name, "config": config.to_dict(), "act_memory": act_memory}
