"""AXI4 as :class:`amaranth.lib.wiring.Signature` s, seen from the master (the DMA engines).

Only what the DMA engines use: INCR bursts of full-width beats, one ID value, no QoS / region / user
signals (cocotbext-axi, LiteDRAM's AXI port and the MIG treat them as optional). The members carry the
AXI names themselves (``awaddr``, ``rdata``…), flat, so a top's port ``m_axi`` flattened with ``_``
(:func:`fireforge.hw.top.verilog_ports`) reads ``m_axi_awaddr`` — what ``AxiBus.from_prefix(dut, "m_axi")``
and vendor IP integrators expect.

The read and write halves are separate signatures (:class:`AXI4Read`: AR + R, :class:`AXI4Write`: AW + W +
B), because AXI's two directions are independent and each DMA engine drives one; :class:`AXI4` is both,
and :func:`part` lets a top hand each half of its port to the engine that drives it.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DATA_WIDTHS", "BURST_INCR", "CACHE_NORMAL", "PROT_DATA", "RESP_OKAY", "MAX_BURST_BEATS",
           "BOUNDARY_BYTES", "AXI4Read", "AXI4Write", "AXI4", "part"]

#: data widths the engines support (LiteDRAM's 16-bit SDR port up to the KC705's 128-bit MIG port)
DATA_WIDTHS = (16, 32, 64, 128)
#: ``AxBURST``: incrementing bursts, the only kind issued
BURST_INCR = 0b01
#: ``AxCACHE``: normal non-cacheable bufferable — a DMA buffer, which an interconnect may merge and buffer
CACHE_NORMAL = 0b0011
#: ``AxPROT``: unprivileged, secure, data access
PROT_DATA = 0b000
#: ``xRESP``: OKAY (EXOKAY is never asked for; SLVERR / DECERR have bit 1 set)
RESP_OKAY = 0b00
#: AXI4 INCR bursts are 1 to 256 beats long…
MAX_BURST_BEATS = 256
#: …and must not cross a 4 KB boundary
BOUNDARY_BYTES = 4096


def check_port_params(data_width, addr_width, id_width):
    if data_width not in DATA_WIDTHS:
        raise ValueError(f"data_width must be one of {DATA_WIDTHS}, not {data_width!r}")
    if not isinstance(addr_width, int) or not 12 <= addr_width <= 64:
        # ≥ 12: a 4 KB page must fit, since bursts are split at its boundary
        raise ValueError(f"addr_width must be an integer from 12 to 64, not {addr_width!r}")
    if not isinstance(id_width, int) or not 1 <= id_width <= 16:
        raise ValueError(f"id_width must be an integer from 1 to 16, not {id_width!r}")


def _address(prefix: str, addr_width: int, id_width: int) -> dict:
    return {f"{prefix}id": Out(id_width), f"{prefix}addr": Out(addr_width), f"{prefix}len": Out(8),
            f"{prefix}size": Out(3), f"{prefix}burst": Out(2), f"{prefix}lock": Out(1),
            f"{prefix}cache": Out(4), f"{prefix}prot": Out(3), f"{prefix}valid": Out(1), f"{prefix}ready": In(1)}


def _read(data_width, addr_width, id_width) -> dict:
    return {**_address("ar", addr_width, id_width),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
            "rready": Out(1)}


def _write(data_width, addr_width, id_width) -> dict:
    return {**_address("aw", addr_width, id_width),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1), "wvalid": Out(1),
            "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1)}


class _AXI4Base(wiring.Signature):
    def __init__(self, members, *, data_width, addr_width, id_width):
        self.data_width, self.addr_width, self.id_width = data_width, addr_width, id_width
        super().__init__(members)

    @property
    def bytes_per_beat(self) -> int:
        return self.data_width // 8

    @property
    def size(self) -> int:
        """``AxSIZE`` of a full-width beat: log2 of its bytes."""
        return (self.bytes_per_beat - 1).bit_length()

    def __eq__(self, other):
        return (type(self) is type(other) and (self.data_width, self.addr_width, self.id_width)
                == (other.data_width, other.addr_width, other.id_width))

    def __hash__(self):
        return hash((type(self), self.data_width, self.addr_width, self.id_width))

    def __repr__(self):
        return (f"{type(self).__name__}(data_width={self.data_width}, addr_width={self.addr_width}, "
                f"id_width={self.id_width})")


class AXI4Read(_AXI4Base):
    """The read half of an AXI4 master port: AR and R.

    Parameters
    ----------
    data_width : int
        Bits of ``rdata``: one of :data:`DATA_WIDTHS`.
    addr_width : int
        Bits of a byte address (12 to 64).
    id_width : int
        Bits of ``arid`` / ``rid`` (1 to 16).

    Members
    -------
    arid, araddr, arlen, arsize, arburst, arlock, arcache, arprot, arvalid : Out
    arready : In(1)
    rid, rdata, rresp, rlast, rvalid : In
    rready : Out(1)
    """

    def __init__(self, *, data_width: int, addr_width: int = 32, id_width: int = 1):
        check_port_params(data_width, addr_width, id_width)
        super().__init__(_read(data_width, addr_width, id_width),
                         data_width=data_width, addr_width=addr_width, id_width=id_width)


class AXI4Write(_AXI4Base):
    """The write half of an AXI4 master port: AW, W and B.

    Parameters
    ----------
    data_width, addr_width, id_width : int
        As :class:`AXI4Read`.

    Members
    -------
    awid, awaddr, awlen, awsize, awburst, awlock, awcache, awprot, awvalid : Out
    awready : In(1)
    wdata, wstrb, wlast, wvalid : Out
    wready : In(1)
    bid, bresp, bvalid : In
    bready : Out(1)
    """

    def __init__(self, *, data_width: int, addr_width: int = 32, id_width: int = 1):
        check_port_params(data_width, addr_width, id_width)
        super().__init__(_write(data_width, addr_width, id_width),
                         data_width=data_width, addr_width=addr_width, id_width=id_width)


class AXI4(_AXI4Base):
    """A whole AXI4 master port: the members of :class:`AXI4Write` and :class:`AXI4Read`.

    Parameters
    ----------
    data_width, addr_width, id_width : int
        As :class:`AXI4Read`.
    """

    def __init__(self, *, data_width: int, addr_width: int = 32, id_width: int = 1):
        check_port_params(data_width, addr_width, id_width)
        super().__init__({**_write(data_width, addr_width, id_width), **_read(data_width, addr_width, id_width)},
                         data_width=data_width, addr_width=addr_width, id_width=id_width)

    def read(self) -> AXI4Read:
        return AXI4Read(data_width=self.data_width, addr_width=self.addr_width, id_width=self.id_width)

    def write(self) -> AXI4Write:
        return AXI4Write(data_width=self.data_width, addr_width=self.addr_width, id_width=self.id_width)


class _Part:
    """An interface made of some of another interface's members (the same signals)."""

    def __init__(self, signature, interface):
        self.signature = signature
        for name in signature.members:
            setattr(self, name, getattr(interface, name))


def part(interface, signature: AXI4Read | AXI4Write):
    """The members of ``interface`` (an :class:`AXI4` interface) that make up
    ``signature``, as an interface with that signature; e.g. in a top with port ``m_axi: Out(AXI4(…))``::

        wiring.connect(m, wiring.flipped(axi.part(self.m_axi, self.m_axi.signature.read())), read_dma.axi)
    """
    return _Part(signature, interface)
