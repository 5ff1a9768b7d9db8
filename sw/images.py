"""ROM images for one engine config: weights, requant, descriptors, concat tables; ``.hex`` + ``.bin`` + manifest.

``.hex`` files hold one word per line, most significant digit first, for ``$readmemh``; ``.bin`` files the
same words little-endian, ``ceil(bits/8)`` bytes each. Word formats:

* weights: one ``vector × vector`` int8 block; byte ``o·vector + i`` is output lane ``o``, input lane ``i``.
  A conv's words run ``for out_group: for ky: for kx: for in_group``.
* quant: per output lane one :data:`fireforge.core.quant.QUANT_LANE` (folded bias, mantissa, shift).
  The engine pads with the input's zero point and multiplies raw uint8 activations, so the bias it adds
  is ``bias − zp_x·Σw`` (exactly ONNX Runtime's ``Σ w·(x − zp_x) + bias``).
* descriptors: :data:`fireforge.core.descriptor.DESCRIPTOR`, one per layer, then an END descriptor.
* commands (DRAM mode only): the tiled command stream, ``COMMAND_BYTES`` per command
  (:mod:`fireforge.sw.dram_program`); the manifest's ``dram`` entry has the DRAM map and each layer's traffic.
  The weights and quant images are then DRAM regions, word for word.

The manifest records each image's word size, count and sha256; ``fireforge.core.compiled`` checks them on load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from fireforge.core.compiled import CHECKED_FILES, MANIFEST_VERSION
from fireforge.core.config import EngineConfig, channel_groups
from fireforge.core.descriptor import COMMAND_BYTES, DESCRIPTOR, Op, pack
from fireforge.core.hexfile import write_words
from fireforge.core.layout import planned_config
from fireforge.core.numerics import requant_multiplier
from fireforge.core.program import ConvLayer, Program
from fireforge.core.quant import QUANT_LANE_BYTES, pack_lanes
from fireforge.errors import FireforgeError
from fireforge.sw import dram_perf, dram_program
from fireforge.sw.schedule import Schedule, schedule

__all__ = ["write_images", "weight_words", "quant_words", "folded_bias", "descriptor_words", "MANIFEST_VERSION"]




def weight_words(weights: np.ndarray, in_layout, vector: int) -> np.ndarray:
    """A conv's [O, C, kh, kw] weights as uint8 [words, vector·vector] (byte order as in the module docstring)."""
    o, c, kh, kw = weights.shape
    og = channel_groups(o, vector)
    wp = np.zeros((og * vector, in_layout.groups * vector, kh, kw), np.int8)
    index = np.arange(c) if in_layout.im2col else in_layout.channel_index
    wp[:o, index] = weights
    blocks = wp.reshape(og, vector, in_layout.groups, vector, kh, kw).transpose(0, 4, 5, 2, 1, 3)
    return np.ascontiguousarray(blocks).view(np.uint8).reshape(-1, vector * vector)


def folded_bias(layer: ConvLayer, in_zero_point: int) -> np.ndarray:
    """int32 bias with the input zero point folded in: bias − zp_x·Σw (per output channel)."""
    b = layer.bias.astype(np.int64) - in_zero_point * layer.weights.reshape(layer.out_channels, -1).astype(np.int64).sum(1)
    if np.any(np.abs(b) >= 2 ** 31):
        raise FireforgeError(f"layer '{layer.name}': bias − zp·Σw overflows int32")
    return b.astype(np.int32)


def quant_words(layer: ConvLayer, in_zero_point: int, vector: int) -> np.ndarray:
    """A conv's requant words as uint8 [groups, vector·QUANT_LANE_BYTES]."""
    o = layer.out_channels
    og = channel_groups(o, vector)
    mantissa, shift = np.zeros(og * vector, np.int64), np.zeros(og * vector, np.int64)
    for ch, s in enumerate(layer.scale):
        mantissa[ch], shift[ch] = requant_multiplier(float(s))
        if not 0 <= shift[ch] < 256:
            raise FireforgeError(f"layer '{layer.name}': output channel {ch} requant scale {s} is out of the "
                                 f"engine's range (shift {shift[ch]} not in 0..255)")
    bias = np.zeros(og * vector, np.int64)
    bias[:o] = folded_bias(layer, in_zero_point)
    return pack_lanes(bias, mantissa, shift).reshape(og, vector * QUANT_LANE_BYTES)


def descriptor_words(sched: Schedule) -> np.ndarray:
    nbytes = -(-DESCRIPTOR.size // 8)
    words = [pack(d, layer=n) for n, d in zip(sched.rom_names, sched.rom_descriptors)] + [pack({"op": Op.END})]
    return np.array([list(w.to_bytes(nbytes, "little")) for w in words], np.uint8).reshape(len(words), nbytes)


def _write(out: Path, stem: str, words: np.ndarray, bits: int) -> dict:
    """Write ``stem.bin`` and ``stem.hex`` from uint8 [n, bytes_per_word]; return the manifest entry."""
    words = np.ascontiguousarray(words, np.uint8)
    (out / f"{stem}.bin").write_bytes(words.tobytes())
    write_words(out / f"{stem}.hex", words, bits)
    entry = {"word_bits": bits, "word_bytes": int(words.shape[1]), "words": int(words.shape[0])}
    for suffix in ("bin", "hex"):
        entry[f"{suffix}"] = f"{stem}.{suffix}"
        entry[f"{suffix}_sha256"] = _sha256(out / f"{stem}.{suffix}")
    return entry


def write_images(program: Program, config: EngineConfig, out: Path) -> EngineConfig:
    """Schedule the program, write every image and ``manifest.json``; return the resolved config."""
    sched = schedule(program, config)
    v = config.vector
    w_blocks, q_blocks = [], []
    for layer in program.layers:
        if isinstance(layer, ConvLayer):
            w_blocks.append(weight_words(sched.conv_weights(layer), sched.layouts[layer.input], v))
            q_blocks.append(quant_words(layer, program.tensors[layer.input].zero_point, v))
    wts = np.concatenate(w_blocks) if w_blocks else np.zeros((0, v * v), np.uint8)
    qnt = np.concatenate(q_blocks) if q_blocks else np.zeros((0, v * QUANT_LANE_BYTES), np.uint8)
    desc = descriptor_words(sched)
    plan = sched.plan
    assert (len(wts), len(qnt), len(desc)) == (plan.weight_words, plan.quant_words, len(sched.rom_descriptors) + 1)
    # DRAM mode: the depths are the board's buffers, not sized to the program (everything is in DRAM)
    resolved = config.with_add_unit(program.add_layer_names()) if config.dram else planned_config(program, config, plan)
    images = {
        "weights": _write(out, "weights", wts, resolved.weight_word_bits),
        "quant": _write(out, "quant", qnt, resolved.quant_word_bits),
        "descriptors": _write(out, "descriptors", desc, DESCRIPTOR.size),
    }
    dram = None
    if resolved.dram:
        dp = dram_program.build(program, replace(sched, config=resolved), resolved)
        raw = np.frombuffer(dp.command_bytes(), np.uint8).reshape(-1, COMMAND_BYTES)
        images["commands"] = _write(out, "commands", raw, 8 * COMMAND_BYTES)
        bus = dram_perf.bus_for(program.meta.get("board"))
        dram = dram_program.summary(dp, dram_perf.predict_stream(dp.commands, resolved, bus), bus)
    (out / "engine.json").write_text(json.dumps(resolved.to_dict(), indent=1))
    manifest = {
        "fireforge": MANIFEST_VERSION,
        "engine": resolved.to_dict(),
        "input": {"tensor": program.input, "onnx_input": program.input_name,
                  "shape": [1, *program.tensors[program.input].shape]},
        "output": {"tensor": program.output},
        "images": images,
        "layers": [_layer_entry(program, plan, layer, i, sched.descriptors[i], sched) for i, layer in enumerate(program.layers)],
        "tensors": {name: {"channels": program.tensors[name].channels, **lay.to_dict(),
                           "scale": program.tensors[name].scale, "zero_point": program.tensors[name].zero_point}
                    for name, lay in plan.layouts.items()},
        "totals": {"macs": sum(program.macs(l) for l in program.layers),
                   "weight_bits": int(sum(l.weights.size for l in program.layers if isinstance(l, ConvLayer)) * 8),
                   "weight_rom_bits": len(wts) * resolved.weight_word_bits,
                   "activation_words": plan.act_words},
        "files": {name: _sha256(out / name) for name in CHECKED_FILES if (out / name).exists()},
        "meta": program.meta,
    }
    if dram is not None:
        manifest["dram"] = dram
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return resolved


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _layer_entry(program: Program, plan, layer, index: int, descriptor: dict, sched: Schedule) -> dict:
    t = program.tensors[layer.output]
    conv = isinstance(layer, ConvLayer)
    return {
        "index": index, "name": layer.name, "kind": layer.kind, "unit": layer.unit, "onnx_node": layer.onnx_node,
        "inputs": layer.inputs, "output": layer.output, "out_channel_offset": layer.out_channel_offset,
        "out_shape": [t.height, t.width] if layer.kind == "gap" else list(t.shape),
        "channels": int(layer.out_channels) if conv else program.tensors[layer.inputs[0]].channels,
        "macs": program.macs(layer),
        "weight_offset": plan.weight_offsets.get(layer.name, -1), "quant_offset": plan.quant_offsets.get(layer.name, -1),
        "descriptor": {k: (v.name if isinstance(v, Op) else v) for k, v in descriptor.items()},
        # a fused pool: its last writer (its result is complete when that one's descriptor ends); a writer: its pool
        "fused_with": sched.fused[layer.name][-1] if layer.name in sched.fused else
        next((p for p, ws in sched.fused.items() if layer.name in ws), None),
    }
