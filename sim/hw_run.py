"""Run a compiled program on the Verilated engine: ``rtl_run(out_dir, x)`` mirrors ``golden.run(program, x)``.

The Verilated model depends only on the engine config (lanes and memory depths), so it is built once
per config and cached under ``build/verilator``; each run passes the program's images by plusarg
(``+desc= +weights= +quant=``) and the activation memory's initial contents (the quantized input at its
address) by ``+act_init``. Python does not run per cycle: the bench pulses start and sleeps until done.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fireforge.errors import FireforgeError
from fireforge.sim import golden
from fireforge.core.config import EngineConfig
from fireforge.core.program import ConvLayer, Program

__all__ = ["HwResult", "rtl_run", "build_engine", "default_build_root", "load_compiled"]


def default_build_root() -> Path:
    """``$FIREFORGE_BUILD`` or ``./build``: generated files never land in the source tree's packages."""
    return Path(os.environ.get("FIREFORGE_BUILD", "build")).absolute()


@dataclass
class HwResult:
    cycles: int                                   # engine cycle counter, start to done (first run)
    runs: list[int]                               # cycles of each back-to-back run
    layer_cycles: list[int]                       # cycles spent in each layer (first run)
    layer_outputs: dict[str, np.ndarray] = field(default_factory=dict)   # every layer's own result
    output: np.ndarray | None = None              # the program's output tensor
    sim_seconds: float = 0.0
    build_dir: Path | None = None


def load_compiled(out_dir: Path) -> tuple[Program, dict, EngineConfig]:
    out_dir = Path(out_dir)
    program = Program.load(out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    return program, manifest, EngineConfig(**manifest["engine"])


def build_engine(config: EngineConfig, build_root: Path | None = None, *, act_memory: str = "on-chip",
                 mac_products: str = "dsp") -> Path:
    """Verilog for ``config`` → a Verilated model (cached by content); returns the build directory.

    ``act_memory="external"`` builds the engine a board with DRAM gets (more reads in flight), still with
    the simulation RAM behind it (give it DRAM-like latency with ``+act_latency``); ``mac_products="lut"``
    the one the Lattice boards get (fireforge.hw.boards.mac_products)."""
    from fireforge.hw.engine import EXTERNAL_TAP_DEPTH
    from fireforge.hw.top import HDL_SOURCES, write_verilog
    from fireforge.sim import verilator

    if act_memory not in ("on-chip", "external"):
        raise FireforgeError(f"act_memory must be on-chip or external, not {act_memory!r}")
    read_depth = EXTERNAL_TAP_DEPTH if act_memory == "external" else None
    root = Path(build_root or default_build_root()) / "verilator"
    rtl = root / "rtl" / ("-".join(f"{k}{v}" for k, v in config.to_dict().items())
                          + (f"-reads{read_depth}" if read_depth else "")
                          + (f"-{mac_products}" if mac_products != "dsp" else ""))
    top = write_verilog(config, rtl, read_depth=read_depth, mac_products=mac_products)
    return verilator.build([top, *(rtl / s for s in HDL_SOURCES)], "fireforge_top", root)


def _words_to_hex(words: np.ndarray, path: Path) -> None:
    """uint8 [n, bytes] → $readmemh lines (lane 0 in the low byte), vectorised."""
    n, nbytes = words.shape
    text = np.ascontiguousarray(words[:, ::-1]).tobytes().hex()
    rows = np.frombuffer(text.encode(), dtype=f"S{2 * nbytes}")
    path.write_bytes(b"\n".join(rows.tolist()) + b"\n")


def _hex_to_words(path: Path, nbytes: int, depth: int) -> np.ndarray:
    """A $writememh file → uint8 [depth, nbytes]; the fast path assumes one full-width word per line from 0."""
    lines = path.read_text().split()
    if lines and not any(l.startswith(("@", "/")) for l in lines[:2]) and all(len(l) == 2 * nbytes for l in lines[:1]):
        body = [l for l in lines if not l.startswith("//")]
        if all(len(l) == 2 * nbytes for l in body) and not any(l.startswith("@") for l in body):
            raw = np.frombuffer(bytes.fromhex("".join(body)), np.uint8).reshape(len(body), nbytes)[:, ::-1]
            out = np.zeros((depth, nbytes), np.uint8)
            out[:len(body)] = raw[:depth]
            return out
    out = np.zeros((depth, nbytes), np.uint8)
    i = 0
    for line in lines:
        if line.startswith("@"):
            i = int(line[1:], 16)
            continue
        if line.startswith("//"):
            continue
        out[i] = np.frombuffer(bytes.fromhex(line.rjust(2 * nbytes, "0")), np.uint8)[::-1]
        i += 1
    return out


def _tensor_words(manifest: dict, name: str, t: np.ndarray, v: int) -> tuple[int, np.ndarray]:
    """(address, words) of a logical [C,H,W] uint8 tensor in its physical layout."""
    info = manifest["tensors"][name]
    if info.get("im2col"):
        return info["addr"], pack_im2col(t, info, program_zero_point=info["zero_point"], vector=v)
    c, h, w = t.shape
    words = np.zeros((h * w, info["groups"] * v), np.uint8)
    idx = np.asarray(info["channel_index"])
    words[:, idx] = t.reshape(c, h * w).T
    return info["addr"], words.reshape(h * w * info["groups"], v)


def pack_im2col(x: np.ndarray, info: dict, *, program_zero_point: int, vector: int) -> np.ndarray:
    """The input as the first conv's windows (see fireforge.sw.schedule.im2col_conv): what a host writes.

    Word g of output pixel p holds taps (ky, kx, c) number g·vector .. g·vector+vector−1; taps in the
    padding hold the input zero point (the real value 0).
    """
    spec = info["im2col"]
    kh, kw = spec["kernel"]
    sh, sw = spec["stride"]
    pt, pl, pb, pr = spec["pads"]
    c, h, w = x.shape
    xp = np.full((c, h + pt + pb, w + pl + pr), program_zero_point, np.uint8)
    xp[:, pt:pt + h, pl:pl + w] = x
    oh, ow = info["height"], info["width"]
    taps = np.empty((oh, ow, kh, kw, c), np.uint8)
    for ky in range(kh):
        for kx in range(kw):
            taps[:, :, ky, kx, :] = xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw].transpose(1, 2, 0)
    k = kh * kw * c
    words = np.zeros((oh * ow, info["groups"] * vector), np.uint8)
    words[:, :k] = taps.reshape(oh * ow, k)
    return words.reshape(oh * ow * info["groups"], vector)


def _layer_result(manifest: dict, layer_entry: dict, mem: np.ndarray, v: int) -> np.ndarray:
    """A layer's own result [C, H, W] read out of an activation memory image."""
    d = layer_entry["descriptor"]
    out_h, out_w, pitch, og = d["out_h"], d["out_w"], d["out_pitch"], d["og_count"]
    pix = np.arange(out_h * out_w)
    addrs = d["out_addr"] + pix[:, None] * pitch + np.arange(og)[None, :]
    block = mem[addrs].reshape(out_h * out_w, og * v)
    if layer_entry["kind"] == "conv":
        idx = np.arange(layer_entry["channels"])
    else:
        idx = np.asarray(manifest["tensors"][layer_entry["inputs"][0]]["channel_index"])
    return block[:, idx].T.reshape(len(idx), out_h, out_w)


def _watch_progress(path: Path, stop: threading.Event, callback) -> None:
    """Call ``callback(layers_done, cycles)`` as the simulation reports layers (first run only)."""
    seen = 0
    while True:
        finished = stop.wait(0.2)
        try:
            lines = path.read_text().splitlines()
        except OSError:
            lines = []
        for line in lines[seen:]:
            run, layers, cycles = (int(v) for v in line.split())
            if run == 0:
                callback(layers, cycles)
        seen = len(lines)
        if finished:
            return


def rtl_run(out_dir: Path, x: np.ndarray, *, stall_seed: int = 0, stall_pct: int = 30, read_latency: int | None = None,
            act_memory: str = "on-chip", mac_products: str = "dsp", runs: int = 1, dump_layers: bool = False, build_root: Path | None = None, timeout_s: float | None = None,
            max_cycles: int = 500_000_000, progress=None) -> HwResult:
    """Run the compiled program in ``out_dir`` on the engine for one float input (NCHW, batch 1).

    ``stall_seed``/``stall_pct``: random back-pressure on the activation memory port; ``read_latency``:
    cycles from an accepted read to its response (None: the on-chip block RAM's own, ``ACT_RAM_LATENCY``;
    20–40 models a DRAM controller);
    ``act_memory="external"``: the engine as built for a board's DRAM (64 reads in flight instead of 8).
    ``progress(layers_done, cycles)`` is called from a helper thread as layers finish."""
    from fireforge.sim import verilator

    from fireforge.hw.top import ACT_RAM_LATENCY

    read_latency = ACT_RAM_LATENCY if read_latency is None else read_latency
    if not ACT_RAM_LATENCY <= read_latency <= 64:
        raise FireforgeError(f"read latency {read_latency} is outside {ACT_RAM_LATENCY}..64 cycles (the on-chip "
                             f"RAM's own pipeline is {ACT_RAM_LATENCY}; 64 is the memory model's limit)")
    out_dir = Path(out_dir).absolute()
    program, manifest, config = load_compiled(out_dir)
    from fireforge.hw.generate import check_supported

    check_supported(program, config)
    v = config.vector
    build_dir = build_engine(config, build_root, act_memory=act_memory, mac_products=mac_products)
    t_in = program.tensors[program.input]
    xq = golden.quantize_input(x, t_in.scale, t_in.zero_point)
    mem = np.zeros((config.act_depth, v), np.uint8)
    addr, words = _tensor_words(manifest, program.input, xq, v)
    mem[addr:addr + len(words)] = words
    root = Path(build_root or default_build_root()) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=root) as tmp:
        tmp = Path(tmp)
        _words_to_hex(mem, tmp / "act_init.hex")
        plusargs = {"desc": out_dir / "descriptors.hex", "weights": out_dir / "weights.hex",
                    "quant": out_dir / "quant.hex", "act_init": tmp / "act_init.hex",
                    "act_dump": tmp / "act_final.hex"}
        if dump_layers:
            plusargs["act_dump_layers"] = tmp / "layer"
        if stall_seed:
            plusargs.update(act_stall_seed=stall_seed, act_stall_pct=stall_pct)
        if read_latency != ACT_RAM_LATENCY:
            plusargs["act_latency"] = read_latency
        env = {"FF_RUNS": runs, "FF_MAX_CYCLES": max_cycles, "FF_LAYER_CYCLES": 1}
        watcher = stop = None
        if progress is not None:
            env["FF_PROGRESS"] = str(tmp / "progress.txt")
            stop = threading.Event()
            watcher = threading.Thread(target=_watch_progress, args=(tmp / "progress.txt", stop, progress),
                                       daemon=True)
            watcher.start()
        try:
            res = verilator.run(build_dir, "fireforge_top", "fireforge.sim.cocotb_engine",
                                plusargs={k: str(p) for k, p in plusargs.items()}, test_dir=tmp / "sim",
                                timeout_s=timeout_s, extra_env=env)
        finally:
            if watcher is not None:
                stop.set()
                watcher.join()
        final = _hex_to_words(tmp / "act_final.hex", v, config.act_depth)
        outputs = {}
        n_layers = len(program.layers)
        for i, entry in enumerate(manifest["layers"]):
            if dump_layers:
                snap = _hex_to_words(tmp / f"layer.{i}.hex", v, config.act_depth)
                outputs[entry["name"]] = _layer_result(manifest, entry, snap, v)
        last_entry = manifest["layers"][n_layers - 1]
        if not dump_layers:
            outputs[last_entry["name"]] = _layer_result(manifest, last_entry, final, v)
        out_info = manifest["tensors"][program.output]
        t_out = program.tensors[program.output]
        out_words = final[out_info["addr"]:out_info["addr"] + out_info["words"]].reshape(
            t_out.height * t_out.width, out_info["groups"] * v)
        output = out_words[:, np.asarray(out_info["channel_index"])].T.reshape(t_out.shape)
    stamps = res.get("layer_cycles") or []
    layer_cycles = list(np.diff([0, *stamps[:n_layers]])) if len(stamps) >= n_layers else []
    return HwResult(cycles=res["cycles"], runs=res["runs"], layer_cycles=[int(c) for c in layer_cycles],
                    layer_outputs=outputs, output=output, sim_seconds=res.get("sim_seconds", 0.0),
                    build_dir=build_dir)


def ideal_cycles(program: Program, layer, config: EngineConfig) -> int:
    """MACs ÷ MAC units: the cycles a perfectly used array would need (0 for layers without MACs)."""
    return -(-program.macs(layer) // config.mac_units) if isinstance(layer, ConvLayer) else 0
