"""Several AXI4 masters (the DMA engines) on one AXI4 master port: :class:`AxiReadArbiter` (AR + R) and
:class:`AxiWriteArbiter` (AW + W + B).

**Response routing: IDs extended with the master's index.** The downstream port's ID is the upstream ID
with the master's index above it (``index_bits = max(1, ceil(log2 n))`` more bits), so R and B beats go back
by their ``rid`` / ``bid`` alone, combinationally, whatever order the slave answers in: no response FIFO,
and no limit on bursts in flight beyond the masters' own. LiteDRAM returns in order anyway; its AXI port's
``id_width`` must then be the arbiter's ``m`` ID width (a ``litedram_gen`` parameter). AXI4 has no WID, so W
still follows AW: each AW grant pushes the master's index into a small FIFO, and W beats are taken from that
master until its ``wlast`` — bursts never interleave on W.

**Arbitration** of AR / AW: round-robin (the default; the master after the last one granted has the highest
priority, so a waiting master gets the port after at most ``n − 1`` other grants) or fixed priority (lower
index first; may starve the others). The granted request is loaded into the downstream address register
(all ``m`` address outputs leave registers); R, W and B pass through combinationally.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.dram.axi import AXI4Read, AXI4Write, check_port_params
from fireforge.hw.engine.needs import report

__all__ = ["AxiReadArbiter", "AxiWriteArbiter", "index_bits"]

_ADDRESS_FIELDS = ("addr", "len", "size", "burst", "lock", "cache", "prot")


def index_bits(n: int) -> int:
    """ID bits the arbiter adds for ``n`` masters."""
    return max(1, (n - 1).bit_length())


def _check_arbiter(n, data_width, addr_width, id_width, policy):
    if not isinstance(n, int) or not 1 <= n <= 16:
        raise ValueError(f"n must be an integer from 1 to 16, not {n!r}")
    if policy not in ("round_robin", "priority"):
        raise ValueError(f"policy must be 'round_robin' or 'priority', not {policy!r}")
    check_port_params(data_width, addr_width, id_width)
    check_port_params(data_width, addr_width, id_width + index_bits(n))


def _init_arbiter(arbiter, signature, n, data_width, addr_width, id_width, policy):
    """Check the parameters, record them and build the ports: ``n`` upstream ``s{i}`` and the shared ``m``,
    whose ID carries the master's index too."""
    _check_arbiter(n, data_width, addr_width, id_width, policy)
    arbiter.n, arbiter.data_width, arbiter.addr_width, arbiter.id_width, arbiter.policy = \
        n, data_width, addr_width, id_width, policy
    up = signature(data_width=data_width, addr_width=addr_width, id_width=id_width)
    down = signature(data_width=data_width, addr_width=addr_width, id_width=id_width + index_bits(n))
    wiring.Component.__init__(arbiter, {**{f"s{i}": In(up) for i in range(n)}, "m": Out(down)})
    arbiter.s = [getattr(arbiter, f"s{i}") for i in range(n)]


def _arbitrate(m, prefix, ups, down, *, policy, extra_ready=None):
    """Grant one of the ``ups``' ``{prefix}valid`` requests into ``down``'s address register. Returns
    (``take``: a request is taken this cycle, ``index``: whose)."""
    n = len(ups)
    valids = [getattr(u, f"{prefix}valid") for u in ups]
    dvalid, dready = getattr(down, f"{prefix}valid"), getattr(down, f"{prefix}ready")
    free = Signal(name=f"{prefix}_free")
    m.d.comb += free.eq((~dvalid | dready) & (1 if extra_ready is None else extra_ready))

    index = Signal(range(max(2, n)), name=f"{prefix}_index")
    any_valid = Signal(name=f"{prefix}_any")
    m.d.comb += any_valid.eq(sum(v << i for i, v in enumerate(valids)) != 0)
    if policy == "priority" or n == 1:
        for i in reversed(range(n)):
            with m.If(valids[i]):
                m.d.comb += index.eq(i)
    else:
        last = Signal(range(n), name=f"{prefix}_last", init=n - 1)   # the master granted last
        # for each possible `last`, the first valid one after it, cyclically
        with m.Switch(last):
            for l in range(n):
                with m.Case(l):
                    for k in reversed(range(n)):
                        i = (l + 1 + k) % n
                        with m.If(valids[i]):
                            m.d.comb += index.eq(i)
    take = Signal(name=f"{prefix}_take")
    m.d.comb += take.eq(free & any_valid)
    for i, u in enumerate(ups):
        m.d.comb += getattr(u, f"{prefix}ready").eq(free & (index == i))
    with m.If(dready):
        m.d.sync += dvalid.eq(0)
    with m.If(take):
        if policy == "round_robin" and n > 1:
            m.d.sync += last.eq(index)
        up_id = Array(getattr(u, f"{prefix}id") for u in ups)[index]
        m.d.sync += [dvalid.eq(1), getattr(down, f"{prefix}id").eq(Cat(up_id, index))]
        for f in _ADDRESS_FIELDS:
            m.d.sync += getattr(down, f"{prefix}{f}").eq(Array(getattr(u, f"{prefix}{f}") for u in ups)[index])
    return take, index


def _route(m, prefix, ups, down, fields, *, id_width):
    """Send ``down``'s ``{prefix}valid`` response (R or B) to the master named by its ID's high bits."""
    rid = getattr(down, f"{prefix}id")
    who = rid[id_width:]
    readies = []
    for i, u in enumerate(ups):
        sel = who == i
        m.d.comb += getattr(u, f"{prefix}valid").eq(getattr(down, f"{prefix}valid") & sel)
        m.d.comb += getattr(u, f"{prefix}id").eq(rid[:id_width])
        for f in fields:
            m.d.comb += getattr(u, f"{prefix}{f}").eq(getattr(down, f"{prefix}{f}"))
        readies.append(getattr(u, f"{prefix}ready"))
    m.d.comb += getattr(down, f"{prefix}ready").eq(Array(readies)[who] & (who < len(ups)))


class AxiReadArbiter(wiring.Component):
    """``n`` AXI4 read masters on one AXI4 read port.

    Parameters
    ----------
    n : int
        Masters (1 to 16).
    data_width, addr_width : int
        As :class:`fireforge.hw.dram.axi.AXI4Read`, the same upstream and downstream.
    id_width : int
        The masters' ID bits; the downstream port has ``id_width + index_bits(n)``.
    policy : str
        ``"round_robin"`` (default) or ``"priority"`` (lower index first).

    Members
    -------
    s : list of In(AXI4Read(data_width, addr_width, id_width)), one per master
        Where the masters' ``axi`` ports connect (``wiring.connect(m, dma.axi, arb.s[i])``).
    m : Out(AXI4Read(data_width, addr_width, id_width + index_bits(n)))
        The shared port.
    """

    def __init__(self, *, n: int, data_width: int, addr_width: int = 32, id_width: int = 1,
                 policy: str = "round_robin"):
        _init_arbiter(self, AXI4Read, n, data_width, addr_width, id_width, policy)

    #: cycles from an ``arvalid`` granted (``arready`` high) to it on ``m``: the AR register
    issue_latency = 1
    #: cycles from an R beat on ``m`` to it on its master: combinational
    latency = 0

    @classmethod
    def needs(cls, **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): nothing but registers and multiplexers."""
        return report()

    def elaborate(self, platform):
        m = Module()
        _arbitrate(m, "ar", self.s, self.m, policy=self.policy)
        _route(m, "r", self.s, self.m, ("data", "resp", "last"), id_width=self.id_width)
        return m


class AxiWriteArbiter(wiring.Component):
    """``n`` AXI4 write masters on one AXI4 write port.

    Each AW grant pushes its master's index into the W-order FIFO (``outstanding`` entries, registers); W
    beats come from the master at its head until ``wlast``. AW is not granted while the FIFO is full.

    Parameters
    ----------
    n, data_width, addr_width, id_width, policy
        As :class:`AxiReadArbiter`.
    outstanding : int
        AW bursts whose W beats have not all passed, at most (≥ 1; default 4).

    Members
    -------
    s : list of In(AXI4Write(data_width, addr_width, id_width))
    m : Out(AXI4Write(data_width, addr_width, id_width + index_bits(n)))
    """

    def __init__(self, *, n: int, data_width: int, addr_width: int = 32, id_width: int = 1,
                 policy: str = "round_robin", outstanding: int = 4):
        if not isinstance(outstanding, int) or not 1 <= outstanding <= 64:
            raise ValueError(f"outstanding must be an integer from 1 to 64, not {outstanding!r}")
        self.outstanding = outstanding
        _init_arbiter(self, AXI4Write, n, data_width, addr_width, id_width, policy)

    #: cycles from an ``awvalid`` granted to it on ``m``: the AW register (its W beats may pass from then on)
    issue_latency = 1
    #: cycles from a W beat (of the burst at the head of the W order) to ``m``, and from B on ``m`` to its
    #: master: combinational
    latency = 0

    @classmethod
    def needs(cls, **_) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): registers only (the W-order FIFO is
        ``outstanding × index_bits`` flip-flops)."""
        return report()

    def elaborate(self, platform):
        m = Module()
        n, depth = self.n, self.outstanding
        # the W-order FIFO: a ring of master indices
        ring = Array(Signal(range(max(2, n)), name=f"order{k}") for k in range(depth))
        head = Signal(range(max(2, depth)))
        tail = Signal(range(max(2, depth)))
        level = Signal(range(depth + 1))
        take, index = _arbitrate(m, "aw", self.s, self.m, policy=self.policy, extra_ready=level < depth)

        def incr(v):
            return Mux(v == depth - 1, 0, v + 1)

        with m.If(take):
            m.d.sync += [ring[tail].eq(index), tail.eq(incr(tail))]

        # W: from the master at the head, while there is one
        who = ring[head]
        have = level != 0
        mw = self.m
        m.d.comb += [mw.wvalid.eq(have & Array(s.wvalid for s in self.s)[who]),
                     mw.wdata.eq(Array(s.wdata for s in self.s)[who]),
                     mw.wstrb.eq(Array(s.wstrb for s in self.s)[who]),
                     mw.wlast.eq(Array(s.wlast for s in self.s)[who])]
        for i, s in enumerate(self.s):
            m.d.comb += s.wready.eq(have & (who == i) & mw.wready)
        popped = Signal()
        m.d.comb += popped.eq(mw.wvalid & mw.wready & mw.wlast)
        with m.If(popped):
            m.d.sync += head.eq(incr(head))
        m.d.sync += level.eq(level + take - popped)

        _route(m, "b", self.s, self.m, ("resp",), id_width=self.id_width)
        return m
