"""UART host link: a PC drives :class:`~fireforge.hw.top.FireforgeTop` over a serial port (8N1).

The board tops (:mod:`fireforge.hw.board`) put this on the board's ``uart`` resource (the USB-serial
bridge: FTDI on the ULX3S, Arty A7 and iCEBreaker, the CP2103 on the KC705). It turns byte commands
into the top's host port (``host_addr``/``host_wdata``/``host_we``/``host_re`` → ``host_rdata``/
``host_rvalid``) and control signals (``start``, ``busy``, ``done``, ``cycles``).

Protocol (version 1)
--------------------
8 data bits, no parity, 1 stop bit, at the ``baud`` the top was generated for (default 115 200; the
generator writes it into ``board.json``). Multi-byte fields are little-endian. A *word* is one
activation-memory word: ``W = act_word_bits / 8`` bytes (8 at 64 MAC units), lane 0 in the first byte.
Every command is one ASCII byte, optionally followed by arguments; every reply starts with one status
byte: ``K`` (done), ``B`` (refused: the engine is busy — the host port only works while it is idle) or
``?`` (unknown command, nothing else follows).

======================  ====================================  ==========================================
command                 host sends                            board replies
======================  ====================================  ==========================================
``I`` identify          ``I``                                 ``K`` ``F`` ``F`` version(1) W(1)
                                                              mac_units(2) act_depth(4)    — 11 bytes
``W`` write words       ``W`` addr(4) n(2) then n·W bytes     ``K`` after the last word was written, or
                                                              ``B`` (payload consumed, nothing written
                                                              while busy)
``R`` read words        ``R`` addr(4) n(2)                    ``K`` then n·W bytes, or ``B`` alone
``S`` start             ``S``                                 ``K`` (engine started) or ``B`` (busy)
``P`` poll              ``P``                                 ``K`` status(1): bit 0 busy, bit 1 done
``C`` cycles            ``C``                                 ``K`` cycles(4): clock cycles of the last
                                                              (or current) run
======================  ====================================  ==========================================

``done`` stays set from the end of a run until the next ``S``. A command whose arguments stop arriving
for ``timeout_ms`` (default 100 ms) is abandoned silently and the link waits for a new command byte,
so a host that lost sync sends a few ``P`` with a pause and reads until the replies line up.

A run is: ``W`` the input words at the manifest's input address (the layout the compiler chose,
:class:`HostClient.infer` does it), ``S``, ``P`` until bit 1, ``R`` the output words, ``C``.
At 115 200 baud one byte takes 87 µs: writing 64×64 inputs (3 844 words of 8 bytes at 64 MAC units)
takes ≈2.7 s; use a faster ``baud`` (the FTDI bridges do 3 Mbaud) for big inputs.
"""

from __future__ import annotations

import struct
import time
from types import SimpleNamespace

import numpy as np
from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out
from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.core.layout import tensor_from_words, tensor_words
from fireforge.core.numerics import quantize_input
from fireforge.errors import FireforgeError
from fireforge.hw.top import FireforgeTop

__all__ = ["UartRx", "UartTx", "HostLink", "LinkedTop", "HostClient", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1


class UartRx(wiring.Component):
    """8N1 receiver. ``divisor`` = clock cycles per bit (≥ 4). ``valid`` pulses for one cycle with ``data``, from a
    register (the cycle after the stop bit's sample): the link's frame decoder behind it then starts at a flip-flop,
    not at the bit timer's compare (that was the ULX3S DRAM engine's critical path at 87.71 MHz, seed 3)."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"UART divisor must be at least 4 cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(10))
        shreg = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # sample the first data bit 1.5 bit times after the falling edge
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), bit.eq(bit + 1), timer.eq(self.divisor - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):          # a framing error (rx low at the stop bit) drops the byte
                        m.d.sync += self.valid.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        m.d.comb += self.data.eq(shreg)
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: ``data`` is taken when ``valid`` and ``ready`` are both high."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"UART divisor must be at least 4 cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10, init=0x3FF)
        bits = Signal(range(11))
        m.d.comb += [self.ready.eq(bits == 0), self.tx.eq(shreg[0])]
        with m.If(bits == 0):
            with m.If(self.valid):
                m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data, Const(1, 1))), bits.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits.eq(bits - 1), timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class HostLink(wiring.Component):
    """The protocol in the module docstring, between a UART and FireforgeTop's host and control ports.

    Parameters
    ----------
    word_bits, addr_bits : int
        Activation word width (a multiple of 8) and address width of FireforgeTop's host port.
    mac_units, act_depth : int
        Reported by ``I``.
    clk_hz, baud : int
        The clock the link runs on and the line rate; cycles per bit = round(clk_hz / baud).
    timeout_ms : float
        An unfinished command is abandoned after this long without a byte.
    """

    def __init__(self, *, word_bits: int, addr_bits: int, mac_units: int, act_depth: int, clk_hz: int,
                 baud: int = 115200, timeout_ms: float = 100.0):
        if word_bits % 8:
            raise ValueError(f"word_bits must be a multiple of 8, not {word_bits}")
        self.word_bits, self.word_bytes, self.addr_bits = word_bits, word_bits // 8, addr_bits
        self.mac_units, self.act_depth = mac_units, act_depth
        self.divisor = max(4, round(clk_hz / baud))
        self.timeout = max(16, int(clk_hz * timeout_ms / 1000))
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "host_addr": Out(addr_bits), "host_wdata": Out(word_bits), "host_we": Out(1), "host_re": Out(1),
            "host_rdata": In(word_bits), "host_rvalid": In(1), "host_rready": In(1), "host_wready": In(1),
            "start": Out(1), "busy": In(1), "done": In(1), "cycles": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UartRx(self.divisor)
        m.submodules.utx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        st = self._state()
        m.d.comb += [self.host_addr.eq(st.addr), self.host_wdata.eq(st.word)]
        # the top's read answer through one more register, beside this FSM: taken straight from the top's, it
        # put a LUT of the FSM's enable logic beside the top (2 routes of 2.4-2.8 ns there and back: the
        # 64-MAC ULX3S critical path, 94.5 MHz). READ_WAIT takes an answer any number of cycles late.
        m.d.sync += [st.rvalid.eq(self.host_rvalid), st.rdata.eq(self.host_rdata)]
        with m.FSM():
            with m.State("IDLE"):
                self._command(m, st, urx)
            with m.State("ARGS"):
                self._receive(m, st, urx, payload=False)
            with m.State("DECODE"):
                self._decode(m, st)
            with m.State("WDATA"):
                self._receive(m, st, urx, payload=True)
            with m.State("WRITE"):
                self._write(m, st)
            self._read_states(m, st)
            with m.State("SEND"):
                with m.If(st.reply_len == 0):
                    with m.If(st.reading):
                        m.next = "READ"
                    with m.Else():
                        m.next = "IDLE"
                with m.Else():
                    m.d.comb += [utx.data.eq(st.reply[:8]), utx.valid.eq(1)]
                    with m.If(utx.ready):
                        m.d.sync += [st.reply.eq(st.reply >> 8), st.reply_len.eq(st.reply_len - 1)]
        return m

    def _state(self) -> SimpleNamespace:
        """The link's registers, shared by the FSM's states."""
        wb = self.word_bytes
        info = b"KFF" + struct.pack("<BBHI", PROTOCOL_VERSION, wb, self.mac_units, self.act_depth)
        reply_bytes = max(len(info), wb, 5)
        return SimpleNamespace(
            info=info,
            reply=Signal(8 * reply_bytes),          # bytes still to send, the next one in the low byte
            reply_len=Signal(range(reply_bytes + 1)),
            args=Signal(48),                        # addr(4) n(2), assembled little-endian
            nargs=Signal(range(7)), cmd=Signal(8), addr=Signal(32), count=Signal(16),
            word=Signal(self.word_bits), nbytes=Signal(range(wb + 1)), refused=Signal(),
            reading=Signal(),                       # SEND returns to READ while words remain
            idle_timer=Signal(range(self.timeout + 1)),
            rvalid=Signal(), rdata=Signal(self.word_bits))

    @staticmethod
    def _send(st, value: bytes | None = None, *, sig=None, length=None):
        """Statements loading the reply buffer (a constant or a signal); the caller enters SEND."""
        if value is not None:
            return [st.reply.eq(int.from_bytes(value, "little")), st.reply_len.eq(len(value))]
        return [st.reply.eq(sig), st.reply_len.eq(length)]

    def _command(self, m, st, urx):
        """IDLE: a command byte; the one-byte commands answer at once."""
        send = self._send
        m.d.sync += [st.reading.eq(0), st.refused.eq(0), st.nargs.eq(0), st.nbytes.eq(0), st.idle_timer.eq(0)]
        with m.If(urx.valid):
            m.d.sync += st.cmd.eq(urx.data)
            m.next = "SEND"
            with m.Switch(urx.data):
                with m.Case(ord("W"), ord("R")):
                    m.next = "ARGS"
                with m.Case(ord("S")):
                    with m.If(self.busy):
                        m.d.sync += send(st, b"B")
                    with m.Else():
                        m.d.comb += self.start.eq(1)
                        m.d.sync += send(st, b"K")
                with m.Case(ord("P")):
                    m.d.sync += send(st, sig=Cat(Const(ord("K"), 8), self.busy, self.done, Const(0, 6)), length=2)
                with m.Case(ord("C")):
                    m.d.sync += send(st, sig=Cat(Const(ord("K"), 8), self.cycles), length=5)
                with m.Case(ord("I")):
                    m.d.sync += send(st, st.info)
                with m.Default():
                    m.d.sync += send(st, b"?")

    def _receive(self, m, st, urx, *, payload: bool):
        """ARGS / WDATA: argument or payload bytes, abandoned after ``timeout`` cycles without one."""
        with m.If(urx.valid):
            m.d.sync += st.idle_timer.eq(0)
            if payload:         # a word of a write
                m.d.sync += [st.word.eq(Cat(st.word[8:], urx.data)), st.nbytes.eq(st.nbytes + 1)]
                with m.If(st.nbytes == self.word_bytes - 1):
                    m.next = "WRITE"
            else:               # addr(4) n(2)
                m.d.sync += [st.args.eq(Cat(st.args[8:], urx.data)), st.nargs.eq(st.nargs + 1)]
                with m.If(st.nargs == 5):
                    full = Cat(st.args[8:], urx.data)
                    m.d.sync += [st.addr.eq(full[:32]), st.count.eq(full[32:48])]
                    m.next = "DECODE"
        with m.Elif(st.idle_timer == self.timeout):
            m.next = "IDLE"
        with m.Else():
            m.d.sync += st.idle_timer.eq(st.idle_timer + 1)

    def _decode(self, m, st):
        """DECODE: a write takes its payload (refused if busy, consumed anyway); a read starts or is refused."""
        send = self._send
        m.next = "SEND"
        with m.If(st.cmd == ord("W")):
            m.d.sync += st.refused.eq(self.busy)
            with m.If(st.count == 0):
                m.d.sync += send(st, b"K")
            with m.Else():
                m.next = "WDATA"
        with m.Elif(self.busy):
            m.d.sync += send(st, b"B")
        with m.Else():
            m.d.sync += [send(st, b"K"), st.reading.eq(st.count != 0)]

    def _write(self, m, st):
        """WRITE: one word, held until the memory takes it (an external memory may be slow to accept)."""
        send = self._send
        refuse = st.refused | self.busy
        m.d.comb += self.host_we.eq(~refuse)
        with m.If(refuse | self.host_wready):
            m.d.sync += [st.addr.eq(st.addr + 1), st.count.eq(st.count - 1), st.nbytes.eq(0), st.refused.eq(refuse)]
            with m.If(st.count == 1):
                with m.If(refuse):
                    m.d.sync += send(st, b"B")
                with m.Else():
                    m.d.sync += send(st, b"K")
                m.next = "SEND"
            with m.Else():
                m.next = "WDATA"

    def _read_states(self, m, st):
        """READ / READ_WAIT: one word per request; the answer comes two (on-chip RAM, then the register in
        ``elaborate``) or more (external memory) cycles after acceptance."""
        with m.State("READ"):
            with m.If(self.busy):               # started meanwhile (cannot happen: we hold the link)
                m.next = "IDLE"
            with m.Else():
                m.d.comb += self.host_re.eq(1)          # held until the memory takes it
                with m.If(self.host_rready):
                    m.next = "READ_WAIT"
        with m.State("READ_WAIT"):
            with m.If(st.rvalid):
                m.d.sync += [self._send(st, sig=st.rdata, length=self.word_bytes), st.addr.eq(st.addr + 1),
                             st.count.eq(st.count - 1), st.reading.eq(st.count != 1)]
                m.next = "SEND"


class LinkedTop(wiring.Component):
    """:class:`~fireforge.hw.top.FireforgeTop` driven through a :class:`HostLink`: what every board top puts
    between its UART pins and the engine (and what ``sim/uart_run.py`` simulates end to end).

    Members: ``rx``/``tx`` (the serial lines), ``busy``/``done`` (for LEDs), and the top's ``mem`` port
    (:class:`~fireforge.hw.engine.ports.ActMemoryPort`) when ``variant.act_memory`` is ``"external"``.
    """

    def __init__(self, config, variant=None, *, clk_hz: int, baud: int = 115200, timeout_ms: float = 100.0,
                 memory_cells: dict[str, str] | None = None):

        self.config = config
        self.top = FireforgeTop(config, variant or BuildVariant(), memory_cells=memory_cells)
        self.link_args = dict(word_bits=config.act_word_bits, addr_bits=len(self.top.host.addr),
                              mac_units=config.mac_units, act_depth=config.act_depth, clk_hz=clk_hz, baud=baud,
                              timeout_ms=timeout_ms)
        ports = {"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1), "done": Out(1)}
        if "mem" in self.top.signature.members:
            ports["mem"] = self.top.signature.members["mem"]
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        m.submodules.link = link = HostLink(**self.link_args)
        host = top.host
        m.d.comb += [
            link.rx.eq(self.rx), self.tx.eq(link.tx),
            host.addr.eq(link.host_addr), host.wdata.eq(link.host_wdata), host.we.eq(link.host_we),
            host.re.eq(link.host_re), link.host_rdata.eq(host.rdata), link.host_rvalid.eq(host.rvalid),
            link.host_rready.eq(host.rready), link.host_wready.eq(host.wready),
            top.start.eq(link.start), link.busy.eq(top.busy), link.done.eq(top.done), link.cycles.eq(top.cycles),
            top.dump.eq(0), self.busy.eq(top.busy), self.done.eq(top.done),
        ]
        if "mem" in self.signature.members:
            wiring.connect(m, top.mem, wiring.flipped(self.mem))
        return m


class HostClient:
    """The PC side of the protocol, over any object with ``read(n)`` / ``write(data)`` (a pyserial port).

    ``HostClient.open("/dev/ttyUSB0", baud)`` opens a serial port (needs ``pip install pyserial``).
    """

    def __init__(self, port):
        self.port = port
        self._info = None

    @classmethod
    def open(cls, device: str, baud: int = 115200, timeout: float = 2.0) -> "HostClient":
        try:
            import serial       # optional: pyserial is only needed to talk to a real board
        except ImportError:
            raise FireforgeError("talking to a board needs pyserial: pip install pyserial") from None
        return cls(serial.Serial(device, baud, timeout=timeout))

    def _read(self, n: int) -> bytes:
        data = self.port.read(n)
        if len(data) != n:
            raise TimeoutError(f"board sent {len(data)} of {n} expected bytes")
        return data

    def _status(self, what: str) -> None:
        s = self._read(1)
        if s == b"B":
            raise RuntimeError(f"{what}: refused, the engine is busy")
        if s != b"K":
            raise RuntimeError(f"{what}: unexpected reply {s!r}")

    def info(self) -> dict:
        self.port.write(b"I")
        self._status("identify")
        ff, version, wb, macs, depth = struct.unpack("<2sBBHI", self._read(10))
        if ff != b"FF":
            raise RuntimeError(f"not a fireforge host link (got {ff!r})")
        self._info = {"version": version, "word_bytes": wb, "mac_units": macs, "act_depth": depth}
        return self._info

    @property
    def word_bytes(self) -> int:
        return (self._info or self.info())["word_bytes"]

    def write_words(self, addr: int, words, chunk: int = 4096) -> None:
        """Write ``words`` (uint8 [n, word_bytes] or bytes of n·word_bytes) from ``addr`` on."""
        data = bytes(memoryview(words).cast("B")) if not isinstance(words, bytes) else words
        wb = self.word_bytes
        if len(data) % wb:
            raise ValueError(f"{len(data)} bytes is not a whole number of {wb}-byte words")
        n = len(data) // wb
        for first in range(0, n, chunk):
            k = min(chunk, n - first)
            self.port.write(b"W" + struct.pack("<IH", addr + first, k) + data[first * wb:(first + k) * wb])
            self._status("write")

    def read_words(self, addr: int, n: int, chunk: int = 4096) -> bytes:
        wb = self.word_bytes
        out = bytearray()
        for first in range(0, n, chunk):
            k = min(chunk, n - first)
            self.port.write(b"R" + struct.pack("<IH", addr + first, k))
            self._status("read")
            out += self._read(k * wb)
        return bytes(out)

    def start(self) -> None:
        self.port.write(b"S")
        self._status("start")

    def status(self) -> tuple[bool, bool]:
        """(busy, done)."""
        self.port.write(b"P")
        self._status("poll")
        s = self._read(1)[0]
        return bool(s & 1), bool(s & 2)

    def cycles(self) -> int:
        self.port.write(b"C")
        self._status("cycles")
        return struct.unpack("<I", self._read(4))[0]

    def wait(self, timeout_s: float = 60.0, poll_s: float = 0.001) -> None:
        t0 = time.monotonic()
        while not self.status()[1]:
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"engine not done after {timeout_s} s")
            time.sleep(poll_s)

    def infer(self, compiled, x):
        """One inference of a compiled program (a :class:`~fireforge.core.compiled.Compiled` or its ``OUT/``
        directory) on a float NCHW input: (uint8 output, cycles)."""

        compiled = Compiled.of(compiled)
        program, v = compiled.program, compiled.vector
        t_in = program.tensors[program.input]
        layout = compiled.input_layout
        words = tensor_words(layout, quantize_input(x, t_in.scale, t_in.zero_point), t_in.zero_point, v)
        self.write_words(layout.addr, np.ascontiguousarray(words).tobytes())
        self.start()
        self.wait()
        out = compiled.output_layout
        raw = np.frombuffer(self.read_words(out.addr, out.words), np.uint8)
        return tensor_from_words(out, raw, v), self.cycles()
