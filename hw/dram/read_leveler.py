"""DDR3 read leveling on LiteDRAM's ``wb_ctrl``, in hardware (no CPU): what LiteX's BIOS does in
``sdram_read_leveling`` (liblitedram/sdram.c), for 7-series PHYs whose DFI phase word is one CSR word (the Arty's
A7DDRPHY: 16 data bits, two byte lanes).

Each byte lane (module) has a read bitslip (0..``bitslips``-1) and an IDELAY tap (0..``delays``-1). A *test* writes
the BIOS's pseudo-random pattern for a seed to bank 0 / row 0 through the DFII (activate, write on the write phase,
read on the read phase, precharge) and reads the four phase words back; a tap passes when none of the lane's bits
differ for any seed. The lanes are scanned together (``dly_sel`` selects all; every strobe acts per lane):

1. every bitslip, every tap: the bitslip kept per lane has the most passing taps, then the fewest bit errors, then
   the lowest number (the BIOS's score);
2. each lane on its bitslip, every tap again: the delay is the middle of the longest run of passing taps, the first
   run counted only from two passing taps in a row (the BIOS's centring);
3. the settings tested once more: any error, or a lane without a passing run, raises ``error``.

Design notes and the CSR semantics: docs/ddr3-leveling.md; measured: docs/boards.md ("DDR3 read leveling").
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from fireforge.hw.dram.init_sequencer import WishboneMaster

__all__ = ["DramReadLeveler", "bios_pattern", "lane_mask", "LEVELING_SEEDS"]

#: the BIOS's three test seeds (``run_test_pattern``)
LEVELING_SEEDS = (42, 84, 36)
#: DFII command flags: ACTIVATE, WRITE, READ, PRECHARGE (CS, WE, CAS, RAS, WRDATA, RDDATA bits)
_ACT, _WRITE, _READ, _PRECHARGE = 0x09, 0x17, 0x25, 0x0B
#: cycles after each DFII command, as the BIOS's ``cdelay(15)``
_SETTLE = 15


def bios_pattern(seed: int, phases: int, phase_bytes: int) -> list[int]:
    """The BIOS's test words for ``seed``: per phase, ``phase_bytes`` bytes of a 32-bit Galois LFSR (taps
    0x80200003), eight steps per byte, the first byte the word's most significant (LiteX CSRs are big-endian)."""
    prv, words = seed, []
    for _ in range(phases):
        octets = []
        for _ in range(phase_bytes):
            value = 0
            for bit in range(8):
                prv = (prv >> 1) ^ (0x80200003 if prv & 1 else 0)
                value |= (prv & 1) << bit
            octets.append(value)
        words.append(int.from_bytes(bytes(octets), "big"))
    return words


def lane_mask(module: int, databits: int) -> int:
    """Lane ``module``'s bits in a phase word: its byte in the rising-edge beat (low half) and the falling one."""
    return (0xFF << (8 * module)) | (0xFF << (databits + 8 * module))


class DramReadLeveler(wiring.Component):
    """Parameters
    ----------
    csr : dict
        The core's CSR byte addresses by name (``BoardCore.csr``): ``ddrphy_dly_sel``, ``ddrphy_rdly_dq_rst`` /
        ``_inc`` / ``_bitslip_rst`` / ``_bitslip``, ``sdram_dfii_pi{p}_command`` / ``_command_issue`` /
        ``_address`` / ``_baddress`` / ``_wrdata`` / ``_rddata``.
    phases, rdphase, wrphase, modules, databits : int
        The PHY's (``sdram_phy.h``): DFI phases, the read and write command phases, byte lanes, DRAM data bits;
        a phase word (2 × ``databits``) must fit one CSR word.
    delays, bitslips : int
        IDELAY taps and read bitslips per lane (32 and 8 on 7-series).
    seeds : tuple of int
        The test patterns' seeds (default :data:`LEVELING_SEEDS`).
    timeout : int
        Cycles a bus access may wait for ``ack`` before ``error``.

    Members
    -------
    bus : Out(WishboneMaster)
        To ``wb_ctrl``; the leveler starts out of reset, with the DFII under software control.
    done, error : Out(1)
        Sticky; ``done`` only when every lane has a tested setting.
    bitslip, delay : Out(ArrayLayout)
        Per lane, the settings chosen (valid with ``done``).
    """

    def __init__(self, *, csr: dict, phases: int, rdphase: int, wrphase: int, modules: int, databits: int,
                 delays: int = 32, bitslips: int = 8, seeds=LEVELING_SEEDS, addr_width: int = 30,
                 timeout: int = 1024):
        if 2 * databits > 32:
            raise ValueError(f"a DFI phase word of {2 * databits} bits spans several CSR words; only one is "
                             f"supported (the Arty's A7DDRPHY)")
        if modules * 8 != databits or not 0 <= rdphase < phases or not 0 <= wrphase < phases:
            raise ValueError(f"inconsistent PHY: {modules} modules, {databits} data bits, phases {phases} "
                             f"(read {rdphase}, write {wrphase})")
        names = ["ddrphy_dly_sel", "ddrphy_rdly_dq_rst", "ddrphy_rdly_dq_inc", "ddrphy_rdly_dq_bitslip_rst",
                 "ddrphy_rdly_dq_bitslip"] + [f"sdram_dfii_pi{p}_{r}" for p in range(phases)
                                              for r in ("command", "command_issue", "address", "baddress",
                                                        "wrdata", "rddata")]
        missing = [n for n in names if n not in csr]
        if missing:
            raise ValueError(f"the core has no CSR {missing[0]} (not a read-leveling PHY?)")
        self.csr, self.phases, self.rdphase, self.wrphase = csr, phases, rdphase, wrphase
        self.modules, self.databits, self.delays, self.bitslips = modules, databits, delays, bitslips
        self.seeds, self.timeout = tuple(seeds), timeout
        self.patterns = [bios_pattern(s, phases, 2 * databits // 8) for s in self.seeds]
        super().__init__({"bus": Out(WishboneMaster(addr_width=addr_width)), "done": Out(1), "error": Out(1),
                          "bitslip": Out(data.ArrayLayout(range(bitslips), modules)),
                          "delay": Out(data.ArrayLayout(range(delays), modules))})

    def elaborate(self, platform):
        m = Module()
        r = self._registers()
        m.d.comb += [self.bus.sel.eq(0xF), self.bus.stb.eq(self.bus.cyc), self.bus.cti.eq(0), self.bus.bte.eq(0)]
        with m.FSM():
            # (the first state is the FSM's reset state)
            self._chain(m, r, "select-all", [("ddrphy_dly_sel", r.all_lanes, False),
                                             ("ddrphy_rdly_dq_bitslip_rst", 0, False)], "DELAY-RESET")
            self._scan_states(m, r)
            # each lane to its bitslip, then a rescan of the taps with all lanes selected
            self._per_lane(m, r, "apply", "ddrphy_rdly_dq_bitslip_rst", "ddrphy_rdly_dq_bitslip", self.bitslip,
                           "rescan-0")
            self._chain(m, r, "rescan", [("ddrphy_dly_sel", r.all_lanes, False)], "RESCAN")
            with m.State("RESCAN"):
                m.d.sync += r.mode.eq(1)
                m.next = "DELAY-RESET"
            self._window_states(m, r)
            # each lane's delay, then one more test of all lanes
            self._per_lane(m, r, "set", "ddrphy_rdly_dq_rst", "ddrphy_rdly_dq_inc", self.delay, "verify-0")
            self._chain(m, r, "verify", [("ddrphy_dly_sel", r.all_lanes, False)], "VERIFY")
            with m.State("VERIFY"):
                m.d.sync += r.mode.eq(2)
                m.next = "TAP"
            self._chain(m, r, "finish", [("ddrphy_dly_sel", 0, False)], "DONE")
            with m.State("DONE"):
                m.d.sync += self.done.eq(1)
            with m.State("STOP"):
                pass
        return m

    def _registers(self) -> SimpleNamespace:
        lanes, tests = range(self.modules), len(self.seeds) * self.phases
        r = SimpleNamespace(lanes=lanes, all_lanes=(1 << self.modules) - 1,
                            count=Signal(range(max(self.timeout, _SETTLE) + 1)),
                            seed=Signal(range(len(self.seeds) + 1)), tap=Signal(range(self.delays + 1)),
                            slip=Signal(range(self.bitslips + 1)),
                            steps=Signal(range(max(self.delays, self.bitslips) + 1)),   # strobes left for a lane
                            mode=Signal(2),                                             # 0 scan, 1 rescan, 2 verify
                            patterns=Array(Array(Const(w, 32) for w in words) for words in self.patterns))
        r.tap_err = [Signal(range(32 * tests + 1), name=f"tap_err{k}") for k in lanes]
        r.passes = [Signal(self.delays, name=f"passes{k}") for k in lanes]
        r.n_pass = [Signal(range(self.delays + 1), name=f"n_pass{k}") for k in lanes]
        r.errors = [Signal(range(32 * tests * self.delays + 1), name=f"errors{k}") for k in lanes]
        r.best_n = [Signal.like(r.n_pass[k], name=f"best_n{k}") for k in lanes]
        r.best_err = [Signal.like(r.errors[k], name=f"best_err{k}", init=(1 << len(r.errors[k])) - 1) for k in lanes]
        return r

    def _access(self, m, r, state, address, value, after, *, read=None, on_ack=None, settle=False):
        """A state putting one Wishbone access on the bus (a read if ``read``, called with the word), then
        ``after`` (a wait state first if ``settle``); ``on_ack()`` adds statements to the acknowledged cycle."""
        bus = self.bus
        nxt = f"{state}-settle" if settle else after
        with m.State(state):
            m.d.comb += [bus.cyc.eq(1), bus.we.eq(read is None), bus.adr.eq(self.csr[address] >> 2),
                         bus.dat_w.eq(value)]
            m.d.sync += r.count.eq(r.count + 1)
            with m.If(bus.err | (~bus.ack & (r.count == self.timeout - 1))):
                m.d.sync += self.error.eq(1)
                m.next = "STOP"
            with m.Elif(bus.ack):
                m.d.sync += r.count.eq(0)
                if read is not None:
                    read(bus.dat_r)
                if on_ack is not None:
                    on_ack()
                m.next = nxt
        if settle:
            with m.State(nxt):
                m.d.sync += r.count.eq(r.count + 1)
                with m.If(r.count == _SETTLE - 1):
                    m.d.sync += r.count.eq(0)
                    m.next = after

    def _chain(self, m, r, name, ops, after):
        """``ops`` (address, value, settle) as consecutive access states ``name-0`` … then ``after``."""
        for i, (address, value, settle) in enumerate(ops):
            self._access(m, r, f"{name}-{i}", address, value, f"{name}-{i + 1}" if i + 1 < len(ops) else after,
                         settle=settle)

    def _test_states(self, m, r):
        """``TEST-0`` …: the seed's pattern written and read back (activate, write, read, precharge, the four
        ``rddata`` words), each lane's wrong bits added to ``tap_err``; then ``SEED-DONE``."""
        def command(phase, flags):
            pi = f"sdram_dfii_pi{phase}"
            return [(f"{pi}_address", 0, False), (f"{pi}_baddress", 0, False), (f"{pi}_command", flags, False),
                    (f"{pi}_command_issue", 1, True)]

        def compare(phase):
            def read(word):
                diff = word ^ r.patterns[r.seed][phase]
                for k in r.lanes:
                    bits = diff & lane_mask(k, self.databits)
                    m.d.sync += r.tap_err[k].eq(r.tap_err[k] + sum(bits[i] for i in range(32)))
            return read

        test = (command(0, _ACT) + [(f"sdram_dfii_pi{p}_wrdata", r.patterns[r.seed][p], False)
                                    for p in range(self.phases)]
                + command(self.wrphase, _WRITE) + command(self.rdphase, _READ) + command(0, _PRECHARGE))
        self._chain(m, r, "TEST", test, "CHECK-0")
        for p in range(self.phases):
            self._access(m, r, f"CHECK-{p}", f"sdram_dfii_pi{p}_rddata", 0,
                         f"CHECK-{p + 1}" if p + 1 < self.phases else "SEED-DONE", read=compare(p))

    def _scan_states(self, m, r):
        """Every tap at the current bitslips: ``DELAY-RESET`` … ``SCAN-DONE`` (mode scan: every bitslip in turn, the
        best kept per lane; rescan: on to ``WINDOW``); or, from ``TAP`` in mode verify, one test of the settings."""
        self._access(m, r, "DELAY-RESET", "ddrphy_rdly_dq_rst", 0, "TAP")
        with m.State("TAP"):
            m.d.sync += [r.seed.eq(0)] + [e.eq(0) for e in r.tap_err]
            m.next = "TEST-0"
        self._test_states(m, r)
        with m.State("SEED-DONE"):
            with m.If(r.seed == len(self.seeds) - 1):
                m.next = "TAP-DONE"
            with m.Else():
                m.d.sync += r.seed.eq(r.seed + 1)
                m.next = "TEST-0"
        with m.State("TAP-DONE"):
            ok = [r.tap_err[k] == 0 for k in r.lanes]
            with m.If(r.mode == 2):
                with m.If(Cat(*ok).all()):
                    m.next = "finish-0"
                with m.Else():
                    m.d.sync += self.error.eq(1)
                    m.next = "STOP"
            with m.Else():
                for k in r.lanes:
                    m.d.sync += [r.passes[k].bit_select(r.tap, 1).eq(ok[k]), r.n_pass[k].eq(r.n_pass[k] + ok[k]),
                                 r.errors[k].eq(r.errors[k] + r.tap_err[k])]
                m.next = "DELAY-INC"
        self._access(m, r, "DELAY-INC", "ddrphy_rdly_dq_inc", 0, "NEXT-TAP")
        with m.State("NEXT-TAP"):
            with m.If(r.tap == self.delays - 1):
                m.d.sync += r.tap.eq(0)
                m.next = "SCAN-DONE"
            with m.Else():
                m.d.sync += r.tap.eq(r.tap + 1)
                m.next = "TAP"
        with m.State("SCAN-DONE"):
            m.d.sync += [x.eq(0) for x in r.n_pass + r.errors]
            with m.If(r.mode == 0):
                for k in r.lanes:
                    better = (r.n_pass[k] > r.best_n[k]) | ((r.n_pass[k] == r.best_n[k])
                                                            & (r.errors[k] < r.best_err[k]))
                    with m.If(better):
                        m.d.sync += [r.best_n[k].eq(r.n_pass[k]), r.best_err[k].eq(r.errors[k]),
                                     self.bitslip[k].eq(r.slip)]
                m.next = "BITSLIP"
            with m.Else():
                m.next = "WINDOW"
        self._access(m, r, "BITSLIP", "ddrphy_rdly_dq_bitslip", 0, "NEXT-BITSLIP")
        with m.State("NEXT-BITSLIP"):
            with m.If(r.slip == self.bitslips - 1):
                m.next = "apply-0-select"
            with m.Else():
                m.d.sync += r.slip.eq(r.slip + 1)
                m.next = "DELAY-RESET"

    def _window_states(self, m, r):
        """``WINDOW``: the longest run of passing taps, a tap a cycle for every lane at once (a run counts from two
        passing taps in a row); ``CENTRE``: its middle as the lane's delay, or ``error`` for a lane without one."""
        lanes = r.lanes
        run_len = [Signal(range(self.delays + 1), name=f"run_len{k}") for k in lanes]
        run_start = [Signal(range(self.delays), name=f"run_start{k}") for k in lanes]
        best_len = [Signal(range(self.delays + 1), name=f"best_len{k}") for k in lanes]
        best_start = [Signal(range(self.delays), name=f"best_start{k}") for k in lanes]
        armed = [Signal(name=f"armed{k}") for k in lanes]
        with m.State("WINDOW"):
            for k in lanes:
                here = r.passes[k].bit_select(r.tap, 1)
                after = Cat(r.passes[k], Const(0, 1)).bit_select(r.tap + 1, 1)
                length = Signal.like(run_len[k], name=f"length{k}")
                first = Signal.like(run_start[k], name=f"first{k}")
                m.d.comb += [length.eq(Mux(here, run_len[k] + 1, 0)),
                             first.eq(Mux(run_len[k] == 0, r.tap, run_start[k]))]
                m.d.sync += [run_len[k].eq(length), run_start[k].eq(first), armed[k].eq(armed[k] | (here & after))]
                with m.If((armed[k] | (here & after)) & here & (length > best_len[k])):
                    m.d.sync += [best_len[k].eq(length), best_start[k].eq(first)]
            with m.If(r.tap == self.delays - 1):
                m.next = "CENTRE"
            with m.Else():
                m.d.sync += r.tap.eq(r.tap + 1)
        with m.State("CENTRE"):
            m.d.sync += r.tap.eq(0)
            with m.If(Cat(*(b == 0 for b in best_len)).any()):
                m.d.sync += self.error.eq(1)
                m.next = "STOP"
            with m.Else():
                for k in lanes:
                    m.d.sync += self.delay[k].eq(best_start[k] + ((best_len[k] - 1) >> 1))
                m.next = "set-0-select"

    def _per_lane(self, m, r, name, reset, strobe, target, after):
        """For each lane: select it, ``reset``, then ``target[lane]`` ``strobe`` writes; then ``after``."""
        for k in range(self.modules):
            state = f"{name}-{k}"
            nxt = f"{name}-{k + 1}-select" if k + 1 < self.modules else after
            self._access(m, r, f"{state}-select", "ddrphy_dly_sel", 1 << k, f"{state}-reset")
            self._access(m, r, f"{state}-reset", reset, 0, f"{state}-load")
            with m.State(f"{state}-load"):
                m.d.sync += r.steps.eq(target[k])
                m.next = f"{state}-count"
            with m.State(f"{state}-count"):
                with m.If(r.steps == 0):
                    m.next = nxt
                with m.Else():
                    m.next = f"{state}-strobe"

            def one_less():
                m.d.sync += r.steps.eq(r.steps - 1)
            self._access(m, r, f"{state}-strobe", strobe, 0, f"{state}-count", on_ack=one_less)
