"""DMA engines on an AXI4 master port: a command (where, how long) becomes bursts; data moves as streams.

A command is a byte address and a length **in beats** (words of the port's data width): both aligned to
the data width, so no engine ever splits or merges a word and the low address bits are ignored. Lengths
in beats need no division in hardware, and every on-chip buffer counts words anyway.

Burst rule: a burst never crosses a boundary of ``max_burst`` beats (``max_burst × bytes per beat`` bytes,
a power of two ≤ 4 KB), so it never crosses a 4 KB page (AXI4's rule), and after an unaligned head every
burst of a long transfer is aligned and full — the shape DRAM controllers serve best.

All bursts carry ID 0: responses come back in order, so data needs no reordering.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.dram.axi import (BURST_INCR, CACHE_NORMAL, MAX_BURST_BEATS, PROT_DATA, AXI4Read, AXI4Write,
                                   check_port_params)
from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.needs import total

__all__ = ["dma_command", "burst_layout", "DONE", "BurstSplitter", "ReadDma", "WriteDma"]

#: what :class:`WriteDma` reports when every burst of a command has its write response: whether any
#: response was an error (SLVERR / DECERR)
DONE = data.StructLayout({"error": 1})


def dma_command(addr_width: int, beats_width: int) -> data.StructLayout:
    """A DMA command: ``addr`` (bytes, beat-aligned) and ``beats`` (≥ 1; 0 is not allowed)."""
    return data.StructLayout({"addr": addr_width, "beats": beats_width})


def burst_layout(addr_width: int) -> data.StructLayout:
    """One burst: its byte address, ``len`` (beats − 1, as ``AxLEN``) and whether it ends its command."""
    return data.StructLayout({"addr": addr_width, "len": 8, "last": 1})


def _check_dma(*, data_width, addr_width, id_width, beats_width, max_burst, outstanding):
    check_port_params(data_width, addr_width, id_width)
    if not isinstance(beats_width, int) or not 1 <= beats_width <= 32:
        raise ValueError(f"beats_width must be an integer from 1 to 32, not {beats_width!r}")
    if (not isinstance(max_burst, int) or not 1 <= max_burst <= MAX_BURST_BEATS
            or max_burst & (max_burst - 1)):
        raise ValueError(f"max_burst must be a power of two from 1 to {MAX_BURST_BEATS}, not {max_burst!r}")
    if not isinstance(outstanding, int) or not 1 <= outstanding <= 64:
        raise ValueError(f"outstanding must be an integer from 1 to 64, not {outstanding!r}")


def ref_bursts(addr: int, beats: int, *, data_width: int, max_burst: int) -> list[tuple[int, int]]:
    """The bursts :class:`BurstSplitter` makes of a command, as ``(byte address, beats)``: its Python twin."""
    size = data_width // 8
    beat = addr // size
    out = []
    while beats:
        n = min(beats, max_burst - beat % max_burst)
        out.append((beat * size, n))
        beat, beats = beat + n, beats - n
    return out


class BurstSplitter(wiring.Component):
    """Splits commands into bursts of at most ``max_burst`` beats that cross no ``max_burst``-beat boundary
    (:func:`ref_bursts` is its twin). One burst per cycle; each command costs one cycle more.

    Every carry chain runs from registers to registers, none after another (the single-cycle splitter's three
    chains in series were the critical path of the ULX3S engine at 66 MHz): a command is first registered
    with its head burst's length and whether it fits in one or two bursts; while it is split, ``span`` (its
    beats left, counted from the last ``max_burst`` boundary) only loses ``max_burst`` per burst, so whether
    the next burst is the last is a comparison with a constant.

    Parameters
    ----------
    data_width, addr_width : int
        As :class:`fireforge.hw.dram.axi.AXI4Read`.
    beats_width : int
        Bits of a command's length in beats.
    max_burst : int
        Longest burst in beats: a power of two from 1 to 256.

    Members
    -------
    cmd : In(stream.Signature(dma_command(addr_width, beats_width)))
        Commands; ``beats`` ≥ 1.
    burst : Out(stream.Signature(burst_layout(addr_width)))
        Bursts, in order; the first :attr:`latency` cycles after its command was taken.
    """

    def __init__(self, *, data_width: int, addr_width: int = 32, beats_width: int = 20, max_burst: int = 64):
        _check_dma(data_width=data_width, addr_width=addr_width, id_width=1, beats_width=beats_width,
                   max_burst=max_burst, outstanding=1)
        self.data_width, self.addr_width, self.beats_width, self.max_burst = \
            data_width, addr_width, beats_width, max_burst
        super().__init__({"cmd": In(stream.Signature(dma_command(addr_width, beats_width))),
                          "burst": Out(stream.Signature(burst_layout(addr_width)))})

    #: cycles from a command offered (and taken) to its first burst offered: the command register, the
    #: splitting register, the burst register
    latency = 3

    def elaborate(self, platform):
        m = Module()
        cmd, burst = self.cmd, self.burst
        mb = self.max_burst
        beat_shift = (self.data_width // 8 - 1).bit_length()
        burst_bits = (mb - 1).bit_length()
        span_width = self.beats_width + 1

        def at_most(x, q):          # x ≤ q · max_burst for q in 1…3, as gates: no carry chain
            hi = x[burst_bits:]
            below = {1: hi == 0, 2: hi[1:] == 0, 3: (hi[2:] == 0) & ~(hi[0] & hi[1])}[q]
            return below | (x == q * mb)

        # -- stage 1: the command, with its head burst (beats to the first boundary) and its span
        c_valid, c_addr = Signal(), Signal(self.addr_width)
        c_head, c_head_m1 = Signal(range(mb + 1)), Signal(8)
        c_span, c_len_m1 = Signal(span_width), Signal(self.beats_width)
        busy = Signal()
        take_c = c_valid & ~busy
        m.d.comb += cmd.ready.eq(~c_valid | take_c)
        with m.If(take_c):
            m.d.sync += c_valid.eq(0)
        with m.If(cmd.valid & cmd.ready):
            low = cmd.p.addr[beat_shift:beat_shift + burst_bits] if burst_bits else 0
            m.d.sync += [c_valid.eq(1), c_addr.eq(cmd.p.addr & ~((1 << beat_shift) - 1)),   # low bits ignored
                         c_head.eq(mb - low), c_head_m1.eq(~low if burst_bits else 0),
                         c_span.eq(cmd.p.beats + low), c_len_m1.eq(cmd.p.beats - 1)]

        # -- stage 2: bursts. ``bound`` beats to the next boundary (the head, then max_burst); the burst is the
        # last when ``span`` ≤ max_burst, and then its length is ``len_m1`` + 1
        addr, len_m1 = Signal(self.addr_width), Signal(self.beats_width)
        bound, bound_m1 = Signal(range(mb + 1)), Signal(8)
        span = Signal(span_width)
        last, next_last = Signal(), Signal()
        with m.If(take_c):
            m.d.sync += [busy.eq(1), addr.eq(c_addr), len_m1.eq(c_len_m1), bound.eq(c_head),
                         bound_m1.eq(c_head_m1), span.eq(c_span),
                         last.eq(at_most(c_span, 1)), next_last.eq(at_most(c_span, 2))]

        with m.If(burst.ready):
            m.d.sync += burst.valid.eq(0)
        with m.If(busy & (~burst.valid | burst.ready)):
            m.d.sync += [burst.valid.eq(1), burst.p.addr.eq(addr), burst.p.len.eq(Mux(last, len_m1, bound_m1)),
                         burst.p.last.eq(last), busy.eq(~last),
                         addr.eq(addr + (bound << beat_shift)), len_m1.eq(len_m1 - bound),
                         bound.eq(mb), bound_m1.eq(mb - 1), span.eq(span - mb),
                         last.eq(next_last), next_last.eq(at_most(span, 3))]
        return m


def _address_channel(m, prefix, axi, *, take, burst):
    """Drive AR or AW from a register loaded with ``burst`` when ``take``."""
    valid, ready = getattr(axi, f"{prefix}valid"), getattr(axi, f"{prefix}ready")
    m.d.comb += [getattr(axi, f"{prefix}id").eq(0), getattr(axi, f"{prefix}size").eq(axi.signature.size),
                 getattr(axi, f"{prefix}burst").eq(BURST_INCR), getattr(axi, f"{prefix}lock").eq(0),
                 getattr(axi, f"{prefix}cache").eq(CACHE_NORMAL), getattr(axi, f"{prefix}prot").eq(PROT_DATA)]
    with m.If(ready):
        m.d.sync += valid.eq(0)
    with m.If(take):
        m.d.sync += [valid.eq(1), getattr(axi, f"{prefix}addr").eq(burst.p.addr),
                     getattr(axi, f"{prefix}len").eq(burst.p.len)]


class ReadDma(wiring.Component):
    """Reads commands' words from an AXI4 port and streams them out, in command order.

    A burst is issued only when fewer than ``outstanding`` are in flight and the data FIFO has room for all
    its beats (counting the beats of bursts still in flight), so ``rready`` stays high: R is never stalled
    by the consumer, and a slow consumer only delays later bursts.

    Parameters
    ----------
    data_width, addr_width, id_width : int
        The port's (:class:`fireforge.hw.dram.axi.AXI4Read`).
    beats_width : int
        Bits of a command's length in beats (default 20: 1 MB at 8 bits… 16 MB at 128).
    max_burst : int
        Longest burst, in beats: a power of two from 1 to 256.
    outstanding : int
        Bursts in flight at most (AR taken, last R beat not yet).
    depth : int
        Words of the data FIFO (≥ ``max_burst``; default ``outstanding × max_burst``, enough to keep
        ``outstanding`` full bursts in flight while the consumer keeps up).

    Members
    -------
    cmd : In(stream.Signature(dma_command(addr_width, beats_width)))
        Commands: byte address and length in beats, both beat-aligned; ``beats`` ≥ 1.
    data : Out(stream.Signature(data_width))
        The words read, in order, :attr:`latency` cycles after their R beat at the earliest.
    error : Out(1)
        Set (until reset) by any R beat with an error response (SLVERR / DECERR); its data is passed on.
    axi : Out(AXI4Read(...))
        The port.
    """

    def __init__(self, *, data_width: int, addr_width: int = 32, id_width: int = 1, beats_width: int = 20,
                 max_burst: int = 64, outstanding: int = 2, depth: int | None = None):
        _check_dma(data_width=data_width, addr_width=addr_width, id_width=id_width, beats_width=beats_width,
                   max_burst=max_burst, outstanding=outstanding)
        if depth is None:
            depth = max(2, outstanding * max_burst)
        if not isinstance(depth, int) or depth < max(2, max_burst):
            raise ValueError(f"depth must be an integer ≥ max(2, max_burst) = {max(2, max_burst)}, not {depth!r}")
        self.data_width, self.addr_width, self.id_width, self.beats_width = \
            data_width, addr_width, id_width, beats_width
        self.max_burst, self.outstanding, self.depth = max_burst, outstanding, depth
        super().__init__({
            "cmd": In(stream.Signature(dma_command(addr_width, beats_width))),
            "data": Out(stream.Signature(data_width)),
            "error": Out(1),
            "axi": Out(AXI4Read(data_width=data_width, addr_width=addr_width, id_width=id_width)),
        })

    #: cycles from a command offered (and taken) to its first ``arvalid``: the splitter, then the AR register
    issue_latency = BurstSplitter.latency + 1
    #: cycles from an R beat offered (and taken) to its word offered on ``data``: the data FIFO's
    latency = StreamFIFO.latency

    @classmethod
    def needs(cls, *, data_width: int, outstanding: int = 2, max_burst: int = 64, depth: int | None = None,
              **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the data FIFO."""
        depth = max(2, outstanding * max_burst) if depth is None else depth
        return StreamFIFO.needs(shape=data_width, depth=depth)

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        m.submodules.split = split = BurstSplitter(data_width=self.data_width, addr_width=self.addr_width,
                                                   beats_width=self.beats_width, max_burst=self.max_burst)
        # LUT RAM: the words leave a flip-flop, not a block RAM's read port without output register (5.6 ns from
        # the clock on ECP5: the LOAD assembler's path, the critical one of the ULX3S engine at 67.24 MHz)
        m.submodules.fifo = fifo = StreamFIFO(shape=self.data_width, depth=self.depth, ram_style="distributed")
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        wiring.connect(m, fifo.r, wiring.flipped(self.data))

        burst = split.burst
        # FIFO words neither held nor promised to bursts issued: a burst fits when ``room`` > its ``len``, one
        # comparison of registers (``room`` after a burst, ``room + ~len`` = ``room − beats``, is computed beside it)
        room = Signal(range(self.depth + 1), init=self.depth)
        in_flight = Signal(range(self.outstanding + 1))
        take = Signal()
        # a burst is issued only with AR empty, not in the cycle AR is taken: ``arready`` (from the port's owner
        # multiplexer and the arbiter) stays out of the splitter's enables — one AR per two cycles at most, for
        # bursts of many beats (the ULX3S engine's critical path at 74.9 MHz ran arready → take → the splitter)
        m.d.comb += take.eq(burst.valid & ~axi.arvalid & (in_flight < self.outstanding) & (room > burst.p.len))
        m.d.comb += burst.ready.eq(take)
        _address_channel(m, "ar", axi, take=take, burst=burst)

        # the reservation keeps the FIFO from filling, so rready is high whenever a beat can come
        m.d.comb += [axi.rready.eq(fifo.w.ready), fifo.w.valid.eq(axi.rvalid), fifo.w.payload.eq(axi.rdata)]
        r_take = axi.rvalid & axi.rready
        popped = self.data.valid & self.data.ready
        after = Signal.like(room)
        m.d.comb += after.eq(room + Cat(~burst.p.len, Const((1 << max(0, len(room) - 8)) - 1, max(0, len(room) - 8)))[:len(room)])   # one adder
        m.d.sync += [room.eq(Mux(take, after, room) + popped),
                     in_flight.eq(in_flight + take - (r_take & axi.rlast))]
        with m.If(r_take & axi.rresp[1]):
            m.d.sync += self.error.eq(1)
        return m


class WriteDma(wiring.Component):
    """Writes a data stream to the words commands name, over an AXI4 port; reports each command done.

    The data stream carries the commands' words back to back, in command order. AW never waits for W (an
    AXI slave may wait for AW before taking W); W follows the bursts issued, with ``wlast`` on each burst's
    last beat, from a register (the port's outputs are all registered).

    Parameters
    ----------
    data_width, addr_width, id_width, beats_width, max_burst : int
        As :class:`ReadDma`.
    outstanding : int
        Bursts in flight at most (AW issued, B not yet).

    Members
    -------
    cmd : In(stream.Signature(dma_command(addr_width, beats_width)))
        Commands, as :class:`ReadDma`'s.
    data : In(stream.Signature(data_width))
        The words to write.
    done : Out(stream.Signature(DONE))
        One per command, once every one of its bursts has its write response (its data is then visible to
        any later read); ``error`` if any response was an error.
    axi : Out(AXI4Write(...))
        The port.
    """

    def __init__(self, *, data_width: int, addr_width: int = 32, id_width: int = 1, beats_width: int = 20,
                 max_burst: int = 64, outstanding: int = 2):
        _check_dma(data_width=data_width, addr_width=addr_width, id_width=id_width, beats_width=beats_width,
                   max_burst=max_burst, outstanding=outstanding)
        self.data_width, self.addr_width, self.id_width, self.beats_width = \
            data_width, addr_width, id_width, beats_width
        self.max_burst, self.outstanding = max_burst, outstanding
        super().__init__({
            "cmd": In(stream.Signature(dma_command(addr_width, beats_width))),
            "data": In(stream.Signature(data_width)),
            "done": Out(stream.Signature(DONE)),
            "axi": Out(AXI4Write(data_width=data_width, addr_width=addr_width, id_width=id_width)),
        })

    #: cycles from a command offered (and taken) to its first ``awvalid``: the splitter, then the AW register
    issue_latency = BurstSplitter.latency + 1
    #: cycles from a data word offered (and taken) to it on W (once its burst's length is known): the W register
    latency = 1

    @staticmethod
    def _queue_depth(outstanding):
        return max(2, outstanding)

    @classmethod
    def needs(cls, *, outstanding: int = 2, **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the burst-length and response-tracking FIFOs."""
        depth = cls._queue_depth(outstanding)
        return total(StreamFIFO.needs(shape=8, depth=depth), StreamFIFO.needs(shape=1, depth=depth))

    def elaborate(self, platform):
        m = Module()
        axi, done = self.axi, self.done
        m.submodules.split = split = BurstSplitter(data_width=self.data_width, addr_width=self.addr_width,
                                                   beats_width=self.beats_width, max_burst=self.max_burst)
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        # per burst issued: its length for W, and whether it ends its command for B
        depth = self._queue_depth(self.outstanding)
        m.submodules.wlen = wlen = StreamFIFO(shape=8, depth=depth)
        m.submodules.bwait = bwait = StreamFIFO(shape=1, depth=depth)

        burst = split.burst
        in_flight = Signal(range(self.outstanding + 1))
        take = Signal()
        m.d.comb += take.eq(burst.valid & ~axi.awvalid & (in_flight < self.outstanding)   # as ReadDma's AR
                            & wlen.w.ready & bwait.w.ready)
        m.d.comb += [burst.ready.eq(take), wlen.w.valid.eq(take), wlen.w.payload.eq(burst.p.len),
                     bwait.w.valid.eq(take), bwait.w.payload.eq(burst.p.last)]
        _address_channel(m, "aw", axi, take=take, burst=burst)

        # W: a register loaded with the next word of the burst at the head of wlen
        beat = Signal(8)
        load = ~axi.wvalid | axi.wready
        m.d.comb += [axi.wstrb.eq(-1), self.data.ready.eq(load & wlen.r.valid)]
        with m.If(axi.wready):
            m.d.sync += axi.wvalid.eq(0)
        with m.If(self.data.valid & self.data.ready):
            last = beat == wlen.r.payload
            m.d.sync += [axi.wvalid.eq(1), axi.wdata.eq(self.data.payload), axi.wlast.eq(last),
                         beat.eq(Mux(last, 0, beat + 1))]
            m.d.comb += wlen.r.ready.eq(last)

        # B: responses in burst order; a command is done with its last burst's response
        error = Signal()
        m.d.comb += axi.bready.eq(bwait.r.valid & (~done.valid | done.ready))
        b_take = axi.bvalid & axi.bready
        m.d.comb += bwait.r.ready.eq(b_take)
        with m.If(done.ready):
            m.d.sync += done.valid.eq(0)
        with m.If(b_take):
            with m.If(bwait.r.payload):
                m.d.sync += [done.valid.eq(1), done.p.error.eq(error | axi.bresp[1]), error.eq(0)]
            with m.Else():
                m.d.sync += error.eq(error | axi.bresp[1])
        m.d.sync += in_flight.eq(in_flight + take - b_take)
        return m
