"""The pool stage: a max pool fused into the output path of the layer that produces its input.

Between the lane requantizers and the write queue. With the descriptor's ``pool_en`` off it is a wire (no
latency); with it on, the layer's output words (per output group, in raster order ``oy``, ``ox`` over the
conv's ``out_h`` × ``out_w``) are not written: each is absorbed into the pooled map (``pool_out_h`` ×
``pool_out_w``, kernel ``pool_k`` square, stride ``pool_s``, pads ``pool_pad_t`` / ``pool_pad_l``), and a pooled
word goes to ``out_addr + og + (py·pool_out_w + px)·out_pitch`` when its window's last word has arrived::

    horizontal: the last k − 1 words of the row (two registers) and the window's start column: a word that
                ends window px (its last column, or the row's last: ceil mode) yields the window's max
    vertical:   a line buffer of the last k − 1 rows' horizontal results (two memories of POOL_LINE words,
                a ring: the current row overwrites the oldest as it reads it), so a horizontal result in
                the row that ends window py (its last row, or the map's last) yields the pooled word

Taps outside the map (padding, ceil-mode edges) are masked to 0, which never wins a max (uint8; ONNX pads a
max pool with −inf). Every input word leaves as exactly one of: a pooled word (``o``) or a drop
(:attr:`PoolStage.dropped`), :attr:`latency` cycles later; the engine retires both, so the write credit
stays exact and the write rate only drops. The compiler fuses only pools where every column and row ends
at most one window (:func:`fireforge.core.fusion.fusable`): at most one pooled word per input word.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fireforge.core.descriptor import DESCRIPTOR
from fireforge.core.fusion import MAX_POOL_KERNEL, POOL_LINE, fusable
from fireforge.hw.engine.lanes import write_record
from fireforge.hw.engine.needs import report
from fireforge.hw.engine.ports import OUT_ADDR_BITS, act_word

__all__ = ["PoolStage", "POOL_LINE", "MAX_POOL_KERNEL", "fusable", "ref_pool_stage"]

_COORD = signed(14)


class PoolStage(wiring.Component):
    """Parameters
    ----------
    vector : int
        Lanes.

    Members
    -------
    desc : In(DESCRIPTOR)
        The current layer's descriptor (``pool_*``, ``out_h``, ``out_w``, ``out_addr``, ``out_pitch``).
    restart : In(1)
        A new output group ``og`` starts (the stage is empty: the previous group has drained).
    og : In(10)
    i : In(stream.Signature(write_record(vector), always_ready=True))
        The lanes' output words.
    o : Out(stream.Signature(write_record(vector), always_ready=True))
        ``i`` itself without ``pool_en``; else the pooled words, :attr:`latency` cycles after their last input.
    dropped : Out(1)
        An input word left without a write (``pool_en``), :attr:`latency` cycles after it came.
    """

    #: with ``pool_en``: the word and its window flags, the horizontal max, the line buffers' read, the
    #: previous rows' words, the vertical max
    latency = 5

    def __init__(self, *, vector: int):
        self.vector = vector
        super().__init__({"desc": In(DESCRIPTOR), "restart": In(1), "og": In(10),
                          "i": In(stream.Signature(write_record(vector), always_ready=True)),
                          "o": Out(stream.Signature(write_record(vector), always_ready=True)),
                          "dropped": Out(1)})

    @classmethod
    def needs(cls, *, vector: int) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the two line buffers."""
        return report(memories=[(8 * vector, POOL_LINE)] * 2)

    def elaborate(self, platform):
        m = Module()
        v, d, i = self.vector, self.desc, self.i
        word = act_word(v)
        k, s = d.pool_k, d.pool_s

        def vmax(*pairs):
            """Per lane: the max of the words whose mask is on (0 when none)."""
            out = Signal(word)
            for lane in range(v):
                best = None
                for x, on in pairs:
                    b = Mux(on, x[lane], 0)
                    best = b if best is None else Mux(b > best, b, best)
                m.d.comb += out[lane].eq(best)
            return out

        # -- stage 0: the word's position. Every decision about it is a register, set as the counters move (as
        # the AGU's ``last`` flags are): the last column / row, whether it ends a window (``emit``), whether the
        # words before it are in its window (``in1`` / ``in2``). With compares of counters against the descriptor
        # in front of them, each was a critical path of the ULX3S DRAM engine in turn: ``ox − 1 >= hs`` into the
        # reset of the 64 lanes' masked words (81.5 MHz, seed 3), then ``out_w − 1`` → ``ox ==`` → ``h_emit`` →
        # that compare's next value (69.6 MHz, seed 3) and ``out_h − 1`` → ``emit`` → ``ptr``'s enable (70.5 MHz,
        # seed 1).
        def axis(tag, size, out_size, pad):
            """One axis (``h``: columns, ``v``: rows): the position ``pos``, the window ``win``, its start column /
            row ``start`` and the next one's ``nxt``, positions and windows left, the columns to the window's
            last (unclipped) ``to_end`` and ``to_end + s``; the flags ``last``, ``ok`` (``win < out_size``),
            ``emit``. Returns the registers, the statements of a reload (position 0) and of an advance."""
            r = {n: Signal(w, name=f"pool_{tag}_{n}") for n, w in (
                ("pos", 12), ("win", 12), ("left", 12), ("wins_left", 12), ("start", _COORD), ("nxt", _COORD),
                ("to_end", _COORD), ("to_end_s", _COORD), ("last", 1), ("ok", 1), ("emit", 1))}
            end0, e = k - 1 - pad, r["emit"]

            def reload():
                return [r["pos"].eq(0), r["win"].eq(0), r["left"].eq(size - 1), r["wins_left"].eq(out_size),
                        r["start"].eq(-pad), r["nxt"].eq(s - pad), r["to_end"].eq(end0), r["to_end_s"].eq(end0 + s),
                        r["last"].eq(size == 1), r["ok"].eq(out_size != 0),
                        r["emit"].eq((out_size != 0) & ((end0 == 0) | (size == 1)))]

            def advance():
                last_n = r["left"] == 1
                ok_n = Mux(e, r["wins_left"] != 1, r["ok"])
                at_end_n = Mux(e, r["to_end_s"] == 1, r["to_end"] == 1)
                return [r["pos"].eq(r["pos"] + 1), r["left"].eq(r["left"] - 1), r["last"].eq(last_n),
                        r["ok"].eq(ok_n), r["emit"].eq(ok_n & (at_end_n | last_n)),
                        r["to_end"].eq(Mux(e, r["to_end_s"], r["to_end"]) - 1),
                        r["to_end_s"].eq(Mux(e, r["to_end_s"] + s, r["to_end_s"]) - 1),
                        r["win"].eq(r["win"] + e), r["wins_left"].eq(r["wins_left"] - e),
                        r["start"].eq(Mux(e, r["nxt"], r["start"])), r["nxt"].eq(Mux(e, r["nxt"] + s, r["nxt"]))]
            return r, reload, advance

        col, col_reload, col_advance = axis("h", d.out_w, d.pool_out_w, d.pool_pad_l)
        row, row_reload, row_advance = axis("v", d.out_h, d.pool_out_h, d.pool_pad_t)
        ox, px, hs, hn = col["pos"], col["win"], col["start"], col["nxt"]
        oy, vs = row["pos"], row["start"]
        last_col, last_row, h_emit, v_emit = col["last"], row["last"], col["emit"], row["emit"]
        # whether the word before (in1) / two before (in2) this column is in its window
        in1, in2 = Signal(name="pool_in1"), Signal(name="pool_in2")
        slot = Signal(name="pool_slot")
        ptr = Signal(OUT_ADDR_BITS, name="pool_ptr")
        p1, p2 = Signal(word, name="pool_p1"), Signal(word, name="pool_p2")
        x = i.p.data
        go = Signal()
        m.d.comb += go.eq(i.valid & d.pool_en)
        emit = h_emit & v_emit
        with m.If(go):
            m.d.sync += [p1.eq(x), p2.eq(p1)]
            with m.If(emit):
                m.d.sync += ptr.eq(ptr + d.out_pitch)
            with m.If(last_col):
                m.d.sync += [*col_reload(), in1.eq(0), in2.eq(0)]
                with m.If(last_row):
                    m.d.sync += [*row_reload(), slot.eq(0)]
                with m.Else():
                    m.d.sync += [*row_advance(), slot.eq(Mux(k == 3, ~slot, 0))]
            with m.Else():
                # the next column ox + 1: its word before is ox, in the window from its start (hn after an emit) on
                m.d.sync += [*col_advance(), in1.eq((k >= 2) & Mux(h_emit, ox >= hn, ox >= hs)),
                             in2.eq((k == 3) & (ox >= 1) & Mux(h_emit, ox > hn, ox > hs))]
        with m.If(self.restart):
            m.d.sync += [*col_reload(), *row_reload(), slot.eq(0), in1.eq(0), in2.eq(0),
                         ptr.eq(d.out_addr + self.og)]

        # -- stage A: the word, the two before it in the row, and which of them are in the window --------
        flags = ("valid", "h", "emit", "vinc1", "vinc2", "slot", "k3")
        a = {n: Signal(name=f"pool_a_{n}") for n in flags}
        a_x, a_p1, a_p2 = (Signal(word, name=f"pool_a_{n}", reset_less=True) for n in ("x", "p1", "p2"))
        a_px = Signal(12, name="pool_a_px")
        a_addr = Signal(OUT_ADDR_BITS, name="pool_a_addr")
        m.d.sync += [a["valid"].eq(go), a["h"].eq(h_emit), a["emit"].eq(emit),
                     a["vinc1"].eq((k >= 2) & (oy >= 1) & (oy - 1 >= vs)),
                     a["vinc2"].eq((k == 3) & (oy >= 2) & (oy - 2 >= vs)),
                     a["slot"].eq(slot), a["k3"].eq(k == 3),
                     a_x.eq(x), a_px.eq(px), a_addr.eq(ptr),
                     # the two words before, masked to 0 here when outside the window (0 never wins the max): the
                     # in-window decisions would otherwise be flags steering stage 1's max in every lane (a flag
                     # → 64 lanes' multiplexers → two compares: the floorplanned ULX3S DRAM engine's critical path,
                     # 73.55 MHz, seed 3)
                     a_p1.eq(Mux(in1, p1, 0)), a_p2.eq(Mux(in2, p2, 0))]

        # -- stage 1: the horizontal max; the line buffers (read the previous rows at px, write this row's
        # result over the oldest) ---------------------------------------------------------------------------
        s1 = {n: Signal(name=f"pool_s1_{n}") for n in ("valid", "h", "emit", "inc1", "inc2", "slot", "k3")}
        s1_x = Signal(word, name="pool_s1_x", reset_less=True)
        s1_px = Signal(12, name="pool_s1_px")
        s1_addr = Signal(OUT_ADDR_BITS, name="pool_s1_addr")
        m.d.sync += [s1["valid"].eq(a["valid"]), s1["h"].eq(a["h"]), s1["emit"].eq(a["emit"]),
                     s1["inc1"].eq(a["vinc1"]), s1["inc2"].eq(a["vinc2"]), s1["slot"].eq(a["slot"]),
                     s1["k3"].eq(a["k3"]), s1_x.eq(vmax((a_x, 1), (a_p1, 1), (a_p2, 1))),
                     s1_px.eq(a_px), s1_addr.eq(a_addr)]
        rows = []
        for r in range(2):
            m.submodules[f"pool_line{r}"] = mem = Memory(shape=8 * v, depth=POOL_LINE, init=[])
            wp, rp = mem.write_port(), mem.read_port(domain="sync")
            m.d.comb += [wp.addr.eq(s1_px), wp.data.eq(s1_x.as_value()),
                         wp.en.eq(s1["valid"] & s1["h"] & (s1["slot"] == r)), rp.addr.eq(s1_px), rp.en.eq(1)]
            rows.append(data.View(word, rp.data))

        # -- stage 2: the previous rows' words in the window (the read data arrive with these registers) ---
        s2 = {n: Signal(name=f"pool_s2_{n}") for n in ("valid", "emit", "inc1", "inc2", "slot")}
        s2_x = Signal(word, name="pool_s2_x", reset_less=True)
        s2_addr = Signal(OUT_ADDR_BITS, name="pool_s2_addr")
        # which line buffer holds row oy − 1 (k = 3; k = 2: the slot this row overwrote) as a register: each bit of
        # s3_v1 is then one LUT behind the block RAM's output (two, with ``slot`` and ``k3`` apart: the ULX3S DRAM
        # engine's critical path at 85.34 MHz, seed 2, a line buffer's output 4.36 ns away from its LUTs)
        s2_sel1 = Signal(name="pool_s2_sel1")
        m.d.sync += [*(s2[n].eq(s1[n]) for n in s2), s2_sel1.eq(s1["slot"] ^ s1["k3"]), s2_x.eq(s1_x),
                     s2_addr.eq(s1_addr)]
        # the slot this row overwrote: row oy − 2 (k = 3) or oy − 1 (k = 2)
        cur = Mux(s2["slot"], rows[1].as_value(), rows[0].as_value())
        v1 = Mux(s2_sel1, rows[1].as_value(), rows[0].as_value())
        s3_v1, s3_v2, s3_x = (Signal(word, name=f"pool_s3_{n}", reset_less=True) for n in ("v1", "v2", "x"))
        s3_valid, s3_emit = Signal(name="pool_s3_valid"), Signal(name="pool_s3_emit")
        s3_addr = Signal(OUT_ADDR_BITS, name="pool_s3_addr")
        m.d.sync += [s3_v1.eq(Mux(s2["inc1"], v1, 0)), s3_v2.eq(Mux(s2["inc2"], cur, 0)), s3_x.eq(s2_x),
                     s3_valid.eq(s2["valid"]), s3_emit.eq(s2["emit"]), s3_addr.eq(s2_addr)]

        # -- stage 3: the vertical max, the output register ------------------------------------------------
        o_valid, o_drop = Signal(name="pool_o_valid"), Signal(name="pool_o_drop")
        o_data = Signal(word, name="pool_o_data", reset_less=True)
        o_addr = Signal(OUT_ADDR_BITS, name="pool_o_addr")
        m.d.sync += [o_valid.eq(s3_valid & s3_emit), o_drop.eq(s3_valid & ~s3_emit),
                     o_data.eq(vmax((s3_x, 1), (s3_v1, 1), (s3_v2, 1))), o_addr.eq(s3_addr)]
        with m.If(d.pool_en):
            m.d.comb += [self.o.valid.eq(o_valid), self.o.p.data.eq(o_data), self.o.p.addr.eq(o_addr),
                         self.dropped.eq(o_drop)]
        with m.Else():
            m.d.comb += [self.o.valid.eq(i.valid), self.o.p.eq(i.p)]
        return m


def ref_pool_stage(desc: dict, words: list[tuple[int, list[int]]]) -> list[tuple[int, list[int]]]:
    """What the stage writes for one layer's output words ``(addr, bytes)`` in their order (all output groups,
    each in raster order): the pooled words ``(addr, bytes)`` in the order written (numpy-free twin)."""
    if not desc.get("pool_en"):
        return list(words)
    h, w = desc["out_h"], desc["out_w"]
    ph, pw, k, s = desc["pool_out_h"], desc["pool_out_w"], desc["pool_k"], desc["pool_s"]
    pt, pl = desc["pool_pad_t"], desc["pool_pad_l"]
    n = h * w
    assert len(words) % n == 0
    out = []
    for og in range(len(words) // n):
        grid = [[words[og * n + y * w + xx][1] for xx in range(w)] for y in range(h)]
        emitted = []
        for yy in range(ph):
            for xx in range(pw):
                ys = range(max(s * yy - pt, 0), min(s * yy - pt + k, h))
                xs = range(max(s * xx - pl, 0), min(s * xx - pl + k, w))
                vals = [grid[a][b] for a in ys for b in xs]
                emitted.append([max(vv[lane] for vv in vals) for lane in range(len(vals[0]))])
        base = desc["out_addr"] + og
        out += [((base + j * desc["out_pitch"]) & ((1 << OUT_ADDR_BITS) - 1), e) for j, e in enumerate(emitted)]
    return out
