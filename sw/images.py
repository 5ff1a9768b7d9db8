"""ROM images for one engine config: weights, requant, descriptors, concat tables; ``.hex`` + ``.bin`` + manifest.

``.hex`` files hold one word per line, most significant digit first, for ``$readmemh``; ``.bin`` files the
same words little-endian, ``ceil(bits/8)`` bytes each. Word formats:

* weights: one ``vector × vector`` int8 block; byte ``o·vector + i`` is output lane ``o``, input lane ``i``.
  A conv's words run ``for out_group: for ky: for kx: for in_group``.
* quant: per output lane 64 bits: int32 folded bias (bits 0–31), 24-bit mantissa (32–55), shift (56–63).
  The engine pads with the input's zero point and multiplies raw uint8 activations, so the bias it adds
  is ``bias − zp_x·Σw`` (exactly ONNX Runtime's ``Σ w·(x − zp_x) + bias``).
* descriptors: :data:`fireforge.sw.descriptor.DESCRIPTOR`, one per layer, then an END descriptor.
* luts: 256 bytes per concat requant table.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from fireforge.errors import FireforgeError
from fireforge.sim import requant
from fireforge.sw.config import EngineConfig
from fireforge.sw.descriptor import DESCRIPTOR, Op, pack
from fireforge.sw.program import ConvLayer, Program
from fireforge.sw.schedule import Schedule, schedule

__all__ = ["write_images", "weight_words", "quant_words", "folded_bias", "descriptor_words", "read_words"]


def weight_words(weights: np.ndarray, in_layout, vector: int) -> np.ndarray:
    """A conv's [O, C, kh, kw] weights as uint8 [words, vector·vector] (byte order as in the module docstring)."""
    o, c, kh, kw = weights.shape
    og = -(-o // vector)
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
    """A conv's requant words as uint8 [groups, vector·8]."""
    o = layer.out_channels
    og = -(-o // vector)
    lanes = np.zeros((og * vector, 8), np.uint8)
    lanes[:o, 0:4] = folded_bias(layer, in_zero_point).astype("<i4").view(np.uint8).reshape(o, 4)
    for ch, s in enumerate(layer.scale):
        mant, shift = requant.requant_multiplier(float(s))
        if not 0 <= shift < 256:
            raise FireforgeError(f"layer '{layer.name}': output channel {ch} requant scale {s} is out of the "
                                 f"engine's range (shift {shift} not in 0..255)")
        lanes[ch, 4:7] = np.frombuffer(int(mant).to_bytes(3, "little"), np.uint8)
        lanes[ch, 7] = shift
    return lanes.reshape(og, vector * 8)


def descriptor_words(sched: Schedule) -> np.ndarray:
    nbytes = -(-DESCRIPTOR.size // 8)
    words = [pack(d, layer=str(i)) for i, d in enumerate(sched.descriptors)] + [pack({"op": Op.END})]
    return np.array([list(w.to_bytes(nbytes, "little")) for w in words], np.uint8).reshape(len(words), nbytes)


def _write(out: Path, stem: str, words: np.ndarray, bits: int) -> dict:
    """Write ``stem.bin`` and ``stem.hex`` from uint8 [n, bytes_per_word]; return the manifest entry."""
    words = np.ascontiguousarray(words, np.uint8)
    nbytes = words.shape[1] if words.ndim == 2 else 1
    (out / f"{stem}.bin").write_bytes(words.tobytes())
    digits = -(-bits // 4)
    lines = []
    be = words[:, ::-1] if words.ndim == 2 else words[:, None]
    for row in be:
        lines.append(row.tobytes().hex()[-digits:] if digits else "0")
    (out / f"{stem}.hex").write_text("\n".join(lines) + ("\n" if lines else ""))
    entry = {"word_bits": bits, "word_bytes": nbytes, "words": int(words.shape[0])}
    for suffix in ("bin", "hex"):
        entry[f"{suffix}"] = f"{stem}.{suffix}"
        entry[f"{suffix}_sha256"] = hashlib.sha256((out / f"{stem}.{suffix}").read_bytes()).hexdigest()
    return entry


def read_words(out: Path, entry: dict) -> np.ndarray:
    """The words of one image as uint8 [n, word_bytes] (from the .bin file)."""
    data = np.frombuffer((Path(out) / entry["bin"]).read_bytes(), np.uint8)
    return data.reshape(entry["words"], entry["word_bytes"])


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
    qnt = np.concatenate(q_blocks) if q_blocks else np.zeros((0, v * 8), np.uint8)
    desc = descriptor_words(sched)
    luts = (np.concatenate(sched.luts) if sched.luts else np.zeros(0, np.uint8)).reshape(-1, 1)
    resolved = config.with_depths(weight_depth=len(wts), quant_depth=len(qnt), desc_depth=len(desc),
                                  act_depth=sched.act_words).with_add_unit(program.add_layer_names())
    images = {
        "weights": _write(out, "weights", wts, resolved.weight_word_bits),
        "quant": _write(out, "quant", qnt, resolved.quant_word_bits),
        "descriptors": _write(out, "descriptors", desc, DESCRIPTOR.size),
        "luts": _write(out, "luts", luts, 8),
    }
    layers = []
    for i, layer in enumerate(program.layers):
        t = program.tensors[layer.output]
        d = sched.descriptors[i]
        layers.append({
            "index": i, "name": layer.name, "kind": layer.kind, "unit": layer.unit, "onnx_node": layer.onnx_node,
            "inputs": layer.inputs, "output": layer.output, "out_channel_offset": layer.out_channel_offset,
            "out_shape": [t.height, t.width] if layer.kind == "gap" else list(t.shape),
            "channels": int(layer.out_channels) if isinstance(layer, ConvLayer) else program.tensors[layer.inputs[0]].channels,
            "macs": program.macs(layer),
            "weight_offset": sched.weight_offsets[i], "quant_offset": sched.quant_offsets[i],
            "descriptor": {k: (v.name if isinstance(v, Op) else v) for k, v in d.items()},
        })
    tensors = {name: {"channels": program.tensors[name].channels, "height": lay.height, "width": lay.width,
                      "groups": lay.groups, "addr": lay.addr, "words": lay.words,
                      "channel_index": [int(c) for c in lay.channel_index], "im2col": lay.im2col,
                      "scale": program.tensors[name].scale, "zero_point": program.tensors[name].zero_point}
               for name, lay in sched.layouts.items()}
    manifest = {
        "fireforge": 1,
        "engine": resolved.to_dict(),
        "input": {"tensor": program.input, "onnx_input": program.input_name,
                  "shape": [1, *program.tensors[program.input].shape], **tensors[program.input]},
        "output": {"tensor": program.output, **tensors[program.output]},
        "images": images,
        "layers": layers,
        "tensors": tensors,
        "totals": {"macs": sum(program.macs(l) for l in program.layers),
                   "weight_bits": int(sum(l.weights.size for l in program.layers if isinstance(l, ConvLayer)) * 8),
                   "weight_rom_bits": len(wts) * resolved.weight_word_bits,
                   "activation_words": sched.act_words},
        "meta": program.meta,
    }
    (out / "engine.json").write_text(json.dumps(resolved.to_dict(), indent=1))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return resolved
