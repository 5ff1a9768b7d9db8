"""The DRAM-mode engine's on-chip buffers: ``DramBuffers`` — ACT, WEIGHTS and QUANT memories, each shared
by the engine core and the transfers (LOAD / STORE) of :class:`~fireforge.hw.dram.transfer.Transfer`.

In DRAM mode the core's ROM ports and activation port are served by these buffers instead of the resident
top's ROMs and activation RAM (:class:`~fireforge.hw.top.FireforgeTop`); the core itself is unchanged.

* **WEIGHTS, QUANT** (simple dual port): the core reads through its :class:`~fireforge.hw.engine.ports.RomPort`
  — data ``rom_latency`` cycles after ``en``, as the resident ROMs (the engine's pipelines are built for that
  latency): the *address* is delayed ``rom_latency − 2`` cycles (narrow: a few flip-flops, not a wide data
  pipeline), then the block RAM read, then its output register. LOAD writes, one cycle after it offers a word.
* **ACT**: :data:`BANK_DEPTH`-word banks (a row of block RAMs each). One read port, shared by the STORE reader
  (priority: the core's ``rd.ready`` is low in a cycle the STORE reader reads) and the core, and one write port,
  shared by the core (priority) and LOAD (a LOAD word offered while the core writes waits in a one-word slot;
  LOAD's ``ready`` is low while the slot is full; it empties as soon as the core does not write, so a word a
  LOAD completed lands before any tile started after it reads). Both are pipelined alike, so a read sees every
  write accepted before it: the arbitration's register, a copy of the request per group of :data:`BANK_GROUP` banks,
  one per bank (each loaded only by requests for its banks, so synthesis keeps them apart and the bank's write
  enable comes out decoded), the block RAM read, the word captured beside its bank, a registered multiplexer
  per group, then one across the groups: :attr:`DramBuffers.ACT_LATENCY` = 7 cycles, the responses routed back
  by a tag pipeline as long. The core's responses need no ``ready`` (its contract; its tap FIFO covers the
  round trip); the STORE reader only reads what its FIFO has room for. Why: on the ULX3S the ACT buffer is 128
  block RAMs all over the die (docs/boards.md, "Fmax of the DRAM-mode engine").

A read and a write of the same word in the same cycle is not defined (``no_rw_check``: the engine never does
one, a LOAD or the core writes only words no running tile reads). Addresses wrap at the buffer's depth (the
compiler keeps every tile inside the buffers).
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Buffer
from fireforge.hw.engine.ports import ActMemoryPort, ReadResponse, RomPort, bits_for
from fireforge.hw.fanout import delayed_copies

__all__ = ["DramBuffers", "buffer_write", "buffer_widths", "act_banks", "block_memories", "BUF_ADDR_BITS", "BANK_DEPTH",
           "BANK_GROUP"]

#: bits of a buffer word address as a TRANSFER carries it (``buf_addr``)
BUF_ADDR_BITS = 24
#: words of one ACT bank: an ECP5 DP16KD's depth at 4 bits, so a bank is a row of blocks with no multiplexer inside and
#: the read path joins few banks (at 1,024 words — the depth at 18 bits — the ULX3S v1_1 engine had 32 banks, and
#: their 2,048 captured bits converging on the multiplexers were where nextpnr's router2 stayed congested)
BANK_DEPTH = 4096
#: yosys's memory attribute for "never read and written at one address in one cycle" (honoured when yosys itself
#: moves a register into a read port: the ports here are asynchronous with a register after them, which is the
#: block RAM's read register on the chip and the same cycle for cycle in simulation); without it yosys emulates
#: the old-data read of such a collision around each block RAM (the write delayed a cycle in flip-flops, a compare
#: and a multiplexer on the read data: on the ULX3S v1_1 engine one write-address flip-flop drove all 128 ACT
#: blocks, 19.25 ns of routing, the critical path at 49.92 MHz)
NO_RW_CHECK = {"no_rw_check": 1}
#: ACT banks served by one copy of a request, and joined by one multiplexer of the read path (8 — all of the ULX3S
#: v1_1 buffer — left one request register driving 16 slices across the die: a 12.56 ns route, 76.43 MHz)
BANK_GROUP = 4
#: memories a bank's word is split into, side by side (bits, not addresses), each with its own copy of the
#: request and its own captured word: a bank of 4,096 × 64 bits is 16 blocks, and one address register driving
#: all of them ran 14.7 ns of routing across the die on the ULX3S (the critical path at 64.55 MHz)
BANK_SLICES = 2


def buffer_widths(config: EngineConfig) -> dict[Buffer, tuple[int, int]]:
    """Each buffer's (word bits, depth in words)."""
    return {Buffer.ACT: (config.act_word_bits, config.act_depth),
            Buffer.WEIGHTS: (config.weight_word_bits, config.weight_depth),
            Buffer.QUANT: (config.quant_word_bits, config.quant_depth)}


def act_banks(config: EngineConfig) -> list[tuple[int, int]]:
    """The ACT buffer's banks as (word bits, depth): :data:`BANK_DEPTH` words each, the last the rest."""
    bits, depth = buffer_widths(config)[Buffer.ACT]
    return [(bits, min(BANK_DEPTH, depth - start)) for start in range(0, depth, BANK_DEPTH)]


def _slices(bits: int) -> int:
    return BANK_SLICES if bits % BANK_SLICES == 0 and bits >= 16 * BANK_SLICES else 1


def block_memories(config: EngineConfig) -> list[tuple[str, int, int]]:
    """Every memory of :class:`DramBuffers` as (submodule name, word bits, depth): the ACT slices bank by bank
    (``act_b{bank}s{slice}``), then ``weights_buf`` and ``quant_buf`` — the names synthesis keeps in its block-RAM
    cells, which the board floorplan (:func:`fireforge.hw.board.floorplan.dram_floorplan`) places by."""
    widths = buffer_widths(config)
    act = [(f"act_b{b}s{k}", w // _slices(w), d) for b, (w, d) in enumerate(act_banks(config))
           for k in range(_slices(w))]
    return act + [(f"{key}_buf", *widths[buf]) for key, buf in (("weights", Buffer.WEIGHTS), ("quant", Buffer.QUANT))]


class _BankedMemory:
    """The ACT banks (each a list of slices) read as one memory by a testbench: ``depth`` and ``data[i]``
    (``ctx.get``)."""

    def __init__(self, banks):
        self.banks, self.depth = banks, sum(b[0].depth for b in banks)

    @property
    def data(self):
        banks, depth = self.banks, self.depth

        class _Words:
            def __getitem__(self, i):
                return Cat(*(s.data[i % BANK_DEPTH] for s in banks[i // BANK_DEPTH]))

            def __len__(self):
                return depth
        return _Words()


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

    #: cycles from an ACT read taken to its response: the arbitration's register, a copy of the request per group
    #: of banks, one per bank, the block RAM read, its word captured beside it, the two multiplexer levels
    ACT_LATENCY = 7

    def __init__(self, config: EngineConfig, *, rom_latency: int):
        if not isinstance(rom_latency, int) or rom_latency < 2:
            raise ValueError(f"rom_latency must be an integer ≥ 2, not {rom_latency!r}")
        self.config, self.rom_latency = config, rom_latency
        self.widths = widths = buffer_widths(config)
        self.widest = max(w for w, _ in widths.values())
        act_bits, act_depth = widths[Buffer.ACT]
        #: the ACT buffer's banks (:func:`act_banks`), each as :data:`BANK_SLICES` memories side by side
        self.act_banks = [[Memory(shape=w // _slices(w), depth=d, init=[], attrs=NO_RW_CHECK)
                           for _ in range(_slices(w))] for w, d in act_banks(config)]
        self.act_bank_depth = min(BANK_DEPTH, act_depth)
        #: the buffers by :class:`~fireforge.core.descriptor.Buffer`, for a testbench to read: WEIGHTS and QUANT
        #: memories, ACT its banks as one (``depth``, ``data[i]``)
        self.memories = {b: Memory(shape=w, depth=d, init=[], attrs=NO_RW_CHECK)
                         for b, (w, d) in widths.items() if b != Buffer.ACT}
        self.memories[Buffer.ACT] = _BankedMemory(self.act_banks)
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
        widths = buffer_widths(config)
        slices = [(w // _slices(w), d) for w, d in act_banks(config) for _ in range(_slices(w))]
        return {"products": {}, "memories": [widths[Buffer.WEIGHTS], widths[Buffer.QUANT], *slices]}

    def _rom(self, m, name, buf, port):
        """A buffer the core reads through a RomPort and LOAD writes."""
        width, _ = self.widths[buf]
        m.submodules[name] = mem = self.memories[buf]
        wr, rd = mem.write_port(), mem.read_port(domain="comb")
        load = self.load
        # LOAD's write, registered (the transfer's registers feed three buffers spread over the die)
        m.d.sync += [wr.addr.eq(load.p.addr), wr.data.eq(load.p.data[:width]),
                     wr.en.eq(load.valid & load.ready & (load.p.buffer == buf))]
        addr = port.addr
        for i in range(self.rom_latency - 2):        # the address pipeline
            nxt = Signal.like(port.addr, name=f"{name}_addr{i}")
            m.d.sync += nxt.eq(addr)
            addr = nxt
        word = Signal(width, name=f"{name}_word")
        m.d.comb += rd.addr.eq(addr)
        m.d.sync += [word.eq(rd.data),               # the block RAM's read register (see NO_RW_CHECK)
                     port.data.eq(word)]             # the output register

    def elaborate(self, platform):
        m = Module()
        self._rom(m, "weights_buf", Buffer.WEIGHTS, self.weights)
        self._rom(m, "quant_buf", Buffer.QUANT, self.quant)
        core, load, store_rd, store_resp = self.act, self.load, self.store_rd, self.store_resp
        act_bits, _ = self.widths[Buffer.ACT]
        addr_bits = len(core.rd.addr)

        # s0: the arbitration, registered. Writes: the core first, LOAD when the core does not write; reads: STORE
        # first. A tag says whose each read is.
        # A LOAD word for ACT arriving while the core writes waits in ``held`` (LOAD's ready is low while it is
        # full: a register, so LOAD's beat path never waits on the core's write queue).
        load_act = load.p.buffer == Buffer.ACT
        held, held_addr, held_data = Signal(), Signal(addr_bits), Signal(act_bits)
        s0_we, s0_waddr, s0_wdata = Signal(), Signal(addr_bits), Signal(act_bits)
        s0_raddr, s0_core, s0_store = Signal(addr_bits), Signal(), Signal()
        load_take = load.valid & load.ready & load_act
        m.d.comb += [core.wr.ready.eq(1), load.ready.eq(~held),
                     store_rd.ready.eq(1), core.rd.ready.eq(~store_rd.valid)]
        with m.If(core.wr.valid):
            m.d.sync += [s0_waddr.eq(core.wr.addr), s0_wdata.eq(core.wr.data)]
            with m.If(load_take):
                m.d.sync += [held.eq(1), held_addr.eq(load.p.addr), held_data.eq(load.p.data[:act_bits])]
        with m.Elif(held):
            m.d.sync += [s0_waddr.eq(held_addr), s0_wdata.eq(held_data), held.eq(0)]
        with m.Else():
            m.d.sync += [s0_waddr.eq(load.p.addr), s0_wdata.eq(load.p.data[:act_bits])]
        m.d.sync += [s0_we.eq(core.wr.valid | held | load_take),
                     s0_raddr.eq(Mux(store_rd.valid, store_rd.payload, core.rd.addr)),
                     s0_core.eq(core.rd.valid & ~store_rd.valid), s0_store.eq(store_rd.valid)]

        banks = self.act_banks
        bank_bits = bits_for(self.act_bank_depth) if len(banks) > 1 else addr_bits
        groups = -(-len(banks) // BANK_GROUP)

        def bank_of(addr):
            return addr[bank_bits:] if len(banks) > 1 else 0

        # s1: a copy of the request per group of BANK_GROUP banks, s2: one per bank. Each copy loads only when
        # the request is for its banks (so no two are the same flip-flop, which synthesis would merge back into
        # one, and the write enables come out decoded); a write enable is a plain register (reset 0).
        g_we = [Signal(name=f"act_g{g}_we") for g in range(groups)]
        g_waddr = [Signal(addr_bits, name=f"act_g{g}_waddr") for g in range(groups)]
        g_wdata = [Signal(act_bits, name=f"act_g{g}_wdata") for g in range(groups)]
        g_raddr = [Signal(addr_bits, name=f"act_g{g}_raddr") for g in range(groups)]
        for g in range(groups):
            m.d.sync += g_we[g].eq(s0_we & (bank_of(s0_waddr) // BANK_GROUP == g))
            with m.If(bank_of(s0_waddr) // BANK_GROUP == g):
                m.d.sync += [g_waddr[g].eq(s0_waddr), g_wdata[g].eq(s0_wdata)]
            with m.If(bank_of(s0_raddr) // BANK_GROUP == g):
                m.d.sync += g_raddr[g].eq(s0_raddr)
        captured = []
        for b, slices in enumerate(banks):
            g = b // BANK_GROUP
            sw = act_bits // len(slices)
            parts = []
            for k, mem in enumerate(slices):
                # a slice's copies start at 0 or all ones, so synthesis keeps two slices' copies apart instead of
                # merging them into one register (a merged ``we`` drove two slices placed 89 columns apart: 12.4 ns,
                # the critical path at 76.75 MHz). ``we`` too: a write in the first cycle after configuration puts
                # a word into a buffer no program has loaded yet (every tile reads only what a LOAD or the core wrote)
                name, init = f"act_b{b}s{k}", -(k % 2) % (1 << bank_bits)
                m.submodules[name] = mem
                wr, rd = mem.write_port(), mem.read_port(domain="comb")
                we = Signal(name=f"{name}_we", init=k % 2, reset_less=True)
                waddr = Signal(bank_bits, name=f"{name}_waddr", init=init, reset_less=True)
                raddr = Signal(bank_bits, name=f"{name}_raddr", init=init, reset_less=True)
                wdata = Signal(sw, name=f"{name}_wdata", reset_less=True)
                m.d.sync += we.eq(g_we[g] & (bank_of(g_waddr[g]) == b))
                with m.If(bank_of(g_waddr[g]) == b):
                    m.d.sync += [waddr.eq(g_waddr[g][:bank_bits]), wdata.eq(g_wdata[g][k * sw:(k + 1) * sw])]
                with m.If(bank_of(g_raddr[g]) == b):
                    m.d.sync += raddr.eq(g_raddr[g][:bank_bits])
                m.d.comb += [wr.en.eq(we), wr.addr.eq(waddr), wr.data.eq(wdata), rd.addr.eq(raddr)]
                # s3: the block read; s4: its word captured beside it
                read, q = Signal(sw, name=f"{name}_read"), Signal(sw, name=f"{name}_q")
                m.d.sync += [read.eq(rd.data), q.eq(read)]
                parts.append(q)
            captured.append(Cat(*parts))

        # s5: a word per group (BANK_GROUP : 1), s6: the word (groups : 1); the selects are the read address's
        # bank bits, delayed beside the data (a copy per group)
        bank = Signal(max(1, len(banks) - 1).bit_length())
        m.d.comb += bank.eq(bank_of(s0_raddr))
        low = bank[:(BANK_GROUP - 1).bit_length()]
        high = bank[(BANK_GROUP - 1).bit_length():]
        g_word = [Signal(act_bits, name=f"act_g{g}_word") for g in range(groups)]
        g_sel = delayed_copies(m, low, groups, 4, "act_sel") if len(low) else [None] * groups
        for g in range(groups):
            members = captured[g * BANK_GROUP:(g + 1) * BANK_GROUP]
            m.d.sync += g_word[g].eq(Array(members)[g_sel[g]] if len(members) > 1 else members[0])
        word = Signal(act_bits)
        if groups > 1:
            (sel,) = delayed_copies(m, high, 1, 5, "act_gsel")
            m.d.sync += word.eq(Array(g_word)[sel])
        else:
            m.d.sync += word.eq(g_word[0])

        tags = Cat(s0_core, s0_store)
        for stage in range(self.ACT_LATENCY - 1):
            nxt = Signal(2, name=f"act_tag{stage + 1}")
            m.d.sync += nxt.eq(tags)
            tags = nxt
        m.d.comb += [core.rd.resp.valid.eq(tags[0]), store_resp.valid.eq(tags[1]),
                     core.rd.resp.data.eq(word), store_resp.data.eq(word)]
        return m
