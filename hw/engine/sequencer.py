"""The sequencer: fetches and decodes descriptors, paces the output groups; and the descriptor's per-lane
copies.

States: ``IDLE`` → (start) ``FETCH`` → ``FETCH_WAIT`` (the descriptor ROM's latency) → ``DECODE`` (END: done)
→ ``GROUP`` (the previous group has drained: its requant word is requested, the AGU set up) → ``QUANT`` (the
requant word's latency) → ``RUN`` (the AGU issues the group's taps) → ``GROUP`` or, after the last group,
``LAYER_END`` (drained) → ``FETCH`` of the next descriptor.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.descriptor import DESCRIPTOR, Op
from fireforge.hw.engine.agu import AguControl
from fireforge.hw.engine.ports import RomPort, bits_for
from fireforge.hw.fanout import delayed_copies

__all__ = ["Sequencer", "LayerFields", "LANE_OPS", "LANE_FIELDS"]


class Sequencer(wiring.Component):
    """Parameters
    ----------
    desc_depth, quant_depth : int
        Words of the descriptor and requant ROMs (their address widths).
    rom_latency : int
        Cycles from the descriptor ROM's ``en`` to its ``data``.
    quant_latency : int
        Cycles from a requant-word request to the word loaded
        (:attr:`~fireforge.hw.engine.quant.QuantFetch.latency`): the ``QUANT`` state waits them.

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
    rom : Out(RomPort)
        The descriptor ROM.
    desc : Out(DESCRIPTOR)
        The current descriptor (a register, loaded at the end of ``FETCH_WAIT``).
    agu : Out(AguControl)
    quant : Out(stream.Signature(quant address, always_ready=True))
        The output group's requant-word request (conv layers).
    """

    def __init__(self, *, desc_depth: int, quant_depth: int, rom_latency: int, quant_latency: int):
        for name, v in (("rom_latency", rom_latency), ("quant_latency", quant_latency)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self.rom_latency, self.quant_latency = rom_latency, quant_latency
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
            "rom": Out(RomPort(addr_bits=bits_for(desc_depth), data_bits=DESCRIPTOR.size)),
            "desc": Out(DESCRIPTOR), "agu": Out(AguControl()),
            "quant": Out(stream.Signature(bits_for(quant_depth), always_ready=True)),
        })

    @property
    def latency(self) -> int:
        """Cycles from a new descriptor in :attr:`desc` (its ``DECODE`` cycle) to the AGU's first ``run``
        of it: ``DECODE``, ``GROUP`` (when drained at once), then the ``QUANT`` wait."""
        return 1 + self.quant_latency

    def elaborate(self, platform):
        m = Module()
        desc, agu = self.desc, self.agu
        ptr = Signal(len(self.rom.addr))
        running = Signal()
        wait = Signal(range(max(2, self.rom_latency, self.quant_latency)))
        # the descriptor arrives this cycle (``FETCH_WAIT`` at ``wait == 0``): a register, set the cycle before, so
        # the 471 descriptor flip-flops' enable leaves a flip-flop (the FSM's decode in front of it, then one hop
        # across the die: the ULX3S DRAM engine's critical path at 79.01 MHz, seed 3)
        take = Signal(name="desc_take")
        m.d.sync += take.eq(0)
        with m.If(take):
            m.d.sync += desc.as_value().eq(self.rom.data)
        m.d.comb += self.busy.eq(running)
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [running.eq(1), self.done.eq(0), self.cycles.eq(0), ptr.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.rom.en.eq(1), self.rom.addr.eq(ptr)]
                m.d.sync += [wait.eq(self.rom_latency - 1), take.eq(self.rom_latency == 1)]
                m.next = "FETCH_WAIT"
            with m.State("FETCH_WAIT"):     # the descriptor arrives rom_latency cycles after FETCH
                m.d.sync += [wait.eq(wait - 1), take.eq(wait == 1)]
                with m.If(wait == 0):
                    m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(desc.op == Op.END):
                    m.d.sync += [running.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += agu.load.eq(1)
                    m.next = "GROUP"
            with m.State("GROUP"):
                # output group og starts once the previous one has left the pipeline
                with m.If(agu.drained):
                    m.d.comb += [self.quant.valid.eq(desc.op == Op.CONV),
                                 self.quant.payload.eq(desc.quant_addr + agu.og), agu.group.eq(1)]
                    m.d.sync += wait.eq(self.quant_latency - 1)
                    m.next = "QUANT"
            with m.State("QUANT"):          # the group's requant word arrives quant_latency cycles after GROUP
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.comb += agu.run.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(agu.finished):
                    with m.If(agu.last_group):
                        m.next = "LAYER_END"
                    with m.Else():
                        m.next = "GROUP"
            with m.State("LAYER_END"):
                with m.If(agu.drained):
                    m.d.comb += self.layer_done.eq(1)
                    m.d.sync += ptr.eq(ptr + 1)
                    m.next = "FETCH"
        return m


#: per lane: the accumulator's op selects
LANE_OPS = data.StructLayout({"conv": 1, "gap": 1, "max": 1})
#: per lane: the descriptor fields the accumulator and the requantizers read, and the output select
LANE_FIELDS = data.StructLayout({
    "gap": 1, "mult_a": 24, "shift_a": 8, "out_zp": 8, "relu": 1, "mult_b": 24, "shift_b": 8, "aux": 32,
    "max": 1, "add": 1,
})


class LayerFields(wiring.Component):
    """The descriptor's fields delivered to every output lane, a copy per lane.

    The lanes sit beside their weight blocks and multipliers, all over the die: one register driving all of
    them was a route across it (the op selects, ~800 loads each: a 6 ns route into the accumulator's adder,
    the 64-MAC ULX3S critical path at 70.7 MHz; the requantizers' fields, 9.4 ns, the floorplanned design's).

    * :attr:`ops`: a chain lane to lane (each copy's input is the previous one, so synthesis cannot merge
      them): lane ``l`` sees a new descriptor ``l + 1`` cycles after it is in the register.
    * :attr:`fields`: a copy tree (:func:`fireforge.hw.fanout.delayed_copies`), :attr:`fields_latency`
      (``log2(vector)``) cycles late.

    Both are read long after a descriptor changes (no tap of a layer reaches the lanes before the sequencer
    and the fetch pipelines have run): :class:`~fireforge.hw.engine.Engine` checks that margin from the
    latencies.

    Members
    -------
    desc : In(DESCRIPTOR)
    ops : Out(ArrayLayout(LANE_OPS, vector))
    fields : Out(ArrayLayout(LANE_FIELDS, vector))
    """

    def __init__(self, *, vector: int):
        if not isinstance(vector, int) or vector < 2 or vector & (vector - 1):
            raise ValueError(f"vector must be a power of two ≥ 2, not {vector!r}")
        self.vector = vector
        super().__init__({"desc": In(DESCRIPTOR), "ops": Out(data.ArrayLayout(LANE_OPS, vector)),
                          "fields": Out(data.ArrayLayout(LANE_FIELDS, vector))})

    @property
    def ops_latency(self) -> int:
        """Cycles until the last lane's op selects follow a new descriptor."""
        return self.vector

    @property
    def fields_latency(self) -> int:
        return self.vector.bit_length() - 1

    def elaborate(self, platform):
        m = Module()
        desc = self.desc
        prev = (desc.op == Op.CONV, desc.op == Op.GAP, desc.op == Op.MAXPOOL)
        for lane in range(self.vector):
            copies = [Signal(name=f"op_{k}_l{lane}") for k in ("conv", "gap", "max")]
            m.d.sync += [c.eq(p) for c, p in zip(copies, prev)]
            m.d.comb += self.ops[lane].as_value().eq(Cat(*copies))
            prev = copies
        src = {"gap": desc.op == Op.GAP, "mult_a": desc.mult_a, "shift_a": desc.shift_a, "out_zp": desc.out_zp,
               "relu": desc.relu, "mult_b": desc.mult_b, "shift_b": desc.shift_b, "aux": desc.aux,
               "max": desc.op == Op.MAXPOOL, "add": desc.op == Op.ADD}
        assert [Value.cast(v).shape().width for v in src.values()] == [f.width for _, f in LANE_FIELDS]
        word = Signal(LANE_FIELDS)
        m.d.comb += [getattr(word, k).eq(v) for k, v in src.items()]
        for lane, copy in enumerate(delayed_copies(m, word.as_value(), self.vector, self.fields_latency,
                                                   "lane_desc")):
            m.d.comb += self.fields[lane].as_value().eq(copy)
        return m
