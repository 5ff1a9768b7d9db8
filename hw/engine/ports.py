"""The engine's memory ports as interfaces, and the records its stages pass to each other.

Every memory port is a :class:`amaranth.lib.wiring.Signature` seen from the side that makes the requests
(the engine); the memory's side is its ``flip()``. Tops join them with ``wiring.connect``, never by port
name. The members are named so that a flattened path joined with ``_`` is the port's Verilog name
(``mem.rd.resp.data`` → ``mem_rd_resp_data``): :func:`fireforge.hw.top.verilog_ports`, which keeps
``fireforge_top``'s ports as the Verilog, cocotb and Verilator harnesses know them.

Between the engine's stages data moves as :mod:`amaranth.lib.stream` streams; what travels with a tap (its
first / last flags and where its result goes) is the ``meta`` field of the payload (:data:`TAP_META`).
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RomPort", "ReadChannel", "ReadResponse", "WriteChannel", "ActMemoryPort", "HostPort",
           "TAP_META", "OUT_ADDR_BITS", "W_ADDR_BITS", "bits_for", "act_word"]

#: destination addresses as the descriptor holds them (``out_addr``), and weight-ROM word addresses
OUT_ADDR_BITS = 24
W_ADDR_BITS = 24

#: what travels with one tap from the address generator to the accumulator: the first tap of an output
#: (start the sum), its last (the result is complete) and where the result goes
TAP_META = data.StructLayout({"first": 1, "last": 1, "out_addr": OUT_ADDR_BITS})


def bits_for(depth: int) -> int:
    """Address bits of a memory of ``depth`` words (at least 1)."""
    return max(1, (max(depth, 2) - 1).bit_length())


def act_word(vector: int) -> data.ArrayLayout:
    """An activation word: ``vector`` uint8 channels, lane 0 in the low byte."""
    return data.ArrayLayout(unsigned(8), vector)


def _positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")


class RomPort(wiring.Signature):
    """A synchronous ROM read port: ``addr`` with ``en`` in one cycle, ``data`` a fixed latency later.

    Members
    -------
    en, addr : Out
    data : In(data_bits)
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        _positive(addr_bits=addr_bits, data_bits=data_bits)
        super().__init__({"en": Out(1), "addr": Out(addr_bits), "data": In(data_bits)})


class ReadResponse(wiring.Signature):
    """Read responses, in request order, any number of cycles after their requests. No ``ready``: the
    requester never has more reads outstanding than it can buffer (``hdl/ff_ext_act_mem.v``'s contract), so
    a response is always taken — the stream is ``always_ready``.

    Members
    -------
    valid, data : Out
    """

    def __init__(self, *, data_bits: int):
        _positive(data_bits=data_bits)
        super().__init__({"valid": Out(1), "data": Out(data_bits)})


class ReadChannel(wiring.Signature):
    """The activation read channel: requests (``addr`` taken at a rising edge with ``valid`` and ``ready``)
    and their in-order responses.

    Members
    -------
    valid, addr : Out
    ready : In(1)
    resp : In(ReadResponse)
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        _positive(addr_bits=addr_bits)
        super().__init__({"valid": Out(1), "ready": In(1), "addr": Out(addr_bits),
                          "resp": In(ReadResponse(data_bits=data_bits))})


class WriteChannel(wiring.Signature):
    """The activation write channel: ``addr`` and ``data`` taken at a rising edge with ``valid`` and ``ready``.

    Members
    -------
    valid, addr, data : Out
    ready : In(1)
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        _positive(addr_bits=addr_bits, data_bits=data_bits)
        super().__init__({"valid": Out(1), "ready": In(1), "addr": Out(addr_bits), "data": Out(data_bits)})


class ActMemoryPort(wiring.Signature):
    """Both channels of the activation memory. A read returns the data of every write accepted before it.
    Addresses count words of ``data_bits`` (lane 0 in the low byte).

    Members
    -------
    rd : Out(ReadChannel)
    wr : Out(WriteChannel)
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        super().__init__({"rd": Out(ReadChannel(addr_bits=addr_bits, data_bits=data_bits)),
                          "wr": Out(WriteChannel(addr_bits=addr_bits, data_bits=data_bits))})


class HostPort(wiring.Signature):
    """The host's port into the activation memory while the engine is idle, seen from the host: hold ``re``
    / ``we`` with ``addr`` / ``wdata`` until ``rready`` / ``wready`` says the memory took it; a read answers
    on ``rdata`` with ``rvalid`` one or more cycles later, in order.

    Members
    -------
    addr, wdata, we, re : Out
    rdata, rvalid, rready, wready : In
    """

    def __init__(self, *, addr_bits: int, data_bits: int):
        _positive(addr_bits=addr_bits, data_bits=data_bits)
        super().__init__({"addr": Out(addr_bits), "wdata": Out(data_bits), "we": Out(1), "re": Out(1),
                          "rdata": In(data_bits), "rvalid": In(1), "rready": In(1), "wready": In(1)})
