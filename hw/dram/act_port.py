"""The engine's activation memory port on an AXI4 master: ``AxiActivationPort`` (issue #19).

One side is the engine's :class:`~fireforge.hw.engine.ports.ActMemoryPort` seen from the memory (word
reads with in-order responses and no ``ready``, word writes); the other an AXI4 master
(:class:`~fireforge.hw.dram.axi.AXI4`). **The AXI data width equals the activation word** (``vector``
bytes, one of :data:`~fireforge.hw.dram.axi.DATA_WIDTHS`): every engine access is one single-beat burst
(``AxLEN = 0``, full-width ``AxSIZE``, all strobes), word address ``a`` → byte address ``base + a·vector``.
Narrower or wider buses (a :class:`~fireforge.hw.dram.width.WidthConverter` in front) are left for later.

Reads: one AR per word read; any number in flight (the engine keeps at most ``variant.reads_in_flight``
outstanding and buffers all of them, so ``rready`` is tied high — that is the ``ReadResponse`` contract). All
bursts carry ID 0, so R comes back in order and becomes the responses without reordering.

Writes: AW + W per word, issued together; ``bready`` is tied high and B responses are counted. At most
``max_writes`` writes are outstanding (accepted and not yet acknowledged by B): a write is never dropped,
the engine is back-pressured instead.

**Read-after-write rule.** AXI does not order a read against an earlier write (the read and write channels
are independent), while the engine's memory contract is "a read returns the data of every write accepted
before it". The port keeps the word address of every outstanding write (a ring of ``max_writes`` entries,
freed in order as B responses arrive — same ID, so B comes back in order) and holds a read whose address
equals one of them (or the write offered in the same cycle) until that write's B has arrived. Reads of
other addresses are not delayed, so a layer's reads are never slowed down by its own writes; the cost is
``max_writes`` address comparators. (The simpler rule — hold every read while any write is outstanding —
would stall the engine on every output it writes — reads and writes interleave within a layer; it is
kept as ``raw="drain"``: +31 % cycles on ``tests/test_engine_axi.py``'s Fire module.)
Write-after-read is not tracked: the engine consumes a word's data before it writes that word (a layer's
output never aliases its own input, and a layer's writes start only after the previous layer's reads have
all been answered).

Latency: a read is accepted into the AR register (one cycle), and its R beat reaches the engine one cycle
after the R handshake (registered); total = memory latency + 2 cycles. Writes take one cycle to AW / W.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.dram.axi import AXI4, BURST_INCR, CACHE_NORMAL, PROT_DATA, check_port_params
from fireforge.hw.engine.needs import report
from fireforge.hw.engine.ports import ActMemoryPort

__all__ = ["AxiActivationPort", "RAW_RULES"]

#: read-after-write rules: hold a read while a write to its address is outstanding, or while any is
RAW_RULES = ("addresses", "drain")


class AxiActivationPort(wiring.Component):
    """An :class:`ActMemoryPort` served by an AXI4 master (data width = activation word).

    Parameters
    ----------
    vector : int
        Bytes per activation word; ``8 · vector`` must be one of the AXI data widths.
    act_addr_bits : int
        Bits of the engine's word address.
    base : int
        Byte address of word 0 (aligned to the word).
    addr_width, id_width : int
        As :class:`~fireforge.hw.dram.axi.AXI4`.
    max_writes : int
        Writes outstanding (accepted, B not yet seen) at most: 1 to 64.
    raw : str
        Read-after-write rule: ``"addresses"`` (default; a read waits for the outstanding writes to its own
        address) or ``"drain"`` (a read waits until no write is outstanding or offered; no comparators).

    Members
    -------
    mem : In(ActMemoryPort)
        The engine's port (connect the engine's ``mem`` to it).
    m_axi : Out(AXI4)
    wr_pending : Out(8)
        Writes accepted whose B response has not arrived (0: everything written has landed).
    wr_count : Out(32)
        Writes accepted since reset (simulation: marks layer boundaries in the write stream).
    error : Out(1)
        Sticky: an R or B response was SLVERR / DECERR.
    """

    def __init__(self, *, vector: int, act_addr_bits: int, base: int = 0, addr_width: int = 32, id_width: int = 1,
                 max_writes: int = 8, raw: str = "addresses"):
        data_width = 8 * vector
        if raw not in RAW_RULES:
            raise ValueError(f"raw must be one of {RAW_RULES}, not {raw!r}")
        check_port_params(data_width, addr_width, id_width)
        if not isinstance(base, int) or base < 0 or base % vector or base + (vector << act_addr_bits) > 1 << addr_width:
            raise ValueError(f"base must be a word-aligned byte address whose memory fits {addr_width} address "
                             f"bits, not {base!r}")
        if not isinstance(max_writes, int) or not 1 <= max_writes <= 64:
            raise ValueError(f"max_writes must be an integer from 1 to 64, not {max_writes!r}")
        self.vector, self.act_addr_bits, self.base, self.max_writes = vector, act_addr_bits, base, max_writes
        self.raw = raw
        self.data_width, self.addr_width, self.id_width = data_width, addr_width, id_width
        super().__init__({
            "mem": In(ActMemoryPort(addr_bits=act_addr_bits, data_bits=data_width)),
            "m_axi": Out(AXI4(data_width=data_width, addr_width=addr_width, id_width=id_width)),
            "wr_pending": Out(8), "wr_count": Out(32), "error": Out(1),
        })

    #: cycles added to the memory's own read latency (AR register, R register)
    LATENCY = 2

    @classmethod
    def needs(cls, **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): registers only, no memories or products."""
        return report()

    def _byte_addr(self, word):
        shift = (self.vector - 1).bit_length()
        return (word << shift) + self.base if self.base else word << shift

    def elaborate(self, platform):
        m = Module()
        axi, rd, wr = self.m_axi, self.mem.rd, self.mem.wr
        size = (self.vector - 1).bit_length()
        for p in ("ar", "aw"):
            m.d.comb += [getattr(axi, f"{p}len").eq(0), getattr(axi, f"{p}size").eq(size),
                         getattr(axi, f"{p}burst").eq(BURST_INCR), getattr(axi, f"{p}cache").eq(CACHE_NORMAL),
                         getattr(axi, f"{p}prot").eq(PROT_DATA), getattr(axi, f"{p}id").eq(0),
                         getattr(axi, f"{p}lock").eq(0)]
        m.d.comb += [axi.wstrb.eq(-1), axi.wlast.eq(1), axi.rready.eq(1), axi.bready.eq(1)]

        # -- outstanding writes: a ring of word addresses, filled as writes are accepted, freed by B (in order)
        n = self.max_writes
        slots = [Signal(self.act_addr_bits, name=f"wslot{i}") for i in range(n)]
        valid = [Signal(name=f"wslot{i}_valid") for i in range(n)]
        ptr_bits = max(1, (n - 1).bit_length())
        head, tail = Signal(ptr_bits), Signal(ptr_bits)
        pending = Signal(range(n + 1))
        b_done = Signal()
        m.d.comb += b_done.eq(axi.bvalid)        # bready is high

        # -- write: AW and W registers, refilled together
        aw_free = ~axi.awvalid | axi.awready
        w_free = ~axi.wvalid | axi.wready
        wr_take = Signal()
        m.d.comb += [wr.ready.eq(aw_free & w_free & (pending < n)), wr_take.eq(wr.valid & wr.ready)]
        with m.If(axi.awready):
            m.d.sync += axi.awvalid.eq(0)
        with m.If(axi.wready):
            m.d.sync += axi.wvalid.eq(0)
        with m.If(wr_take):
            m.d.sync += [axi.awvalid.eq(1), axi.awaddr.eq(self._byte_addr(wr.addr)),
                         axi.wvalid.eq(1), axi.wdata.eq(wr.data), self.wr_count.eq(self.wr_count + 1)]
        for i in range(n):
            with m.If(wr_take & (tail == i)):
                m.d.sync += [slots[i].eq(wr.addr), valid[i].eq(1)]
            with m.Elif(b_done & (head == i)):
                m.d.sync += valid[i].eq(0)
        wrap = lambda p: (p + 1) if n == 1 << ptr_bits else Mux(p == n - 1, 0, p + 1)   # noqa: E731
        with m.If(wr_take):
            m.d.sync += tail.eq(wrap(tail))
        with m.If(b_done):
            m.d.sync += head.eq(wrap(head))
        m.d.sync += pending.eq(pending + wr_take - b_done)
        m.d.comb += self.wr_pending.eq(pending)

        # -- read: held while its address has a write outstanding (or offered now)
        hazard = Signal()
        if self.raw == "drain":
            m.d.comb += hazard.eq((pending != 0) | wr.valid)
        else:
            m.d.comb += hazard.eq(Cat(*(v & (s == rd.addr) for s, v in zip(slots, valid)),
                                      wr.valid & (wr.addr == rd.addr)).any())
        m.d.comb += rd.ready.eq((~axi.arvalid | axi.arready) & ~hazard)
        with m.If(axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(rd.valid & rd.ready):
            m.d.sync += [axi.arvalid.eq(1), axi.araddr.eq(self._byte_addr(rd.addr))]
        m.d.sync += [rd.resp.valid.eq(axi.rvalid), rd.resp.data.eq(axi.rdata)]

        with m.If((axi.rvalid & axi.rresp[1]) | (axi.bvalid & axi.bresp[1])):
            m.d.sync += self.error.eq(1)
        return m
