"""``fireforge run``: a DRAM-mode compile output on a board (or the simulated board) over link protocol v2.

The board is identified and refused unless its engine is the one ``OUT/`` was compiled for. The program —
weights, requant words and command stream — is uploaded once per power-up: each region's CRC-32 is asked of
the board and only a region whose checksum differs is written (then checked again). Per input: the quantized
input words written at the input tensor's DRAM words, START, STATUS polled until done, the output tensor read
back; with ``check`` every output byte is compared with the golden model.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from fireforge.core.compiled import Compiled
from fireforge.core.layout import read_tensor, tensor_words
from fireforge.core.link import StatusBits, config_hash
from fireforge.core.numerics import quantize_input
from fireforge.errors import FireforgeError
from fireforge.sw.compare import top5
from fireforge.sw.link_client import LinkClient, LinkError

__all__ = ["ImageResult", "RunSession", "upload_program"]


@dataclass
class ImageResult:
    name: str
    top5: list[int]
    cycles: int
    latency_ms: float            # on the board: the engine's cycles at its clock
    wall_s: float                # on the host: input written … output read
    mismatches: int | None = None
    output: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"input": self.name, "top5": self.top5, "cycles": self.cycles, "latency_ms": self.latency_ms,
                "wall_s": self.wall_s, **({"mismatches": self.mismatches} if self.mismatches is not None else {})}


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

    def __init__(self, compiled: Compiled, client: LinkClient, *, clock_mhz: float, log=lambda msg: None,
                 init_timeout_s: float = 10.0):
        self.c, self.client, self.clock_mhz = compiled, client, clock_mhz
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
        self.board = ident.board
        t0 = time.perf_counter()
        self.uploaded = upload_program(client, compiled, log)
        self.upload_s = time.perf_counter() - t0

    def infer(self, x: np.ndarray, name: str = "input", *, check: bool = False, poll_s: float = 0.001,
              timeout_s: float = 600.0) -> ImageResult:
        c, client = self.c, self.client
        m, v = c.dram["map"], c.vector
        lay, t_in = c.input_layout, c.program.tensors[c.program.input]
        words = np.asarray(tensor_words(lay, quantize_input(x, t_in.scale, t_in.zero_point), t_in.zero_point, v),
                           np.uint8)
        t0 = time.perf_counter()
        client.write(m["act"] + lay.addr * v, words.tobytes())
        client.start(m["commands"], m["command_count"])
        deadline = time.monotonic() + timeout_s
        while True:
            st = client.status()
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
        return ImageResult(name, top5(got) if got.shape[1:] == (1, 1) else [], st.cycles, st.cycles / (self.clock_mhz * 1e3), wall, mism, got)
