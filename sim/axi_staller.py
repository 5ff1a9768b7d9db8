"""AxiStaller: random, AXI-legal stalls on every channel of an AXI4 link, for simulation benches.

Put between a master (``up``: the staller is its slave) and a slave (``down``: the staller is its master);
payloads pass straight through, only ``valid`` / ``ready`` are gated. Each of the five channels has a gate
that is *open* in a cycle with probability ``1 − stall_pct/100``, drawn from its own 32-bit xorshift
(seeded from ``stall_seed`` in the first cycle after reset, so no rebuild is needed to change either).
``stall_pct`` 0 makes the staller transparent (wires, no added latency); ``stall_pct`` ≥ 100 closes every
gate for good (the bench hangs: don't).

AXI stays legal: the gate holds back the *start* of a transfer, never an asserted ``valid``. Per channel,
from source to sink (AR, AW, W: master → slave; R, B: slave → master)::

    sink.valid   = source.valid & (open | held)
    source.ready = sink.ready   & (open | held)
    held        <= sink.valid & ~sink.ready        (a transfer offered to the sink stays offered)

so once ``valid`` reaches the sink it stays, with the source's (stable) payload, until the handshake, and a
source sees ``ready`` only in the cycle its transfer is taken. ``valid`` towards the sink never depends on
its ``ready`` in the same cycle. Latency 0 (combinational) in both directions.

Members: ``up`` In(AXI4), ``down`` Out(AXI4), ``stall_seed`` In(32), ``stall_pct`` In(8),
``stalls`` Out(32): cycles in which some source offered a transfer its gate held back (a measure that the
stalls happened).
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiStaller", "CHANNELS"]

#: channel -> (valid, ready, direction): "fwd" master -> slave, "back" slave -> master
CHANNELS = {"ar": ("arvalid", "arready", "fwd"), "aw": ("awvalid", "awready", "fwd"),
            "w": ("wvalid", "wready", "fwd"), "r": ("rvalid", "rready", "back"), "b": ("bvalid", "bready", "back")}
#: per-channel seed offsets (odd, distinct: channels draw different sequences from one seed)
_SALT = {"ar": 0x9E3779B9, "aw": 0x85EBCA6B, "w": 0xC2B2AE35, "r": 0x27D4EB2F, "b": 0x165667B1}


class AxiStaller(wiring.Component):
    def __init__(self, signature):
        self.axi_sig = signature
        super().__init__({"up": In(signature), "down": Out(signature), "stall_seed": In(32), "stall_pct": In(8),
                          "stalls": Out(32)})

    def elaborate(self, platform):
        m = Module()
        up, down = self.up, self.down
        handshake = {n for v, r, _ in CHANNELS.values() for n in (v, r)}
        for name, member in self.axi_sig.members.items():
            if name in handshake:
                continue
            if member.flow == Out:       # master -> slave payload
                m.d.comb += getattr(down, name).eq(getattr(up, name))
            else:
                m.d.comb += getattr(up, name).eq(getattr(down, name))
        loaded = Signal()
        m.d.sync += loaded.eq(1)
        held_back = []
        for ch, (v, r, direction) in CHANNELS.items():
            if direction == "fwd":
                src_valid, sink_valid = getattr(up, v), getattr(down, v)
                src_ready, sink_ready = getattr(up, r), getattr(down, r)
            else:
                src_valid, sink_valid = getattr(down, v), getattr(up, v)
                src_ready, sink_ready = getattr(down, r), getattr(up, r)
            lfsr = Signal(32, name=f"lfsr_{ch}")
            seeded = self.stall_seed ^ _SALT[ch]
            nxt = Signal(32, name=f"lfsr_{ch}_next")
            x1 = Signal(32, name=f"lfsr_{ch}_x1")
            x2 = Signal(32, name=f"lfsr_{ch}_x2")
            m.d.comb += [x1.eq(lfsr ^ (lfsr << 13)[:32]), x2.eq(x1 ^ (x1 >> 17)), nxt.eq(x2 ^ (x2 << 5)[:32])]
            with m.If(~loaded):
                # xorshift's one fixed point is 0: a seed equal to the salt gets the salt itself
                m.d.sync += lfsr.eq(Mux(seeded == 0, _SALT[ch], seeded))
            with m.Else():
                m.d.sync += lfsr.eq(nxt)
            # open with probability 1 - pct/100: the top 16 bits scaled to 0..99
            draw = Signal(7, name=f"draw_{ch}")
            m.d.comb += draw.eq((lfsr[16:] * 100) >> 16)
            open_ = Signal(name=f"open_{ch}")
            m.d.comb += open_.eq((self.stall_pct == 0) | (loaded & (draw >= self.stall_pct)))
            held = Signal(name=f"held_{ch}")
            gate = open_ | held
            m.d.comb += [sink_valid.eq(src_valid & gate), src_ready.eq(sink_ready & gate)]
            m.d.sync += held.eq(sink_valid & ~sink_ready)
            held_back.append(src_valid & ~gate)
        with m.If(Cat(*held_back).any()):
            m.d.sync += self.stalls.eq(self.stalls + 1)
        return m

