"""A power-up memory test on the AXI port: the data lines, the address lines, and the controller's answers.

A board whose DRAM does not work (a bad solder joint, a wrong module setting, DDR3 that did not level) must not
take a program and run it into garbage: ``init_error`` must say so before the host uploads anything. After
``start`` (the controller's init done), :class:`DramMemtest` writes one word to each test address, then reads
every one back and compares:

* **data lines**: ``2 × data_width`` consecutive words from address 0, walking a one, then a zero, through the
  word (a stuck or shorted data line, or a byte lane that reads back shifted, differs somewhere);
* **address lines**: the word at beat ``2**k`` for every address bit ``k`` above those (a stuck or shorted
  address line makes two test addresses one cell: the later write overwrites the earlier, whose read differs).
  Each holds ``0xA0 + k`` in every byte, unlike every other test word.

Single-beat transactions, one at a time (a few thousand cycles in all: this runs once per power-up, and is not
a soak test). An error response (SLVERR / DECERR) or any word read back wrong raises ``error``; ``done`` rises
after the last compare either way. :func:`memtest_words` is its Python twin.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.dram.axi import AXI4, BURST_INCR, CACHE_NORMAL, PROT_DATA

__all__ = ["DramMemtest", "memtest_words"]


def _address_bits(size_bytes: int, data_width: int) -> range:
    """The address bits (of the beat address) the address walk covers: those above the data walk's words."""
    beats = size_bytes // (data_width // 8)
    return range((2 * data_width - 1).bit_length(), max(0, (beats - 1).bit_length()))


def memtest_words(size_bytes: int, data_width: int) -> list[tuple[int, int]]:
    """The test's ``(byte address, word)`` pairs, in the order written and read."""
    size, mask = data_width // 8, (1 << data_width) - 1
    walk = [(i * size, 1 << i) for i in range(data_width)]
    walk += [(a + data_width * size, ~w & mask) for a, w in walk]
    return walk + [((1 << k) * size, int.from_bytes(bytes([0xA0 + k]) * size, "little"))
                   for k in _address_bits(size_bytes, data_width)]


class DramMemtest(wiring.Component):
    """Parameters
    ----------
    data_width, addr_width, id_width : int
        The port's (:class:`~fireforge.hw.dram.axi.AXI4`).
    size_bytes : int
        The DRAM's size (a power of two; the address walk stops below it).

    Members
    -------
    start : In(1)
        The test begins at the first cycle ``start`` is high (the controller's ``init_done``).
    done : Out(1)
        High once every word is compared; stays high.
    error : Out(1)
        A word read back wrong or an error response; stays high.
    axi : Out(AXI4(data_width, addr_width, id_width))
    """

    def __init__(self, *, data_width: int, addr_width: int, id_width: int, size_bytes: int):
        if size_bytes < 4 * data_width or size_bytes & (size_bytes - 1) or size_bytes > 1 << addr_width:
            raise ValueError(f"size_bytes must be a power of two from {4 * data_width} to 2**{addr_width}, "
                             f"not {size_bytes!r}")
        self.data_width, self.addr_width, self.size_bytes = data_width, addr_width, size_bytes
        self.address_bits = _address_bits(size_bytes, data_width)
        super().__init__({"start": In(1), "done": Out(1), "error": Out(1),
                          "axi": Out(AXI4(data_width=data_width, addr_width=addr_width, id_width=id_width))})

    def elaborate(self, platform):
        m = Module()
        axi, dw = self.axi, self.data_width
        shift = (dw // 8 - 1).bit_length()
        bits = self.address_bits
        # the generator: word i of memtest_words, for i = 0, 1, … (restarted for the read pass)
        index = Signal(range(2 * dw + 1))            # in the data walk while < 2·dw
        onehot = Signal(dw, init=1)
        k = Signal(range(max(bits.stop, 1) + 1), init=bits.start)
        walking = index < 2 * dw
        addr = Signal(self.addr_width)
        word = Signal(dw)
        m.d.comb += [addr.eq(Mux(walking, index, 1 << k) << shift),
                     word.eq(Mux(walking, Mux(index < dw, onehot, ~onehot), (Const(0xA0, 8) + k)[:8]
                                 .replicate(dw // 8)))]
        last = Mux(walking, (index == 2 * dw - 1) & (bits.start >= bits.stop), k == bits.stop - 1)

        def advance():
            with m.If(walking):
                m.d.sync += [index.eq(index + 1), onehot.eq(Cat(onehot[-1], onehot[:-1]))]
            with m.Else():
                m.d.sync += k.eq(k + 1)

        def restart():
            m.d.sync += [index.eq(0), onehot.eq(1), k.eq(bits.start)]

        for ch in ("aw", "ar"):
            m.d.comb += [getattr(axi, f"{ch}id").eq(0), getattr(axi, f"{ch}len").eq(0),
                         getattr(axi, f"{ch}size").eq(axi.signature.size), getattr(axi, f"{ch}burst").eq(BURST_INCR),
                         getattr(axi, f"{ch}cache").eq(CACHE_NORMAL), getattr(axi, f"{ch}prot").eq(PROT_DATA),
                         getattr(axi, f"{ch}lock").eq(0), getattr(axi, f"{ch}addr").eq(addr)]
        m.d.comb += [axi.wdata.eq(word), axi.wstrb.eq(-1), axi.wlast.eq(1), axi.bready.eq(1), axi.rready.eq(1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [axi.awvalid.eq(1), axi.wvalid.eq(1)]
                    m.next = "WRITE"
            with m.State("WRITE"):                   # AW and W offered together; then B
                with m.If(axi.awready):
                    m.d.sync += axi.awvalid.eq(0)
                with m.If(axi.wready):
                    m.d.sync += axi.wvalid.eq(0)
                with m.If(axi.bvalid):
                    with m.If(axi.bresp[1]):
                        m.d.sync += self.error.eq(1)
                    with m.If(last):
                        restart()
                        m.d.sync += axi.arvalid.eq(1)
                        m.next = "READ"
                    with m.Else():
                        advance()
                        m.d.sync += [axi.awvalid.eq(1), axi.wvalid.eq(1)]
            with m.State("READ"):
                with m.If(axi.arready):
                    m.d.sync += axi.arvalid.eq(0)
                with m.If(axi.rvalid):
                    with m.If(axi.rresp[1] | (axi.rdata != word)):
                        m.d.sync += self.error.eq(1)
                    with m.If(last):
                        m.d.sync += self.done.eq(1)
                        m.next = "DONE"
                    with m.Else():
                        advance()
                        m.d.sync += axi.arvalid.eq(1)
            with m.State("DONE"):
                pass
        return m
