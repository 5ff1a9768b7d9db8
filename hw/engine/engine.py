# amaranth: UnusedElaboratable=no
"""The fireforge engine: runs a compiled program from its descriptor ROM, autonomously.

Every layer is one loop nest (see :mod:`fireforge.core.descriptor`). The engine is a chain of components
joined by streams (:mod:`amaranth.lib.stream`); what travels with a tap rides in its payload::

    Sequencer ──control──▶ AddressGenerator ──taps──▶ ActivationFetch ──joined──▶ WeightFetch ──operands──▶
    MacArray ──▶ Accumulator ──results──▶ LaneRequantizers ──words──▶ PoolStage ──▶ WriteQueue ──▶ activation
    write port      (PoolStage: a fused max pool, a wire unless the descriptor's pool_en)

    Sequencer: descriptor ROM, FSM, group pacing      ActivationFetch: reads, tap / response FIFOs, join
    QuantFetch: an output group's requant word        WeightFetch: weight ROM, per-lane activation copies
    LayerFields: the descriptor, a copy per lane      LaneRequantizers: requant / add / pool, per lane

Back-pressure: the AGU issues a tap only when the tap FIFO has room (which bounds outstanding reads and
buffered responses) and fewer than :data:`WRITE_DEPTH` results are in flight, so the results in the
pipeline always fit the write queue: past the join nothing stalls. Between output groups and layers the
pipeline drains, which is also when the per-group requant words are loaded.

Every stage states its latency; the engine's are sums of them (:attr:`Engine.latency`), and the margins
its per-lane descriptor copies need are checked against them when the engine is built.

(The first line: the parts are made with the engine, to know their latencies, and are elaborated with it;
an engine that is refused or never elaborated warns once, for itself, not once per part.)
"""

from __future__ import annotations

from amaranth import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.descriptor import DESCRIPTOR, Op
from fireforge.hw.dsp import check_multipliers
from fireforge.hw.engine.accumulate import LANE_META, Accumulator, mac_meta
from fireforge.hw.engine.agu import AddressGenerator
from fireforge.hw.engine.fetch import ActivationFetch
from fireforge.hw.engine.lanes import LaneRequantizers
from fireforge.hw.engine.needs import total
from fireforge.hw.engine.pool import PoolStage
from fireforge.hw.engine.ports import ActMemoryPort, RomPort, bits_for
from fireforge.hw.engine.quant import QuantFetch
from fireforge.hw.engine.sequencer import LayerFields, Sequencer
from fireforge.hw.engine.weights import WeightFetch
from fireforge.hw.engine.writeq import WriteQueue
from fireforge.hw.mac import MacArray

__all__ = ["Engine", "ROM_LATENCY", "WRITE_DEPTH"]

#: results in flight (pipeline + write queue): above the issue-to-write latency (:attr:`Engine.latency`), so
#: a layer with one tap per output (expand 1x1 after a 16-channel squeeze) streams
WRITE_DEPTH = 64
#: cycles from a ROM's ``en`` to its ``data``: two levels of address copies (on the 64-MAC ULX3S design one
#: address flip-flop drove all 105 weight-ROM blocks: 16.8 ns of routing), block RAM, its output register, two
#: registered levels of row multiplexer (hdl/ff_rom.v LATENCY; the ECP5 ROMs of hw/board/ecp5_memory.py)
ROM_LATENCY = 6


class Engine(wiring.Component):
    """The engine core, without memories: ROM ports, the activation memory port, host control.

    Parameters
    ----------
    config : EngineConfig
        Lanes and memory depths (depths must be resolved, i.e. nonzero).
    variant : BuildVariant
        How it is built: reads in flight (the tap and response FIFOs' depth: one tap per cycle needs more
        than the memory's read latency), MAC products, requantizer multipliers. ``act_memory`` is the top's
        business: the engine always has the memory port.
    rom_latency : int
        Cycles from a ROM's ``en`` to its ``data`` (all three ROMs): :data:`ROM_LATENCY`.

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
    desc, weights, quant : Out(RomPort)
        The descriptor, weight and requant ROMs: ``addr`` and ``en`` in one cycle, ``data`` ``rom_latency``
        cycles later.
    mem : Out(ActMemoryPort)
        The activation memory: reads with in-order responses any number of cycles later, writes.
    """

    def __init__(self, config: EngineConfig, variant: BuildVariant = BuildVariant(), *,
                 rom_latency: int = ROM_LATENCY):
        if 0 in (config.weight_depth, config.quant_depth, config.desc_depth, config.act_depth):
            raise ValueError("engine config depths must be resolved (nonzero) to build hardware")
        if not isinstance(variant, BuildVariant):
            raise TypeError(f"variant must be a BuildVariant, not {variant!r}")
        if variant.reads_in_flight < 4:
            raise ValueError(f"read_depth must be at least 4 (the AGU keeps one tap FIFO slot spare), "
                             f"not {variant.reads_in_flight}")
        if not isinstance(rom_latency, int) or rom_latency < 1:
            raise ValueError(f"rom_latency must be at least 1, not {rom_latency}")
        check_multipliers(variant.multipliers)
        self.config, self.variant, self.rom_latency = config, variant, rom_latency
        self.vector = v = config.vector
        self.parts = self._parts()
        self._check_margins()
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32), "layer_done": Out(1),
            "desc": Out(RomPort(addr_bits=bits_for(config.desc_depth), data_bits=DESCRIPTOR.size)),
            "weights": Out(RomPort(addr_bits=bits_for(config.weight_depth), data_bits=config.weight_word_bits)),
            "quant": Out(RomPort(addr_bits=bits_for(config.quant_depth), data_bits=config.quant_word_bits)),
            "mem": Out(ActMemoryPort(addr_bits=bits_for(config.act_depth), data_bits=config.act_word_bits)),
        })

    def _parts(self) -> dict:
        cfg, variant, v = self.config, self.variant, self.vector
        addr_bits = bits_for(cfg.act_depth)
        quant = QuantFetch(vector=v, quant_addr_bits=bits_for(cfg.quant_depth), rom_latency=self.rom_latency)
        mac = MacArray(vector=v, products=variant.mac_products, meta=mac_meta(v), lane_meta=LANE_META)
        return {
            "sequencer": Sequencer(desc_depth=cfg.desc_depth, quant_depth=cfg.quant_depth,
                                   rom_latency=self.rom_latency, quant_latency=quant.latency),
            "layer_fields": LayerFields(vector=v),
            "agu": AddressGenerator(addr_bits=addr_bits, read_depth=variant.reads_in_flight, write_depth=WRITE_DEPTH),
            "fetch": ActivationFetch(vector=v, addr_bits=addr_bits, read_depth=variant.reads_in_flight),
            "quant_fetch": quant,
            "weights": WeightFetch(vector=v, weight_addr_bits=bits_for(cfg.weight_depth), rom_latency=self.rom_latency),
            "mac": mac,
            "acc": Accumulator(vector=v, sum_width=mac.sum_width),
            "lanes": LaneRequantizers(vector=v, add_unit=cfg.has_add_unit, multipliers=variant.multipliers),
            "pool": PoolStage(vector=v),
            "writes": WriteQueue(vector=v, addr_bits=addr_bits, depth=WRITE_DEPTH),
        }

    @property
    def latency(self) -> dict:
        """The engine's latencies, summed from its parts':

        ``lead``
            Cycles from a new descriptor in the sequencer's register to its first tap at the accumulator
            (the MAC array's output), at the earliest: the sequencer's decode and requant wait, the AGU's
            ``go``, the tap FIFO, the weight ROM's pipeline, the MAC array.
        ``tap_to_write``
            Cycles from a tap issued to its output word offered to the write port, at the earliest.
        ``pool``
            Cycles a layer with a fused max pool (``pool_en``) adds to ``tap_to_write``: the pool stage's.
        """
        p = self.parts
        to_acc = p["fetch"].latency + p["weights"].latency + p["mac"].latency
        return {"lead": p["sequencer"].latency + p["agu"].latency + to_acc,
                "tap_to_write": to_acc + p["acc"].latency + p["lanes"].latency + p["writes"].latency,
                "pool": p["pool"].latency}

    def _check_margins(self):
        """The per-lane descriptor copies (:class:`LayerFields`) follow a new descriptor a few cycles late; the
        lanes first read them when the layer's first tap reaches the accumulator. An engine whose pipeline
        could bring it there sooner is refused, not built wrong."""
        lead, fields = self.latency["lead"], self.parts["layer_fields"]
        v = self.vector
        if not fields.ops_latency < lead:
            raise ValueError(f"vector {v}: the op-select chain needs {fields.ops_latency + 1} cycles but a layer's "
                             f"first tap can reach the accumulator {lead} cycles after its descriptor (rom_latency "
                             f"{self.rom_latency}); use a larger rom_latency")
        if not fields.fields_latency < lead:
            raise ValueError(f"vector {v}: the lanes' descriptor copies need {fields.fields_latency + 1} cycles "
                             f"but a layer's first tap can reach the accumulator {lead} cycles after its descriptor")

    @classmethod
    def needs(cls, config: EngineConfig, variant: BuildVariant = BuildVariant()) -> dict:
        """What the engine of ``config`` built as ``variant`` needs, without elaborating it: the sum of its
        parts' reports (:mod:`fireforge.hw.engine.needs`), plus ``"parts"``, each part's own report.

        ``products`` counts the requantizers' multiplications whatever ``variant.multipliers`` builds them
        from (inferred, or MULT18X18D instances: the same blocks); ``memories`` are the engine's own (its
        FIFOs): the ROMs and the activation memory are the top's.
        """
        v, addr_bits = config.vector, bits_for(config.act_depth)
        parts = {
            "activation_fetch": ActivationFetch.needs(vector=v, addr_bits=addr_bits, read_depth=variant.reads_in_flight),
            "mac_array": MacArray.needs(vector=v, products=variant.mac_products),
            "lane_requantizers": LaneRequantizers.needs(vector=v, add_unit=config.has_add_unit,
                                                        multipliers=variant.multipliers),
            "pool_stage": PoolStage.needs(vector=v),
            "write_queue": WriteQueue.needs(vector=v, addr_bits=addr_bits, depth=WRITE_DEPTH),
        }
        return {**total(*parts.values()), "parts": parts}

    def elaborate(self, platform):
        m = Module()
        p = self.parts
        for name, part in p.items():
            m.submodules[name] = part
        seq, agu, fetch, weights, mac, acc, lanes, writes = (
            p[k] for k in ("sequencer", "agu", "fetch", "weights", "mac", "acc", "lanes", "writes"))
        # control and memories
        m.d.comb += [seq.start.eq(self.start), self.busy.eq(seq.busy), self.done.eq(seq.done),
                     self.cycles.eq(seq.cycles), self.layer_done.eq(seq.layer_done)]
        wiring.connect(m, seq.rom, wiring.flipped(self.desc))
        wiring.connect(m, fetch.read, wiring.flipped(self.mem.rd))
        wiring.connect(m, writes.write, wiring.flipped(self.mem.wr))
        wiring.connect(m, p["quant_fetch"].rom, wiring.flipped(self.quant))
        wiring.connect(m, weights.rom, wiring.flipped(self.weights))
        # the descriptor and its per-lane copies; the AGU's commands and credits
        desc = seq.desc
        m.d.comb += [p["layer_fields"].desc.eq(desc), agu.desc.eq(desc),
                     agu.tap_level.eq(fetch.level),
                     fetch.pad_value.eq(Mux(desc.op == Op.CONV, desc.in_zp, 0))]
        wiring.connect(m, seq.agu, agu.control)
        wiring.connect(m, seq.quant, p["quant_fetch"].request)
        # the datapath
        wiring.connect(m, agu.taps, fetch.taps)
        wiring.connect(m, fetch.joined, weights.taps)
        ops = weights.operands
        m.d.comb += [mac.i.valid.eq(ops.valid), mac.i.p.x.eq(ops.p.x), mac.i.p.w.eq(ops.p.w),
                     mac.i.p.meta.tap.eq(ops.p.meta), mac.i.p.meta.x.eq(ops.p.x[0]),
                     mac.i.p.lane_meta.valid.eq(ops.valid), mac.i.p.lane_meta.first.eq(ops.p.meta.first)]
        wiring.connect(m, mac.o, acc.i)
        for lane_input in (acc, lanes):
            m.d.comb += [lane_input.fields.eq(p["layer_fields"].fields), lane_input.quant.eq(p["quant_fetch"].quant)]
        m.d.comb += acc.ops.eq(p["layer_fields"].ops)
        wiring.connect(m, acc.o, lanes.i)
        # the fused pool: restarted with every output group (the pipeline has drained by then); a word it
        # absorbs without a write retires as a written one does
        pool = p["pool"]
        m.d.comb += [pool.desc.eq(desc), pool.restart.eq(seq.agu.group), pool.og.eq(agu.control.og),
                     agu.retire.eq(writes.retire + pool.dropped)]
        wiring.connect(m, lanes.o, pool.i)
        wiring.connect(m, pool.o, writes.i)
        return m
