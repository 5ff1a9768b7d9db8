"""Bad images and tensors, the bad-input corpus's input half: an image is read by its real bit depth and mode (a
16-bit PNG is the same picture as its 8-bit twin), and anything unreadable, too large or of the wrong shape is
refused through ``support.cli.refuse`` (exit 2, one line naming the file, nothing changed or left behind).
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fireforge.sw import inputs
from fireforge.sw.compile import compile_model
from support.cli import refuse, run_cli

SIZE = 16                                   # the compiled model's input height = width


@pytest.fixture(scope="module")
def compiled(build_model, tmp_path_factory):
    """A small compiled model (conv 3 -> 8 channels, 16x16) to feed inputs to."""
    out = tmp_path_factory.mktemp("img") / "out"
    compile_model(build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1,
                              input_size=SIZE), out)
    return out


def _gradient(h=40, w=48):
    return (np.add.outer(np.arange(h), np.arange(w)) * 2.6).astype(np.uint8)


def _top5(capsys, out, image):
    rc, stdout, err = run_cli(["compare", out, "--input", image, "--json"], capsys)
    assert rc in (0, 1), err
    return json.loads(stdout)["top5"]["golden"]


# -- class 2: images become 8-bit RGB by their real bit depth and mode -------------------------------------------------

def test_16_bit_png_is_the_same_picture_as_its_8_bit_twin(compiled, tmp_path, capsys):
    g = _gradient()
    Image.fromarray(g).save(tmp_path / "g8.png")
    Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert np.array_equal(inputs.load_image(tmp_path / "g16.png", (SIZE, SIZE)),
                          inputs.load_image(tmp_path / "g8.png", (SIZE, SIZE)))
    assert _top5(capsys, compiled, tmp_path / "g16.png") == _top5(capsys, compiled, tmp_path / "g8.png")


def test_16_bit_values_are_rounded_not_clipped():
    img = Image.fromarray(np.array([[0, 128, 129, 1000, 65535]], np.uint16))
    rgb = np.asarray(inputs.to_rgb8(img, "x.png"))
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 4, 255]


def test_16_bit_calibration_folder_quantizes_like_its_8_bit_twin(build_model, tmp_path):
    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=SIZE)
    for bits, folder in ((8, tmp_path / "c8"), (16, tmp_path / "c16")):
        folder.mkdir()
        for k in range(3):
            g = np.roll(_gradient(), 7 * k, axis=1)
            Image.fromarray(g if bits == 8 else g.astype(np.uint16) * 257).save(folder / f"{k}.png")
        compile_model(model, tmp_path / f"out{bits}", calib=folder)
    for f in ("weights.bin", "quant.bin"):
        assert (tmp_path / "out8" / f).read_bytes() == (tmp_path / "out16" / f).read_bytes(), f


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "YCbCr"])
def test_other_8_bit_modes_read_as_their_rgb_conversion(tmp_path, mode):
    rgb = Image.fromarray(np.stack([_gradient(), _gradient()[::-1], _gradient()[:, ::-1]], -1))
    img = rgb.convert(mode)
    path = tmp_path / ("m.jpg" if mode in ("CMYK", "YCbCr") else "m.png")
    img.save(path, quality=100) if path.suffix == ".jpg" else img.save(path)
    Image.open(path).convert("RGB").save(tmp_path / "twin.png")
    assert np.array_equal(inputs.load_image(path, (SIZE, SIZE)), inputs.load_image(tmp_path / "twin.png", (SIZE, SIZE)))


@pytest.mark.parametrize("mode, array, words", [
    ("F", np.full((8, 8), 0.5, np.float32), ["mode F", "32-bit float"]),
    ("I", np.full((8, 8), 70000, np.int32), ["mode I", "32-bit integer"]),
])
def test_an_image_mode_without_a_fixed_range_is_refused(compiled, tmp_path, capsys, mode, array, words):
    Image.fromarray(array, mode).save(tmp_path / "odd.tif")
    refuse(capsys, ["compare", compiled, "--input", tmp_path / "odd.tif"], "odd.tif", *words, where=tmp_path)


# -- class 5: too large, unreadable, or the wrong tensor ---------------------------------------------------------------

def _png_header(path, width, height):
    """A PNG that declares ``width`` x ``height`` (only its header: enough for a reader to see the size)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_a_200_megapixel_image_is_refused_with_its_size_and_the_limit(compiled, tmp_path, capsys):
    big = _png_header(tmp_path / "big.png", 20000, 10000)
    refuse(capsys, ["compare", compiled, "--input", big], "big.png", "20000x10000", "200,000,000", "89,478,485",
           where=tmp_path)


def test_a_too_large_calibration_image_is_refused(build_model, tmp_path, capsys):
    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=SIZE)
    (tmp_path / "calib").mkdir()
    _png_header(tmp_path / "calib" / "huge.png", 12000, 9000)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out", "--calib", tmp_path / "calib"], "huge.png",
           "108,000,000", where=tmp_path)


def _truncated(path):
    Image.fromarray(_gradient()).save(path)
    path.write_bytes(path.read_bytes()[:60])
    return path


def _written(data: bytes):
    def make(path):
        path.write_bytes(data)
        return path
    return make


BROKEN_IMAGES = {
    "truncated png": (_truncated, ["truncated"]),
    "zero-byte png": (_written(b""), ["empty"]),
    "text named .png": (_written(b"not a picture\n" * 10), ["not a readable image"]),
    "png header only": (lambda p: _png_header(p, 30, 30), ["not a readable image"]),
}


@pytest.mark.parametrize("case", BROKEN_IMAGES)
def test_a_broken_image_is_refused_naming_it(compiled, tmp_path, capsys, case):
    make, words = BROKEN_IMAGES[case]
    bad = make(tmp_path / "bad.png")
    refuse(capsys, ["compare", compiled, "--input", bad], "bad.png", *words, where=tmp_path)


def _calib_folder(tmp_path, *extra):
    folder = tmp_path / "calib"
    folder.mkdir()
    Image.fromarray(_gradient()).save(folder / "a.png")
    for name in extra:
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            (folder / name).write_text("notes\n")
    return folder


@pytest.mark.parametrize("extra, words", [
    (["notes.txt"], ["notes.txt", "not an image"]),
    (["more/"], ["more", "not an image"]),
    (["b.jpg"], ["b.jpg", "not a readable image"]),
])
def test_a_calibration_folder_with_a_non_image_is_refused_naming_it(build_model, tmp_path, capsys, extra, words):
    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=SIZE)
    folder = _calib_folder(tmp_path, *extra)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out", "--calib", folder], *words, where=tmp_path)


def test_an_empty_calibration_folder_is_refused(build_model, tmp_path, capsys):
    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=SIZE)
    (tmp_path / "calib").mkdir()
    refuse(capsys, ["compile", model, "-o", tmp_path / "out", "--calib", tmp_path / "calib"], "no image files",
           where=tmp_path)


def test_images_of_mixed_sizes_and_modes_are_each_preprocessed_to_the_input(tmp_path):
    folder = _calib_folder(tmp_path, ".DS_Store")            # hidden files are not calibration data
    Image.fromarray(_gradient(90, 30)).convert("P").save(folder / "tall.png")
    Image.fromarray(_gradient(20, 200).astype(np.uint16) * 257).save(folder / "wide16.png")
    batch = inputs.load_batch(folder, (1, 3, SIZE, SIZE))
    assert batch.shape == (3, 3, SIZE, SIZE) and batch.dtype == np.float32 and np.all(np.isfinite(batch))
    # each one exactly as it reads alone
    assert np.array_equal(batch[1:2], inputs.load_image(folder / "tall.png", (SIZE, SIZE)))


NPY = {
    "wrong shape": (np.zeros((1, 3, 8, 8), np.float32), ["shape [1, 3, 8, 8]", "[N, 3, 16, 16]"]),
    "channels last": (np.zeros((1, SIZE, SIZE, 3), np.float32), ["shape [1, 16, 16, 3]"]),
    "bool dtype": (np.zeros((1, 3, SIZE, SIZE), bool), ["dtype bool"]),
    "complex dtype": (np.zeros((1, 3, SIZE, SIZE), np.complex64), ["complex64"]),
    "NaN": (np.full((1, 3, SIZE, SIZE), np.nan, np.float32), ["NaN"]),
    "inf": (np.full((1, 3, SIZE, SIZE), np.inf, np.float32), ["Inf"]),
    "float64 overflowing float32": (np.full((1, 3, SIZE, SIZE), 1e300), ["Inf"]),
    "empty batch": (np.zeros((0, 3, SIZE, SIZE), np.float32), ["empty"]),
}


@pytest.mark.parametrize("case", NPY)
def test_a_wrong_npy_input_is_refused(compiled, tmp_path, capsys, case):
    array, words = NPY[case]
    np.save(tmp_path / "x.npy", array)
    refuse(capsys, ["compare", compiled, "--input", tmp_path / "x.npy"], "x.npy", *words, where=tmp_path)


@pytest.mark.parametrize("content, words", [
    (b"", ["x.npy", "not a readable .npy"]),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 16, 16), }", ["x.npy"]),
])
def test_a_broken_npy_file_is_refused(compiled, tmp_path, capsys, content, words):
    (tmp_path / "x.npy").write_bytes(content)
    refuse(capsys, ["compare", compiled, "--input", tmp_path / "x.npy"], *words, where=tmp_path)


def test_a_pickled_npy_is_refused_not_unpickled(build_model, tmp_path, capsys):
    model = build_model("conv", in_channels=3, out_channels=8, kernel=3, stride=1, padding=1, input_size=SIZE)
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refuse(capsys, ["compile", model, "-o", tmp_path / "out", "--calib", tmp_path / "x.npy"], "x.npy",
           "not a readable .npy", where=tmp_path)
