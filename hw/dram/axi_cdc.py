"""``AxiCdc``: an AXI4 port carried from one clock domain to another, one ``amaranth.lib.fifo.AsyncFIFO`` per
channel (issue #20: the engine's port on its own clock, LiteDRAM's AXI port on the controller's sys clock).

::

    up (master side, up_domain)                          down (slave side, down_domain)
      AW ──▶ AsyncFIFO(addr_depth) ──▶ AW
      W  ──▶ AsyncFIFO(data_depth) ──▶ W
      B  ◀── AsyncFIFO(addr_depth) ◀── B
      AR ──▶ AsyncFIFO(addr_depth) ──▶ AR
      R  ◀── AsyncFIFO(data_depth) ◀── R

Each channel's payload (every member but ``valid`` / ``ready``) rides as one FIFO word: ``valid`` is the FIFO's
``w_en`` on the sending side and ``r_rdy`` on the receiving side, ``ready`` its ``w_rdy`` / ``r_en``, so the
handshakes keep AXI's rules on both sides (``valid`` never waits for ``ready``), order within a channel is kept,
and a full FIFO is backpressure. The channels are independent, as AXI's are: a W beat may arrive downstream
before its AW, which AXI allows.

Latency: a word written in cycle *t* of the sending domain is visible (``valid``) on the other side after the
write-pointer's 2-flop synchroniser, 3–4 receiving cycles; ``ready`` comes back through the read pointer's the
same way, so a FIFO of depth *d* streams a beat per cycle of the slower clock when *d* covers that round trip
(about 4 cycles of each clock: ``data_depth`` 16 leaves room for the faster side to run ahead).

Resets: an AsyncFIFO is emptied by its *write* domain's reset (amaranth's rule), so the AW / W / AR FIFOs follow
``up_domain``'s reset and B / R ``down_domain``'s. The board top resets both domains together (the PLLs'
lock), and no burst is in flight across a reset of only one side.
"""

from __future__ import annotations

from amaranth import Cat, Module, Shape
from amaranth.lib import wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

from fireforge.hw.dram.axi import AXI4

__all__ = ["AxiCdc"]

#: channel -> (direction: True = up → down, the members carried)
_CHANNELS = {
    "aw": (True, ("awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot")),
    "w": (True, ("wdata", "wstrb", "wlast")),
    "b": (False, ("bid", "bresp")),
    "ar": (True, ("arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot")),
    "r": (False, ("rid", "rdata", "rresp", "rlast")),
}


class AxiCdc(wiring.Component):
    """Parameters
    ----------
    signature : AXI4
        The port's signature (both sides have it).
    up_domain, down_domain : str
        The master's clock domain (``up``) and the slave's (``down``); they must differ.
    addr_depth : int
        Depth of the AW, AR and B FIFOs (a power of two ≥ 2; default 4).
    data_depth : int
        Depth of the W and R FIFOs (a power of two ≥ 2; default 16).

    Members
    -------
    up : In(signature)
        Connect the master's port here (this is its slave).
    down : Out(signature)
        The same port in ``down_domain``, to the slave.
    """

    def __init__(self, signature: AXI4, *, up_domain: str = "sync", down_domain: str = "dram", addr_depth: int = 4,
                 data_depth: int = 16):
        if not isinstance(signature, AXI4) or isinstance(signature, wiring.FlippedSignature):
            raise TypeError(f"signature must be an AXI4 signature (the master's view), not {signature!r}")
        if up_domain == down_domain:
            raise ValueError(f"up_domain and down_domain must differ (both are {up_domain!r}); no crossing is needed")
        for name, depth in (("addr_depth", addr_depth), ("data_depth", data_depth)):
            if not isinstance(depth, int) or depth < 2 or depth & (depth - 1):
                raise ValueError(f"{name} must be a power of two ≥ 2, not {depth!r}")
        self.up_domain, self.down_domain = up_domain, down_domain
        self.depths = {ch: data_depth if ch in ("w", "r") else addr_depth for ch in _CHANNELS}
        super().__init__({"up": In(signature), "down": Out(signature)})

    def channel_width(self, channel: str) -> int:
        """Bits of ``channel``'s FIFO word (its payload members)."""
        members = self.up.signature.members
        return sum(Shape.cast(members[n].shape).width for n in _CHANNELS[channel][1])

    def elaborate(self, platform):
        m = Module()
        for ch, (forward, names) in _CHANNELS.items():
            src, dst = (self.up, self.down) if forward else (self.down, self.up)
            w_domain, r_domain = (self.up_domain, self.down_domain) if forward else (self.down_domain, self.up_domain)
            fifo = m.submodules[f"{ch}_fifo"] = AsyncFIFO(width=self.channel_width(ch), depth=self.depths[ch],
                                                          w_domain=w_domain, r_domain=r_domain)
            m.d.comb += [fifo.w_data.eq(Cat(*(getattr(src, n) for n in names))),
                         fifo.w_en.eq(getattr(src, f"{ch}valid")),
                         getattr(src, f"{ch}ready").eq(fifo.w_rdy),
                         Cat(*(getattr(dst, n) for n in names)).eq(fifo.r_data),
                         getattr(dst, f"{ch}valid").eq(fifo.r_rdy),
                         fifo.r_en.eq(getattr(dst, f"{ch}ready"))]
        return m
