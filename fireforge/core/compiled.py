"""A compile output directory (``OUT/``) read once, validated, and passed around as one typed object.

Every consumer — simulate, compare, generate, the board flow, the host link, the benchmarks — takes a
:class:`Compiled` from :meth:`Compiled.load` instead of re-reading ``manifest.json`` as a dict. Loading
checks that every file is present, that the images have the sizes the manifest states and that every
file still has the checksum the compiler recorded; a problem is one :class:`FireforgeError` naming the
file and the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fireforge.core.config import EngineConfig
from fireforge.core.layout import TensorLayout
from fireforge.core.program import Program, read_json
from fireforge.errors import FireforgeError

__all__ = ["Compiled", "Image", "LayerEntry", "MANIFEST_VERSION", "IMAGE_NAMES", "DRAM_IMAGE_NAMES", "CHECKED_FILES",
           "rebuild_hint", "image_names"]

#: the manifest format this code reads (written by fireforge.sw.images); 2: no concat tables, descriptors
#: without the lut fields, checksums of every file; 3: descriptors with the fused max pool's fields (471 bits),
#: layers' ``fused_with`` (a fused pool has no descriptor)
MANIFEST_VERSION = 3
#: the ROM images every compile writes, by manifest key
IMAGE_NAMES = ("weights", "quant", "descriptors")
#: the images a DRAM-mode compile adds (the command stream the engine fetches from DRAM)
DRAM_IMAGE_NAMES = ("commands",)
#: the compile outputs besides the images whose checksums the manifest's ``files`` must record
CHECKED_FILES = ("program.json", "program.npz", "quantized.onnx", "engine.json")


@dataclass(frozen=True)
class Image:
    """One ROM image: ``hex`` for ``$readmemh``, ``bin`` the same words little-endian."""

    name: str
    hex: Path
    bin: Path
    word_bits: int
    word_bytes: int
    words: int

    def read(self) -> np.ndarray:
        """The words as uint8 ``[words, word_bytes]`` (from the ``.bin`` file)."""
        return np.frombuffer(self.bin.read_bytes(), np.uint8).reshape(self.words, self.word_bytes)


@dataclass(frozen=True)
class LayerEntry:
    """A layer as scheduled: the manifest's layer table."""

    index: int
    name: str
    kind: str
    unit: str
    onnx_node: str
    inputs: list[str]
    output: str
    channels: int
    macs: int
    weight_offset: int
    quant_offset: int
    descriptor: dict
    #: a max pool fused into its writer (resident mode, fireforge.sw.schedule.fuse_pools): on the pool, the
    #: writer whose descriptor computes it (the pool has none in the ROM; ``descriptor`` is where its result
    #: is); on the writer, the pool (its own output is never stored)
    fused_with: str | None = None

    @property
    def in_rom(self) -> bool:
        """The layer has a descriptor of its own in the descriptor ROM (every layer but a fused pool)."""
        return not (self.fused_with and self.kind == "maxpool")

    @property
    def stored(self) -> bool:
        """The layer's own result is written to the activation memory (not a fused pool's writer's)."""
        return not (self.fused_with and self.kind != "maxpool")


@dataclass
class Compiled:
    """A compiled program: the integer program, its resolved engine config, images and memory layout."""

    out_dir: Path
    program: Program
    config: EngineConfig
    images: dict[str, Image]
    tensors: dict[str, TensorLayout]
    layers: list[LayerEntry]
    manifest: dict          # the raw manifest, for tools that copy it (validated, not to be re-parsed)

    @property
    def board(self) -> str | None:
        """The board ``compile --board`` chose the engine for (None: compiled without a board)."""
        meta = self.manifest.get("meta")
        return meta.get("board") if isinstance(meta, dict) and isinstance(meta.get("board"), str) else None

    @property
    def dram(self) -> dict | None:
        """DRAM mode: the manifest's ``dram`` entry (map, traffic; :func:`fireforge.sw.dram_program.summary`)."""
        return self.manifest.get("dram") if self.config.dram else None

    @property
    def vector(self) -> int:
        return self.config.vector

    @property
    def input_layout(self) -> TensorLayout:
        return self.tensors[self.program.input]

    @property
    def output_layout(self) -> TensorLayout:
        return self.tensors[self.program.output]

    def zero_point(self, tensor: str) -> int:
        return self.program.tensors[tensor].zero_point

    def layer_channel_index(self, layer: LayerEntry) -> np.ndarray:
        """The channels of a layer's own result among the words it writes (conv: 0..O−1; pool/add/GAP: its
        input's physical channels)."""
        if layer.kind == "conv":
            return np.arange(layer.channels)
        return np.asarray(self.tensors[layer.inputs[0]].channel_index)

    @property
    def rom_layers(self) -> list[LayerEntry]:
        """The layers with a descriptor in the ROM, in ROM order (a fused pool is computed by its writer's)."""
        return [e for e in self.layers if e.in_rom]

    def slot(self, entry: LayerEntry) -> int:
        """The ROM index of the descriptor that writes ``entry``'s result (a fused pool: its writer's)."""
        name = entry.fused_with if not entry.in_rom else entry.name
        return next(i for i, e in enumerate(self.rom_layers) if e.name == name)

    @property
    def rebuild_hint(self) -> str:
        """What to tell a user whose ``OUT/`` no longer matches what a consumer needs."""
        return rebuild_hint(self.out_dir, self.manifest)

    @classmethod
    def of(cls, source: "Compiled | str | Path") -> "Compiled":
        """``source`` itself if it is already loaded, else :meth:`load` of the ``OUT/`` path: what every API that
        takes "a Compiled or its directory" calls, so a directory is read and checked once."""
        return source if isinstance(source, Compiled) else cls.load(source)

    @classmethod
    def load(cls, out_dir: str | Path, *, verify: bool = True) -> "Compiled":
        """Read and validate ``out_dir``; ``verify=False`` skips the checksums (presence, structure and sizes are
        always checked). Every problem is one :class:`FireforgeError` naming the file, what is wrong with it
        and the command that rebuilds it."""
        out_dir = Path(out_dir)
        manifest = _read_manifest(out_dir)
        hint = rebuild_hint(out_dir, manifest)
        check = _Check(out_dir / "manifest.json", hint)
        _check_manifest(manifest, check)
        for name in _listed_files(manifest):
            _present(out_dir / name, hint)
        images = {name: _image(out_dir, name, manifest["images"][name], hint) for name in image_names(manifest)}
        if verify:
            _verify_checksums(out_dir, manifest, hint)
        try:
            config = EngineConfig.from_dict(manifest["engine"], where="engine")
        except FireforgeError as e:
            raise check.fail(f"is damaged: {e}") from None
        _check_engine_json(out_dir / "engine.json", manifest["engine"], hint)
        _check_images(images, config, sum(1 for e in manifest["layers"]
                                          if not (e.get("fused_with") and e.get("kind") == "maxpool")), check)
        program = Program.load(out_dir, hint=hint)
        tensors = {name: TensorLayout.from_dict(name, d) for name, d in manifest["tensors"].items()}
        layers = [LayerEntry(**{k: e.get(k) for k in LayerEntry.__dataclass_fields__}) for e in manifest["layers"]]
        _check_agreement(program, config, tensors, layers, check)
        return cls(out_dir, program, config, images, tensors, layers, manifest)


class _Check:
    """Refusals about one file: ``check.fail("what")`` -> FireforgeError "PATH what; HINT"."""

    def __init__(self, path: Path, hint: str):
        self.path, self.hint = path, hint

    def fail(self, what: str) -> FireforgeError:
        return FireforgeError(f"{self.path} {what}; {self.hint}")

    def that(self, ok: bool, what: str) -> None:
        if not ok:
            raise self.fail(what)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_count(v) -> bool:
    return _is_int(v) and v >= 0


def rebuild_hint(out_dir: Path, manifest: dict | None = None) -> str:
    """The command that rebuilds ``out_dir``, naming the model from ``manifest`` (or any document with the
    program's ``meta``: program.json's), else from program.json, else ``MODEL.onnx``."""
    source = None
    for doc in (manifest, _program_meta(out_dir) if manifest is None else None):
        meta = doc.get("meta") if isinstance(doc, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("source"), str) and meta["source"].strip():
            source = meta["source"]
            break
    return f"compile again: fireforge compile {source or 'MODEL.onnx'} -o {out_dir} --force"


def _program_meta(out_dir: Path) -> dict | None:
    """program.json's document if it can be read (where the model's name is when manifest.json is not)."""
    try:
        return json.loads((out_dir / "program.json").read_text())
    except (OSError, ValueError):
        return None


def _read_manifest(out_dir: Path) -> dict:
    path = out_dir / "manifest.json"
    if not out_dir.exists():
        raise FireforgeError(f"{out_dir} does not exist; pass the output directory of fireforge compile")
    if not out_dir.is_dir():
        raise FireforgeError(f"{out_dir} is not a directory; pass the output directory of fireforge compile")
    if not path.exists() and not path.is_symlink() and not (out_dir / "program.json").exists():
        raise FireforgeError(f"{out_dir} is not a fireforge compile output: manifest.json is missing "
                             f"(run `fireforge compile MODEL.onnx -o {out_dir}`)")
    hint = rebuild_hint(out_dir)            # the model's name from program.json, if it is still there
    _present(path, hint)
    manifest = read_json(path, hint)
    if not isinstance(manifest, dict) or "fireforge" not in manifest:
        raise FireforgeError(f"{path} is not a fireforge manifest (no \"fireforge\" format field); {hint}")
    hint = rebuild_hint(out_dir, manifest)
    if manifest["fireforge"] != MANIFEST_VERSION:
        raise FireforgeError(f"{out_dir} was compiled by another fireforge version ({path.name} format "
                             f"{manifest['fireforge']!r}, this one reads {MANIFEST_VERSION}); {hint}")
    return manifest


def _present(path: Path, hint: str) -> None:
    """``path`` is a regular file (possibly through a symlink) this process can open."""
    if path.is_symlink() and not path.exists():
        raise FireforgeError(f"{path} is missing (a symlink to {os.readlink(path)}, which does not exist); {hint}")
    if not path.exists():
        raise FireforgeError(f"{path} is missing; {hint}")
    if not path.is_file():
        what = "a directory" if path.is_dir() else "not a regular file"
        raise FireforgeError(f"{path} is {what}, not the file fireforge compile wrote; {hint}")
    if not os.access(path, os.R_OK):
        raise FireforgeError(f"cannot read {path} (permission denied); {hint}")


def _check_manifest(m: dict, check: _Check) -> None:
    """Every field the loader and its consumers use is there, with its type (the values are cross-checked
    against the images, engine.json and program.json afterwards)."""
    for key, kind in (("engine", dict), ("images", dict), ("layers", list), ("tensors", dict), ("files", dict)):
        check.that(isinstance(m.get(key), kind), f"is damaged: its \"{key}\" entry is missing or not a JSON "
                                                 f"{'object' if kind is dict else 'list'}")
    for name in image_names(m):
        e = m["images"].get(name)
        check.that(isinstance(e, dict), f"is damaged: images has no \"{name}\" entry")
        for key in ("word_bits", "word_bytes", "words"):
            check.that(_is_count(e.get(key)), f"is damaged: images {name} {key} must be a non-negative integer, "
                                              f"not {e.get(key)!r}")
        check.that(e["word_bytes"] == -(-e["word_bits"] // 8),
                   f"is damaged: images {name} has {e['word_bits']}-bit words in {e['word_bytes']} bytes")
        for key in ("hex", "bin"):
            _file_name(e.get(key), f"images {name} {key}", check)
            check.that(isinstance(e.get(f"{key}_sha256"), str), f"is damaged: images {name} has no {key}_sha256")
    for name in CHECKED_FILES:
        check.that(isinstance(m["files"].get(name), str), f"is damaged: files has no checksum of {name}")
    for name, digest in m["files"].items():
        _file_name(name, "files", check)
        check.that(isinstance(digest, str), f"is damaged: files {name} is not a sha256")
    for i, e in enumerate(m["layers"]):
        check.that(isinstance(e, dict), f"is damaged: layers[{i}] is not a JSON object")
        missing = [k for k in LayerEntry.__dataclass_fields__ if k not in e and k != "fused_with"]
        check.that(not missing, f"is damaged: layers[{i}] has no \"{missing[0] if missing else ''}\"")
        check.that(e["index"] == i, f"is damaged: layers[{i}] has index {e['index']!r}")
        for key in ("name", "kind", "unit", "onnx_node", "output"):
            check.that(isinstance(e[key], str), f"is damaged: layers[{i}] {key} is not a string")
        check.that(isinstance(e["inputs"], list) and all(isinstance(s, str) for s in e["inputs"]),
                   f"is damaged: layers[{i}] inputs is not a list of tensor names")
        for key in ("channels", "macs"):
            check.that(_is_count(e[key]), f"is damaged: layers[{i}] {key} must be a non-negative integer")
        for key in ("weight_offset", "quant_offset"):     # -1: a layer without weights
            check.that(_is_int(e[key]) and e[key] >= -1, f"is damaged: layers[{i}] {key} must be an integer ≥ -1")
        check.that(isinstance(e["descriptor"], dict), f"is damaged: layers[{i}] descriptor is not a JSON object")
    for name, d in m["tensors"].items():
        check.that(isinstance(d, dict), f"is damaged: tensors \"{name}\" is not a JSON object")
        for key in ("height", "width", "groups", "addr"):
            check.that(_is_count(d.get(key)), f"is damaged: tensors \"{name}\" {key} must be a non-negative integer")
        check.that(isinstance(d.get("channel_index"), list) and all(_is_count(c) for c in d["channel_index"]),
                   f"is damaged: tensors \"{name}\" channel_index is not a list of channels")
        check.that(d.get("im2col") is None or isinstance(d["im2col"], dict),
                   f"is damaged: tensors \"{name}\" im2col is not a JSON object")


def _file_name(name, where: str, check: _Check) -> None:
    """A file the manifest names is a plain name inside OUT/ (a hand edit must not point anywhere else)."""
    check.that(isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name and "\\" not in name,
               f"is damaged: {where} names {name!r}, not a file in the output directory")


def image_names(manifest: dict) -> tuple[str, ...]:
    """The images a compile output has: :data:`IMAGE_NAMES`, and the DRAM mode's."""
    dram = isinstance(manifest.get("engine"), dict) and manifest["engine"].get("memory") == "dram"
    return IMAGE_NAMES + (DRAM_IMAGE_NAMES if dram else ())


def _listed_files(manifest: dict) -> list[str]:
    names = [manifest["images"][n][k] for n in image_names(manifest) for k in ("hex", "bin")]
    return list(dict.fromkeys(names + list(manifest["files"])))


def _image(out_dir: Path, name: str, entry: dict, hint: str) -> Image:
    img = Image(name, out_dir / entry["hex"], out_dir / entry["bin"], entry["word_bits"], entry["word_bytes"],
                entry["words"])
    size = img.bin.stat().st_size
    if size != img.words * img.word_bytes:
        raise FireforgeError(f"{img.bin} holds {size} bytes, the manifest says {img.words} words of "
                             f"{img.word_bytes} bytes; {hint}")
    return img


def _check_engine_json(path: Path, engine: dict, hint: str) -> None:
    """engine.json (what a board flow or a user reads) says what the manifest's engine says."""
    doc = read_json(path, hint)
    if doc != engine:
        diff = sorted(k for k in set(doc) | set(engine) if doc.get(k) != engine.get(k)) if isinstance(doc, dict) else []
        raise FireforgeError(f"{path} disagrees with manifest.json's engine"
                             + (f" ({diff[0]}: {doc.get(diff[0])!r} vs {engine.get(diff[0])!r})" if diff else "")
                             + f"; {hint}")


def _check_images(images: dict[str, Image], config: EngineConfig, layers: int, check: _Check) -> None:
    """The images have the words the engine reads: a consistent edit of engine.json and the manifest's engine
    to another MAC count still disagrees with the images compiled for the first one."""
    check.that(min(config.weight_depth, config.quant_depth, config.desc_depth, config.act_depth) > 0,
               "is damaged: its engine has an unresolved (0) memory depth")
    for name, bits, depth in (("weights", config.weight_word_bits, config.weight_depth),
                              ("quant", config.quant_word_bits, config.quant_depth),
                              ("descriptors", None, config.desc_depth)):
        img = images[name]
        check.that(bits is None or img.word_bits == bits,
                   f"disagrees with its {name} image: {img.word_bits}-bit words, the engine "
                   f"({config.mac_units} MAC units) reads {bits}-bit words")
        check.that(config.dram or img.words <= depth, f"disagrees with its {name} image: {img.words} words, the engine's "
                                       f"{name} memory holds {depth}")
    check.that(images["descriptors"].words == layers + 1,
               f"disagrees with its descriptors image: {images['descriptors'].words} descriptors for {layers} "
               f"layers (one more is the end marker)")


def _check_agreement(program: Program, config: EngineConfig, tensors: dict[str, TensorLayout],
                     layers: list[LayerEntry], check: _Check) -> None:
    """manifest.json and program.json describe the same program."""
    names = [l.name for l in program.layers]
    for i, name in enumerate(names):
        check.that(i < len(layers), f"and program.json describe different programs: layer '{name}' is not in "
                                    f"the manifest's layers")
        mine, theirs = layers[i], program.layers[i]
        check.that((mine.name, mine.kind, mine.inputs, mine.output) == (theirs.name, theirs.kind, theirs.inputs,
                                                                      theirs.output),
                   f"and program.json describe different programs: layers[{i}] is {mine.kind} '{mine.name}', "
                   f"program.json's is {theirs.kind} '{theirs.name}'")
    check.that(len(layers) == len(names), f"and program.json describe different programs: layer "
                                          f"'{layers[-1].name if layers else ''}' is not in program.json")
    for name, t in program.tensors.items():
        lay = tensors.get(name)
        if lay is None:
            check.that(name not in (program.input, program.output) and
                       not any(name in (*l.inputs, l.output) for l in program.layers),
                       f"is damaged: tensors has no \"{name}\"")
            continue
        check.that(config.dram or lay.addr + lay.words <= config.act_depth,
                   f"is damaged: tensor \"{name}\" ends at word {lay.addr + lay.words}, past the activation "
                   f"memory's {config.act_depth}")
        if lay.im2col is not None:
            check.that(lay.im2col == _im2col_entry(program, name) and len(lay.channel_index) == t.channels,
                       f"and program.json describe different programs: tensor \"{name}\" im2col {lay.im2col} is "
                       f"not the windows of the conv that reads it")
        else:
            check.that((len(lay.channel_index), lay.height, lay.width) == t.shape and
                       all(c < lay.groups * config.vector for c in lay.channel_index),
                       f"and program.json describe different programs: tensor \"{name}\" is "
                       f"{len(lay.channel_index)}x{lay.height}x{lay.width} in one, "
                       f"{'x'.join(map(str, t.shape))} in the other")


def _im2col_entry(program: Program, tensor: str) -> dict | None:
    """The manifest's im2col entry of a program input read as its first conv's windows (see layout.im2col_conv)."""
    conv = next((l for l in program.layers if l.kind == "conv" and l.input == tensor), None)
    if conv is None:
        return None
    o, c, kh, kw = conv.weights.shape
    return {"kernel": [kh, kw], "stride": list(conv.stride), "pads": list(conv.pads), "channels": c,
            "order": "ky, kx, c"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify_checksums(out_dir: Path, manifest: dict, hint: str) -> None:
    expected = dict(manifest["files"])
    for entry in (manifest["images"][name] for name in image_names(manifest)):
        expected[entry["hex"]] = entry["hex_sha256"]
        expected[entry["bin"]] = entry["bin_sha256"]
    for name, digest in expected.items():
        path = out_dir / name
        _present(path, hint)
        try:
            actual = _sha256(path)
        except OSError as e:
            raise FireforgeError(f"cannot read {path} ({e.strerror}); {hint}") from None
        if actual != digest:
            raise FireforgeError(f"{path} was changed after compiling (its sha256 differs from manifest.json); {hint}")
