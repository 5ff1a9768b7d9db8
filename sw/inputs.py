"""Input tensors from the user's files: a .npy NCHW batch, an image file, or a folder of images.

Images are resized and normalised the way the model family expects (``--preprocess``):

* ``torchvision``: RGB, resize the shorter side to ``S·256/224``, centre-crop ``S×S``, scale to [0, 1],
  normalise with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225);
* ``caffe``: BGR, resize to ``S×S``, 0–255, subtract the mean (104, 117, 123);
* ``none``: RGB, resize to ``S×S``, scale to [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fireforge.errors import FireforgeError

__all__ = ["PREPROCESS", "IMAGE_SUFFIXES", "load_image", "load_input", "load_batch", "default_calibration"]

PREPROCESS = ("torchvision", "caffe", "none")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
DEFAULT_CALIBRATION_COUNT = 16
DEFAULT_CALIBRATION_SEED = 0


def load_image(path: Path, size: tuple[int, int], preprocess: str = "torchvision") -> np.ndarray:
    """One image file as a float32 [1, 3, H, W] tensor."""
    from PIL import Image, UnidentifiedImageError     # deferred: only image inputs need it

    if preprocess not in PREPROCESS:
        raise FireforgeError(f"unknown --preprocess '{preprocess}'; choose one of {', '.join(PREPROCESS)}")
    try:
        img = Image.open(path).convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise FireforgeError(f"{path}: not a readable image ({type(e).__name__})") from None
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
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise FireforgeError(f"{what}: holds NaN or Inf values")
    return x


def _load_npy(path: Path, shape: tuple[int, int, int, int], what: str) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise FireforgeError(f"{path}: not a readable .npy file ({e})") from None
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
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
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
