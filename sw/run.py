"""``fireforge run``: a DRAM-mode compile output on a board (or the simulated board) over link protocol v2.

The board is identified and refused unless its engine is the one ``OUT/`` was compiled for. The program —
weights, requant words and command stream — is uploaded once per power-up: each region's CRC-32 is asked of
the board and only a region whose checksum differs is written (then checked again). Per input: the quantized
input words written at the input tensor's DRAM words, START, STATUS polled until done, the output tensor read
back; with ``check`` every output byte is compared with the golden model.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.core.layout import read_tensor, tensor_words
from fireforge.core.link import (STATUS_FORMAT, Cmd, Status, StatusBits, config_hash, request_frame,
                                 response_frame)
from fireforge.core.numerics import quantize_input
from fireforge.errors import FireforgeError
from fireforge.sw.compare import top5
from fireforge.sw.link_client import LinkClient, LinkError

__all__ = ["ImageResult", "RunSession", "RunReport", "upload_program", "run_board", "format_report", "input_files"]


@dataclass
class ImageResult:
    name: str
    top5: list[int]
    cycles: int
    latency_ms: float            # on the board: the engine's cycles at its clock
    wall_s: float                # on the host: input written … output read
    mismatches: int | None = None
    output: np.ndarray | None = field(default=None, repr=False)
    line_bytes: int = 0          # bytes on the line both ways (frames, polls and retries included)
    polls: int = 0               # STATUS requests while the engine ran

    @property
    def transfer_bytes(self) -> int:
        """Line bytes without the polls (which overlap the engine's run)."""
        return self.line_bytes - self.polls * POLL_LINE_BYTES

    def line_s(self, baud: int) -> float:
        """The least seconds this input takes on a real line at ``baud``: its transfers, then the engine."""
        return line_seconds(self.transfer_bytes, baud) + self.latency_ms / 1e3

    def to_dict(self) -> dict:
        return {"input": self.name, "top5": self.top5, "cycles": self.cycles, "latency_ms": self.latency_ms,
                "wall_s": self.wall_s, "line_bytes": self.line_bytes, "polls": self.polls,
                **({"mismatches": self.mismatches} if self.mismatches is not None else {})}


#: line bytes of one STATUS exchange (request and response)
POLL_LINE_BYTES = len(request_frame(0, Cmd.STATUS)) + len(response_frame(0, Status.OK,
                                                                         bytes(struct.calcsize(STATUS_FORMAT))))


def line_bytes(client: LinkClient) -> int:
    return client.stats.bytes_out + client.stats.bytes_in


def line_seconds(nbytes: int, baud: int) -> float:
    """The least time ``nbytes`` take on a UART at ``baud`` (10 bits a byte), before any USB bridge's latency."""
    return 10 * nbytes / baud


def _program_regions(c: Compiled) -> list[tuple[str, int, bytes]]:
    m = c.dram["map"]
    return [("weights", m["weights"], c.images["weights"].read().tobytes()),
            ("requant words", m["quant"], c.images["quant"].read().tobytes()),
            ("commands", m["commands"], c.images["commands"].read().tobytes())]


def upload_program(client: LinkClient, c: Compiled, log=lambda msg: None) -> dict:
    """Write the regions whose checksum on the board differs; returns {region: bytes written}."""
    written = {}
    for name, addr, data in _program_regions(c):
        want = zlib.crc32(data)
        if client.checksum(addr, len(data)) == want:
            written[name] = 0
            continue
        log(f"uploading {name}: {len(data):,} bytes")
        client.write(addr, data)
        if client.checksum(addr, len(data)) != want:
            raise LinkError(f"{client.port.device}: the {name} on the board do not match what was written "
                            f"(CRC-32 differs after the upload)")
        written[name] = len(data)
    return written


class RunSession:
    """One board (``client``) and one compile output: identified, program uploaded, then :meth:`infer`."""

    def __init__(self, compiled: Compiled, client: LinkClient, *, log=lambda msg: None, init_timeout_s: float = 10.0):
        self.c, self.client = compiled, client
        if not compiled.config.dram:
            raise FireforgeError(f"{compiled.out_dir} is a resident-mode program; fireforge run drives DRAM-mode "
                                 f"boards (compile with --board NAME for a board whose DRAM it needs)")
        ident = client.identify()
        want = config_hash(compiled.config.to_dict())
        if ident.config_hash != want:
            raise FireforgeError(
                f"{client.port.device}: the {ident.board} runs a {ident.mac_units}-MAC engine (buffers act "
                f"{ident.act_depth} / weights {ident.weight_depth} / quant {ident.quant_depth} words, config "
                f"{ident.config_hash.hex()}), {compiled.out_dir} is compiled for {compiled.config.mac_units} MACs "
                f"(act {compiled.config.act_depth} / weights {compiled.config.weight_depth} / quant "
                f"{compiled.config.quant_depth}, config {want.hex()}); generate and load the bitstream for "
                f"{compiled.out_dir}, or compile for this board's engine")
        bits, deadline = ident.status, time.monotonic() + init_timeout_s
        while not bits & (StatusBits.INIT_DONE | StatusBits.INIT_ERROR) and time.monotonic() < deadline:
            time.sleep(0.05)                # a board just powered up: the controller's init sequence runs
            bits = client.status().bits
        if bits & StatusBits.INIT_ERROR or not bits & StatusBits.INIT_DONE:
            raise FireforgeError(f"{client.port.device}: the {ident.board}'s DRAM controller did not initialise "
                                 f"(status {bits!r}); power-cycle the board")
        self.board, self.clock_mhz = ident.board, ident.clock_mhz
        t0, b0 = time.perf_counter(), line_bytes(client)
        self.uploaded = upload_program(client, compiled, log)
        self.upload_s, self.upload_line_bytes = time.perf_counter() - t0, line_bytes(client) - b0

    def infer(self, x: np.ndarray, name: str = "input", *, check: bool = False, poll_s: float = 0.001,
              timeout_s: float = 600.0) -> ImageResult:
        c, client = self.c, self.client
        m, v = c.dram["map"], c.vector
        lay, t_in = c.input_layout, c.program.tensors[c.program.input]
        words = np.asarray(tensor_words(lay, quantize_input(x, t_in.scale, t_in.zero_point), t_in.zero_point, v),
                           np.uint8)
        t0, b0 = time.perf_counter(), line_bytes(client)
        client.write(m["act"] + lay.addr * v, words.tobytes())
        client.start(m["commands"], m["command_count"])
        deadline, polls = time.monotonic() + timeout_s, 0
        while True:
            st = client.status()
            polls += 1
            if st.bits & StatusBits.DONE and not st.bits & StatusBits.BUSY:
                break
            if time.monotonic() > deadline:
                raise FireforgeError(f"{client.port.device}: the engine did not finish within {timeout_s:g} s")
            time.sleep(poll_s)
        if st.bits & StatusBits.ERROR:
            raise FireforgeError(f"{client.port.device}: the engine reported an error (an AXI error response or a "
                                 f"bad command) after {st.cycles:,} cycles; {c.rebuild_hint}")
        out_lay = c.output_layout
        raw = client.read(m["act"] + out_lay.addr * v, out_lay.words * v)
        got = read_tensor(replace(out_lay, addr=0), np.frombuffer(raw, np.uint8).reshape(-1, v), v)
        wall = time.perf_counter() - t0
        mism = None
        if check:
            from fireforge.sim import golden

            mism = int(np.count_nonzero(got != golden.run(c.program, x).output))
        return ImageResult(name, top5(got) if got.shape[1:] == (1, 1) else [], st.cycles,
                           st.cycles / (self.clock_mhz * 1e3), wall, mism, got, line_bytes(client) - b0, polls)


@dataclass
class RunReport:
    board: str
    clock_mhz: float
    uploaded: dict
    upload_s: float
    images: list[ImageResult]
    link: dict
    line: str = ""               # the simulated line's statistics
    baud: int = 3_000_000
    upload_line_bytes: int = 0

    @property
    def mismatches(self) -> int | None:
        m = [r.mismatches for r in self.images]
        return None if None in m else sum(m)

    def to_json(self) -> dict:
        first = self.images[0]
        return {"board": self.board, "clock_mhz": self.clock_mhz, "top5": first.top5, "cycles": first.cycles,
                **({"mismatches": self.mismatches} if self.mismatches is not None else {}),
                "upload": {"bytes": self.uploaded, "seconds": self.upload_s, "line_bytes": self.upload_line_bytes,
                           "line_s": line_seconds(self.upload_line_bytes, self.baud)},
                "images": [{**r.to_dict(), "line_s": r.line_s(self.baud)} for r in self.images],
                "baud": self.baud, "link": self.link}


def input_files(path: Path) -> list[Path]:
    """``--input``: one file, or a folder's images and .npy files (sorted)."""
    from fireforge.sw.inputs import IMAGE_SUFFIXES

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | {".npy"})
        if not files:
            raise FireforgeError(f"{path}: no images or .npy files in the folder")
        return files
    if not path.is_file():
        raise FireforgeError(f"{path}: no such input file or folder")
    return [path]


def run_board(out_dir, port: str, inputs, *, check: bool = False, line_errors: float = 0.0, baud: int = 3_000_000,
              preprocess: str = "torchvision", seed: int = 1, retries: int = 16, sim_clock_mhz: float | None = None,
              progress=None, log=lambda msg: None) -> RunReport:
    """``fireforge run``: ``OUT/`` on the board at ``port`` (a serial device, or ``"sim"``: the simulated board
    on a pty, whose line damages a fraction ``line_errors`` of the bytes, its engine at ``sim_clock_mhz``)."""
    from fireforge.sw.compile import input_shape
    from fireforge.sw.inputs import load_input
    from fireforge.sw.link_client import LineTiming, SerialPort

    c = Compiled.load(out_dir)
    files = input_files(Path(inputs))
    if (line_errors or sim_clock_mhz) and port != "sim":
        raise FireforgeError(f"--{'line-errors' if line_errors else 'sim-clock'} is for the simulated board only: "
                             f"use it with --port sim")
    if not 0 <= line_errors < 1:
        raise FireforgeError(f"--line-errors {line_errors}: a probability per byte, from 0 to below 1")
    if not c.config.dram:
        raise FireforgeError(f"{c.out_dir} is a resident-mode program; fireforge run drives DRAM-mode boards "
                             f"(compile with --board NAME for a board whose DRAM it needs)")
    sim = None
    if port == "sim":
        from fireforge.sim import board_sim

        log("building or reusing the simulated board (engine, host link, LiteDRAM controller), then starting it")
        sim = board_sim.start(c.config, line_errors=line_errors, seed=seed, engine_mhz=sim_clock_mhz)
        # the simulated line: SIM_DIVISOR cycles per bit at a conservative 200 k simulated cycles per second
        device, timing = sim.port, LineTiming(board_sim.SIM_DIVISOR / 2e5, 2e5, 0.05, 0.012)
    else:
        device, timing = port, LineTiming(1 / baud, 20e6, 0.1, 0.03)   # USB bridges answer in ≥ 1-16 ms
    serial = SerialPort(device, baud)
    try:
        client = LinkClient(serial, timing, retries=retries)
        session = RunSession(c, client, log=log)
        shape = input_shape(c.program)
        results = []
        for i, f in enumerate(files):
            x = load_input(f, shape, preprocess)
            results.append(session.infer(x, f.name, check=check))
            if progress:
                progress(i + 1, len(files), results[-1])
        line = ""
    finally:
        serial.close()
        if sim is not None:
            line = sim.close()
    return RunReport(session.board, session.clock_mhz, session.uploaded, session.upload_s, results,
                     client.stats.to_dict(), line, baud, session.upload_line_bytes)


def format_report(rep: RunReport) -> str:
    lines = [f"{rep.board} at {rep.clock_mhz:g} MHz: program upload "
             + (", ".join(f"{k} {v:,} B" for k, v in rep.uploaded.items() if v) or "skipped (the board holds it)")
             + f" in {rep.upload_s:.1f} s ({rep.upload_line_bytes:,} line bytes: "
             f"≥ {line_seconds(rep.upload_line_bytes, rep.baud):.2f} s at {rep.baud:,} baud)"]
    for r in rep.images:
        check = "" if r.mismatches is None else f", {r.mismatches} mismatching bytes vs golden"
        lines.append(f"{r.name}: top-5 {r.top5}, {r.cycles:,} engine cycles = {r.latency_ms:.2f} ms on the board, "
                     f"{r.wall_s:.2f} s on the host; on a {rep.baud:,}-baud line ≥ {r.line_s(rep.baud):.2f} s "
                     f"({r.transfer_bytes:,} bytes and the engine){check}")
    if len(rep.images) > 1:
        cyc = [r.cycles for r in rep.images]
        lines.append(f"{len(rep.images)} inputs: mean {sum(cyc) / len(cyc):,.0f} cycles, "
                     f"{sum(r.wall_s for r in rep.images) / len(rep.images):.2f} s per input on the host"
                     + ("" if rep.mismatches is None else f", {rep.mismatches} mismatching bytes in all"))
    k = rep.link
    lines.append(f"link: {k['requests']:,} requests, {k['retries']} retries, {k['crc_errors']} CRC errors, "
                 f"{k['timeouts']} timeouts" + (f"; {rep.line}" if rep.line else ""))
    return "\n".join(lines)
