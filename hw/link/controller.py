"""The board side of link protocol v2 (:mod:`fireforge.core.link`): requests from the UART executed against the
DRAM port and the DRAM-mode engine, responses back to the UART.

::

    rx bytes ─▶ FrameReceiver ─▶ controller FSM ─▶ FrameSender ─▶ tx bytes
                    │ buffer ──▶ WriteDma ─┐             ▲
                    │                      ├─▶ AXI4 (the link's half of the port)
                    └──────── ReadDma ─────┘──▶ bytes / CRC-32

One request at a time: the receiver holds off new bytes until the response has gone. WRITE streams the
buffered data into a :class:`~fireforge.hw.dram.dma.WriteDma` command and answers when its write responses
are in; READ answers while a :class:`~fireforge.hw.dram.dma.ReadDma` brings the words; CHECKSUM runs the
words read through CRC-32 and answers with it. START runs once per ``seq``.
"""

from __future__ import annotations

import struct

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.link import BOARD_IDS, IDENTIFY_FORMAT, MAX_PAYLOAD, VERSION, Cmd, Status
from fireforge.hw.dram.axi import AXI4Read, AXI4Write
from fireforge.hw.dram.dma import ReadDma, WriteDma
from fireforge.hw.link.frames import FrameReceiver, FrameSender

__all__ = ["LinkController", "crc32_step", "identify_bytes"]

#: bits of a CHECKSUM's length in beats (16 M beats: the whole of any board's program region)
BEATS_BITS = 24


def crc32_step(m, crc, byte):
    """zlib's CRC-32 register after one more byte (reflected, poly 0xEDB88320), each shift step a signal of ``m``."""
    crc = crc ^ byte
    for _ in range(8):
        nxt = Signal(32)
        m.d.comb += nxt.eq((crc >> 1) ^ Mux(crc[0], Const(0xEDB88320, 32), Const(0, 32)))
        crc = nxt
    return crc


def identify_bytes(*, board: str, config_hash: bytes, data_width: int, config, clk_hz: float) -> bytes:
    """IDENTIFY's payload with status 0 (byte 4 is the live status)."""
    return struct.pack(IDENTIFY_FORMAT, b"FF", VERSION, BOARD_IDS[board], 0, config_hash, data_width,
                       config.mac_units, config.act_depth, config.weight_depth, config.quant_depth,
                       round(clk_hz / 1e3))


class LinkController(wiring.Component):
    """Parameters
    ----------
    identify : bytes
        IDENTIFY's payload (:func:`identify_bytes`).
    data_width, addr_width, id_width : int
        The DRAM port's (the link's half of it).
    timeout : int
        Cycles without a byte after which a frame is abandoned.

    Members
    -------
    rx_data, rx_valid : In
        From the UART receiver.
    tx : Out(stream.Signature(8))
        To the UART transmitter.
    engine_busy, engine_done, engine_error, init_done, init_error : In(1)
    engine_counters : In(128)
        cycles, compute cycles, bytes read, bytes written (32 bits each) of the engine's last run.
    start : Out(1)
        Pulse: run the command stream at ``program_addr`` (``program_commands`` commands).
    program_addr : Out(32), program_commands : Out(24)
    axi_read : Out(AXI4Read), axi_write : Out(AXI4Write)
        The link's masters; the engine's port must be idle while the link uses them (not busy).
    """

    def __init__(self, *, identify: bytes, data_width: int, addr_width: int, id_width: int, timeout: int):
        self.identify = identify
        self.beat = data_width // 8
        self.data_width, self.addr_width, self.id_width = data_width, addr_width, id_width
        self.receiver = FrameReceiver(word_bytes=self.beat, timeout=timeout)
        self.sender = FrameSender()
        dma = dict(data_width=data_width, addr_width=addr_width, id_width=id_width, beats_width=BEATS_BITS,
                   max_burst=16, outstanding=1)
        self.read_dma, self.write_dma = ReadDma(**dma, depth=16), WriteDma(**dma)
        super().__init__({
            "rx_data": In(8), "rx_valid": In(1), "tx": Out(stream.Signature(8)),
            "engine_busy": In(1), "engine_done": In(1), "engine_error": In(1), "init_done": In(1),
            "init_error": In(1), "engine_counters": In(128),
            "start": Out(1), "program_addr": Out(32), "program_commands": Out(24),
            "axi_read": Out(AXI4Read(data_width=data_width, addr_width=addr_width, id_width=id_width)),
            "axi_write": Out(AXI4Write(data_width=data_width, addr_width=addr_width, id_width=id_width)),
        })

    def elaborate(self, platform):
        m = Module()
        rx, tx, rd, wd = self.receiver, self.sender, self.read_dma, self.write_dma
        m.submodules += [rx, tx, rd, wd]
        wiring.connect(m, rd.axi, wiring.flipped(self.axi_read))
        wiring.connect(m, wd.axi, wiring.flipped(self.axi_write))
        wiring.connect(m, tx.tx, wiring.flipped(self.tx))
        m.d.comb += [rx.data.eq(self.rx_data), rx.valid.eq(self.rx_valid)]
        beat, shift = self.beat, (self.beat - 1).bit_length()

        status = Cat(self.engine_busy, self.engine_done, self.engine_error, self.init_done, self.init_error,
                     Const(0, 3))
        addr, count = rx.args[:32], rx.args[32:64]
        data_len = rx.length - 4                          # a WRITE's data bytes
        aligned = addr[:shift] == 0 if shift else Const(1)

        # the response: status code, length, and a payload of IDENTIFY's or STATUS's bytes from a register, or READ's bytes
        code, length = Signal(8), Signal(11)
        words = Signal(8 * len(self.identify))
        from_dma = Signal()
        sent = Signal(range(len(self.identify) + 1))
        beat_word, beat_left = Signal(self.data_width), Signal(range(beat + 1))
        with m.If(from_dma):
            m.d.comb += [tx.payload.valid.eq(beat_left != 0), tx.payload.payload.eq(beat_word[:8]),
                         rd.data.ready.eq(beat_left == 0)]
            with m.If(rd.data.valid & rd.data.ready):
                m.d.sync += [beat_word.eq(rd.data.payload), beat_left.eq(beat)]
            with m.If(tx.payload.valid & tx.payload.ready):
                m.d.sync += [beat_word.eq(beat_word >> 8), beat_left.eq(beat_left - 1)]
        with m.Else():
            m.d.comb += [tx.payload.valid.eq(1), tx.payload.payload.eq(words.word_select(sent, 8))]
            with m.If(tx.payload.ready):
                m.d.sync += sent.eq(sent + 1)

        last_start, started = Signal(8), Signal()
        # START's arguments, as received (they stay until the next frame): the engine takes them with ``start``
        m.d.comb += [self.program_addr.eq(addr), self.program_commands.eq(rx.args[32:56])]
        crc, ck_word, ck_have, ck_clear = self._checksum(m)
        beats_left = Signal(BEATS_BITS + 1)
        fed = Signal(range(MAX_PAYLOAD))
        have = Signal()
        m.d.comb += rx.buf_addr.eq(fed)
        refuse, write_bad, read_bad = Signal(), Signal(), Signal()
        write_beats, read_beats, read_bytes = Signal(BEATS_BITS + 1), Signal(BEATS_BITS + 1), Signal(32)

        cmd_regs = {dma: self._command_register(m, dma) for dma in (rd, wd)}

        def issue(dma, addr_, beats):
            """``dma``'s command into its register; true when it went in (the register was free)."""
            valid, payload = cmd_regs[dma]
            with m.If(~valid):
                m.d.sync += [valid.eq(1), payload.addr.eq(addr_), payload.beats.eq(beats)]
            return ~valid

        def answer(st, n=0, payload=None, dma=False):
            m.d.sync += [code.eq(st), length.eq(n), from_dma.eq(dma), sent.eq(0), beat_left.eq(0)]
            if payload is not None:
                m.d.sync += words.eq(payload)
            m.next = "ANSWER"

        m.d.sync += self.start.eq(0)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(rx.bad):
                    answer(Status.BAD_CRC)
                with m.Elif(rx.frame):
                    m.next = "CHECK"
            with m.State("CHECK"):
                # the request's checks into registers, a cycle before DECODE acts on them (the frame stays
                # while the FSM is not IDLE): its comparisons and carry chains stay out of DECODE's enables
                is_read = rx.cmd == Cmd.READ
                n = Mux(is_read, count[:16], count)
                dram_cmd = (rx.cmd == Cmd.WRITE) | is_read | (rx.cmd == Cmd.CHECKSUM)
                repeat = (rx.cmd == Cmd.START) & started & (last_start == rx.seq)
                refused = self.engine_busy & (dram_cmd | (rx.cmd == Cmd.START)) & ~repeat
                # the engine's ``start`` a register, high in the DECODE cycle that answers the START: the engine's
                # start enables then leave a flip-flop (with the frame's compares and the FSM in front, it was the
                # ULX3S DRAM engine's critical path at 85.48 MHz, seed 3: 9 nets)
                m.d.sync += self.start.eq((rx.cmd == Cmd.START) & (rx.length == 7) & ~refused & ~repeat)
                m.d.sync += [
                    refuse.eq(refused),
                    write_bad.eq((rx.length <= 4) | (data_len[:shift] != 0 if shift else 0) | ~aligned),
                    write_beats.eq(data_len >> shift),
                    read_bad.eq((rx.length != Mux(is_read, 6, 8)) | (n == 0) | ~aligned |
                                ((n[:shift] != 0) if shift else Const(0)) | (n[BEATS_BITS + shift:] != 0) |
                                (is_read & (n > MAX_PAYLOAD - 4))),
                    read_bytes.eq(n), read_beats.eq(n >> shift)]
                m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(refuse):
                    answer(Status.BUSY)
                with m.Elif(rx.cmd == Cmd.IDENTIFY):
                    ident = Const(int.from_bytes(self.identify, "little"), 8 * len(self.identify))
                    answer(Status.OK, len(self.identify), ident | (status << 32))
                with m.Elif(rx.cmd == Cmd.STATUS):
                    answer(Status.OK, 17, Cat(status, self.engine_counters))
                with m.Elif(rx.cmd == Cmd.WRITE):
                    with m.If(write_bad):
                        answer(Status.BAD_ARGS)
                    with m.Else():
                        m.d.sync += [fed.eq(0), have.eq(0), beats_left.eq(write_beats)]
                        with m.If(issue(wd, addr, write_beats)):
                            m.next = "WRITE"
                with m.Elif((rx.cmd == Cmd.READ) | (rx.cmd == Cmd.CHECKSUM)):
                    with m.If(read_bad):
                        answer(Status.BAD_ARGS)
                    with m.Else():
                        m.d.sync += [beats_left.eq(read_beats), ck_clear.eq(1)]
                        with m.If(issue(rd, addr, read_beats)):
                            with m.If(rx.cmd == Cmd.READ):
                                answer(Status.OK, read_bytes, dma=True)
                            with m.Else():
                                m.next = "CHECKSUM"
                with m.Elif(rx.cmd == Cmd.START):
                    with m.If(rx.length != 7):
                        answer(Status.BAD_ARGS)
                    with m.Else():
                        with m.If(self.start):
                            m.d.sync += [last_start.eq(rx.seq), started.eq(1)]
                        answer(Status.OK)
                with m.Else():
                    answer(Status.BAD_CMD)
            with m.State("WRITE"):
                # the buffer's words into the WriteDma (a word the cycle after its address)
                m.d.comb += [wd.data.valid.eq(have & (beats_left != 0)), wd.data.payload.eq(rx.buf_data)]
                with m.If(wd.data.valid & wd.data.ready):
                    m.d.sync += [fed.eq(fed + 1), have.eq(0), beats_left.eq(beats_left - 1)]
                with m.Else():
                    m.d.sync += have.eq(1)
                m.d.comb += wd.done.ready.eq(1)
                with m.If(wd.done.valid):
                    answer(Mux(wd.done.payload.error, Status.AXI_ERROR, Status.OK))
            with m.State("CHECKSUM"):
                m.d.comb += rd.data.ready.eq(1)
                with m.If(rd.data.valid):
                    m.d.sync += [ck_word.eq(rd.data.payload), ck_have.eq(1), beats_left.eq(beats_left - 1)]
                with m.If((beats_left == 0) & ~ck_have & ~ck_clear):
                    answer(Status.OK, 4, crc ^ 0xFFFFFFFF)
            with m.State("ANSWER"):
                m.d.comb += [tx.start.eq(1), tx.seq.eq(rx.seq), tx.status.eq(code), tx.length.eq(length)]
                m.next = "SENDING"
            with m.State("SENDING"):
                with m.If(~tx.busy):
                    m.next = "IDLE"
        m.d.comb += rx.hold.eq(~fsm.ongoing("IDLE"))
        return m

    def _checksum(self, m):
        """CHECKSUM's CRC-32, folding a beat the cycle after it came, from registers (the beat, ``ck_have``;
        ``ck_clear``: the DECODE that starts it): with the FSM's decode in front of the XOR network, the state
        register → the CRC was the ULX3S DRAM engine's critical path (83.54 MHz, seed 1: 10.24 ns of routing over
        6 nets). Returns ``(crc, ck_word, ck_have, ck_clear)``."""
        crc = Signal(32)
        ck_word, ck_have, ck_clear = Signal(self.data_width), Signal(), Signal()
        m.d.sync += [ck_have.eq(0), ck_clear.eq(0)]
        with m.If(ck_clear):
            m.d.sync += crc.eq(0xFFFFFFFF)
        with m.Elif(ck_have):
            step = crc
            for i in range(self.beat):
                step = crc32_step(m, step, ck_word.word_select(i, 8))
            m.d.sync += crc.eq(step)
        return crc, ck_word, ck_have, ck_clear

    @staticmethod
    def _command_register(m, dma):
        """``dma``'s command from a register (a command waits there until taken): DECODE's request decode
        steered the payloads into the DMA's address / span arithmetic, the ULX3S DRAM engine's critical path
        (79.57 MHz, seed 3: the receiver's ``cmd`` → the read DMA's split, 23 nets). Returns ``(valid, payload)``."""
        valid, payload = Signal(), Signal(dma.cmd.p.shape())
        m.d.comb += [dma.cmd.valid.eq(valid), dma.cmd.p.eq(payload)]
        with m.If(dma.cmd.ready):
            m.d.sync += valid.eq(0)
        return valid, payload
