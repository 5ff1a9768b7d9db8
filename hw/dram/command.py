"""The DRAM-mode engine's command processor: ``CommandProcessor`` decodes the command stream in order and
dispatches each command — a compute tile to the engine core, a LOAD / STORE to
:class:`~fireforge.hw.dram.transfer.Transfer` — and serves the core's descriptor port.

The stream is fetched by one DMA command of ``program_commands × COMMAND_BYTES`` bytes (the DMA's FIFO
throttles it: it runs ahead of the processor by at most its FIFO); the commands arrive here as
``COMMAND_BYTES``-wide words. Per command (``docs/dram.md``, ``/work/spec/dram-engine.md``):

* **compute** (CONV / MAXPOOL / ADD / GAP): once the core is idle, latch the descriptor and pulse the core's
  ``start`` in the same cycle; the next command is decoded the cycle after (the tile is not waited for).
* **LOAD / STORE**: (``wait``: once the core is idle) hand it to the transfer unit and wait for it to
  complete; ``mark``: pulse ``layer_done`` then.
* **END**: once the core is idle, ``done``.
* **op 7**, a STORE of a buffer other than ACT, buffer 3, or the stream ending without END: ``error``, and stop
  (done, once the core is idle).

Whatever stops the run, the commands left in the stream are still read and dropped, so the fetch DMA is empty
for the next run.

Descriptor port: the core fetches "descriptor 0" (the latched one) at the start of each tile, and "descriptor
1" (END: its op cleared) after it, so it stops after one tile. Data ``rom_latency`` cycles after ``en``, as a ROM.

Latency: a command is taken from the stream into the head register (decoded there) while the head is empty —
also while a transfer runs; a compute command in the head with the core idle starts the core in that cycle, so
one reaching the stream's head with the core idle and the head empty starts it the cycle after
(:attr:`CommandProcessor.dispatch_latency` = 1); a transfer in the head is taken by the transfer unit in that
cycle, and the next command (already in the head) is dispatched the cycle after its ``done``.
"""

from __future__ import annotations

from amaranth import Cat, Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.descriptor import COMMAND_BYTES, DESCRIPTOR, TRANSFER, Buffer, Op
from fireforge.hw.dram.dma import dma_command
from fireforge.hw.engine.ports import RomPort

__all__ = ["CommandProcessor", "COMMAND_BITS", "PROGRAM_COMMANDS_BITS", "FETCH_BEATS_BITS"]

#: a command as fetched
COMMAND_BITS = 8 * COMMAND_BYTES
#: bits of ``program_commands``
PROGRAM_COMMANDS_BITS = 24
#: bits of the fetch DMA command's length in beats (commands × beats per command, 16-bit beats at the most)
FETCH_BEATS_BITS = PROGRAM_COMMANDS_BITS + (COMMAND_BYTES // 2 - 1).bit_length()


class CommandProcessor(wiring.Component):
    """Parameters
    ----------
    data_width, addr_width : int
        The AXI port's (the fetch command's length counts beats).
    rom_latency : int
        Cycles from the core's descriptor ``en`` to ``data``.

    Members
    -------
    start : In(1)
        Pulse: run the stream (ignored while busy).
    program_addr : In(32), program_commands : In(24)
        Byte address of command 0 (COMMAND_BYTES-aligned) and the number of commands, END included.
    busy, done, error : Out(1)
        ``done`` from the end of the run until the next start; ``error`` (a bad command) likewise.
    layer_done : Out(1)
        Pulses when a ``mark`` transfer completes.
    fetch : Out(stream(dma_command))
        The stream's one fetch command (to the fetch DMA).
    commands : In(stream.Signature(COMMAND_BITS))
        The commands, in order.
    core_start : Out(1), core_busy : In(1)
        The core's ``start`` and ``busy``.
    desc : In(RomPort(1 address bit, DESCRIPTOR))
        The core's descriptor port.
    transfer : Out(stream.Signature(TRANSFER)), transfer_done : In(1)
        To the transfer unit.
    """

    #: cycles from a compute command at the head of the stream (core idle, head register empty) to the core's ``start``
    dispatch_latency = 1

    def __init__(self, *, data_width: int, addr_width: int = 32, rom_latency: int):
        self.data_width, self.addr_width, self.rom_latency = data_width, addr_width, rom_latency
        super().__init__({
            "start": In(1), "program_addr": In(32), "program_commands": In(PROGRAM_COMMANDS_BITS),
            "busy": Out(1), "done": Out(1), "error": Out(1), "layer_done": Out(1),
            "fetch": Out(stream.Signature(dma_command(addr_width, FETCH_BEATS_BITS))),
            "commands": In(stream.Signature(COMMAND_BITS)),
            "core_start": Out(1), "core_busy": In(1),
            "desc": In(RomPort(addr_bits=1, data_bits=DESCRIPTOR.size)),
            "transfer": Out(stream.Signature(TRANSFER)), "transfer_done": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cmds, core_idle = self.commands, ~self.core_busy
        left = Signal(PROGRAM_COMMANDS_BITS)          # commands not yet taken from the stream
        # ``left`` == 0 and == 1 as registers: the 24-bit comparisons stay out of the stream's ``ready`` and the
        # enables it drives (the ULX3S engine's critical path at 82.07 MHz started at ``left``)
        none_left, one_left = Signal(init=1), Signal()
        with m.If(cmds.valid & cmds.ready):
            m.d.sync += [left.eq(left - 1), none_left.eq(left == 1), one_left.eq(left == 2)]

        # the head: the next command, taken from the stream while it is empty, with its kind decoded then, so what
        # a dispatch drives (the descriptor latch's enable, the core's start, the transfer's valid, the stream's
        # ready) comes from these registers and the core's busy, not from the stream's valid and an op decode
        head = Signal(max(DESCRIPTOR.size, TRANSFER.size))
        head_valid, h_end, h_compute, h_bad = Signal(), Signal(), Signal(), Signal()
        word = cmds.payload
        op, xfer = word[:3], TRANSFER(word[:TRANSFER.size])
        head_xfer = TRANSFER(head[:TRANSFER.size])
        m.d.comb += self.transfer.payload.eq(head_xfer)
        fill = Signal()
        m.d.comb += fill.eq(~head_valid & cmds.valid & cmds.ready)     # (DRAIN drops, and empties the head)
        # the head's word follows the stream's payload while the head is empty (it is read only when valid): its
        # ~470 flip-flops' enable is then ``head_valid`` alone, not ``fill`` (the FSM's ``ready`` and the stream's
        # ``valid`` in front of it, then 6.94 ns across the die: the ULX3S DRAM engine's critical path at
        # 81.41 MHz, seed 1)
        with m.If(~head_valid):
            m.d.sync += head.eq(word[:len(head)])
        with m.If(fill):
            bad_xfer = (xfer.buffer.as_value() == 3) | ((op == Op.STORE) & (xfer.buffer != Buffer.ACT))
            is_xfer = (op == Op.LOAD) | (op == Op.STORE)
            m.d.sync += [head_valid.eq(1), h_end.eq(op == Op.END),
                         h_compute.eq((op == Op.CONV) | (op == Op.MAXPOOL) | (op == Op.ADD) | (op == Op.GAP)),
                         h_bad.eq(((op != Op.END) & ~is_xfer & ~((op == Op.CONV) | (op == Op.MAXPOOL)
                                                                  | (op == Op.ADD) | (op == Op.GAP)))
                                  | (is_xfer & bad_xfer))]

        # the latched descriptor, served as descriptor 0 `rom_latency` cycles after `en`. It follows the head except
        # from a dispatch (which takes the head into it) until the core has read it (``hold``): its ~470 flip-flops'
        # enable is then one register, not the dispatch decision (the FSM, the head's flags and the core's busy in
        # front of an 8 ns route: the ULX3S DRAM engine's critical path at 78.91 MHz, seed 3)
        latched, hold = Signal(DESCRIPTOR.size), Signal()
        first, served = self.desc.addr == 0, self.desc.en & (self.desc.addr == 0)
        for i in range(self.rom_latency):
            nxt, nxt_served = Signal(name=f"desc_first{i}"), Signal(name=f"desc_served{i}")
            m.d.sync += [nxt.eq(first), nxt_served.eq(served)]
            first, served = nxt, nxt_served
        with m.If(~hold):
            m.d.sync += latched.eq(head[:DESCRIPTOR.size])
        with m.If(served):
            m.d.sync += hold.eq(0)
        # descriptor 1 is END: the latched word with its op cleared (END is 0). Only the op's bits are gated: the
        # rest is read only under a CONV / MAXPOOL / ADD / GAP op, and one flip-flop gating all ~470 bits was a
        # net across the die (the ULX3S DRAM engine's critical path at 74.59 MHz, seed 1: 12.52 ns of routing)
        assert DESCRIPTOR["op"].offset == 0
        op_bits = Shape.cast(DESCRIPTOR["op"].shape).width
        m.d.comb += self.desc.data.eq(Cat(latched[:op_bits] & first.replicate(op_bits), latched[op_bits:]))

        fetch = self.fetch
        with m.If(fetch.ready):
            m.d.sync += fetch.valid.eq(0)
        beat_shift = (COMMAND_BYTES // (self.data_width // 8) - 1).bit_length()
        mark = Signal()
        m.d.sync += self.layer_done.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), self.done.eq(0), self.error.eq(0), left.eq(self.program_commands),
                                 none_left.eq(self.program_commands == 0), one_left.eq(self.program_commands == 1)]
                    with m.If(self.program_commands == 0):
                        m.d.sync += self.error.eq(1)
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += [fetch.valid.eq(1), fetch.p.addr.eq(self.program_addr),
                                     fetch.p.beats.eq(self.program_commands << beat_shift)]
                        m.next = "NEXT"
            with m.State("NEXT"):
                m.d.comb += cmds.ready.eq(~head_valid)
                with m.If(~head_valid):
                    with m.If(none_left):           # the stream ended without END
                        m.d.sync += self.error.eq(1)
                        m.next = "DRAIN"
                with m.Elif(h_end):
                    m.d.sync += head_valid.eq(0)
                    m.next = "DRAIN"
                with m.Elif(h_bad):                 # op 7, a STORE of WEIGHTS / QUANT, buffer 3
                    m.d.sync += [head_valid.eq(0), self.error.eq(1)]
                    m.next = "DRAIN"
                with m.Elif(h_compute):
                    with m.If(core_idle):
                        m.d.comb += self.core_start.eq(1)
                        m.d.sync += [head_valid.eq(0), hold.eq(1)]     # (latched takes the head: hold is 0)
                with m.Elif(~head_xfer.wait | core_idle):
                    m.d.comb += self.transfer.valid.eq(1)
                    with m.If(self.transfer.ready):
                        m.d.sync += [head_valid.eq(0), mark.eq(head_xfer.mark)]
                        m.next = "TRANSFER"
            with m.State("TRANSFER"):                # (the next command comes into the head meanwhile)
                m.d.comb += cmds.ready.eq(~head_valid)
                with m.If(self.transfer_done):
                    m.d.sync += self.layer_done.eq(mark)
                    m.next = "NEXT"
            with m.State("DRAIN"):                  # drop what is left of the stream; wait for the core
                m.d.comb += cmds.ready.eq(~none_left)
                m.d.sync += head_valid.eq(0)
                with m.If((none_left | (one_left & cmds.valid)) & core_idle & ~fetch.valid):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                    m.next = "IDLE"
        return m
