"""The add requantizer: two uint8 inputs → uint8, bit-exact with ONNX Runtime's QLinearAdd.

Hardware twin of :func:`fireforge.sim.requant.qlinear_add`. ORT (MLAS, AVX2/FMA3) computes, with the
float32 host constants ``ra = fl(a_scale/y_scale)``, ``rb = fl(b_scale/y_scale)`` and
``F = fl(y_zp − fma(ra, a_zp, fl(rb·b_zp)))``::

    t = fma(b, rb, F);   r = fma(a, ra, t);   y = clamp(cvt(r), 0, 255)

on the *raw* uint8 values ``a`` and ``b``. Two float32 roundings (one per fma) and the CVTPS2DQ
rounding happen in that order, so the circuit performs exactly those three roundings and no others:

* two identical exact fused multiply-add units (:func:`_fma`): the product ``x·M`` of an 8-bit input
  and a 24-bit significand is exact (32 bits); it is added to the float32 addend exactly in a 61-bit
  window (with one sticky bit where the window is exceeded, see below), and the sum is rounded once to
  24 significant bits, half to even — IEEE ``fma``;
* the conversion: round half to even to an integer, ``INT32_MIN`` if ``|r| ≥ 2^31`` (which the clamp
  turns into 0), clamp to [0, 255].

Number format inside. A float32 value is carried as ``(sign, M, E)`` meaning ``(−1)^sign · M · 2^E``
with a 24-bit ``M`` (hidden bit included, normalised to ``2^23 ≤ M < 2^24`` on every fma output; a
subnormal ``F`` enters un-normalised) and an 11-bit signed ``E``; ``M = 0`` is zero (its sign and E
are don't-cares).

The fma window. The product ``P = x·M`` (``P < 2^32``; ``P ≥ 2^23`` unless ``x = 0``) sits at bits
``[G, G+32)``, ``G = 3``, so bit 0 of the window is worth ``2^(−s−G)``. The addend's significand goes
to bit ``q = E_c + s + G``:

* ``QMIN ≤ q ≤ QMAX`` (``−25``, ``36``): placed exactly; bits that fall below bit 0 (``q < 0``) are
  ORed into bit 0 (sticky). That is exact after rounding: the addend is then ``< 2^23`` window units
  while ``P·2^G ≥ 2^26``, so the sum has ≥ 26 bits and the rounding step is ≥ 4 units — its grid points
  and midpoints are even integers, and the true sum and the sticky-marked sum lie strictly between
  the same two consecutive even integers (so ``G = 3`` is the least that works; tested).
* ``q < QMIN``: the addend lies wholly below bit 0 — sticky only (same argument).
* ``q > QMAX``: the addend is placed at ``QMAX`` (the window is re-based to the addend) and the product,
  now ``ε < 2^(G+32+QMAX−q) ≤ 2^34`` units next to a 24-bit addend at ``2^36``, becomes a
  sticky 1 in bit 0: the sum has ≥ ``QMAX+23`` bits, so the rounding step is ≥ ``2^35`` and midpoints
  are multiples of ``2^34``, none of which lies strictly between the addend and addend ± ε (so
  ``QMAX = G + 33`` is the least that works). The rounded result is then always the addend itself; the
  sticky 1 just keeps the datapath uniform.
* ``x = 0`` (``P = 0``): nothing may be sticky, so the window is re-based to put the addend at ``G`` —
  the result is the addend itself.

Subnormal results and zero. Every operand is a multiple of ``2^−149`` (``F`` is a float32, ``t`` is a
float32 value, and ``s ≤ 149`` by the supported-constant rule below), so every exact sum is too. A sum
below ``2^−126`` therefore has ≤ 23 significant bits and needs no rounding, and whenever a sticky bit is
set the window unit is ``> 2^−149`` (the discarded addend bits are ≥ ``2^−149``) or the addend is far
above a normal product, so the sum is ≥ ``2^−123``: normal. Hence rounding to 24 significant bits with
no exponent floor — what the unit does — gives the same *value* as IEEE's subnormal rounding
(``fireforge.sim.softfloat.sf_round``), only with a normalised significand and an exponent that may go below −149 (down to
−172), which the 11-bit exponent holds. An exact-zero sum gives ``M = 0`` (the sign of zero cannot
change the output). Overflow to ±inf cannot happen: with ``ra, rb < 2^24`` the product is ``< 2^32``,
far below half an ulp of any float32 near ``2^128``.

Pipeline (registers after every step; no step has more than one wide shifter or one wide adder)::

  per fma (7 stages)                                                              widths
    I  x and M into the two multipliers' input registers; beside them x = 0,     8 b adds
       the addend and the shift-only terms (shift + constant)
    A  partial products x·M_lo, x·M_hi (in the multipliers, written into their    8×18, 8×6 DSP; 11 b adds
       output registers); q = E_c + s + G, case select (exact/sticky/far/x=0),
       the comparisons against shift-only terms
    B  P = x·M_lo + x·M_hi·2^18 (32 b add); align the addend: M_c << (q_eff + 25),  24 → 60 b, 6-bit amount
       sticky mask in parallel
    C  xp + xa, xp − xa, xa − xp side by side → magnitude and sign               3 × 61 b adders
    D  leading-zero count (8-bit encoders, then the first non-zero group)         64 b → 7 b
    E  normalise: shift left by the count; sticky of the 36 bits under the guard  61 b, 6-bit amount
       from a mask of the un-shifted value (parallel); result exponent
    F  round to 24 bits half to even (sticky from E), carry-out detected aside   24 b increment
  cvt (2 stages)
    G  classify by exponent (≥ 2^31 → 0, ≥ 256 → 255, < 1/4 → 0, negative → 0);  24 b >> 0..9
       M >> (16..25) with guard and sticky
    H  + round bit, clamp to 255                                                  9 b

``b`` goes through the first fma, ``a`` (with ``mult_a``, ``shift_a``) waits for ``t`` and goes through
the second, so :attr:`AddRequantizer.latency` is 7 + 7 + 2 = 16. Stage I exists because the multipliers'
input registers (:func:`fireforge.hw.dsp.registered_product`) must take ``x`` as it arrives: the other
stage-A operands wait beside them.

Supported host constants (:func:`add_constants_supported`; the compiler refuses the layer otherwise):
``ra`` and ``rb`` normal float32 with ``2^−126 ≤ r < 2^24`` (``shift`` in [0, 149], fits the 8-bit port;
a scale ratio ≥ 2^24 or a subnormal one is not a real quantised network), ``F`` any finite float32
(zero, subnormal, negative and huge values included; ``|F| ≥ 2^31`` simply gives the INT32_MIN → 0 or
the negative → 0 result). Results ``≥ 2^31`` before the clamp (``a·ra`` alone reaches ``255·2^24``)
reproduce ORT's INT32_MIN → 0 quirk.
"""


import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import BuildVariant
from fireforge.core.numerics import requant_multiplier
from fireforge.hw.dsp import PRODUCT_LATENCY, check_multipliers, registered_product
from fireforge.hw.requant import pipe_stage, leading_zeros

__all__ = ["AddRequantizer", "FMA_LATENCY", "add_constants_supported", "add_port_constants"]

G = 3                 # window bits below the product's LSB
QMAX = G + 33         # highest exact addend position: above it the product (< 2^(G+32)) is sticky
QMIN = -25            # lowest addend position needed: at or below it the addend is all sticky
WIN = QMAX + 25       # magnitude window: addend top bit QMAX+23, plus one carry bit = 61 bits
EXP = signed(11)      # LSB exponents -172 (2^-149 normalised) .. 104 (float32 max), and intermediates
FMA_LATENCY = 7       # stages of one fma (:func:`_fma`): I, A .. F


# Inside a stage the logic is written as expressions of the previous stage's registers, not as chains
# of comb Signals: the hardware is the same, but Amaranth's simulator then settles each clock edge in
# one pass instead of one pass per Signal hop (4-5x faster; the tests stream ~250k cases).


def _unpack_f32(bits):
    """``(sign, M, B, 150)`` of finite float32 ``bits``, the exponent as ``E = B - 150``: ``B`` is the biased
    exponent, or 1 for a subnormal (biased 0: no hidden bit, ``E = -149``); zero gives ``M = 0``. ``B`` is
    the raw field with one OR on its low bit, so no adder stands between the port and :func:`_fma`'s
    comparisons."""
    biased = bits[23:31]
    is_sub = biased == 0
    return bits[31], Cat(bits[:23], ~is_sub), Cat(biased[0] | is_sub, biased[1:]), 150


def _shift_terms(shift, c_bias: int) -> dict:
    """The terms of stage A that depend on ``shift`` alone (one small adder each): the addend position's
    offset, the limits of the far / below comparisons, and window bit 0's exponent for a plain product.
    Computed ahead (and carried in registers) where ``shift`` is known early, they take an adder off
    stage A's path."""
    return {"off": shift + (G - QMIN - c_bias), "far_lim": (QMAX - G + c_bias) - shift,
            "below_lim": (c_bias + QMIN - G) - shift, "e_prod": -G - shift}


def _fma(m: Module, name: str, valid, x, mult, shift, c_sign, c_mant, c_exp, c_bias: int, carry: dict,
         multipliers: str = BuildVariant.multipliers):
    """:data:`FMA_LATENCY` (7) pipeline stages computing
    ``fl(x · mult·2^-shift + (−1)^c_sign · c_mant·2^(c_exp − c_bias))``.

    ``shift`` is a Value, or the dict :func:`_shift_terms` ``(shift, c_bias)`` computed earlier.
    ``multipliers``: how ``x · mult`` is built (:func:`fireforge.hw.dsp.registered_product`).

    ``carry`` holds extra values to delay alongside (they come out with the result). Returns
    ``(valid, sign, mant, exp, carried)`` as registers.
    """
    def keep(regs):
        return {k: regs[k] for k in carry}

    # -- I: the inputs registered; x and mult in the multipliers' input registers ----------------------------
    # the product as two DSP partial products (x·M_lo, x·M_hi), out of the multipliers' output registers at
    # the end of stage A and summed in stage B beside the aligner
    prod_lo = registered_product(m, x, mult[:18], name=f"{name}_a_prod_lo", multipliers=multipliers)
    prod_hi = registered_product(m, x, mult[18:], name=f"{name}_a_prod_hi", multipliers=multipliers)
    assert PRODUCT_LATENCY == 2     # stages I and A
    terms = shift if isinstance(shift, dict) else _shift_terms(shift, c_bias)
    i = pipe_stage(m, f"{name}_i", valid=valid, x_zero=x == 0, c_sign=c_sign, c_mant=c_mant, c_exp=c_exp,
              **{f"t_{k}": v for k, v in terms.items()}, **carry)
    c_sign, c_mant, c_exp = i["c_sign"], i["c_mant"], i["c_exp"]
    terms = {k: i[f"t_{k}"] for k in terms}

    # -- A: exact product, addend position, case selection -------------------------------------------------
    # pos = q - QMIN, q = E_c + s + G the addend's LSB position in the window, E_c = c_exp - c_bias. The
    # comparisons of pos are made on c_exp against shift-only terms (registered beside it), so each result
    # is one adder or comparator from stage I's registers, then a mux.
    pos = c_exp + terms["off"]
    x_zero = i["x_zero"]
    # addend so far above the product that P is sticky: pos > QMAX - QMIN
    far = (c_exp > terms["far_lim"]) & (c_mant != 0) & ~x_zero
    below = c_exp < terms["below_lim"]                                     # pos < 0
    amount = Signal(range(QMAX - QMIN + 1), name=f"{name}_a_amount")      # q_eff - QMIN, in [0, 61]
    m.d.sync += amount.eq(Mux(x_zero, G - QMIN, Mux(far, QMAX - QMIN, Mux(below, 0, pos))))
    # exponent of window bit 0
    e_unit = Mux(x_zero, c_exp - (c_bias + G), Mux(far, c_exp - (c_bias + QMAX), terms["e_prod"]))
    e_reg = Signal(EXP, name=f"{name}_a_e_unit")
    m.d.sync += e_reg.eq(e_unit)
    a = pipe_stage(m, f"{name}_a", valid=i["valid"], far=far, c_sign=c_sign, c_mant=c_mant, **keep(i))

    # -- B: align the addend (one 24 → 86-bit shifter); sticky from a mask in parallel -----------------------
    wide = a["c_mant"] << amount
    below = (Const(2**25 - 1, 25) >> amount)[:24]  # addend bits i + amount < 25: under window bit 0
    sticky = (a["c_mant"] & below) != 0
    xa = Signal(WIN - 1, name=f"{name}_b_xa")
    xp = Signal(G + 32, name=f"{name}_b_xp")
    prod = (prod_lo + (prod_hi << 18))[:32]
    m.d.sync += [xa.eq(wide[-QMIN:] | sticky), xp.eq(Mux(a["far"], 1, prod << G))]
    b = pipe_stage(m, f"{name}_b", valid=a["valid"], c_sign=a["c_sign"], e_unit=e_reg, **keep(a))

    # -- C: add (same sign) or subtract both ways (one adder delay) -----------------------------------------
    # three carry chains side by side: xp + xa, xp − xa, xa − xp; then a 3:1 select on c_sign and a sign
    diff = xp - xa
    neg = b["c_sign"] & (diff < 0)
    mag = Signal(WIN, name=f"{name}_c_mag")
    m.d.sync += mag.eq(Mux(b["c_sign"], Mux(diff < 0, xa - xp, diff), xp + xa))
    c = pipe_stage(m, f"{name}_c", valid=b["valid"], neg=neg, e_unit=b["e_unit"], **keep(b))

    # -- D: leading-zero count over the window (padded to 64 at the bottom) ---------------------------------
    lzc = Signal(7, name=f"{name}_d_lzc")
    m.d.sync += lzc.eq(leading_zeros(Cat(Const(0, 64 - WIN), mag), 64))
    d = pipe_stage(m, f"{name}_d", valid=c["valid"], mag=mag, neg=c["neg"], e_unit=c["e_unit"], **keep(c))

    # -- E: normalise (top bit to WIN-1) and the exponent of the 24-bit significand's LSB -------------------
    # The sticky (bits under the guard after normalising: mag bits i < 36 - lzc) comes from a mask of
    # the un-shifted magnitude, in parallel with the shifter, so stage F is only the increment.
    norm = Signal(WIN, name=f"{name}_e_norm")
    e_res = Signal(EXP, name=f"{name}_e_exp")
    sticky = Signal(name=f"{name}_e_sticky")
    m.d.sync += [norm.eq(d["mag"] << lzc[:6]), e_res.eq(d["e_unit"] + (WIN - 24) - lzc),
                 sticky.eq((d["mag"][:WIN - 25] & (Const(2**(WIN - 25) - 1, WIN - 25) >> lzc)) != 0)]
    e = pipe_stage(m, f"{name}_e", valid=d["valid"], neg=d["neg"], **keep(d))

    # -- F: round to 24 significant bits, half to even ------------------------------------------------------
    top = norm[WIN - 24:]
    up = norm[WIN - 25] & (sticky | top[0])          # guard & (sticky | odd)
    over = up & (top == 2**24 - 1)                   # rounds up to 2^24: detected beside the adder
    mant = Signal(24, name=f"{name}_f_mant")
    exp = Signal(EXP, name=f"{name}_f_exp")
    m.d.sync += [mant.eq((top + up)[:24] | (over << 23)), exp.eq(Mux(over, e_res + 1, e_res))]
    f = pipe_stage(m, f"{name}_f", valid=e["valid"], sign=e["neg"], **keep(e))
    return f["valid"], f["sign"], mant, exp, keep(f)


class AddRequantizer(wiring.Component):
    """One lane of QLinearAdd requantization, fully pipelined (one result per cycle).

    Parameters
    ----------
    multipliers : str
        How the four partial products (two per fma) are built (:data:`fireforge.hw.dsp.MULTIPLIERS`):
        ``"inferred"`` (plain Amaranth, any tool) or ``"ecp5"`` (MULT18X18D instances with their input and
        output registers). Same behaviour and :attr:`latency` either way.

    Members
    -------
    valid, a, b : In
        The two uint8 inputs (raw quantised values, zero points *not* subtracted).
    mult_a, shift_a, mult_b, shift_b : In
        ``ra = mult_a · 2^-shift_a``, ``rb = mult_b · 2^-shift_b`` (from
        :func:`fireforge.sim.requant.requant_multiplier`; ``2^23 ≤ mult < 2^24``, ``shift ≤ 149``).
    addend : In
        ``F`` as IEEE float32 bits (any finite value).
    out_valid, out : Out
        ``requant.qlinear_add`` of the inputs, :attr:`latency` cycles later.

    See :func:`add_constants_supported` for which constants the block handles.
    """

    valid: In(1)
    a: In(unsigned(8))
    b: In(unsigned(8))
    mult_a: In(unsigned(24))
    shift_a: In(unsigned(8))
    mult_b: In(unsigned(24))
    shift_b: In(unsigned(8))
    addend: In(unsigned(32))
    out_valid: Out(1)
    out: Out(unsigned(8))

    latency = 2 * FMA_LATENCY + 2       # 16

    def __init__(self, *, multipliers: str = BuildVariant.multipliers):
        self.multipliers = check_multipliers(multipliers)
        super().__init__()

    @classmethod
    def needs(cls, *, multipliers: str = BuildVariant.multipliers) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): per fma, ``x · M_lo`` and ``x · M_hi`` (an
        8-bit input times the 18 and 6 bits of a 24-bit significand), whether inferred or MULT18X18D
        instances; no memories."""
        check_multipliers(multipliers)
        return {"products": {(8, False, 18, False): 2, (8, False, 6, False): 2}, "memories": []}

    def elaborate(self, platform):
        m = Module()

        # t = fma(b, rb, F); a and its constants travel alongside
        v1, t_sign, t_mant, t_exp, later = _fma(
            m, "fma1", self.valid, self.b, self.mult_b, self.shift_b, *_unpack_f32(self.addend),
            carry={"a": self.a, "mult_a": self.mult_a,
                   **{f"sa_{k}": v for k, v in _shift_terms(self.shift_a, 0).items()}},
            multipliers=self.multipliers)
        # r = fma(a, ra, t); shift_a's terms were computed at the input and carried
        v2, r_sign, r_mant, r_exp, _ = _fma(
            m, "fma2", v1, later["a"], later["mult_a"], {k[3:]: v for k, v in later.items() if k.startswith("sa_")},
            t_sign, t_mant, t_exp, 0, carry={}, multipliers=self.multipliers)

        # -- G: cvt + clamp, classified by the exponent (r = M·2^E with 2^23 <= M < 2^24 or M = 0) ----------
        #   E >= 8: r >= 2^31 -> INT32_MIN -> 0;  -15 <= E <= 7: 256 <= r < 2^31 -> 255;
        #   E <= -26: r < 1/4 -> 0;  -25 <= E <= -16: RNE(M / 2^(16+j)), j = -16-E in [0, 9], <= 256.
        zero = r_sign | (r_mant == 0) | (r_exp >= 8) | (r_exp <= -26)
        sat = (r_exp >= -15) & (r_exp <= 7)
        j = (-16 - r_exp)[:4]
        shifted = r_mant >> j
        under_guard = Const(2**24 - 1, 24) >> (9 - j)[:4]   # bits i < 15 + j, for j in [0, 9]
        rest = (r_mant & under_guard) != 0
        g = pipe_stage(m, "cvt", valid=v2, zero=zero, sat=sat, q=shifted[16:24],
                  up=shifted[15] & (rest | shifted[16]))

        # -- H: round up and clamp -----------------------------------------------------------------------
        v = g["q"] + g["up"]                             # 9 b: 256 only from rounding 255.5
        m.d.sync += [self.out_valid.eq(g["valid"]),
                     self.out.eq(Mux(g["zero"], 0, Mux(g["sat"] | v[8], 255, v[:8])))]
        return m


# ----------------------------------------------------------------------------------------------
# Host side
# ----------------------------------------------------------------------------------------------


def _as_f32(value, what: str):
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None, f"{what} {value!r} is not a number"
    if not np.isfinite(f):
        return None, f"{what} {f!r} is not finite (ORT outputs all zeros; not supported by the add unit)"
    with np.errstate(over="ignore"):
        s = np.float32(f)
    if float(s) != f:
        return None, f"{what} {f!r} is not a float32 value"
    return s, None


def add_constants_supported(ra, rb, F) -> str | None:
    """``None`` if :class:`AddRequantizer` computes ``qlinear_add`` exactly for these host constants
    (from :func:`fireforge.sim.requant.qlinear_add_params`), else the reason.

    Rules: ``ra``, ``rb`` normal float32 with ``2^-126 ≤ r < 2^24`` (i.e. ``requant_multiplier`` shift
    in [0, 149]: the 8-bit port, products < 2^32, every operand a multiple of 2^-149); ``F`` finite.
    """
    for name, r in (("scale ratio ra (a_scale / y_scale)", ra), ("scale ratio rb (b_scale / y_scale)", rb)):
        s, why = _as_f32(r, name)
        if why:
            return why
        if not s > 0:
            return f"{name} {float(s)!r} is not positive"
        if s < np.finfo(np.float32).tiny:
            return f"{name} {float(s)!r} is subnormal (below 2^-126)"
        if s >= np.float32(2.0**24):
            return f"{name} {float(s)!r} is >= 2^24 (multiplier shift would be negative)"
    _, why = _as_f32(F, "zero-point term F")
    return why


def add_port_constants(ra, rb, F) -> dict:
    """The constant input ports for host constants ``(ra, rb, F)``: mult/shift per ratio, F's bits.

    Raises ValueError with :func:`add_constants_supported`'s reason if they are not supported.
    """
    why = add_constants_supported(ra, rb, F)
    if why:
        raise ValueError(why)

    mult_a, shift_a = requant_multiplier(ra)
    mult_b, shift_b = requant_multiplier(rb)
    bits = int(np.array(np.float32(F), np.float32).view(np.uint32))
    return {"mult_a": mult_a, "shift_a": shift_a, "mult_b": mult_b, "shift_b": shift_b, "addend": bits}
