"""Link protocol v2's frames in hardware (the protocol: :mod:`fireforge.core.link`): a receiver that keeps a
request whole until its CRC is checked, and a sender that frames a response around a payload stream.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fireforge.core.link import MAX_PAYLOAD, SYNC_REQUEST, SYNC_RESPONSE

__all__ = ["crc16_step", "FrameReceiver", "FrameSender", "ARG_BYTES"]

#: the first payload bytes a request's arguments are taken from (address, count…)
ARG_BYTES = 8


def crc16_step(m, crc, byte):
    """CRC-16/CCITT-FALSE of one more byte (8 shift steps unrolled, each a signal of ``m``: the expression of
    all eight would grow exponentially)."""
    for i in range(8):
        bit = crc[15] ^ byte[7 - i]
        nxt = Signal(16)
        m.d.comb += nxt.eq(Cat(bit, crc[0:4], crc[4] ^ bit, crc[5:11], crc[11] ^ bit, crc[12:15]))
        crc = nxt
    return crc


class FrameReceiver(wiring.Component):
    """Request frames from a byte stream (a UART receiver's ``valid`` / ``data``).

    A frame's payload bytes from the 4th on go to the buffer, ``word_bytes`` to a word (the DRAM port's beat:
    a WRITE's data), the first :data:`ARG_BYTES` also to ``args``. When the CRC arrives the frame is checked:
    ``frame`` (right) or ``bad`` (wrong) pulses with ``seq`` / ``cmd`` / ``length`` / ``args`` valid until the
    next frame; bytes that come while ``hold`` is high are dropped (the board is answering). A length above
    :data:`~fireforge.core.link.MAX_PAYLOAD` means the sync pair was not a frame start; a frame whose bytes
    stop for ``timeout`` cycles is abandoned.

    Members
    -------
    data, valid : In
        The received bytes.
    hold : In(1)
    frame, bad : Out(1)
    seq, cmd : Out(8)
    length : Out(11)
    args : Out(64)
    buf_addr : In, buf_data : Out(8 · word_bytes)
        The buffer's read port (data the cycle after the address).
    """

    def __init__(self, *, word_bytes: int, timeout: int):
        self.word_bytes, self.timeout = word_bytes, timeout
        self.words = -(-(MAX_PAYLOAD - 4) // word_bytes)
        super().__init__({"data": In(8), "valid": In(1), "hold": In(1), "frame": Out(1), "bad": Out(1),
                          "seq": Out(8), "cmd": Out(8), "length": Out(11), "args": Out(8 * ARG_BYTES),
                          "buf_addr": In(range(self.words)), "buf_data": Out(8 * word_bytes)})

    def elaborate(self, platform):
        m = Module()
        wb = self.word_bytes
        m.submodules.buf = buf = Memory(shape=8 * wb, depth=self.words, init=[])
        wr = buf.write_port(granularity=8)
        rd = buf.read_port()
        m.d.comb += [rd.addr.eq(self.buf_addr), self.buf_data.eq(rd.data)]

        byte = Signal(8)
        got = Signal()
        m.d.comb += [byte.eq(self.data), got.eq(self.valid & ~self.hold)]
        crc, rx_crc = Signal(16, init=0xFFFF), Signal(16)
        count = Signal(range(MAX_PAYLOAD + 1))          # payload bytes so far
        lane, word = Signal(range(wb)), Signal(range(self.words + 1))
        idle = Signal(range(self.timeout + 1))
        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout):
            m.d.sync += idle.eq(idle + 1)
        hdr = Signal(2)
        def give_up():          # a frame whose bytes stopped coming
            with m.If((idle == self.timeout) & ~got):
                m.next = "SYNC0"

        with m.FSM():
            with m.State("SYNC0"):
                with m.If(got & (byte == SYNC_REQUEST[0])):
                    m.next = "SYNC1"
            with m.State("SYNC1"):
                give_up()
                with m.If(got):
                    with m.If(byte == SYNC_REQUEST[1]):
                        m.d.sync += [hdr.eq(0), crc.eq(0xFFFF)]
                        m.next = "HEADER"
                    with m.Elif(byte != SYNC_REQUEST[0]):
                        m.next = "SYNC0"
            with m.State("HEADER"):
                give_up()
                with m.If(got):
                    m.d.sync += [crc.eq(crc16_step(m, crc, byte)), hdr.eq(hdr + 1)]
                    with m.Switch(hdr):
                        with m.Case(0):
                            m.d.sync += self.seq.eq(byte)
                        with m.Case(1):
                            m.d.sync += self.cmd.eq(byte)
                        with m.Case(2):
                            m.d.sync += self.length[:8].eq(byte)
                        with m.Case(3):
                            n = Cat(self.length[:8], byte)
                            m.d.sync += [self.length.eq(n), count.eq(0), lane.eq(0), word.eq(0), self.args.eq(0)]
                            with m.If(n > MAX_PAYLOAD):
                                m.next = "SYNC0"
                            with m.Elif(n == 0):
                                m.next = "CRC0"
                            with m.Else():
                                m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                give_up()
                with m.If(got):
                    m.d.sync += [crc.eq(crc16_step(m, crc, byte)), count.eq(count + 1)]
                    with m.If(count < ARG_BYTES):
                        m.d.sync += self.args.word_select(count[:3], 8).eq(byte)
                    with m.If(count >= 4):
                        m.d.comb += [wr.addr.eq(word), wr.data.eq(byte.replicate(wb)),
                                     wr.en.eq(1 << lane)]
                        m.d.sync += [lane.eq(Mux(lane == wb - 1, 0, lane + 1)), word.eq(word + (lane == wb - 1))]
                    with m.If(count + 1 == self.length):
                        m.next = "CRC0"
            with m.State("CRC0"):
                give_up()
                with m.If(got):
                    m.d.sync += rx_crc[:8].eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                give_up()
                with m.If(got):
                    with m.If(Cat(rx_crc[:8], byte) == crc):
                        m.d.comb += self.frame.eq(1)
                    with m.Else():
                        m.d.comb += self.bad.eq(1)
                    m.next = "SYNC0"
        return m


class FrameSender(wiring.Component):
    """Response frames: on ``start`` (with ``seq``, ``status``, ``length``) the sync pair and header, then
    ``length`` bytes taken from ``payload``, then the CRC, to ``tx``; ``busy`` until the last byte is taken.

    Members
    -------
    start : In(1)
    seq, status : In(8)
    length : In(11)
    payload : In(stream.Signature(8))
    tx : Out(stream.Signature(8))
    busy : Out(1)
    """

    def __init__(self):
        super().__init__({"start": In(1), "seq": In(8), "status": In(8), "length": In(11),
                          "payload": In(stream.Signature(8)), "tx": Out(stream.Signature(8)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        seq, status, length = Signal(8), Signal(8), Signal(11)
        left = Signal(11)
        crc = Signal(16)
        step = Signal(3)                # which fixed byte: sync 0, sync 1, seq, status, len 0, len 1
        tx = self.tx
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [seq.eq(self.seq), status.eq(self.status), length.eq(self.length),
                                 left.eq(self.length), step.eq(0), crc.eq(0xFFFF)]
                    m.next = "HEAD"
            with m.State("HEAD"):
                head = Cat(Const(int.from_bytes(SYNC_RESPONSE, "little"), 16), seq, status, length, Const(0, 5))
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(head.word_select(step, 8))]
                with m.If(tx.ready):
                    m.d.sync += step.eq(step + 1)
                    with m.If(step >= 2):
                        m.d.sync += crc.eq(crc16_step(m, crc, tx.payload))
                    with m.If(step == 5):
                        with m.If(left == 0):
                            m.next = "CRC0"
                        with m.Else():
                            m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [tx.valid.eq(self.payload.valid), tx.payload.eq(self.payload.payload),
                             self.payload.ready.eq(tx.ready)]
                with m.If(tx.valid & tx.ready):
                    m.d.sync += [crc.eq(crc16_step(m, crc, tx.payload)), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(crc[:8])]
                with m.If(tx.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(crc[8:])]
                with m.If(tx.ready):
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
