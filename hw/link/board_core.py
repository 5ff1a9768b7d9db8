"""``DramBoardCore``: everything of a DRAM-mode board in the engine's clock domain — the DRAM-mode engine, the
UART host link (protocol v2) and the AXI multiplexer that gives the link the DRAM port while the engine is idle.

::

    uart_rx ─▶ UartRx ─▶ LinkController ─▶ UartTx ─▶ uart_tx
                             │ start / status           │ AXI4 (link's DMAs)
                         DramEngine ── m_axi ──▶ owner mux ──▶ m_axi (to the DRAM controller)

After the controller's init, :class:`~fireforge.hw.dram.memtest.DramMemtest` owns the port until it has tested
the DRAM; the link reports the DRAM ready (``init_done``) only then, and ``init_error`` if it failed. Then the
engine owns the port while it is busy, the link otherwise: the link starts the engine only with its own
DMAs idle (a request is answered only when its transfers are done) and refuses DRAM access while the engine
runs, so the port never changes hands mid-transaction. The board top (:mod:`fireforge.hw.board.dram_top`) adds
the PLL, the DRAM controller and its init sequencer; the whole-board simulation (:mod:`fireforge.sim.board_sim`)
the controller's ``--sim`` core.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.link import FRAME_TIMEOUT_S, config_hash
from fireforge.hw.dram.axi import AXI4
from fireforge.hw.dram.memtest import DramMemtest
from fireforge.hw.host_link import UartRx, UartTx
from fireforge.hw.link.controller import LinkController, identify_bytes

__all__ = ["DramBoardCore", "uart_divisor"]


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit (the UART needs at least 4)."""
    d = round(clk_hz / baud)
    if d < 4:
        raise ValueError(f"{baud} baud at {clk_hz / 1e6:g} MHz is {clk_hz / baud:.1f} cycles per bit; the UART "
                         f"needs at least 4: choose a baud rate ≤ {int(clk_hz // 4)}")
    return d


class DramBoardCore(wiring.Component):
    """Parameters
    ----------
    config : EngineConfig
        DRAM mode, depths resolved.
    variant : BuildVariant
    data_width, addr_width, id_width : int
        The DRAM controller's AXI port.
    clk_hz : float
        The engine clock; with ``baud`` it sets the UART divisor (``divisor`` overrides).
    board : str
        The board id IDENTIFY reports (:data:`fireforge.core.link.BOARD_IDS`).
    dram_bytes : int, optional
        The DRAM's size, for the power-up memory test (default: all ``addr_width`` addresses).
    frame_timeout : int, optional
        Cycles without a byte after which a request is abandoned (default
        :data:`~fireforge.core.link.FRAME_TIMEOUT_S` of the clock; it must be shorter than the host's response
        timeout, so that a frame cut short is dropped before the host sends it again).

    Members
    -------
    uart_rx : In(1), uart_tx : Out(1)
    init_done, init_error : In(1)
        The DRAM controller's, in this clock domain.
    leds : Out(8)
        DRAM ready (init and memory test passed), DRAM error (init or memory test), engine busy, done, error, 0, 0,
        0.
    m_axi : Out(AXI4)
    """

    def __init__(self, config: EngineConfig, variant: BuildVariant = BuildVariant(), *, data_width: int,
                 addr_width: int, id_width: int, clk_hz: float, baud: int = 3_000_000, board: str = "sim",
                 divisor: int | None = None, frame_timeout: int | None = None, max_burst: int = 64,
                 outstanding: int = 2, dram_bytes: int | None = None):
        from fireforge.hw.dram.dram_engine import DramEngine

        self.config, self.divisor = config, divisor or uart_divisor(clk_hz, baud)
        self.engine = DramEngine(config, variant, data_width=data_width, addr_width=addr_width, id_width=id_width,
                                 max_burst=max_burst, outstanding=outstanding)
        ident = identify_bytes(board=board, config_hash=config_hash(config.to_dict()), data_width=data_width,
                               config=config, clk_hz=clk_hz)
        self.link = LinkController(identify=ident, data_width=data_width, addr_width=addr_width, id_width=id_width,
                                   timeout=frame_timeout or int(FRAME_TIMEOUT_S * clk_hz))
        self.memtest = DramMemtest(data_width=data_width, addr_width=addr_width, id_width=id_width,
                                   size_bytes=dram_bytes or 1 << addr_width)
        self.axi_sig = AXI4(data_width=data_width, addr_width=addr_width, id_width=id_width)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "init_done": In(1),
                          "init_error": In(1), "leds": Out(8), "m_axi": Out(self.axi_sig)})

    def elaborate(self, platform):
        m = Module()
        eng, link = self.engine, self.link
        m.submodules.engine, m.submodules.link, m.submodules.memtest = eng, link, test = eng, link, self.memtest
        m.d.comb += test.start.eq(self.init_done & ~self.init_error)
        ready, error = test.done & ~test.error, self.init_error | test.error
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.uart_rx), self.uart_tx.eq(utx.tx),
                     link.rx_data.eq(urx.data), link.rx_valid.eq(urx.valid),
                     utx.data.eq(link.tx.payload), utx.valid.eq(link.tx.valid), link.tx.ready.eq(utx.ready)]
        m.d.comb += [eng.start.eq(link.start), eng.program_addr.eq(link.program_addr),
                     eng.program_commands.eq(link.program_commands),
                     link.engine_busy.eq(eng.busy), link.engine_done.eq(eng.done), link.engine_error.eq(eng.error),
                     link.init_done.eq(ready), link.init_error.eq(error),
                     link.engine_counters.eq(Cat(eng.cycles, eng.compute_cycles, eng.bytes_read, eng.bytes_written)),
                     self.leds.eq(Cat(ready, error, eng.busy, eng.done, eng.error))]
        # the port's owner: the memory test until it is done, then the engine while it runs, else the link
        testing, running = ~test.done, test.done & eng.busy
        read_names = set(self.axi_sig.read().members)
        for name, member in self.axi_sig.members.items():
            port, mine, tester = getattr(self.m_axi, name), getattr(eng.m_axi, name), getattr(test.axi, name)
            theirs = getattr(link.axi_read if name in read_names else link.axi_write, name)
            if member.flow == Out:
                m.d.comb += port.eq(Mux(testing, tester, Mux(running, mine, theirs)))
            elif name.endswith(("valid", "ready")):
                m.d.comb += [tester.eq(Mux(testing, port, 0)), mine.eq(Mux(running, port, 0)),
                             theirs.eq(Mux(testing | running, 0, port))]
            else:   # a payload (rdata, rresp, bid ...), read only with its valid: to all three as it is (gated, the
                # owner select reached every DMA FIFO's LUT RAM data: the ULX3S DRAM engine's critical path, 86.34 MHz)
                m.d.comb += [tester.eq(port), mine.eq(port), theirs.eq(port)]
        return m
