"""What would fit when a compiled program's engine does not: other MAC counts, other boards, smaller models.

Every memory depth here is the compiler's own: the program (another MAC count) or a scaled copy of it (a
smaller model) goes through :func:`fireforge.core.layout.plan_memory`, the layout the scheduler builds the
images on. A scaled copy changes the Fire modules' squeeze channels, the classifier's classes or the input
size; its convs get zero weights of the new shapes, and its spatial sizes are traced through the layers
(convolutions exactly; a max pool's floor / ceil mode is inferred from the sizes the program has, hence
"about" beside an input size).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig
from fireforge.core.layout import planned_config
from fireforge.core.program import ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program, window_count
from fireforge.hw.board.catalogue import BOARDS, Board
from fireforge.hw.board.needs import board_needs, evaluate
from fireforge.hw.board.resources import format_bits

__all__ = ["MAC_CHOICES", "ModelShape", "scaled_program", "suggest"]

#: MAC counts a misfit's suggestions try
MAC_CHOICES = (4, 16, 64, 256, 1024)


class ModelShape:
    """The knobs of a SqueezeNet-like program: its classifier (the last conv, alone or before the final global
    average pool), its Fire modules' squeeze convs (a conv named ``*squeeze*`` that feeds convs) and its input
    size."""

    def __init__(self, program: Program):
        self.program = program
        convs = [l for l in program.layers if isinstance(l, ConvLayer)]
        self.classifier = None
        if convs:
            last = convs[-1]
            readers = self._readers(last.output)
            if last.output == program.output or (len(readers) == 1 and isinstance(readers[0], GlobalAvgPoolLayer)
                                                 and readers[0].output == program.output):
                self.classifier = last.name
        #: squeeze conv -> (its channels, the channels of the convs it feeds)
        self.squeezes = {}
        for l in convs:
            if "squeeze" in l.name.rsplit("/", 1)[-1]:
                feeds = [r for r in self._readers(l.output) if isinstance(r, ConvLayer)]
                if feeds:
                    self.squeezes[l.name] = (l.out_channels, sum(r.out_channels for r in feeds))
        self.input_size = program.tensors[program.input].width

    def _readers(self, tensor: str) -> list:
        return [l for l in self.program.layers if tensor in l.inputs]

    @property
    def classes(self) -> int | None:
        return None if self.classifier is None else self.program.layer(self.classifier).out_channels

    @property
    def squeeze_ratio(self) -> float | None:
        """The model's squeeze ratio s/e (the median over its Fire modules), or None."""
        if not self.squeezes:
            return None
        r = sorted(s / e for s, e in self.squeezes.values())
        return r[len(r) // 2]

    def out_channels(self, layer: ConvLayer, squeeze_factor: float, classes: int | None) -> int:
        if layer.name == self.classifier and classes is not None:
            return classes
        if layer.name in self.squeezes and squeeze_factor != 1:
            return max(1, round(layer.out_channels * squeeze_factor))
        return layer.out_channels


def _pool_rule(size: int, out: int, k: int, s: int, p0: int, p1: int) -> tuple[int, bool]:
    """(far pad, ceil mode) of a max pool that made ``out`` of ``size``: the program keeps only the pads the
    windows reached, so ceil mode with symmetric pads (torchvision's SqueezeNet) is tried first."""
    for far, ceil in ((p0, True), (p1, False)):
        if window_count(size, k, s, p0, far, ceil) == out:
            return far, ceil
    return p1, False


def _traced_size(layer, src, program: Program, h: int, w: int) -> tuple[int, int]:
    """(height, width) ``layer`` makes of its input ``src`` (a tensor of the original program) at ``h × w``."""
    if isinstance(layer, GlobalAvgPoolLayer):
        return 1, 1
    if isinstance(layer, ConvLayer):
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = layer.kernel, layer.stride, layer.pads
        return window_count(h, kh, sh, pt, pb, False), window_count(w, kw, sw, pl, pr, False)
    if isinstance(layer, MaxPoolLayer):
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = layer.kernel, layer.stride, layer.pads
        out = program.tensors[layer.output]
        fb, cb = _pool_rule(src.height, out.height, kh, sh, pt, pb)
        fr, cr = _pool_rule(src.width, out.width, kw, sw, pl, pr)
        return window_count(h, kh, sh, pt, fb, cb), window_count(w, kw, sw, pl, fr, cr)
    return h, w                                  # add


def scaled_program(program: Program, *, squeeze_factor: float = 1.0, classes: int | None = None,
                   input_size: int | None = None, shape: ModelShape | None = None) -> Program | None:
    """A copy of ``program`` with its squeeze convs' channels times ``squeeze_factor``, ``classes`` classes and
    an ``input_size`` input (each None / 1: unchanged): channel counts and spatial sizes follow through every
    tensor, convs get zero weights of their new shapes. None when the input is too small for some layer."""
    shape = shape or ModelShape(program)
    src_in = program.tensors[program.input]
    h0, w0 = src_in.height, src_in.width
    if input_size is not None:
        h0, w0 = input_size, max(1, round(src_in.width * input_size / src_in.height))
    tensors = {program.input: dataclasses.replace(src_in, height=h0, width=w0)}
    written: dict[str, list] = {}                # tensor -> [(original offset, channels, layer)]
    for layer in program.layers:
        if layer.inputs[0] not in tensors:       # a concat's writers are done when it is first read
            _finish(layer.inputs[0], written, program, tensors)
        src = tensors[layer.inputs[0]]
        h, w = _traced_size(layer, program.tensors[layer.inputs[0]], program, src.height, src.width)
        if h < 1 or w < 1:
            return None
        if isinstance(layer, ConvLayer):
            o, (kh, kw) = shape.out_channels(layer, squeeze_factor, classes), layer.kernel
            layer = dataclasses.replace(layer, weights=np.zeros((o, src.channels, kh, kw), np.int8),
                                        bias=np.zeros(o, np.int32), scale=np.ones(o, np.float32))
            channels = o
        else:
            channels = src.channels
        written.setdefault(layer.output, []).append((layer.out_channel_offset, channels, layer, h, w))
    for name in list(written):
        if name not in tensors:
            _finish(name, written, program, tensors)
    layers = [written_layer for entries in written.values() for _, _, written_layer, _, _ in entries]
    order = {l.name: i for i, l in enumerate(program.layers)}
    return dataclasses.replace(program, tensors=tensors, layers=sorted(layers, key=lambda l: order[l.name]))


def _finish(name: str, written: dict, program: Program, tensors: dict) -> None:
    """Tensor ``name`` from its writers: channels summed in the order of their original offsets, each writer
    moved to its new offset."""
    entries = sorted(written[name], key=lambda e: e[0])
    offset, fixed = 0, []
    for _, channels, layer, h, w in entries:
        fixed.append((offset, channels, dataclasses.replace(layer, out_channel_offset=offset), h, w))
        offset += channels
    written[name] = fixed
    tensors[name] = dataclasses.replace(program.tensors[name], channels=offset, height=entries[0][3],
                                        width=entries[0][4])


def suggest(config: EngineConfig, compiled: Compiled | None, board: Board,
            act_memory: str = "auto") -> tuple[list[str], list[str]]:
    """(notes, suggestions) for a misfit of ``config`` on ``board``; without ``compiled`` (a bare config) only
    the external RAM and other boards are tried."""
    out, notes = [], []
    # 0. the activations in the board's external RAM, when they were kept on chip by request
    if act_memory == "on-chip" and board.external_ram and not evaluate(config, board, "external")[1]:
        out.append(f"--act-memory external (the activations in the board's {board.external_ram})")
    elif act_memory == "auto" and board.external_ram:
        n, ext_problems, _ = evaluate(config, board, "external")
        if "block RAM" in ext_problems:     # the ROMs alone are too big: say by how much
            notes.append(f"even with the activations in the board's {board.external_ram}, the ROMs and FIFOs "
                         f"need {n['bram_blocks']} {board.block_name} = {format_bits(n['bram_bits'])} vs "
                         f"{board.bram_blocks}")
    # 1. the same model with fewer (or more) MAC units on this board
    if compiled is not None:
        fitting = [m for m in MAC_CHOICES if m != config.mac_units
                   and not evaluate(planned_config(compiled.program, EngineConfig(mac_units=m)), board, act_memory)[1]]
        if fitting:
            best = max(fitting)
            out.append(f"--mac-units {best} on {board.name} (recompile with fireforge compile --mac-units {best})")
    # no engine at all fits this board's multipliers (the iCE40 UP5K)
    smallest = EngineConfig(mac_units=MAC_CHOICES[0], weight_depth=1, quant_depth=1, desc_depth=1, act_depth=1)
    need = evaluate(smallest, board, "on-chip")[0]["dsp"]
    if need > board.multipliers:
        notes.append(f"no engine fits {board.name}: even {smallest.mac_units} MAC units need {need} "
                     f"{board.multiplier_cell} for the MAC array and the per-lane requant/add products")
    # 2. another board
    others = [b.name for b in BOARDS.values() if b.name != board.name and not evaluate(config, b)[1]]
    if others:
        out.append(f"board {' or '.join(others)}")
    # 3. a smaller variant of the model: all on chip first (nothing else to build), then with the activations
    # in the board's DRAM
    if compiled is not None:
        modes = ["on-chip", "external"] if act_memory == "auto" and board.external_ram else [act_memory]
        for mode in modes:
            v = _variant(ModelShape(compiled.program), config, board, mode)
            if v and mode == "external":
                v += f" (activations in the board's {board.external_ram})"
            if v and v not in out:
                out.append(v)
    return notes, out


def _largest(lo: int, hi: int, pred) -> int | None:
    """Largest x in [lo, hi] with pred(x) (pred monotone decreasing), or None."""
    if not pred(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pred(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _variant(shape: ModelShape, config: EngineConfig, board: Board, act_memory: str) -> str | None:
    """The smallest change of squeeze ratio, input size and classes (in that order of preference: the
    classifier's classes are kept as long as possible) that fits; None when nothing does (or nothing is
    needed)."""
    sr, size0, classes0 = shape.squeeze_ratio, shape.input_size, shape.classes
    factors = [1.0] + ([0.5, 0.25, 0.125] if sr else [])

    def fits(f, size, classes):
        prog = scaled_program(shape.program, squeeze_factor=f, input_size=size, classes=classes, shape=shape)
        return prog is not None and not evaluate(planned_config(prog, EngineConfig(mac_units=config.mac_units)), board, act_memory)[1]

    def describe(f, size, classes):
        opts = []
        if f != 1:
            opts.append(f"--squeeze-ratio {sr * f:g}")
        if size != size0:
            opts.append(f"--input-size ≤{size} (about: map sizes traced through the layers)")
        if classes is not None and classes != classes0:
            opts.append(f"--classes ≤{classes}")
        return "a smaller model: " + " ".join(opts)

    if fits(1.0, size0, classes0):
        return None
    for f in factors[1:]:                     # keep input size and classes
        if fits(f, size0, classes0):
            return describe(f, size0, classes0)
    # the smallest input every layer takes (a window larger than its map leaves nothing)
    min_size = next((s for s in range(max(8, size0 // 8), size0 + 1)
                     if scaled_program(shape.program, input_size=s, shape=shape) is not None), size0)
    for f in factors:                         # + a smaller input
        s = _largest(min_size, size0, lambda s: fits(f, s, classes0))
        if s is not None:
            return describe(f, s, classes0)
    if classes0 is not None:
        for f in factors:                     # + fewer classes, down to a quarter of the input size
            for size in (size0, max(min_size, size0 // 2), max(min_size, size0 // 4)):
                k = _largest(1, classes0, lambda k: fits(f, size, k))
                if k is not None:
                    return describe(f, size, k)
    return None
