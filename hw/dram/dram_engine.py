# amaranth: UnusedElaboratable=no
"""``DramEngine``: the engine in DRAM mode — everything (command stream, weights, requant words,
activations) in DRAM behind one AXI4 master port, on-chip buffers instead of ROMs and activation memory, and
an in-order command processor in front of the unchanged engine core (:class:`~fireforge.hw.engine.Engine`).

::

              ┌─ fetch ReadDma ─▶ WidthConverter ─▶ CommandProcessor ──▶ Engine (core) ◀──┐
    m_axi ◀─ AxiReadArbiter                               │ TRANSFER             desc / weights / quant / mem
      │       └─ load ReadDma ──▶ Transfer ◀──────────────┘                        │
      └───────── WriteDma ◀────── Transfer ◀──── DramBuffers (ACT, WEIGHTS, QUANT) ◀┘

The read DMAs carry ID 0 and share AR / R through the arbiter, which tells their bursts apart by an ID bit
of its own; with ``id_width`` = 1 the DMAs' own (always 0) ID bit is dropped on the port. The write DMA has
the write channels to itself.

Latencies: a compute command reaching the head of the stream with the core idle starts the core the cycle
after (:attr:`CommandProcessor.dispatch_latency`); the core then fetches its descriptor (``rom_latency`` + 2
cycles before its first tap, as on the resident top). Transfers: the DMAs' (:mod:`fireforge.hw.dram.dma`),
:class:`~fireforge.hw.dram.transfer.Transfer`'s and the ACT read (:attr:`DramBuffers.ACT_LATENCY`).
"""

from __future__ import annotations

from dataclasses import replace

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.hw.dram.arbiter import AxiReadArbiter, index_bits
from fireforge.hw.dram.axi import AXI4, part
from fireforge.hw.dram.buffers import DramBuffers
from fireforge.hw.dram.command import (COMMAND_BITS, FETCH_BEATS_BITS, PROGRAM_COMMANDS_BITS,
                                       CommandProcessor)
from fireforge.hw.dram.dma import ReadDma, WriteDma
from fireforge.hw.dram.transfer import Transfer, beats_width
from fireforge.hw.dram.width import WidthConverter
from fireforge.hw.engine import ROM_LATENCY, Engine
from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.needs import total

__all__ = ["DramEngine"]

#: the core's descriptor port: the latched descriptor and END
DESC_DEPTH = 2
#: words of the FIFO between STORE's beats and the write DMA (3: full rate with ``w.ready`` from its level alone)
STORE_SKID_DEPTH = 3


class DramEngine(wiring.Component):
    """Parameters
    ----------
    config : EngineConfig
        ``memory="dram"``, depths resolved: ``act_depth`` / ``weight_depth`` / ``quant_depth`` are the buffers'
        sizes in words (``desc_depth`` is not used).
    variant : BuildVariant
        How the core is built (``act_memory`` is ignored: the ACT buffer is on chip).
    data_width, addr_width, id_width : int
        The AXI port's; ``data_width`` must divide the activation word.
    max_burst, outstanding : int
        The DMAs' (:class:`~fireforge.hw.dram.dma.ReadDma`).

    Members
    -------
    start : In(1)
        Pulse: run the stream (ignored while busy).
    program_addr : In(32), program_commands : In(24)
        Byte address of command 0 (64-byte aligned); commands in the stream, the final END included.
    busy, done : Out(1)
        ``done``: from END reached until the next start.
    cycles : Out(32)
        Start → done.
    compute_cycles : Out(32)
        Cycles of the run with the core busy (stall cycles = ``cycles − compute_cycles``).
    bytes_read, bytes_written : Out(32)
        R / W beats × beat bytes in the run, the command fetch included.
    layer_done : Out(1)
        One-cycle pulse per completed ``mark`` transfer.
    error : Out(1)
        Sticky until the next start: an AXI SLVERR / DECERR, or a bad command (which also stops the run).
    m_axi : Out(AXI4(data_width, addr_width, id_width))
    """

    def __init__(self, config: EngineConfig, variant: BuildVariant = BuildVariant(), *, data_width: int,
                 addr_width: int = 32, id_width: int = 1, max_burst: int = 64, outstanding: int = 2):
        if config.memory != "dram":
            raise ValueError(f"DramEngine needs an engine config with memory='dram', not {config.memory!r}")
        if 0 in (config.weight_depth, config.quant_depth, config.act_depth):
            raise ValueError("engine config depths must be resolved (nonzero) to build hardware")
        if config.act_word_bits % data_width:
            raise ValueError(f"the AXI data width ({data_width}) must divide the activation word "
                             f"({config.act_word_bits} bits)")
        self.config, self.variant = config, variant
        self.data_width, self.addr_width, self.id_width = data_width, addr_width, id_width
        self.max_burst, self.outstanding = max_burst, outstanding
        # the DMAs' ID bits: the port's less the arbiter's, at least one (dropped on the port if need be)
        self.dma_id_width = max(1, id_width - index_bits(2))
        #: the engine core and the buffers (made here, elaborated with the engine: a testbench may look at them)
        self.core = Engine(replace(config, desc_depth=DESC_DEPTH), variant)
        self.buffers = DramBuffers(config, rom_latency=self.core.rom_latency)
        super().__init__({
            "start": In(1), "program_addr": In(32), "program_commands": In(PROGRAM_COMMANDS_BITS),
            "busy": Out(1), "done": Out(1), "cycles": Out(32), "compute_cycles": Out(32),
            "bytes_read": Out(32), "bytes_written": Out(32), "layer_done": Out(1), "error": Out(1),
            "m_axi": Out(AXI4(data_width=data_width, addr_width=addr_width, id_width=id_width)),
        })

    def _dma_params(self):
        return dict(data_width=self.data_width, addr_width=self.addr_width, id_width=self.dma_id_width,
                    max_burst=self.max_burst, outstanding=self.outstanding)

    @classmethod
    def needs(cls, config: EngineConfig, variant: BuildVariant = BuildVariant(), *, data_width: int,
              max_burst: int = 64, outstanding: int = 2, **_) -> dict:
        """What the DRAM-mode engine needs, without elaborating it (:mod:`fireforge.hw.engine.needs`): the core's
        report, the buffers (memories of their word widths and depths), the DMAs' FIFOs and the STORE FIFO;
        ``"parts"`` has each part's own report."""
        dma = dict(data_width=data_width, max_burst=max_burst, outstanding=outstanding)
        parts = {
            "core": Engine.needs(replace(config, desc_depth=DESC_DEPTH), variant),
            "buffers": DramBuffers.needs(config),
            "fetch_dma": ReadDma.needs(**dma),
            "load_dma": ReadDma.needs(**dma),
            "store_dma": WriteDma.needs(**dma),
            "transfer": Transfer.needs(config),
            "store_skid": StreamFIFO.needs(shape=data_width, depth=STORE_SKID_DEPTH),
        }
        core_parts = parts["core"].pop("parts")
        return {**total(*parts.values()), "parts": {**parts, "core_parts": core_parts}}

    def elaborate(self, platform):
        m = Module()
        cfg, dw = self.config, self.data_width
        m.submodules.core = core = self.core
        m.submodules.buffers = bufs = self.buffers
        m.submodules.proc = proc = self.proc = CommandProcessor(data_width=dw, addr_width=self.addr_width,
                                                    rom_latency=core.rom_latency)
        m.submodules.transfer = xfer = Transfer(cfg, data_width=dw, addr_width=self.addr_width)
        m.submodules.fetch_dma = fetch = ReadDma(**self._dma_params(), beats_width=FETCH_BEATS_BITS)
        m.submodules.commands = words = WidthConverter(i_width=dw, o_width=COMMAND_BITS)
        m.submodules.load_dma = load = ReadDma(**self._dma_params(), beats_width=beats_width(cfg, dw))
        m.submodules.store_dma = store = WriteDma(**self._dma_params(), beats_width=beats_width(cfg, dw))
        m.submodules.read_arbiter = arb = AxiReadArbiter(n=2, data_width=dw, addr_width=self.addr_width,
                                                         id_width=self.dma_id_width)

        # the core and its memories
        wiring.connect(m, core.desc, proc.desc)
        wiring.connect(m, core.weights, bufs.weights)
        wiring.connect(m, core.quant, bufs.quant)
        wiring.connect(m, core.mem, bufs.act)
        m.d.comb += [core.start.eq(proc.core_start), proc.core_busy.eq(core.busy)]
        # commands
        m.d.comb += [proc.start.eq(self.start), proc.program_addr.eq(self.program_addr),
                     proc.program_commands.eq(self.program_commands)]
        wiring.connect(m, proc.fetch, fetch.cmd)
        wiring.connect(m, fetch.data, words.i)
        wiring.connect(m, words.o, proc.commands)
        # transfers
        wiring.connect(m, proc.transfer, xfer.cmd)
        m.d.comb += proc.transfer_done.eq(xfer.done)
        wiring.connect(m, xfer.rd_dma, load.cmd)
        wiring.connect(m, load.data, xfer.rd_data)
        wiring.connect(m, xfer.wr_dma, store.cmd)
        # STORE's beats reach the write DMA through a small FIFO, whose ``w.ready`` is a register's: the port's
        # ``wready`` (through the board's owner multiplexer) ends there instead of running on through the width
        # converter and the STORE FIFO into the STORE credit count (11 nets across the die: the ULX3S engine's
        # critical path at 71.42 MHz, seed 3, with the buffers floorplanned)
        m.submodules.store_skid = skid = StreamFIFO(shape=dw, depth=STORE_SKID_DEPTH)
        wiring.connect(m, xfer.wr_data, skid.w)
        wiring.connect(m, skid.r, store.data)
        wiring.connect(m, store.done, xfer.wr_done)
        wiring.connect(m, xfer.load, bufs.load)
        wiring.connect(m, xfer.store_rd, bufs.store_rd)
        wiring.connect(m, bufs.store_resp, xfer.store_resp)
        # the port: writes straight from the write DMA, reads through the arbiter (IDs adapted)
        axi = self.m_axi
        wiring.connect(m, fetch.axi, arb.s[0])
        wiring.connect(m, load.axi, arb.s[1])
        wiring.connect(m, store.axi, wiring.flipped(part(axi, axi.signature.write())))
        self._read_port(m, arb.m, axi)

        # status and counters
        m.d.comb += [self.busy.eq(proc.busy), self.done.eq(proc.done), self.layer_done.eq(proc.layer_done)]
        beat_bytes = dw // 8
        axi_error = Signal()
        with m.If(proc.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(core.busy):
                m.d.sync += self.compute_cycles.eq(self.compute_cycles + 1)
            with m.If(axi.rvalid & axi.rready):
                m.d.sync += self.bytes_read.eq(self.bytes_read + beat_bytes)
            with m.If(axi.wvalid & axi.wready):
                m.d.sync += self.bytes_written.eq(self.bytes_written + beat_bytes)
            with m.If((axi.rvalid & axi.rready & axi.rresp[1]) | (axi.bvalid & axi.bready & axi.bresp[1])):
                m.d.sync += axi_error.eq(1)
        with m.If(self.start & ~proc.busy):
            m.d.sync += [self.cycles.eq(0), self.compute_cycles.eq(0), self.bytes_read.eq(0),
                         self.bytes_written.eq(0), axi_error.eq(0)]
        m.d.comb += self.error.eq(axi_error | proc.error)
        return m

    def _read_port(self, m, up, axi):
        """``up`` (the arbiter's port, ``dma_id_width + 1`` ID bits) onto the AR / R members of ``axi``: the
        low ID bits the port has no room for are the DMAs' own, always 0."""
        drop = len(up.arid) - self.id_width
        assert drop >= 0
        for name in ("araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot", "arvalid"):
            m.d.comb += getattr(axi, name).eq(getattr(up, name))
        m.d.comb += [axi.arid.eq(up.arid[drop:]), up.arready.eq(axi.arready), axi.rready.eq(up.rready)]
        for name in ("rdata", "rresp", "rlast", "rvalid"):
            m.d.comb += getattr(up, name).eq(getattr(axi, name))
        m.d.comb += up.rid.eq(Cat(Const(0, drop), axi.rid) if drop else axi.rid)
