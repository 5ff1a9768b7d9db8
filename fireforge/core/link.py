"""Host link protocol version 2 — the one place it is written down. The board side is
:mod:`fireforge.hw.link`, the host side :mod:`fireforge.sw.link_client`; both take their constants from here.

A DRAM-mode board (issue #20) is driven over its USB-serial bridge, 8N1. Every exchange is one request frame
from the host and one response frame from the board::

    request   A5 5A  seq  cmd     len(2)  payload[len]  crc(2)
    response  5A A5  seq  status  len(2)  payload[len]  crc(2)

Multi-byte fields are little-endian. ``crc`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection)
over ``seq`` … the last payload byte. ``len`` ≤ :data:`MAX_PAYLOAD`.

The board buffers a request whole and acts only when its CRC is right (a flipped address byte never
writes anywhere). A request with a bad CRC gets a response with status :data:`Status.BAD_CRC` and the
``seq`` as received, no payload; bytes before a sync pair are skipped (resynchronisation after garbage),
and a frame whose bytes stop arriving for :data:`FRAME_TIMEOUT_S` is abandoned (shorter than the host's
response timeout: a frame cut short by a lost byte is dropped before the host sends it again). The host sends each request
until a response with its ``seq`` and a right CRC arrives — on a timeout, a response it cannot parse, or
``BAD_CRC`` — at most ``retries`` times, then fails with one clear error. Every command is idempotent but
START, which the board runs once per ``seq``: a repeated START with the ``seq`` of the one it last accepted
is answered as before without starting again. The host counts ``seq`` up modulo 256 per new request.

Commands (payload → response payload):

==========  ======================================  ====================================================
IDENTIFY    —                                        magic ``FF``, version (1), board id (1), status (1),
                                                     config hash (8), data width bits (1), mac_units (2),
                                                     act / weight / quant depth, engine clock in kHz
                                                     (4 each)   — 30 bytes
WRITE       address (4), data                        — ; data length a multiple of the port's beat bytes
READ        address (4), count (2)                   ``count`` bytes of DRAM from ``address``
CHECKSUM    address (4), count (4)                   CRC-32 (zlib's) of ``count`` DRAM bytes (4)
START       program address (4), commands (3)        — ; the DRAM-mode engine runs the stream
STATUS      —                                        status (1), cycles, compute cycles, bytes read,
                                                     bytes written (4 each)  — 17 bytes
==========  ======================================  ====================================================

``status`` bits: 0 busy, 1 done, 2 engine error, 3 DRAM init done, 4 DRAM init error. DRAM access (WRITE,
READ, CHECKSUM) and START while the engine is busy answer :data:`Status.BUSY`. Addresses and counts must be
multiples of the beat bytes (:data:`Status.BAD_ARGS` otherwise).

The config hash (:func:`config_hash`) identifies the engine a bitstream was built for: the host refuses a
board whose hash differs from the compile output's.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct

__all__ = ["VERSION", "SYNC_REQUEST", "SYNC_RESPONSE", "MAX_PAYLOAD", "FRAME_TIMEOUT_S", "Cmd", "Status",
           "StatusBits", "crc16", "request_frame", "response_frame", "parse_frame", "config_hash", "BOARD_IDS",
           "IDENTIFY_FORMAT", "STATUS_FORMAT"]

VERSION = 2
SYNC_REQUEST = b"\xa5\x5a"
SYNC_RESPONSE = b"\x5a\xa5"
#: the largest payload (one frame buffer of the board: 1 KB of data + a 4-byte address)
MAX_PAYLOAD = 1028
#: a frame whose next byte does not come within this many seconds (of the board's clock) is abandoned
FRAME_TIMEOUT_S = 0.01
#: ``<`` magic(2) version board status hash(8) width mac_units act weight quant clock_khz
IDENTIFY_FORMAT = "<2sBBB8sBHIIII"
STATUS_FORMAT = "<BIIII"
#: board ids in IDENTIFY (fireforge.hw.board.catalogue names)
BOARD_IDS = {"sim": 0, "ulx3s-85f": 1, "arty-a7-100": 2, "kc705": 3}


class Cmd(enum.IntEnum):
    IDENTIFY = 1
    WRITE = 2
    READ = 3
    CHECKSUM = 4
    START = 5
    STATUS = 6


class Status(enum.IntEnum):
    OK = 0
    BUSY = 1
    BAD_CRC = 2
    BAD_CMD = 3
    BAD_ARGS = 4
    AXI_ERROR = 5


class StatusBits(enum.IntFlag):
    BUSY = 1
    DONE = 2
    ERROR = 4
    INIT_DONE = 8
    INIT_ERROR = 16


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _frame(sync: bytes, seq: int, code: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes > {MAX_PAYLOAD}")
    body = struct.pack("<BBH", seq & 0xFF, code, len(payload)) + payload
    return sync + body + struct.pack("<H", crc16(body))


def request_frame(seq: int, cmd: Cmd, payload: bytes = b"") -> bytes:
    return _frame(SYNC_REQUEST, seq, cmd, payload)


def response_frame(seq: int, status: Status, payload: bytes = b"") -> bytes:
    return _frame(SYNC_RESPONSE, seq, status, payload)


def parse_frame(buf: bytearray, sync: bytes) -> tuple[int, int, bytes] | None | bool:
    """The first whole frame in ``buf`` (consumed from it): ``(seq, code, payload)``; ``None`` if more bytes
    are needed; ``False`` if a frame with a bad CRC (or length) was dropped. Bytes before a sync pair are
    dropped."""
    while True:
        i = buf.find(sync)
        if i < 0:
            del buf[:max(0, len(buf) - 1)]
            return None
        del buf[:i]
        if len(buf) < 6:
            return None
        seq, code, n = struct.unpack_from("<BBH", buf, 2)
        if n > MAX_PAYLOAD:
            del buf[:2]                 # not a frame start: look for the next sync pair
            continue
        if len(buf) < 8 + n:
            return None
        body, (crc,) = bytes(buf[2:6 + n]), struct.unpack_from("<H", buf, 6 + n)
        if crc16(body) != crc:
            del buf[:2]
            return False
        del buf[:8 + n]
        return seq, code, body[4:]


def config_hash(config_dict: dict) -> bytes:
    """8 bytes naming an engine config (``EngineConfig.to_dict()``): what IDENTIFY reports."""
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).digest()[:8]
