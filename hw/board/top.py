"""The board top: engine + UART host link + clock and reset, for one amaranth-boards platform."""

from __future__ import annotations

from amaranth import ClockDomain, Elaboratable, Module, Signal
from amaranth.build import ResourceError
from amaranth.lib import io, wiring

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.hw.board.catalogue import DEFAULT_BAUD, Board, get_board
from fireforge.hw.board.clocks import add_clock, add_reset, clock_plan
from fireforge.hw.board.ecp5_memory import MEMORY_CELLS
from fireforge.hw.board.floorplan import DEVICES as FLOORPLAN_DEVICES
from fireforge.hw.host_link import LinkedTop
from fireforge.hw.top import ActMemoryInstance

__all__ = ["FireforgeBoard"]


class FireforgeBoard(Elaboratable):
    """FireforgeTop + UART host link + clock and reset, for one amaranth-boards platform.

    The board clock goes through the family's PLL / MMCM when the engine clock differs from the oscillator
    (:mod:`fireforge.hw.board.clocks`); reset is held while the PLL is unlocked (and while the board's reset
    button, if amaranth-boards names one, is pressed); :class:`~fireforge.hw.host_link.LinkedTop` sits on the
    board's ``uart`` resource. LEDs, where present: 0 busy, 1 done, 2 heartbeat (≈1.5 Hz), 3 PLL locked.

    Parameters
    ----------
    config : EngineConfig
        Resolved engine config (the compiled program's).
    board : Board or str
    clock_mhz : float or None
        Engine clock; the board default when None (a PLL/MMCM makes it when it differs from the oscillator).
    baud : int
        UART line rate.
    act_memory : str
        ``"on-chip"`` (block RAM) or ``"external"``: an ``ff_ext_act_mem`` instance (``hdl/ff_ext_act_mem.v``,
        the board's DRAM controller adapter, supplied by the user) holds the activations.
    floorplan : bool
        ECP5: place the memories' block RAMs by :mod:`fireforge.hw.board.floorplan` (``BEL`` attributes), for
        devices it has a site table of (``self.floorplan`` says whether it applies); False leaves them to nextpnr.

    Members
    -------
    variant : BuildVariant
        How the engine is built on this board's family (:meth:`BuildVariant.for_family`).
    memory_cells : dict
        ECP5: the Verilog modules of the generated DP16KD memories (:mod:`fireforge.hw.board.ecp5_memory`), written
        beside the top by :func:`~fireforge.hw.board.generate.board_generate`; empty elsewhere.
    clock : dict
        :func:`~fireforge.hw.board.clocks.clock_plan`'s answer.
    """

    def __init__(self, config: EngineConfig, board: Board | str, *, clock_mhz: float | None = None,
                 baud: int = DEFAULT_BAUD, act_memory: str = BuildVariant.act_memory, floorplan: bool = True):

        self.config = config
        self.board = get_board(board)
        self.variant = BuildVariant.for_family(self.board.family, act_memory)
        self.memory_cells = dict(MEMORY_CELLS) if self.board.family == "ecp5" else {}
        if act_memory == "external":
            self.memory_cells.pop("act", None)
        self.clock = clock_plan(self.board, clock_mhz)
        self.baud = baud
        self.act_memory = act_memory
        self.floorplan = floorplan and bool(self.memory_cells) and self.board.device in FLOORPLAN_DEVICES

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.clk_buf = clk_in = io.Buffer("i", platform.request(platform.default_clk, 0, dir="-"))
        locked = add_clock(m, self.clock, clk_in.i)
        add_reset(m, platform, ~locked, self.board.family)
        core = self._add_core(m)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(uart_rx.i), uart_tx.o.eq(core.tx)]
        self._add_leds(m, platform, (core.busy, core.done, self._heartbeat(m), locked))
        return m

    def _add_core(self, m):
        """The engine behind the host link (and, for external activations, the DRAM adapter's black box)."""

        cfg, clk = self.config, self.clock
        m.submodules.core = core = LinkedTop(cfg, self.variant, clk_hz=int(clk["mhz"] * 1e6), baud=self.baud,
                                             memory_cells=self.memory_cells)
        if self.variant.external:

            # the board's DRAM adapter (hdl/ff_ext_act_mem.v) on the core's activation-memory port
            m.submodules.act_mem = act_mem = ActMemoryInstance(
                cell="ff_ext_act_mem", width=cfg.act_word_bits, depth=cfg.act_depth, latency=None, dump=False,
                reset=True)
            wiring.connect(m, core.mem, act_mem.port)
        return core

    def _heartbeat(self, m) -> Signal:
        half_period = max(2, int(self.clock["mhz"] * 1e6) // 3)
        beat = Signal(range(half_period))
        heartbeat = Signal()
        with m.If(beat == 0):
            m.d.sync += [beat.eq(half_period - 1), heartbeat.eq(~heartbeat)]
        with m.Else():
            m.d.sync += beat.eq(beat - 1)
        return heartbeat

    @staticmethod
    def _add_leds(m, platform, signals) -> None:
        for i, sig in enumerate(signals):
            try:
                led = platform.request("led", i, dir="-")
            except ResourceError:       # fewer LEDs on this board
                break
            m.submodules[f"led{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(sig)
