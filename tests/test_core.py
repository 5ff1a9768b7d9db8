"""The neutral layer's file formats: the ``$readmemh`` reader/writer, the tensor codec of activation memory,
and ``Compiled.load`` refusing a damaged compile output with one line that names the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fireforge.core import hexfile
from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig
from fireforge.core.layout import TensorLayout, read_tensor, tensor_from_words, tensor_words
from fireforge.errors import FireforgeError

# ------------------------------------------------------------------------------------------------ hexfile


def test_hex_round_trip_full_and_trimmed_words(tmp_path):
    words = np.random.default_rng(0).integers(0, 256, (37, 3), dtype=np.uint8)
    text = hexfile.format_words(words)
    assert text.splitlines()[0] == words[0, ::-1].tobytes().hex()      # most significant byte first
    np.testing.assert_array_equal(hexfile.parse_words(text, 3), words)
    words[:, 2] &= 0x0F                                                   # 20-bit words: five digits a line
    path = hexfile.write_words(tmp_path / "sub" / "w.hex", words, bits=20)
    assert {len(line) for line in path.read_text().splitlines()} == {5}
    np.testing.assert_array_equal(hexfile.read_words(path, 3), words)


def test_hex_integers_in_twos_complement_and_padding_to_depth(tmp_path):
    words = hexfile.ints_to_words([0, 1, -1, 0x7FFF, -0x8000, 0x1234], 2)
    path = hexfile.write_words(tmp_path / "x.hex", words, 16, depth=8)
    assert path.read_text().splitlines() == ["0000", "0001", "ffff", "7fff", "8000", "1234", "0000", "0000"]
    assert hexfile.words_to_ints(hexfile.read_words(path, 2)) == [0, 1, 0xFFFF, 0x7FFF, 0x8000, 0x1234, 0, 0]
    with pytest.raises(ValueError, match="do not fit"):
        hexfile.format_words(words, 16, depth=5)


def test_hex_addresses_comments_and_unwritten_words():
    text = "// a header\n@2\nab cd   // two words\n@0 01\n"
    assert hexfile.words_to_ints(hexfile.parse_words(text, 1, 5)) == [1, 0, 0xAB, 0xCD, 0]
    assert hexfile.words_to_ints(hexfile.parse_words(text, 1)) == [1, 0, 0xAB, 0xCD]    # up to the last written
    assert hexfile.words_to_ints(hexfile.parse_words("12_34\n", 2)) == [0x1234]
    assert hexfile.words_to_ints(hexfile.parse_words("@1 0a 0b 0c", 1, 2)) == [0, 0x0A]  # beyond depth: dropped


@pytest.mark.parametrize("bad", ["xx", "0z", "1X"])
def test_hex_undefined_digits_are_refused_naming_the_file(tmp_path, bad):
    path = tmp_path / "dump.hex"
    path.write_text(f"00\n{bad}\n00\n")
    with pytest.raises(ValueError, match=rf"{path}: undefined or non-hex value '{bad}'"):
        hexfile.read_words(path, 1)


def test_hex_word_wider_than_the_memory_is_refused():
    with pytest.raises(ValueError, match="wider than 1 bytes"):
        hexfile.parse_words("123\n", 1)
    assert hexfile.words_to_ints(hexfile.parse_words("0012\n", 1)) == [0x12]    # leading zeros are no width

# ------------------------------------------------------------------------------------------------ tensor codec


def _memory(layout: TensorLayout, words: np.ndarray, vector: int, depth: int = 256) -> np.ndarray:
    mem = np.random.default_rng(1).integers(0, 256, (depth, vector), dtype=np.uint8)    # garbage around it
    mem[layout.addr:layout.addr + len(words)] = words
    return mem


@pytest.mark.parametrize("channels, channel_index, vector", [
    (5, [0, 1, 2, 3, 4], 4),            # an odd count: the second group half padding
    (5, [0, 1, 2, 4, 5], 4),            # a concat of 3 + 2 channels, the second slice on its own group
    (3, [2, 0, 1], 8),                  # fewer channels than lanes, permuted
    (16, list(range(16)), 4),
])
def test_tensor_words_then_read_tensor_is_the_identity(channels, channel_index, vector):
    h, w = 3, 5
    groups = max(channel_index) // vector + 1
    layout = TensorLayout("t", h, w, groups, np.asarray(channel_index), addr=17)
    t = np.random.default_rng(channels).integers(0, 256, (channels, h, w), dtype=np.uint8)
    words = tensor_words(layout, t, zero_point=7, vector=vector)
    assert words.shape == (layout.words, vector)
    lanes = words.reshape(h * w, groups * vector)
    unused = np.setdiff1d(np.arange(groups * vector), channel_index)
    assert not lanes[:, unused].any()                     # padding lanes hold 0
    np.testing.assert_array_equal(lanes[1 * w + 2, channel_index], t[:, 1, 2])   # pixel-major, one pixel's groups
    np.testing.assert_array_equal(read_tensor(layout, _memory(layout, words, vector), vector), t)
    np.testing.assert_array_equal(tensor_from_words(layout, words, vector), t)


@pytest.mark.parametrize("kernel, stride, pads, size, vector", [
    ((3, 3), (2, 2), (0, 0, 0, 0), 9, 8),       # v1.1's conv1 shape: 27 taps in 4 words of 8
    ((3, 3), (1, 1), (1, 1, 1, 1), 6, 4),       # padded: taps outside the image hold the zero point
    ((7, 7), (2, 2), (0, 0, 1, 1), 13, 16),     # v1.0's conv1, asymmetric pads
])
def test_im2col_input_words_hold_each_windows_taps(kernel, stride, pads, size, vector):
    c, zp = 3, 113
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    oh, ow = (size + pt + pb - kh) // sh + 1, (size + pl + pr - kw) // sw + 1
    groups = -(-kh * kw * c // vector)
    layout = TensorLayout("input", oh, ow, groups, np.arange(c), addr=3,
                          im2col={"kernel": [kh, kw], "stride": [sh, sw], "pads": [pt, pl, pb, pr], "channels": c,
                                  "order": "ky, kx, c"})
    x = np.random.default_rng(2).integers(0, 256, (c, size, size), dtype=np.uint8)
    words = tensor_words(layout, x, zero_point=zp, vector=vector)
    assert words.shape == (oh * ow * groups, vector)
    padded = np.full((c, size + pt + pb, size + pl + pr), zp, np.uint8)
    padded[:, pt:pt + size, pl:pl + size] = x
    pixels = words.reshape(oh * ow, groups * vector)
    for oy in range(oh):
        for ox in range(ow):
            taps = [padded[ci, oy * sh + ky, ox * sw + kx] for ky in range(kh) for kx in range(kw) for ci in range(c)]
            np.testing.assert_array_equal(pixels[oy * ow + ox, :len(taps)], taps)
            assert not pixels[oy * ow + ox, len(taps):].any()
    # read back, the layout's channels are the first tap of every window: the padded image, strided
    got = read_tensor(layout, _memory(layout, words, vector, depth=layout.addr + layout.words), vector)
    np.testing.assert_array_equal(got, padded[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw])

# ------------------------------------------------------------------------------------------------ Compiled.load


@pytest.fixture(scope="module")
def compiled_out(tmp_path_factory):
    import onnx

    from fireforge.models import squeezenet
    from fireforge.sw.compile import compile_model

    d = tmp_path_factory.mktemp("compiled")
    onnx.save(squeezenet.build_conv(in_channels=3, out_channels=8, kernel=3, padding=1, input_size=6), d / "m.onnx")
    compile_model(d / "m.onnx", d / "out", config=EngineConfig(mac_units=16))
    return d / "out"


@pytest.fixture
def damaged(compiled_out, tmp_path):
    """A fresh copy of the compile output, to damage."""
    return shutil.copytree(compiled_out, tmp_path / "out")


def _refusal(out_dir) -> str:
    with pytest.raises(FireforgeError) as e:
        Compiled.load(out_dir)
    message = str(e.value)
    assert "\n" not in message, message
    return message


def test_a_sound_output_loads(compiled_out):
    c = Compiled.load(compiled_out)
    assert c.config.mac_units == 16 and [l.name for l in c.layers] == [l.name for l in c.program.layers]
    assert set(c.images) == {"weights", "quant", "descriptors"}
    assert c.images["weights"].read().shape == (c.images["weights"].words, c.images["weights"].word_bytes)
    np.testing.assert_array_equal(hexfile.read_words(c.images["weights"].hex, c.images["weights"].word_bytes),
                                  c.images["weights"].read())
    assert c.input_layout.name == c.program.input and c.output_layout.name == c.program.output


def test_a_missing_image_is_named(damaged):
    (damaged / "weights.bin").unlink()
    message = _refusal(damaged)
    assert f"{damaged / 'weights.bin'} is missing" in message and "fireforge compile" in message


def test_a_truncated_bin_is_named(damaged):
    path = damaged / "quant.bin"
    path.write_bytes(path.read_bytes()[:-1])
    assert f"{path} holds" in _refusal(damaged)


def test_an_edited_hex_fails_its_checksum(damaged):
    path = damaged / "weights.hex"
    lines = path.read_text().splitlines()
    lines[0] = ("1" if lines[0][0] == "0" else "0") + lines[0][1:]      # same size, one digit changed
    path.write_text("\n".join(lines) + "\n")
    assert f"{path} was changed after compiling" in _refusal(damaged)
    Compiled.load(damaged, verify=False)                                  # sizes still agree


def test_a_manifest_that_is_not_json_is_named(damaged):
    path = damaged / "manifest.json"
    path.write_text(path.read_text()[:-20])
    message = _refusal(damaged)
    assert f"{path} is damaged (not valid JSON" in message


def test_a_manifest_with_a_missing_field_is_named(damaged):
    path = damaged / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["images"]["quant"]["words"]
    path.write_text(json.dumps(manifest))
    assert f"{path} is damaged: images quant words must be a non-negative integer, not None" in _refusal(damaged)


def test_a_directory_that_is_no_compile_output_is_named(tmp_path):
    assert "manifest.json is missing" in _refusal(tmp_path)
    assert "does not exist" in _refusal(tmp_path / "nothing")
    (tmp_path / "file").write_text("")
    assert "is not a directory" in _refusal(tmp_path / "file")
