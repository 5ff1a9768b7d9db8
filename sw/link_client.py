"""The host side of link protocol v2 (:mod:`fireforge.core.link`): a serial port, framed requests with retries,
and the board's commands as methods. The same code drives a board's ``/dev/ttyUSB0`` and the simulated board's
pty (:mod:`fireforge.sim.board_sim`).
"""

from __future__ import annotations

import os
import select
import struct
import time
from dataclasses import dataclass, field

from fireforge.core.link import (BOARD_IDS, IDENTIFY_FORMAT, MAX_PAYLOAD, STATUS_FORMAT, SYNC_RESPONSE, VERSION, Cmd,
                                 Status, StatusBits, parse_frame, request_frame)
from fireforge.errors import FireforgeError

__all__ = ["LinkError", "LinkTimeout", "LinkStats", "LineTiming", "SerialPort", "LinkClient", "Identity", "BoardStatus"]


#: the smallest WRITE frame's data (a multiple of every port's beat)
MIN_CHUNK = 16


class LinkError(FireforgeError):
    pass


class LinkTimeout(LinkError):
    """No valid response after the retries: the line, not the board, said no."""


class SerialPort:
    """A serial device (or pty) in raw mode: pyserial when it is installed (``pip install fireforge[board]``),
    else the POSIX terminal interface directly."""

    def __init__(self, device: str, baud: int):
        self.device = device
        try:
            import serial
        except ImportError:
            serial = None
        try:
            if serial is not None:
                self._port = serial.Serial(device, baud, timeout=0, write_timeout=None)
                self._fd = self._port.fileno()
            else:
                import termios
                import tty

                self._port = None
                self._fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                tty.setraw(self._fd)
                attrs = termios.tcgetattr(self._fd)
                speed = getattr(termios, f"B{baud}", None)
                if speed is None:
                    raise LinkError(f"{device}: {baud} baud is not a termios speed; install pyserial")
                attrs[4] = attrs[5] = speed
                termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        except OSError as e:
            raise LinkError(f"{device}: cannot open the serial port ({e.strerror or e})") from None

    def write(self, data: bytes) -> None:
        if self._port is not None:
            self._port.write(data)
            return
        view = memoryview(data)
        while view:
            select.select([], [self._fd], [], 1.0)
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def read(self, timeout: float) -> bytes:
        """What arrives within ``timeout`` seconds (at least one byte, or b"")."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._fd, 65536)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
        else:
            os.close(self._fd)


@dataclass(frozen=True)
class LineTiming:
    """How long to wait for a response, at most: ``floor`` + 4 × (its bits on the line at ``bit_s`` each + the
    board's work at ``work_bytes_per_s``). A board: the baud rate's bit time; the simulated board: its line's
    cycles per bit at a conservative simulation speed. Once exchanges have been timed, the client waits 4 × the
    measured seconds per line byte instead when that is shorter, but never less than ``min_wait``."""
    bit_s: float
    work_bytes_per_s: float
    floor: float
    min_wait: float

    def timeout(self, line_bytes: int, work_bytes: int = 0) -> float:
        return self.floor + 4 * (10 * line_bytes * self.bit_s + work_bytes / self.work_bytes_per_s)


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    crc_errors: int = 0          # responses with a bad CRC, and requests the board answered BAD_CRC
    timeouts: int = 0
    bytes_out: int = 0           # line bytes written and read (frames, retries and garbage included)
    bytes_in: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Identity:
    board: str
    version: int
    status: StatusBits
    config_hash: bytes
    data_width: int
    mac_units: int
    act_depth: int
    weight_depth: int
    quant_depth: int
    clock_mhz: float


@dataclass
class BoardStatus:
    bits: StatusBits
    cycles: int
    compute_cycles: int
    bytes_read: int
    bytes_written: int


@dataclass
class LinkClient:
    """Requests over ``port`` (a :class:`SerialPort`), each sent until a response with its ``seq`` and a right
    CRC comes, at most ``retries`` more times."""
    port: SerialPort
    timing: LineTiming
    retries: int = 16
    stats: LinkStats = field(default_factory=LinkStats)
    seq: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _per_byte: float | None = None         # measured seconds per line byte of clean exchanges (a moving average)

    def request(self, cmd: Cmd, payload: bytes = b"", *, reply_bytes: int = 0, work_bytes: int = 0,
                retries: int | None = None) -> bytes:
        retries = self.retries if retries is None else retries
        self.seq = (self.seq + 1) & 0xFF
        frame = request_frame(self.seq, cmd, payload)
        self.stats.requests += 1
        line = len(frame) + 8 + reply_bytes
        wait = self.timing.timeout(line, work_bytes)
        if self._per_byte is not None and work_bytes <= 4 * line:
            wait = max(self.timing.min_wait, min(wait, 4 * self._per_byte * line))
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retries += 1
            self._buf.clear()
            t0 = time.monotonic()
            self.port.write(frame)
            self.stats.bytes_out += len(frame)
            got = self._response(wait)
            if got is None:
                continue
            status, body = got
            if status == Status.OK:
                if not attempt and work_bytes <= 4 * line:
                    rate = (time.monotonic() - t0) / line
                    self._per_byte = rate if self._per_byte is None else 0.8 * self._per_byte + 0.2 * rate
                return body
            if status == Status.BAD_CRC:
                self.stats.crc_errors += 1
                continue
            if status == Status.BUSY:
                raise LinkError(f"{self.port.device}: the board is busy running the engine ({cmd.name} refused)")
            raise LinkError(f"{self.port.device}: the board answered {Status(status).name} to {cmd.name}")
        raise LinkTimeout(f"{self.port.device}: no valid response to {cmd.name} after {retries} retries "
                        f"({self.stats.crc_errors} CRC errors, {self.stats.timeouts} timeouts so far): check the "
                        f"cable and the baud rate, or lower it")

    def _response(self, wait: float) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + wait
        while True:
            parsed = parse_frame(self._buf, SYNC_RESPONSE)
            if parsed is False:
                self.stats.crc_errors += 1
                return None
            if parsed is not None:
                seq, status, body = parsed
                if seq == self.seq:
                    return status, body
                continue                        # a late answer to an earlier request
            left = deadline - time.monotonic()
            if left <= 0:
                self.stats.timeouts += 1
                return None
            data = self.port.read(min(left, 0.05))
            self.stats.bytes_in += len(data)
            self._buf += data

    # -- the commands -----------------------------------------------------------------------------------------

    def identify(self) -> Identity:
        body = self.request(Cmd.IDENTIFY, reply_bytes=struct.calcsize(IDENTIFY_FORMAT))
        if len(body) != struct.calcsize(IDENTIFY_FORMAT) or body[:2] != b"FF":
            raise LinkError(f"{self.port.device}: not a fireforge board (IDENTIFY answered {body[:8].hex()})")
        magic, version, board, status, chash, width, macs, act, wts, qnt, khz = struct.unpack(IDENTIFY_FORMAT, body)
        if version != VERSION:
            raise LinkError(f"{self.port.device}: the board speaks link protocol {version}, this fireforge {VERSION}; "
                            f"rebuild the bitstream with this fireforge")
        names = {v: k for k, v in BOARD_IDS.items()}
        return Identity(names.get(board, f"board #{board}"), version, StatusBits(status), chash, width, macs, act,
                        wts, qnt, khz / 1e3)

    def status(self) -> BoardStatus:
        bits, *counters = struct.unpack(STATUS_FORMAT, self.request(Cmd.STATUS, reply_bytes=17))
        return BoardStatus(StatusBits(bits), *counters)

    def _chunked(self, total: int, chunk: int, send) -> None:
        """``send(offset, n)`` over ``total`` bytes in frames that shrink while the line damages them (a frame of
        n bytes gets through a line that damages a fraction p of its bytes with probability (1 − p)^n) and grow
        back after four clean ones."""
        size, good, done = chunk, 0, 0
        while done < total:
            n = min(size, total - done)
            before = self.stats.retries
            try:
                send(done, n, None if size <= MIN_CHUNK else 2)
            except LinkTimeout:
                if size <= MIN_CHUNK:
                    raise
                size, good = max(MIN_CHUNK, size // 2), 0
                continue
            done += n
            if self.stats.retries > before:
                size, good = max(MIN_CHUNK, size // 2), 0
            else:
                good += 1
                if good >= 4 and size < chunk:
                    size, good = min(chunk, size * 2), 0

    def write(self, addr: int, data: bytes, *, chunk: int = MAX_PAYLOAD - 4) -> None:
        """``data`` at DRAM byte ``addr``."""
        self._chunked(len(data), chunk, lambda at, n, retries: self.request(
            Cmd.WRITE, struct.pack("<I", addr + at) + data[at:at + n], work_bytes=n, retries=retries))

    def read(self, addr: int, count: int, *, chunk: int = MAX_PAYLOAD - 4) -> bytes:
        out = bytearray(count)

        def send(at, n, retries):
            out[at:at + n] = self.request(Cmd.READ, struct.pack("<IH", addr + at, n), reply_bytes=n, work_bytes=n,
                                          retries=retries)
        self._chunked(count, chunk, send)
        return bytes(out)

    def checksum(self, addr: int, count: int) -> int:
        return struct.unpack("<I", self.request(Cmd.CHECKSUM, struct.pack("<II", addr, count), reply_bytes=4,
                                                work_bytes=count))[0]

    def start(self, program_addr: int, commands: int) -> None:
        self.request(Cmd.START, struct.pack("<I", program_addr) + commands.to_bytes(3, "little"))
