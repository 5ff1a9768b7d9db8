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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fireforge.core.config import EngineConfig
from fireforge.core.layout import TensorLayout
from fireforge.core.program import Program
from fireforge.errors import FireforgeError

__all__ = ["Compiled", "Image", "LayerEntry", "MANIFEST_VERSION", "IMAGE_NAMES"]

#: the manifest format this code reads (written by fireforge.sw.images); 2: no concat tables, descriptors
#: without the lut fields, checksums of every file
MANIFEST_VERSION = 2
#: the ROM images every compile writes, by manifest key
IMAGE_NAMES = ("weights", "quant", "descriptors")


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
    def rebuild_hint(self) -> str:
        """What to tell a user whose ``OUT/`` no longer matches what a consumer needs."""
        return _rebuild_hint(self.out_dir, self.manifest)

    @classmethod
    def load(cls, out_dir: str | Path, *, verify: bool = True) -> "Compiled":
        """Read and validate ``out_dir``; ``verify=False`` skips the checksums (sizes are always checked)."""
        out_dir = Path(out_dir)
        manifest = _read_manifest(out_dir)
        hint = _rebuild_hint(out_dir, manifest)
        try:
            config = EngineConfig.from_dict(manifest["engine"], where=f"{out_dir / 'manifest.json'} engine")
            images = {name: _image(out_dir, name, manifest["images"][name], hint) for name in IMAGE_NAMES}
            if verify:
                _verify_checksums(out_dir, manifest, hint)
            program = Program.load(out_dir)
            tensors = {name: TensorLayout.from_dict(name, d) for name, d in manifest["tensors"].items()}
            layers = [LayerEntry(**{k: e[k] for k in LayerEntry.__dataclass_fields__}) for e in manifest["layers"]]
        except (KeyError, TypeError, ValueError) as e:
            raise FireforgeError(f"{out_dir / 'manifest.json'} is damaged ({type(e).__name__}: {e}); {hint}") from None
        if [l.name for l in layers] != [l.name for l in program.layers] or config.act_depth == 0:
            raise FireforgeError(f"{out_dir}: manifest.json and program.json describe different programs; {hint}")
        return cls(out_dir, program, config, images, tensors, layers, manifest)


def _rebuild_hint(out_dir: Path, manifest: dict) -> str:
    source = manifest.get("meta", {}).get("source") or "MODEL.onnx"
    return f"compile again: fireforge compile {source} -o {out_dir} --force"


def _read_manifest(out_dir: Path) -> dict:
    path = out_dir / "manifest.json"
    if not out_dir.is_dir():
        raise FireforgeError(f"{out_dir} is not a directory; pass the output directory of fireforge compile")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FireforgeError(f"{out_dir} is not a fireforge compile output: manifest.json is missing "
                             f"(run `fireforge compile MODEL.onnx -o {out_dir}`)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FireforgeError(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise FireforgeError(f"{path} is damaged (not valid JSON: {e.msg} at line {e.lineno}); compile again") from None
    if not isinstance(manifest, dict) or "fireforge" not in manifest:
        raise FireforgeError(f"{path} is not a fireforge manifest; compile again")
    if manifest["fireforge"] != MANIFEST_VERSION:
        raise FireforgeError(f"{out_dir} was compiled by another fireforge version (manifest format "
                             f"{manifest['fireforge']}, this one reads {MANIFEST_VERSION}); compile again")
    return manifest


def _image(out_dir: Path, name: str, entry: dict, hint: str) -> Image:
    img = Image(name, out_dir / entry["hex"], out_dir / entry["bin"], int(entry["word_bits"]),
                int(entry["word_bytes"]), int(entry["words"]))
    for path in (img.hex, img.bin):
        if not path.is_file():
            raise FireforgeError(f"{path} is missing; {hint}")
    size = img.bin.stat().st_size
    if size != img.words * img.word_bytes:
        raise FireforgeError(f"{img.bin} holds {size} bytes, the manifest says {img.words} words of "
                             f"{img.word_bytes} bytes; {hint}")
    return img


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify_checksums(out_dir: Path, manifest: dict, hint: str) -> None:
    expected = dict(manifest.get("files", {}))
    for entry in manifest["images"].values():
        expected[entry["hex"]] = entry["hex_sha256"]
        expected[entry["bin"]] = entry["bin_sha256"]
    for name, digest in expected.items():
        path = out_dir / name
        if not path.is_file():
            raise FireforgeError(f"{path} is missing; {hint}")
        if _sha256(path) != digest:
            raise FireforgeError(f"{path} was changed after compiling (its sha256 differs from manifest.json); {hint}")
