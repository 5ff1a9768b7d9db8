"""Input tensors from the user's files: a .npy NCHW batch, an image file, or a folder of images.

Images are resized and normalised the way the model family expects (``--preprocess``):

* ``torchvision``: RGB, resize the shorter side to ``S·256/224``, centre-crop ``S×S``, scale to [0, 1],
  normalise with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225);
* ``caffe``: BGR, resize to ``S×S``, 0–255, subtract the mean (104, 117, 123);
* ``none``: RGB, resize to ``S×S``, scale to [0, 1].

Every image is first made 8-bit RGB by its real bit depth and mode (:func:`to_rgb8`): a 16-bit image is
scaled by 255/65535 with rounding (not clipped), palette, grey, 1-bit, CMYK and alpha modes are converted the
way Pillow (and torchvision's loader) converts them; a mode with no fixed range (32-bit float or integer) is
refused, naming it. An image larger than :data:`MAX_IMAGE_PIXELS` is refused before it is decoded.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from fireforge.errors import FireforgeError

__all__ = ["PREPROCESS", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "open_image", "to_rgb8", "load_image", "load_input", "load_batch", "default_calibration"]

PREPROCESS = ("torchvision", "caffe", "none")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
DEFAULT_CALIBRATION_COUNT = 16
DEFAULT_CALIBRATION_SEED = 0
#: the largest image read (Pillow's own decompression-bomb threshold: 89,478,485 pixels, ~ 9459 x 9459)
MAX_IMAGE_PIXELS = 89_478_485
#: 16-bit modes: each value v becomes round(v / 257), so 8-bit v8 * 257 reads back as v8 exactly
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


@contextlib.contextmanager
def _no_pillow_size_limit():
    """Pillow's own bomb check off while a header is read, so the size is refused here, in one line."""

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def open_image(path: Path):
    """Open an image file and decode it, refusing one that is unreadable or larger than the limit."""

    try:
        with _no_pillow_size_limit():
            img = Image.open(path)
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                img.close()
                raise FireforgeError(f"{path}: the image is {w}x{h} = {w * h:,} pixels, more than the limit of "
                                     f"{MAX_IMAGE_PIXELS:,}; downscale it first")
            img.load()
    except FireforgeError:
        raise
    except Exception as e:  # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError, ...
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if path.stat().st_size == 0:
            why = "the file is empty"
        raise FireforgeError(f"{path}: not a readable image ({why}); is it truncated or another format?") from None
    return img


def to_rgb8(img, path: Path):
    """``img`` as an 8-bit RGB Pillow image, by its real bit depth and mode."""

    mode = img.mode
    if mode in SIXTEEN_BIT_MODES or (mode == "I" and img.format == "PNG"):  # a 16-bit PNG may open as "I"
        a = np.asarray(img).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise FireforgeError(f"{path}: a {mode} image with values outside 0..65535")
        return Image.fromarray(((a + 128) // 257).astype(np.uint8), "L").convert("RGB")
    if mode in ("I", "F") or mode.startswith(("I;", "F;")):
        kind = "32-bit float" if mode.startswith("F") else "32-bit integer"
        raise FireforgeError(f"{path}: image mode {mode} ({kind}) has no fixed range to scale to 8 bits; save "
                             f"it as an 8- or 16-bit image")
    try:
        return img.convert("RGB")
    except ValueError:
        raise FireforgeError(f"{path}: image mode {mode} cannot be converted to RGB; save it as RGB") from None


def load_image(path: Path, size: tuple[int, int], preprocess: str = "torchvision") -> np.ndarray:
    """One image file as a float32 [1, 3, H, W] tensor."""

    if preprocess not in PREPROCESS:
        raise FireforgeError(f"unknown --preprocess '{preprocess}'; choose one of {', '.join(PREPROCESS)}")
    img = to_rgb8(open_image(path), path)
    h, w = size
    if preprocess == "torchvision":
        short = round(min(h, w) * 256 / 224)
        scale = short / min(img.size)
        img = img.resize((max(w, round(img.size[0] * scale)), max(h, round(img.size[1] * scale))),
                         Image.BILINEAR)
        left, top = (img.size[0] - w) // 2, (img.size[1] - h) // 2
        img = img.crop((left, top, left + w, top + h))
        x = np.asarray(img, dtype=np.float32) / 255.0
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    elif preprocess == "caffe":
        x = np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]
        x = x - np.array([104.0, 117.0, 123.0], np.float32)
    else:
        x = np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def _check_batch(x: np.ndarray, shape: tuple[int, int, int, int], what: str) -> np.ndarray:
    if x.dtype.kind not in "fiu":
        raise FireforgeError(f"{what}: dtype {x.dtype} is not numeric")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape[1:]):
        raise FireforgeError(f"{what}: shape {list(x.shape)} does not match the model input "
                             f"[N, {shape[1]}, {shape[2]}, {shape[3]}]")
    if x.shape[0] == 0:
        raise FireforgeError(f"{what}: the batch is empty")
    with np.errstate(over="ignore"):          # a float64 beyond float32's range is refused just below
        x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise FireforgeError(f"{what}: holds NaN or Inf values")
    return x


def _load_npy(path: Path, shape: tuple[int, int, int, int], what: str) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FireforgeError(f"{path}: not a readable .npy file ({why})") from None
    return _check_batch(x, shape, what)


def load_input(path: str | Path, shape: tuple[int, int, int, int], preprocess: str = "torchvision") -> np.ndarray:
    """``--input X`` for compare/simulate: a .npy tensor (first item of a batch) or an image file."""
    path = Path(path)
    if not path.is_file():
        raise FireforgeError(f"{path}: no such input file")
    if path.suffix.lower() == ".npy":
        return _load_npy(path, shape, str(path))[:1]
    return load_image(path, shape[2:], preprocess)


def load_batch(path: str | Path, shape: tuple[int, int, int, int], preprocess: str = "torchvision") -> np.ndarray:
    """``--calib PATH``: a .npy batch, a folder of images, or one image."""
    path = Path(path)
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        others = [p for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file()]
        if others:
            raise FireforgeError(f"{others[0]}: not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}); a "
                                 f"calibration folder holds only images, move it out")
        files = entries
        if not files:
            raise FireforgeError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
        return np.concatenate([load_image(p, shape[2:], preprocess) for p in files])
    if not path.is_file():
        raise FireforgeError(f"{path}: no such calibration file or folder")
    if path.suffix.lower() == ".npy":
        return _load_npy(path, shape, f"calibration data {path}")
    return load_image(path, shape[2:], preprocess)


def default_calibration(shape: tuple[int, int, int, int]) -> np.ndarray:
    """The documented default: 16 standard-normal tensors from seed 0 (roughly normalised-image statistics)."""
    rng = np.random.default_rng(DEFAULT_CALIBRATION_SEED)
    return rng.standard_normal((DEFAULT_CALIBRATION_COUNT, *shape[1:])).astype(np.float32)
