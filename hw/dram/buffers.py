"""The DRAM-mode engine's on-chip buffers: ``DramBuffers`` — ACT, WEIGHTS and QUANT memories, each shared
by the engine core and the transfers (LOAD / STORE) of :class:`~fireforge.hw.dram.transfer.Transfer`.

In DRAM mode the core's ROM ports and activation port are served by these buffers instead of the resident
top's ROMs and activation RAM (:class:`~fireforge.hw.top.FireforgeTop`); the core itself is unchanged.

* **WEIGHTS, QUANT** (simple dual port): the core reads through its :class:`~fireforge.hw.engine.ports.RomPort`
  — data ``rom_latency`` cycles after ``en``, as the resident ROMs (the engine's pipelines are built for that
  latency): the *address* is delayed ``rom_latency − 2`` cycles (narrow: a few flip-flops, not a wide data
  pipeline), then the block RAM read, then its output register. LOAD writes.
* **ACT**: one read port, shared by the STORE reader (priority: the core's ``rd.ready`` is low in a cycle the
  STORE reader reads) and the core; the responses are routed back by a tag pipeline as long as the read
  latency (:attr:`DramBuffers.ACT_LATENCY`: block RAM read, output register). The core's responses need no
  ``ready`` (its contract); the STORE reader only reads what its FIFO has room for. One write port, shared
  by the core (priority) and LOAD (its ``ready`` is low while the core writes).

A read returns the data of every write accepted in an earlier cycle (the memories are not transparent: a
read in the same cycle as a write to its address returns the old word). Addresses wrap at the buffer's depth
(the compiler keeps every tile inside the buffers).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Buffer
from fireforge.hw.engine.ports import ActMemoryPort, ReadResponse, RomPort, bits_for

__all__ = ["DramBuffers", "buffer_write", "buffer_widths", "BUF_ADDR_BITS"]

#: bits of a buffer word address as a TRANSFER carries it (``buf_addr``)
BUF_ADDR_BITS = 24


def buffer_widths(config: EngineConfig) -> dict[Buffer, tuple[int, int]]:
    """Each buffer's (word bits, depth in words)."""
    return {Buffer.ACT: (config.act_word_bits, config.act_depth),
            Buffer.WEIGHTS: (config.weight_word_bits, config.weight_depth),
            Buffer.QUANT: (config.quant_word_bits, config.quant_depth)}


def buffer_write(data_bits: int) -> data.StructLayout:
    """A word LOAD writes: which buffer, its word address, the word (the low bits, for a narrower buffer)."""
    return data.StructLayout({"buffer": Buffer, "addr": BUF_ADDR_BITS, "data": data_bits})


class DramBuffers(wiring.Component):
    """Parameters
    ----------
    config : EngineConfig
        Word widths and depths (resolved) of the buffers.
    rom_latency : int
        Cycles from the core's WEIGHTS / QUANT ``en`` to ``data`` (≥ 2: the engine's
        :data:`~fireforge.hw.engine.ROM_LATENCY`).

    Members
    -------
    act : In(ActMemoryPort)
        The core's activation port (reads: responses :attr:`ACT_LATENCY` cycles after the request was taken).
    weights, quant : In(RomPort)
        The core's ROM ports.
    load : In(stream.Signature(buffer_write(widest word)))
        Words LOAD writes; for ACT ``ready`` is low while the core writes, otherwise always high.
    store_rd : In(stream.Signature(ACT address))
        The STORE reader's reads of ACT (always taken, before the core's).
    store_resp : Out(ReadResponse(ACT word))
        Their data, in order, :attr:`ACT_LATENCY` cycles after the read.
    """

    #: cycles from an ACT read taken to its response: the block RAM read, its output register
    ACT_LATENCY = 2

    def __init__(self, config: EngineConfig, *, rom_latency: int):
        if not isinstance(rom_latency, int) or rom_latency < 2:
            raise ValueError(f"rom_latency must be an integer ≥ 2, not {rom_latency!r}")
        self.config, self.rom_latency = config, rom_latency
        self.widths = widths = buffer_widths(config)
        self.widest = max(w for w, _ in widths.values())
        act_bits, act_depth = widths[Buffer.ACT]
        #: the buffer memories, by :class:`~fireforge.core.descriptor.Buffer` (a testbench may read them)
        self.memories = {b: Memory(shape=w, depth=d, init=[]) for b, (w, d) in widths.items()}
        super().__init__({
            "act": In(ActMemoryPort(addr_bits=bits_for(act_depth), data_bits=act_bits)),
            "weights": In(RomPort(addr_bits=bits_for(config.weight_depth), data_bits=config.weight_word_bits)),
            "quant": In(RomPort(addr_bits=bits_for(config.quant_depth), data_bits=config.quant_word_bits)),
            "load": In(stream.Signature(buffer_write(self.widest))),
            "store_rd": In(stream.Signature(bits_for(act_depth))),
            "store_resp": Out(ReadResponse(data_bits=act_bits)),
        })

    @classmethod
    def needs(cls, config: EngineConfig) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the three buffer memories."""
        return {"products": {}, "memories": [buffer_widths(config)[b] for b in Buffer]}

    def _rom(self, m, name, buf, port):
        """A buffer the core reads through a RomPort and LOAD writes."""
        width, _ = self.widths[buf]
        m.submodules[name] = mem = self.memories[buf]
        wr, rd = mem.write_port(), mem.read_port(domain="sync")
        load = self.load
        m.d.comb += [wr.addr.eq(load.p.addr), wr.data.eq(load.p.data[:width]),
                     wr.en.eq(load.valid & (load.p.buffer == buf))]
        addr = port.addr
        for i in range(self.rom_latency - 2):        # the address pipeline
            nxt = Signal.like(port.addr, name=f"{name}_addr{i}")
            m.d.sync += nxt.eq(addr)
            addr = nxt
        m.d.comb += rd.addr.eq(addr)
        m.d.sync += port.data.eq(rd.data)            # the output register

    def elaborate(self, platform):
        m = Module()
        self._rom(m, "weights_buf", Buffer.WEIGHTS, self.weights)
        self._rom(m, "quant_buf", Buffer.QUANT, self.quant)

        act_bits, _ = self.widths[Buffer.ACT]
        m.submodules.act_buf = mem = self.memories[Buffer.ACT]
        wr, rd = mem.write_port(), mem.read_port(domain="sync")
        core, load, store_rd, store_resp = self.act, self.load, self.store_rd, self.store_resp

        # writes: the core first, LOAD when the core does not write
        load_act = load.p.buffer == Buffer.ACT
        m.d.comb += [core.wr.ready.eq(1),
                     load.ready.eq(~load_act | ~core.wr.valid),
                     wr.en.eq(core.wr.valid | (load.valid & load_act)),
                     wr.addr.eq(Mux(core.wr.valid, core.wr.addr, load.p.addr)),
                     wr.data.eq(Mux(core.wr.valid, core.wr.data, load.p.data[:act_bits]))]

        # reads: STORE first; a tag pipeline says whose each response is
        m.d.comb += [store_rd.ready.eq(1), core.rd.ready.eq(~store_rd.valid),
                     rd.addr.eq(Mux(store_rd.valid, store_rd.payload, core.rd.addr))]
        tag_core, tag_store = Signal(), Signal()
        m.d.sync += [tag_core.eq(core.rd.valid & ~store_rd.valid), tag_store.eq(store_rd.valid)]
        word = Signal(act_bits)
        m.d.sync += [word.eq(rd.data),                # the output register
                     core.rd.resp.valid.eq(tag_core), store_resp.valid.eq(tag_store)]
        m.d.comb += [core.rd.resp.data.eq(word), store_resp.data.eq(word)]
        return m
