"""The DRAM-mode engine's transfers: ``Transfer`` runs one LOAD or STORE (a :data:`~fireforge.core.descriptor.
TRANSFER`) at a time between the DMA engines and the on-chip buffers (:class:`~fireforge.hw.dram.buffers.
DramBuffers`).

A transfer is ``runs`` runs of ``run_words`` buffer words; run ``r`` is at DRAM byte address ``dram_addr +
r·dram_stride``, the buffer side one contiguous range from ``buf_addr``. Two independent halves:

* **DRAM side**: one DMA command per run (``run_words`` words as beats: a shift by the buffer's beats per
  word, a power of two), to the read DMA (LOAD) or the write DMA (STORE), as fast as the DMA takes them.
* **Buffer side**: a word counter (words left in the run, runs left: no multiplier) and the buffer address.
  LOAD: the read DMA's beats are gathered into buffer words (little-endian: the first beat in the low bits;
  one assembler as wide as the widest buffer word, its beats per word chosen by the buffer) and written.
  STORE: ACT words are read (only as many as the FIFO has room for, counting reads in flight), queued, cut
  into beats (:class:`~fireforge.hw.dram.width.WidthConverter`) and written.

Completion: LOAD when its last word is written to the buffer; STORE when the write DMA has reported every run
done (every B response arrived). ``done`` pulses in the cycle after; a transfer with no words (``runs`` or
``run_words`` 0) is done one cycle after it was taken.

Latencies: LOAD — a word's last beat taken from the DMA to the word offered to its buffer: the beat register,
then the word register (:attr:`Transfer.load_latency` = 2). STORE — a word read to its first
beat offered to the write DMA: the ACT read (:attr:`DramBuffers.ACT_LATENCY`), the FIFO, the converter.
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import TRANSFER, Buffer, Op
from fireforge.hw.dram.buffers import BUF_ADDR_BITS, DramBuffers, buffer_widths, buffer_write
from fireforge.hw.dram.dma import DONE, dma_command
from fireforge.hw.dram.width import WidthConverter
from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.needs import total
from fireforge.hw.engine.ports import ReadResponse, bits_for

__all__ = ["Transfer", "STORE_FIFO_DEPTH", "beats_width"]

#: ACT words the STORE path queues between the ACT read and the beat converter: more than the round trip of a
#: read's credit (the read, the FIFO's latency, the pop seen: ACT_LATENCY + 3 cycles), so a word can be read every
#: cycle while the write DMA keeps up (4 gave 78 % of the bus at one beat per word with ACT_LATENCY 2)
STORE_FIFO_DEPTH = 16

#: slots of the LOAD word register served by one copy of a beat
SLOT_GROUP = 8


def _shifts(config: EngineConfig, data_width: int) -> dict[Buffer, int]:
    """log2 of each buffer's beats per word."""
    return {b: (w // data_width).bit_length() - 1 for b, (w, _) in buffer_widths(config).items()}


def beats_width(config: EngineConfig, data_width: int) -> int:
    """Bits of a run's length in beats: ``run_words`` (16 bits) times the widest word's beats."""
    return Shape.cast(TRANSFER["run_words"].shape).width + max(_shifts(config, data_width).values())


class Transfer(wiring.Component):
    """Parameters
    ----------
    config : EngineConfig
        Buffer widths and depths; ``data_width`` must divide the ACT word (so every buffer word is whole beats).
    data_width, addr_width : int
        The AXI port's.

    Members
    -------
    cmd : In(stream.Signature(TRANSFER))
        A LOAD or STORE (checked by the command processor), taken when the previous one has completed.
    done : Out(1)
        Pulses when the transfer taken completes.
    rd_dma : Out(stream(dma_command)), rd_data : In(stream(data_width))
        The LOAD read DMA's command and data streams.
    wr_dma : Out(stream(dma_command)), wr_data : Out(stream(data_width)), wr_done : In(stream(DONE))
        The STORE write DMA's.
    load : Out(stream(buffer_write(widest word)))
        To :attr:`DramBuffers.load`.
    store_rd : Out(stream(ACT address)), store_resp : In(ReadResponse)
        To :attr:`DramBuffers.store_rd` / from ``store_resp``.
    """

    #: cycles from a word's last beat taken from the read DMA to the word written into its buffer: the beat
    #: register, the word register
    load_latency = 2

    def __init__(self, config: EngineConfig, *, data_width: int, addr_width: int = 32):
        if config.act_word_bits % data_width:
            raise ValueError(f"the AXI data width ({data_width}) must divide the activation word "
                             f"({config.act_word_bits} bits)")
        self.config, self.data_width, self.addr_width = config, data_width, addr_width
        self.shifts = _shifts(config, data_width)
        widths = buffer_widths(config)
        self.widest = max(w for w, _ in widths.values())
        self.act_bits, act_depth = widths[Buffer.ACT]
        cmd = dma_command(addr_width, beats_width(config, data_width))
        super().__init__({
            "cmd": In(stream.Signature(TRANSFER)), "done": Out(1),
            "rd_dma": Out(stream.Signature(cmd)), "rd_data": In(stream.Signature(data_width)),
            "wr_dma": Out(stream.Signature(cmd)), "wr_data": Out(stream.Signature(data_width)),
            "wr_done": In(stream.Signature(DONE)),
            "load": Out(stream.Signature(buffer_write(self.widest))),
            "store_rd": Out(stream.Signature(bits_for(act_depth))),
            "store_resp": In(ReadResponse(data_bits=self.act_bits)),
        })

    @classmethod
    def needs(cls, config: EngineConfig, **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the STORE word FIFO."""
        return total(StreamFIFO.needs(shape=config.act_word_bits, depth=STORE_FIFO_DEPTH))

    def elaborate(self, platform):
        m = Module()
        cmd, dw = self.cmd, self.data_width
        t = Signal(TRANSFER)                      # the transfer running
        active = Signal()
        is_load = Signal()
        m.d.comb += is_load.eq(t.op == Op.LOAD)

        # -- DRAM side: one DMA command per run
        addr = Signal(32)
        issue_left = Signal(16)
        shift = Signal(range(max(self.shifts.values()) + 1))
        with m.Switch(t.buffer):
            for b, s in self.shifts.items():
                with m.Case(b):
                    m.d.comb += shift.eq(s)
        for dma, op in ((self.rd_dma, Op.LOAD), (self.wr_dma, Op.STORE)):
            m.d.comb += [dma.valid.eq(active & (issue_left != 0) & (t.op == op)),
                         dma.p.addr.eq(addr), dma.p.beats.eq(t.run_words << shift)]
        with m.If((self.rd_dma.valid & self.rd_dma.ready) | (self.wr_dma.valid & self.wr_dma.ready)):
            m.d.sync += [addr.eq(addr + t.dram_stride), issue_left.eq(issue_left - 1)]

        # -- buffer side: words left in the run, runs left, the buffer address
        in_run = Signal(16)
        runs_left = Signal(16)
        ptr = Signal(BUF_ADDR_BITS)
        step = Signal()                           # a word is written (LOAD) / read (STORE) this cycle
        last = Signal()
        m.d.comb += last.eq((in_run == 1) & (runs_left == 1))
        with m.If(step):
            m.d.sync += ptr.eq(ptr + 1)
            with m.If(in_run == 1):
                m.d.sync += [in_run.eq(t.run_words), runs_left.eq(runs_left - 1)]
            with m.Else():
                m.d.sync += in_run.eq(in_run - 1)

        # -- LOAD: beats → words of the buffer's width. A beat is first registered with its slot as a one-hot and
        # a copy of its data per group of SLOT_GROUP slots (each loaded only by beats for its slots, so synthesis
        # keeps them apart): the word register's enables and data come from flip-flops beside its slots, not
        # from the DMA FIFO's handshake across the die (the ULX3S engine's critical path at 69.6 MHz).
        load = self.load
        slots = max(1, self.widest // dw)
        groups = -(-slots // SLOT_GROUP)
        count = Signal(range(max(2, slots)))
        beat_last = Signal.like(count)
        with m.Switch(t.buffer):
            for b, s in self.shifts.items():
                with m.Case(b):
                    m.d.comb += beat_last.eq((1 << s) - 1)
        b_valid, b_ends = Signal(), Signal()                  # a beat held; it ends its word
        b_slot = Signal(slots)                               # its slot, one-hot
        b_data = [Signal(dw, name=f"beat_g{g}") for g in range(groups)]
        # the word taken by the buffer (or none pending), or the beat is not its first: the beat may go in
        can_write = ~load.valid | load.ready | ~b_slot[0]
        consume = b_valid & can_write
        rd_data = self.rd_data
        m.d.comb += [rd_data.ready.eq(~b_valid | can_write), load.p.buffer.eq(t.buffer), load.p.addr.eq(ptr)]
        with m.If(consume):
            m.d.sync += b_valid.eq(0)
        with m.If(rd_data.valid & rd_data.ready):
            m.d.sync += [b_valid.eq(1), b_slot.eq(1 << count), b_ends.eq(count == beat_last),
                         count.eq(Mux(count == beat_last, 0, count + 1))]
            for g in range(groups):
                with m.If(count // SLOT_GROUP == g):
                    m.d.sync += b_data[g].eq(rd_data.payload)
        with m.If(load.ready):
            m.d.sync += load.valid.eq(0)
        # each slot's enable spelled alone: a beat for slot k > 0 always goes in (``can_write``), so the buffer's
        # ``ready`` reaches slot 0's enable only, not the whole word's (LOAD's ``ready`` → the ~500 enables across
        # the die: the whole ULX3S board's engine-clock critical path at 73.93 MHz, 12.53 ns of routing)
        for k in range(slots):
            with m.If(b_valid & b_slot[k] & (can_write if k == 0 else 1)):
                m.d.sync += load.p.data[k * dw:(k + 1) * dw].eq(b_data[k // SLOT_GROUP])
        with m.If(consume & b_ends):
            m.d.sync += load.valid.eq(1)

        # -- STORE: ACT reads while the FIFO has room for their words, FIFO, words → beats
        m.submodules.store_fifo = fifo = StreamFIFO(shape=self.act_bits, depth=STORE_FIFO_DEPTH)
        m.submodules.store_beats = beats = WidthConverter(i_width=self.act_bits, o_width=dw)
        # ``reading``: a STORE with words left to read; ``credits``: FIFO words neither held nor promised to reads in
        # flight. The read request ``reading & (credits != 0)`` is itself a register, computed from both's next
        # values: it steers the ACT buffer's read address and the core's ACT ``rd.ready`` (the compare in front
        # of them: ``credits`` → ``rd.ready`` → the AGU's clock enables, the ULX3S DRAM engine's critical path at
        # 75.36 MHz, seed 3, before the pool's masks moved into stage A).
        reading, reading_next = Signal(), Signal()
        credits = Signal(range(STORE_FIFO_DEPTH + 1), init=STORE_FIFO_DEPTH)
        credits_next = Signal.like(credits)
        rd_valid = Signal(name="store_rd_valid")
        m.d.comb += [self.store_rd.valid.eq(rd_valid),
                     self.store_rd.payload.eq(ptr),
                     fifo.w.valid.eq(self.store_resp.valid), fifo.w.payload.eq(self.store_resp.data)]
        rd_take = self.store_rd.valid & self.store_rd.ready
        # ``returned`` (a word leaving the FIFO: the beat converter's ready, behind the skid FIFO's) comes late, so
        # it only ORs into the request: credits_next ≠ 0 ⟺ kept ≠ 0 or returned (through the adder and compare,
        # it was the ULX3S DRAM engine's critical path at 88.45 MHz, seed 1: 11 nets)
        kept, returned = Signal.like(credits), Signal()
        m.d.comb += [kept.eq(credits - rd_take), returned.eq(fifo.r.valid & fifo.r.ready),
                     credits_next.eq(kept + returned), reading_next.eq(reading)]
        with m.If(rd_take & last):
            m.d.comb += reading_next.eq(0)
        m.d.sync += [credits.eq(credits_next), reading.eq(reading_next),
                     rd_valid.eq(reading_next & ((kept != 0) | returned))]
        wiring.connect(m, fifo.r, beats.i)
        wiring.connect(m, beats.o, wiring.flipped(self.wr_data))
        m.d.comb += step.eq(Mux(is_load, load.valid & load.ready, rd_take) & active)

        # -- completion
        stores_done = Signal(16)
        m.d.comb += self.wr_done.ready.eq(1)
        finished = Signal()
        with m.If(is_load):
            m.d.comb += finished.eq(step & last)
        with m.Else():
            m.d.comb += finished.eq(self.wr_done.valid & (stores_done + 1 == t.runs))
        with m.If(self.wr_done.valid):
            m.d.sync += stores_done.eq(stores_done + 1)

        m.d.comb += cmd.ready.eq(~active)
        m.d.sync += self.done.eq(0)
        with m.If(cmd.valid & cmd.ready):
            empty = (cmd.p.runs == 0) | (cmd.p.run_words == 0)
            m.d.comb += reading_next.eq(~empty & (cmd.p.op == Op.STORE))
            m.d.sync += [t.eq(cmd.p), active.eq(~empty), self.done.eq(empty), addr.eq(cmd.p.dram_addr),
                         issue_left.eq(cmd.p.runs), in_run.eq(cmd.p.run_words), runs_left.eq(cmd.p.runs),
                         ptr.eq(cmd.p.buf_addr), stores_done.eq(0), count.eq(0)]
        with m.If(active & finished):
            m.d.sync += [active.eq(0), self.done.eq(1)]
        return m
