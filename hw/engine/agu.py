"""The address generator (AGU): one layer's loop nest, one tap per cycle, and its Python twin.

The loop nest (see :mod:`fireforge.core.descriptor`)::

    for og < og_count: for oy < out_h: for ox < out_w: for ky < kernel_h: for kx < kernel_w: for ig < g_count

reads activation word ``win_addr0 (+ og if depthwise) + oy·row_step + ox·pix_step + ky·ky_step +
kx·kx_step + ig`` (a padding tap, outside the map, reads nothing), weight word ``weight_addr + og·taps +
(ky·kernel_w + kx)·g_count + ig``, and the last tap of every output pixel writes ``out_addr + og +
(oy·out_w + ox)·out_pitch``. :func:`ref_agu` is that nest in Python; :class:`AddressGenerator` the hardware,
which only adds (every step is precomputed in the descriptor) and leaves the output groups' pacing to the
sequencer (:class:`~fireforge.hw.engine.sequencer.Sequencer`, through :class:`AguControl`).
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.descriptor import DESCRIPTOR
from fireforge.hw.engine.ports import OUT_ADDR_BITS, TAP_META, W_ADDR_BITS

__all__ = ["AddressGenerator", "AguControl", "tap_request", "ref_agu", "Tap", "AddressStreams", "ADDR_BITS"]

#: signed internal address width (descriptor addresses are ≤ 26 bits)
ADDR_BITS = 27
_COORD = signed(14)


def tap_request(addr_bits: int) -> data.StructLayout:
    """One tap as the AGU offers it: the activation word to read (unless ``pad``), the weight word, and the
    tap's :data:`TAP_META`."""
    return data.StructLayout({"addr": addr_bits, "pad": 1, "w_addr": W_ADDR_BITS, "meta": TAP_META})


class AguControl(wiring.Signature):
    """The sequencer's commands to the AGU, seen from the sequencer.

    Members
    -------
    load : Out(1)
        A new descriptor is in ``desc``: take its loop bounds, start at output group 0.
    group : Out(1)
        Set the loops up for output group ``og`` (the previous group has left the pipeline).
    run : Out(1)
        Start issuing the group's taps.
    finished : In(1)
        The group's last tap was issued the cycle before (a register: see :meth:`AddressGenerator._credit`).
    og : In(10)
        The current output group.
    last_group : In(1)
        ``og`` is the layer's last output group.
    drained : In(1)
        No result is in flight (every issued output has been retired).
    """

    def __init__(self):
        super().__init__({"load": Out(1), "group": Out(1), "run": Out(1), "finished": In(1), "og": In(10),
                          "last_group": In(1), "drained": In(1)})


class AddressGenerator(wiring.Component):
    """Parameters
    ----------
    addr_bits : int
        Activation address bits (the read request's ``addr`` is the internal address truncated to them).
    read_depth : int
        Reads the tap FIFO holds: a tap is issued only when it will fit (decided a cycle ahead from
        ``tap_level``), so the tap stream's ``ready`` is the memory's read ``ready``, never the FIFO's.
    write_depth : int
        Results allowed in flight (issued, not yet retired): what the write queue holds.

    Members
    -------
    desc : In(DESCRIPTOR)
        The current layer's descriptor (held for the whole layer).
    control : In(AguControl)
    taps : Out(stream.Signature(tap_request(addr_bits)))
        One tap per cycle while ``ready``; ``valid`` comes from a register (see :attr:`latency`).
    tap_level : In(range(read_depth + 1))
        Taps in the tap FIFO.
    retire : In(range(3))
        Results that left the engine this cycle (a word written, a word a fused pool absorbed).
    """

    #: cycles from ``run`` to the first tap offered (the ``go`` register)
    latency = 1

    def __init__(self, *, addr_bits: int, read_depth: int, write_depth: int):
        if read_depth < 4:
            raise ValueError(f"read_depth must be at least 4 (the AGU keeps one tap FIFO slot spare), not {read_depth}")
        if write_depth < 2:
            raise ValueError(f"write_depth must be at least 2, not {write_depth}")
        self.read_depth, self.write_depth = read_depth, write_depth
        super().__init__({
            "desc": In(DESCRIPTOR), "control": In(AguControl()),
            "taps": Out(stream.Signature(tap_request(addr_bits))),
            "tap_level": In(range(read_depth + 1)), "retire": In(range(3)),
        })

    def elaborate(self, platform):
        m = Module()
        desc, ctl = self.desc, self.control
        s = _AguState()
        fire = Signal()
        tap_last, pad = Signal(), Signal()
        m.d.comb += [
            tap_last.eq(s.last["g"] & s.last["kw"] & s.last["kh"]),
            pad.eq(desc.pad_en & ((s.iy < 0) | (s.iy >= desc.in_h) | (s.ix < 0) | (s.ix >= desc.in_w))),
        ]
        self._credit(m, s, fire, tap_last)
        m.d.comb += [self.taps.p.addr.eq(s.addr), self.taps.p.pad.eq(pad), self.taps.p.w_addr.eq(s.w_ptr),
                     self.taps.p.meta.first.eq(s.tap_first), self.taps.p.meta.last.eq(tap_last),
                     self.taps.p.meta.out_addr.eq(s.out_ptr)]
        with m.If(fire):
            self._advance(m, s)
        self._groups(m, s)      # after the loop steps: a command wins (they never meet: no tap fires then)
        return m

    def _credit(self, m, s, fire, tap_last):
        """``go`` (the AGU advances this cycle) and the results-in-flight count.

        ``go`` is a register, decided a cycle ahead from conservative bounds (the tap FIFO's level and the
        results in flight as if nothing left them this cycle), because ``fire`` steers every AGU register
        (~260 flip-flops): as a combinational AND of the FIFO level, the credit compare and the FSM state it
        was the 64-MAC ULX3S critical path (66.6 MHz: 6.6 ns of its 15 ns were the fan-out route). With
        on-chip RAM (``ready`` constant 1) ``fire`` is ``go`` itself. A padding tap waits for ``ready`` as a
        read would: ``pad`` (four compares) stays off the path that steers the AGU.
        """
        ctl = self.control
        go, run = Signal(), Signal()        # run: taps of the group left
        inflight = Signal(range(self.write_depth + 1))
        issue = Signal()
        # ``drained`` is ``inflight == 0`` as a register, computed from the count's next value: the compare in
        # front of the sequencer's decisions (which steer every AGU register) was the routed 64-MAC ULX3S
        # critical path's head (91.45 MHz at the worst of three nextpnr seeds).
        drained, inflight_next = Signal(init=1), Signal.like(inflight)
        # ``finished`` a cycle after the group's last tap, from a register: it steps ``og`` (~35 flip-flops) and
        # the sequencer, and as ``fire`` (the read port's ready, across the die) ANDed with the loops' flags it
        # was the ULX3S DRAM engine's critical path (``go`` → ``fire`` → ``og``'s enable, 76.06 MHz). Nothing
        # waits for it: the sequencer's next step waits for ``drained``, and the last tap's result is in flight
        group_end = Signal()
        m.d.comb += [self.taps.valid.eq(go), fire.eq(go & self.taps.ready), issue.eq(fire & tap_last),
                     group_end.eq(issue & s.last["ox"] & s.last["oy"]),
                     inflight_next.eq(inflight + issue - self.retire), ctl.drained.eq(drained)]
        m.d.sync += [inflight.eq(inflight_next), drained.eq(inflight_next == 0), ctl.finished.eq(group_end)]
        run_next = Signal()
        m.d.comb += run_next.eq(ctl.run | (run & ~group_end))
        # next cycle the tap FIFO has room if it would even with no tap leaving now: level + fire ≤ depth − 2
        # (the FIFO's inner store holds depth − 1 and its w_rdy is inner level ≠ depth − 1 ≤ level); the last
        # tap of an output needs fewer than write_depth − 1 results in flight (checked for every tap: the
        # bound is far above the pipeline's ~40 results, so this costs nothing)
        m.d.sync += [run.eq(run_next),
                     go.eq(run_next & (self.tap_level + fire <= self.read_depth - 2)
                           & (inflight + issue < self.write_depth - 1))]

    def _groups(self, m, s):
        """``load``: the layer's bounds (minus one) and output group 0; ``group``: the loops restarted for
        output group ``og``; ``finished`` (the cycle after the group's last tap) moves to the next group."""
        desc, ctl = self.desc, self.control
        # ``og_last`` (``og == og_max``) a register set as ``og`` moves, as the loops' ``last`` flags are: the
        # compare in front of the sequencer's decisions and ``og``'s enable was the ULX3S DRAM engine's critical
        # path (77.45 MHz, seed 1: 11.19 ns of routing over 6 nets)
        m.d.comb += [ctl.og.eq(s.og), ctl.last_group.eq(s.og_last)]
        with m.If(ctl.load):
            m.d.sync += [s.og.eq(0), s.og_wbase.eq(desc.weight_addr), s.og_max.eq(desc.og_count - 1),
                         s.og_last.eq((desc.og_count - 1)[:len(s.og)] == 0),
                         *(s.bound[k].eq(f - 1) for k, f in (("g", desc.g_count), ("kw", desc.kernel_w),
                                                             ("kh", desc.kernel_h), ("ox", desc.out_w),
                                                             ("oy", desc.out_h)))]
        with m.If(ctl.group):
            base = Signal(signed(ADDR_BITS))
            m.d.comb += base.eq(desc.win_addr0 + Mux(desc.depthwise, s.og, 0))
            m.d.sync += [*(s.restart(k) for k in ("oy", "ox", "kh", "kw", "g")), s.tap_first.eq(1),
                         s.row_addr.eq(base), s.pix_addr.eq(base), s.ky_addr.eq(base), s.kx_addr.eq(base),
                         s.addr.eq(base),
                         s.iy0.eq(-desc.pad_t), s.ix0.eq(-desc.pad_l), s.iy.eq(-desc.pad_t), s.ix.eq(-desc.pad_l),
                         s.w_ptr.eq(s.og_wbase), s.out_ptr.eq(desc.out_addr + s.og)]
        with m.If(ctl.finished & ~s.og_last):
            m.d.sync += [s.og.eq(s.og + 1), s.og_wbase.eq(s.og_wbase + desc.taps),
                         s.og_last.eq((s.og + 1)[:len(s.og)] == s.og_max)]

    def _advance(self, m, s):
        """One tap issued: the innermost loop that is not at its last value steps, the ones inside it
        restart, and every address is the sum of its parent's and a descriptor step."""
        desc = self.desc
        with m.If(~s.last["g"]):
            m.d.sync += [*s.step("g"), s.addr.eq(s.addr + 1), s.w_ptr.eq(s.w_ptr + 1), s.tap_first.eq(0)]
        with m.Elif(~s.last["kw"]):
            m.d.sync += [*s.restart("g"), *s.step("kw"), s.kx_addr.eq(s.kx_addr + desc.kx_step), s.tap_first.eq(0),
                         s.addr.eq(s.kx_addr + desc.kx_step), s.ix.eq(s.ix + 1), s.w_ptr.eq(s.w_ptr + 1)]
        with m.Elif(~s.last["kh"]):
            m.d.sync += [*s.restart("g"), *s.restart("kw"), *s.step("kh"),
                         s.ky_addr.eq(s.ky_addr + desc.ky_step), s.tap_first.eq(0),
                         s.kx_addr.eq(s.ky_addr + desc.ky_step), s.addr.eq(s.ky_addr + desc.ky_step),
                         s.iy.eq(s.iy + 1), s.ix.eq(s.ix0), s.w_ptr.eq(s.w_ptr + 1)]
        with m.Else():
            m.d.sync += [*s.restart("g"), *s.restart("kw"), *s.restart("kh"), s.tap_first.eq(1),
                         s.w_ptr.eq(s.og_wbase), s.out_ptr.eq(s.out_ptr + desc.out_pitch)]
            with m.If(~s.last["ox"]):
                nxt = s.pix_addr + desc.pix_step
                m.d.sync += [*s.step("ox"), s.pix_addr.eq(nxt), s.ky_addr.eq(nxt), s.kx_addr.eq(nxt),
                             s.addr.eq(nxt), s.ix0.eq(s.ix0 + desc.stride_w), s.ix.eq(s.ix0 + desc.stride_w),
                             s.iy.eq(s.iy0)]
            with m.Elif(~s.last["oy"]):
                nxt = s.row_addr + desc.row_step
                m.d.sync += [*s.restart("ox"), *s.step("oy"), s.row_addr.eq(nxt), s.pix_addr.eq(nxt),
                             s.ky_addr.eq(nxt), s.kx_addr.eq(nxt), s.addr.eq(nxt),
                             s.iy0.eq(s.iy0 + desc.stride_h), s.iy.eq(s.iy0 + desc.stride_h),
                             s.ix0.eq(-desc.pad_l), s.ix.eq(-desc.pad_l)]


class _AguState:
    """The AGU's registers. Loop bounds are stored minus one (at ``load``); each loop's ``last`` flag is a
    register too, set as its counter moves (``counter + 1 == bound``, or ``bound == 0`` when it restarts):
    ``fire`` steers every AGU register, and with the flags as compares of counters against bounds (then the
    padding compares) in front of it, that was the 64-MAC ULX3S critical path (64 MHz)."""

    _WIDTHS = {"g": 10, "kw": 12, "kh": 12, "ox": 12, "oy": 12}
    _NAMES = {"g": ("ig", "g_max", "g_last"), "kw": ("kx", "kw_max", "kw_last"), "kh": ("ky", "kh_max", "kh_last"),
              "ox": ("ox", "ow_max", "ox_last"), "oy": ("oy", "oh_max", "oy_last")}

    def __init__(self):
        self.count = {k: Signal(w, name=self._NAMES[k][0]) for k, w in self._WIDTHS.items()}
        self.bound = {k: Signal(w, name=self._NAMES[k][1]) for k, w in self._WIDTHS.items()}
        self.last = {k: Signal(name=self._NAMES[k][2]) for k in self._WIDTHS}
        self.og, self.og_max = Signal(10, name="og"), Signal(10, name="og_max")
        self.og_last = Signal(name="og_last", init=1)      # og == og_max (both 0 at reset)
        self.og_wbase = Signal(W_ADDR_BITS, name="og_wbase")
        for n in ("row_addr", "pix_addr", "ky_addr", "kx_addr", "addr"):
            setattr(self, n, Signal(signed(ADDR_BITS), name=n))
        for n in ("iy0", "ix0", "iy", "ix"):
            setattr(self, n, Signal(_COORD, name=n))
        self.w_ptr = Signal(W_ADDR_BITS, name="w_ptr")
        self.out_ptr = Signal(OUT_ADDR_BITS, name="out_ptr")
        self.tap_first = Signal(name="tap_first")

    def restart(self, k):
        return [self.count[k].eq(0), self.last[k].eq(self.bound[k] == 0)]

    def step(self, k):
        return [self.count[k].eq(self.count[k] + 1), self.last[k].eq(self.count[k] + 1 == self.bound[k])]


# ---------------------------------------------------------------------------------------------------------
# The twin
# ---------------------------------------------------------------------------------------------------------

class Tap(NamedTuple):
    addr: int | None        # activation word read; None: a padding tap
    w_addr: int
    first: bool
    last: bool
    out_addr: int


class AddressStreams(NamedTuple):
    taps: list[Tap]

    @property
    def reads(self) -> list[int]:
        """The read address stream: every non-padding tap's activation word, in order."""
        return [t.addr for t in self.taps if t.addr is not None]

    @property
    def writes(self) -> list[int]:
        """The write address stream: one destination word per output pixel and group, in order."""
        return [t.out_addr for t in self.taps if t.last]


def ref_agu(desc: dict, addr_bits: int = ADDR_BITS) -> AddressStreams:
    """The taps the AGU issues for one descriptor (``fireforge.core.descriptor.unpack``'s fields), in order:
    the loop nest of the module docstring in plain Python, with the hardware's register widths (addresses
    modulo ``2**addr_bits``, weight and output addresses modulo ``2**24``)."""
    d = desc
    amask, wmask = (1 << addr_bits) - 1, (1 << W_ADDR_BITS) - 1
    omask = (1 << OUT_ADDR_BITS) - 1
    g_count, kw, kh = d["g_count"], d["kernel_w"], d["kernel_h"]
    taps = []
    for og in range(d["og_count"]):
        base = d["win_addr0"] + (og if d["depthwise"] else 0)
        w_base = d["weight_addr"] + og * d["taps"]
        for oy in range(d["out_h"]):
            for ox in range(d["out_w"]):
                out = d["out_addr"] + og + (oy * d["out_w"] + ox) * d["out_pitch"]
                pixel = base + oy * d["row_step"] + ox * d["pix_step"]
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * d["stride_h"] - d["pad_t"] + ky, ox * d["stride_w"] - d["pad_l"] + kx
                        pad = bool(d["pad_en"]) and not (0 <= iy < d["in_h"] and 0 <= ix < d["in_w"])
                        for ig in range(g_count):
                            tap = (ky * kw + kx) * g_count + ig
                            addr = pixel + ky * d["ky_step"] + kx * d["kx_step"] + ig
                            taps.append(Tap(None if pad else addr & amask, (w_base + tap) & wmask, tap == 0,
                                            tap == kh * kw * g_count - 1, out & omask))
    return AddressStreams(taps)
