"""The whole DRAM-mode board in simulation, driven by ``fireforge run --port sim`` (issue #20): the engine, the
host link (protocol v2) and LiteDRAM's controller Verilated together, the UART pins bridged to a pty, the real
client on the other end — the code path a board's /dev/ttyUSB0 takes. The DRAM starts empty: the program is
uploaded over the link (once: a second session finds the checksums right), the input written, the engine
started and polled, the output read back and compared with the golden model byte for byte."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytest.importorskip("litedram")

from fireforge.cli import main  # noqa: E402
from fireforge.core.compiled import Compiled  # noqa: E402
from fireforge.core.config import EngineConfig  # noqa: E402
from fireforge.core.link import (IDENTIFY_FORMAT, MAX_PAYLOAD, STATUS_FORMAT, SYNC_REQUEST, SYNC_RESPONSE,  # noqa: E402
                                 Cmd, Status, StatusBits, crc16, parse_frame, request_frame, response_frame)
from fireforge.hw.dram.memtest import memtest_words  # noqa: E402
from fireforge.sw.compile import compile_model  # noqa: E402

#: the ULX3S's DRAM-mode engine for v1.1 at 224 (compile --board ulx3s-85f): the board's own buffers
ULX3S = EngineConfig(mac_units=64, memory="dram", act_depth=32768, weight_depth=256, quant_depth=64, desc_depth=2)
#: a small engine for the line-error runs
SMALL = EngineConfig(mac_units=16, memory="dram", act_depth=2048, weight_depth=1024, quant_depth=16, desc_depth=2)


def test_frames_round_trip_and_resync():
    """The protocol's frames (fireforge.core.link): CRC-16/CCITT-FALSE's check value, a frame found after
    garbage, a damaged frame dropped (and the next one still found), a bad length skipped."""
    assert crc16(b"123456789") == 0x29B1
    f = request_frame(7, Cmd.WRITE, b"\x00\x01\x02\x03" + bytes(range(16)))
    buf = bytearray(b"\x00\xa5\x13" + f)
    assert parse_frame(buf, SYNC_REQUEST) == (7, Cmd.WRITE, f[6:-2]) and not buf
    bad = bytearray(f)
    bad[10] ^= 0x40
    buf = bytearray(bad + response_frame(3, Status.OK, b"xy"))
    assert parse_frame(buf, SYNC_REQUEST) is False
    assert parse_frame(buf, SYNC_REQUEST) is None            # the response is not a request
    buf = bytearray(SYNC_RESPONSE + struct.pack("<BBH", 1, 0, MAX_PAYLOAD + 1) + response_frame(4, Status.BUSY))
    assert parse_frame(buf, SYNC_RESPONSE) == (4, Status.BUSY, b"")


@pytest.fixture(scope="module")
def v11_64(build_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("board_run") / "v11"
    compile_model(build_model("v1_1", input_size=64), out, config=ULX3S)
    return Compiled.load(out)


def _input(tmp_path, c, seed, name="x.npy"):
    t = c.program.tensors[c.program.input]
    path = tmp_path / name
    np.save(path, np.random.default_rng(seed).standard_normal((1, t.channels, t.height, t.width)).astype(np.float32))
    return path


def test_full_width_v1_1_on_the_simulated_board(v11_64, tmp_path, capsys):
    """v1.1 (full width, 1000 classes) at 64x64 on the simulated ULX3S board: upload, run, read, byte-exact; the
    engine's cycles as the DRAM-mode simulation without the link measures them (same engine, same controller)."""
    from fireforge.sim.dram_hw_run import dram_rtl_run

    x = _input(tmp_path, v11_64, 4)
    assert main(["run", str(v11_64.out_dir), "--port", "sim", "--input", str(x), "--check", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0 and doc["board"] == "sim" and doc["clock_mhz"] == 50
    # a clean line damages nothing (a loaded machine may still time a response out and resend: that is timing)
    assert len(doc["top5"]) == 5 and doc["link"]["crc_errors"] == 0
    m = v11_64.dram["map"]
    assert doc["upload"]["bytes"] == {"weights": m["weight_bytes"], "requant words": m["quant_bytes"],
                                      "commands": 64 * m["command_count"]}
    # line bytes: the payload plus frame headers, CRCs, acks and checksum requests — a few per cent, not more
    up = sum(doc["upload"]["bytes"].values())
    assert up < doc["upload"]["line_bytes"] < 1.05 * up
    assert doc["upload"]["line_s"] == pytest.approx(10 * doc["upload"]["line_bytes"] / doc["baud"])
    (img,) = doc["images"]
    io_bytes = (v11_64.input_layout.words + v11_64.output_layout.words) * v11_64.vector
    poll = len(request_frame(0, Cmd.STATUS)) + len(response_frame(0, Status.OK, bytes(struct.calcsize(STATUS_FORMAT))))
    assert io_bytes < img["line_bytes"] - img["polls"] * poll < 1.1 * io_bytes + 2000
    assert img["line_s"] == pytest.approx((img["line_bytes"] - img["polls"] * poll) * 10 / 3e6 + img["latency_ms"] / 1e3)
    hw = dram_rtl_run(v11_64, np.load(x))
    assert abs(doc["cycles"] / hw.cycles - 1) < 0.01, (doc["cycles"], hw.cycles)


@pytest.mark.parametrize("p", [0.01])
def test_damaged_line_is_byte_exact_or_one_clear_error(build_model, tmp_path, capsys, p):
    """1 % of the bytes flipped, dropped or doubled, both ways: every inference byte-exact, the damage seen
    (CRC errors, retries); a folder runs as a batch."""
    out = tmp_path / "fire"
    compile_model(build_model("fire", in_channels=16, squeeze=8, expand1x1=16, expand3x3=16, input_size=12), out,
                  config=SMALL)
    c = Compiled.load(out)
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i in range(2):
        _input(folder, c, 10 + i, f"x{i}.npy")
    code = main(["run", str(out), "--port", "sim", "--input", str(folder), "--check", "--json",
                 "--line-errors", str(p), "--seed", "5"])
    captured = capsys.readouterr()
    if code == 2:       # the retries ran out: one line, naming the line
        last = captured.err.strip().splitlines()[-1]
        assert last.startswith("fireforge: error:") and "retries" in last and "Traceback" not in captured.err
        return
    doc = json.loads(captured.out)
    assert code == 0 and doc["mismatches"] == 0 and len(doc["images"]) == 2
    assert all(r["mismatches"] == 0 for r in doc["images"])
    assert doc["link"]["crc_errors"] > 0 and doc["link"]["retries"] > 0


def test_refusals(v11_64, tmp_path, capsys):
    """One line, exit 2: --line-errors on a real port, a resident-mode OUT, a missing input."""
    x = _input(tmp_path, v11_64, 1)
    assert main(["run", str(v11_64.out_dir), "--port", "/dev/ttyUSB9", "--input", str(x), "--line-errors",
                 "0.1"]) == 2
    assert "--port sim" in capsys.readouterr().err
    assert main(["run", str(v11_64.out_dir), "--port", "sim", "--input", str(tmp_path / "nope.npy")]) == 2
    assert "nope.npy" in capsys.readouterr().err
    assert main(["run", str(v11_64.out_dir), "--port", "/dev/ttyUSB9", "--input", str(x)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/dev/ttyUSB9" in err and err.startswith("fireforge: error:")


@pytest.mark.slow
def test_v1_1_224_on_the_simulated_board(build_model, tmp_path, capsys):
    """--runslow (~3 min): v1.1 at 224x224 compiled for the ULX3S, on the simulated board over its link,
    byte-exact, its cycles as the DRAM-mode simulation measures them."""
    from fireforge.sim.dram_hw_run import dram_rtl_run

    out = tmp_path / "v11"
    compile_model(build_model("v1_1"), out, board="ulx3s-85f")
    c = Compiled.load(out)
    x = _input(tmp_path, c, 7)
    assert main(["run", str(out), "--port", "sim", "--input", str(x), "--check", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0
    hw = dram_rtl_run(c, np.load(x))
    assert abs(doc["cycles"] / hw.cycles - 1) < 0.01, (doc["cycles"], hw.cycles)


def test_link_answers_bad_requests(tmp_path):
    """Raw frames on the simulated board's pty: garbage before a request is skipped, a damaged request is
    answered BAD_CRC with nothing done, an unknown command BAD_CMD, a misaligned WRITE / READ BAD_ARGS; READ
    returns what WRITE wrote and CHECKSUM is zlib's CRC-32 of it."""
    import zlib

    from fireforge.sim import board_sim
    from fireforge.sw.link_client import SerialPort

    def exchange(port, frame, timeout=5.0):
        port.write(frame)
        buf, deadline = bytearray(), __import__("time").monotonic() + timeout
        while __import__("time").monotonic() < deadline:
            buf += port.read(0.05)
            got = parse_frame(buf, SYNC_RESPONSE)
            if got not in (None, False):
                return got
        raise AssertionError("no response")

    with board_sim.start(SMALL) as sim:
        port = SerialPort(sim.port, 3_000_000)
        try:
            seq, status, body = exchange(port, b"\x00\x5a\xa5\xff" + request_frame(1, Cmd.IDENTIFY))
            assert (seq, status, body[:2]) == (1, Status.OK, b"FF")
            dw = struct.unpack(IDENTIFY_FORMAT, body)[5]
            bad = bytearray(request_frame(2, Cmd.WRITE, struct.pack("<I", 0) + b"\x11" * 16))
            bad[8] ^= 1
            assert exchange(port, bytes(bad))[:2] == (2, Status.BAD_CRC)
            assert exchange(port, request_frame(3, 0x42))[1] == Status.BAD_CMD
            assert exchange(port, request_frame(4, Cmd.WRITE, struct.pack("<I", 1) + b"\x11" * 16))[1] == Status.BAD_ARGS
            assert exchange(port, request_frame(5, Cmd.READ, struct.pack("<IH", 0, 3)))[1] == Status.BAD_ARGS
            data = bytes(range(256)) * 2
            assert exchange(port, request_frame(6, Cmd.WRITE, struct.pack("<I", 4096) + data))[1] == Status.OK
            assert exchange(port, request_frame(7, Cmd.READ, struct.pack("<IH", 4096, 512)))[2] == data
            crc = exchange(port, request_frame(8, Cmd.CHECKSUM, struct.pack("<II", 4096, 512)))[2]
            assert struct.unpack("<I", crc)[0] == zlib.crc32(data)
            # the damaged WRITE above wrote nothing: address 0 still holds what the power-up memory test wrote
            # there (its data-line walk), and the DRAM reads ready: the test passed on LiteDRAM's model
            walk = b"".join(w.to_bytes(dw // 8, "little") for _, w in memtest_words(1 << 25, dw)[:2 * dw])
            assert exchange(port, request_frame(9, Cmd.READ, struct.pack("<IH", 0, len(walk))))[2] == walk
            bits = StatusBits(exchange(port, request_frame(10, Cmd.STATUS))[2][0])
            assert bits & StatusBits.INIT_DONE and not bits & StatusBits.INIT_ERROR
        finally:
            port.close()


def test_engine_and_controller_on_two_clocks(build_model, tmp_path, capsys):
    """--sim-clock 90: the engine at 90 MHz, LiteDRAM at its 50 MHz, the AXI port across the board top's
    clock-domain crossing (AxiCdc): byte-exact; the board reports its engine clock."""
    out = tmp_path / "fire"
    compile_model(build_model("fire", in_channels=16, squeeze=8, expand1x1=16, expand3x3=16, input_size=12), out,
                  config=SMALL)
    x = _input(tmp_path, Compiled.load(out), 3)
    assert main(["run", str(out), "--port", "sim", "--input", str(x), "--check", "--json", "--sim-clock", "90"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0 and doc["clock_mhz"] == 90
    assert doc["images"][0]["latency_ms"] == pytest.approx(doc["cycles"] / 90e3)
