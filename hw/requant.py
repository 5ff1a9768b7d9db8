"""The requantizer: int32 accumulator → uint8, bit-exact with ONNX Runtime's float32 requantization.

Hardware twin of :func:`fireforge.sim.requant.requantize`. ORT computes ``nearbyint(fp32(fp32(acc)·scale))``
(+ zero point, clamped); the same result comes from integers alone:

1. ``|acc|`` as a float32: normalised to a 24-bit significand ``A`` (``2^23 ≤ A < 2^24``) with exponent
   ``8 − lz`` (``lz`` = leading zeros of the 32-bit magnitude), rounded half to even when ``|acc| ≥ 2^24``
   (what ``int → float32`` does). A carry out of the rounding gives ``A = 2^23`` and one more in the exponent.
2. The exact product ``P = A · mantissa`` of two normalised 24-bit numbers has 47 or 48 bits (``P[47]``
   tells which), so the float32 multiply's rounding to 24 significant bits, ``Q``, drops a fixed 23 or 24
   bits (a 2:1 mux, no barrel shifter); ``2^23 ≤ Q ≤ 2^24``.
3. The value is ``Q · 2^−k`` with ``k = shift + lz − 31 − P[47] − carry``. Since ``Q ≥ 2^23``, ``k ≤ 15``
   means ``|value| ≥ 256`` (saturates whatever the zero point), ``k ≥ 26`` means ``|value| ≤ 1/4`` (rounds
   to 0), so ``nearbyint`` is a right shift by ``k ∈ [16, 25]`` (a 10-way mux) rounding half to even.
4. Sign, + zero point, clamp to [0, 255] (or [zero point, 255] with ReLU). ``acc = 0`` skips the saturation.

Pipeline (a register after every row; :attr:`Requantizer.latency` = 15 cycles, one result per cycle)::

   1  |acc|                                                   32-bit conditional negate
   2  leading-zero count (four byte encoders, first non-zero byte wins)     32 b → 6 b
   3  normalise, coarse: << 0/8/16/24; shift + lz                 4:1 mux; 10-bit add
   4  normalise, fine: << 0..7                                    8:1 mux
   5  round to 24 bits (guard, sticky, carry detected aside); k − carry   24-bit increment; 11-bit add
   6  A and the mantissa into the four multipliers' input registers      route to the DSP blocks
   7  four partial products A_hi/lo × M_hi/lo (18 + 6 bits each side)      18×18 DSP multiplies
      (in the multiplier between its input and output registers, :func:`fireforge.hw.dsp.registered_product`)
   8  cross terms summed; the outer ones are concatenated                 25-bit add
   9  P = outer + cross · 2^18                                    30-bit add
  10  select P's top 24 bits (by P[47]), guard and sticky; k − P[47]      2:1 mux, 23-bit OR; 11-bit add
  11  Q = top + round bit; k classified (≤ 15, ≥ 26, k − 16)              24-bit increment; 11-bit compares
  12  Q >> k: result bits, guard and sticky (mask, then OR)               10:1 mux, 24-bit OR
  13  r = rounded result (0 if k ≥ 26), ≤ 256                             9-bit increment
  14  ± r + zero point (both signs side by side)                          11-bit add
  15  clamp                                                               11-bit compares, mux

So no path is longer than a 32-bit add, an 18×18 multiply inside its block's own registers, or a few LUT
levels of mux / OR.
"""


from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.dsp import check_multipliers, registered_product
from fireforge.core.config import BuildVariant

__all__ = ["Requantizer"]


def pipe_stage(m: Module, prefix: str, **values):
    """One pipeline register per value (shape taken from the value); returns them as a dict. Only ``valid``
    is reset: the data registers need none, and leaving them off keeps the reset net's fan-out down (it
    reaches every reset flip-flop of the chip)."""
    regs = {}
    for key, value in values.items():
        reg = Signal(value.shape(), name=f"{prefix}_{key}", reset_less=key != "valid")
        m.d.sync += reg.eq(value)
        regs[key] = reg
    return regs


def leading_zeros(v, width: int):
    """Leading-zero count of the ``width``-bit value ``v`` (``width`` for zero; ``width`` a multiple of 8): one
    8-bit priority encoder per byte, then the highest non-zero byte picks its count. Every sub-expression is
    used once (no blow-up when inlined); synthesis flattens the small cones into a few LUT levels."""
    groups = width // 8
    count = Const(width, range(width + 1))
    for g in range(groups):                 # lowest byte first, so the highest non-zero byte wins
        bits = v[8 * g:8 * g + 8]
        local = Const(0, 3)
        for i in range(8):                  # lowest bit first, so the byte's top set bit wins
            local = Mux(bits[i], 7 - i, local)
        count = Mux(bits != 0, 8 * (groups - 1 - g) + local, count)
    return count


class Requantizer(wiring.Component):
    """One lane of requantization, fully pipelined (one result per cycle).

    Parameters
    ----------
    multipliers : str
        How the four partial products are built (:data:`fireforge.hw.dsp.MULTIPLIERS`): ``"inferred"``
        (plain Amaranth, any tool) or ``"ecp5"`` (MULT18X18D instances with their input and output
        registers). Same behaviour and :attr:`latency` either way.

    Members
    -------
    valid, acc, mantissa, shift, zero_point, relu : In
        The accumulator (signed 32-bit) and its channel's parameters: scale = mantissa · 2^-shift with
        2^23 ≤ mantissa < 2^24.
    out_valid, out : Out
        The uint8 result, :attr:`latency` cycles later.
    """

    valid: In(1)
    acc: In(signed(32))
    mantissa: In(unsigned(24))
    shift: In(unsigned(8))
    zero_point: In(unsigned(8))
    relu: In(1)
    out_valid: Out(1)
    out: Out(unsigned(8))

    latency = 15

    def __init__(self, *, multipliers: str = BuildVariant.multipliers):
        self.multipliers = check_multipliers(multipliers)
        super().__init__()

    @classmethod
    def needs(cls, *, multipliers: str = BuildVariant.multipliers) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): the four partial products of stage 7,
        ``A_lo/hi × M_lo/hi`` (A is stage 5's 32-bit register, its top 8 bits constant 0, so ``A_hi`` has
        14 bits), whether inferred or MULT18X18D instances; no memories."""
        check_multipliers(multipliers)
        return {"products": {(18, False, 18, False): 1, (14, False, 18, False): 1, (18, False, 6, False): 1,
                             (14, False, 6, False): 1}, "memories": []}

    def elaborate(self, platform):
        m = Module()
        # Inside a stage the logic is written as expressions of the previous stage's registers (not chains
        # of comb Signals): same hardware, but Amaranth's simulator settles each edge in one pass.

        # 1: sign and magnitude (|-2^31| = 2^31 fits the unsigned 32 bits)
        neg = self.acc < 0
        s1 = pipe_stage(m, "s1", valid=self.valid, neg=neg, mag=Mux(neg, -self.acc, self.acc)[:32],
                   mant=self.mantissa, shift=self.shift, zp=self.zero_point, relu=self.relu)

        # 2: leading zeros of the magnitude (32 for zero)
        s2 = pipe_stage(m, "s2", valid=s1["valid"], neg=s1["neg"], mag=s1["mag"], lz=leading_zeros(s1["mag"], 32),
                   nz=s1["mag"] != 0, mant=s1["mant"], shift=s1["shift"], zp=s1["zp"], relu=s1["relu"])

        # 3: normalise by whole bytes; k's first term (shift + lz - 31, see the module docstring)
        coarse = Mux(s2["lz"][4], Mux(s2["lz"][3], s2["mag"] << 24, s2["mag"] << 16),
                     Mux(s2["lz"][3], s2["mag"] << 8, s2["mag"]))
        s3 = pipe_stage(m, "s3", valid=s2["valid"], neg=s2["neg"], mag=coarse[:32], fine=s2["lz"][:3],
                   k=(s2["shift"] + s2["lz"] - 31)[:11].as_signed(), nz=s2["nz"],
                   mant=s2["mant"], zp=s2["zp"], relu=s2["relu"])

        # 4: normalise by 0..7 bits: the top bit of a non-zero magnitude is now bit 31
        s4 = pipe_stage(m, "s4", valid=s3["valid"], neg=s3["neg"], norm=(s3["mag"] << s3["fine"])[:32], k=s3["k"],
                   nz=s3["nz"], mant=s3["mant"], zp=s3["zp"], relu=s3["relu"])

        # 5: int -> float32: keep 24 bits, round half to even; a carry (top all ones) gives 2^23, exponent + 1
        norm = s4["norm"]
        top = norm[8:32]
        up = norm[7] & ((norm[:7] != 0) | top[0])
        over = up & (top == 2**24 - 1)
        s5 = pipe_stage(m, "s5", valid=s4["valid"], neg=s4["neg"], a=(top + up)[:24] | (over << 23),
                   k=(s4["k"] - over)[:11].as_signed(), nz=s4["nz"], mant=s4["mant"], zp=s4["zp"], relu=s4["relu"])

        # 6: A and the mantissa into the four multipliers' input registers: from stage 5's flip-flops, so the
        # route to the multiplier blocks (a few columns of the die) is all this stage's path. On the ULX3S the
        # rounding increment feeding the blocks directly was 7.7 ns with 4.75 of routing on a requantizer alone.
        a, mt = s5["a"], s5["mant"]
        halves = {"l": (a[:18], mt[:18]), "h": (a[18:], mt[18:])}
        s6 = pipe_stage(m, "s6", valid=s5["valid"], neg=s5["neg"], k=s5["k"], nz=s5["nz"], zp=s5["zp"], relu=s5["relu"])
        products = {ka + kb: registered_product(m, halves[ka][0], halves[kb][1], name=f"s7_{ka}{kb}",
                                                multipliers=self.multipliers) for ka, kb in ("ll", "hl", "lh", "hh")}

        # 7: partial products of A · M with 18-bit low halves (each one DSP multiply, whose output register
        # is stage 7's)
        s7 = pipe_stage(m, "s7", valid=s6["valid"], neg=s6["neg"], k=s6["k"], nz=s6["nz"], zp=s6["zp"], relu=s6["relu"])
        s7.update(products)

        # 8: the cross terms added; ll < 2^36 so ll + hh·2^36 is a concatenation
        s8 = pipe_stage(m, "s8", valid=s7["valid"], neg=s7["neg"], outer=Cat(s7["ll"], s7["hh"])[:48],
                   cross=(s7["hl"] + s7["lh"])[:25], k=s7["k"], nz=s7["nz"], zp=s7["zp"], relu=s7["relu"])

        # 9: P = outer + cross · 2^18 (the low 18 bits pass through); P < 2^48
        outer = s8["outer"]
        s9 = pipe_stage(m, "s9", valid=s8["valid"], neg=s8["neg"], p=Cat(outer[:18], (outer[18:] + s8["cross"])[:30]),
                   k=s8["k"], nz=s8["nz"], zp=s8["zp"], relu=s8["relu"])

        # 10: float32 multiply: P has 48 bits (P[47]) or 47; its top 24 bits, guard and sticky
        p = s9["p"]
        t = p[47]
        kept = Mux(t, p[24:48], p[23:47])
        guard = Mux(t, p[23], p[22])
        sticky = Mux(t, p[:23] != 0, p[:22] != 0)
        s10 = pipe_stage(m, "s10", valid=s9["valid"], neg=s9["neg"], kept=kept, up=guard & (sticky | kept[0]),
                   k=(s9["k"] - t)[:11].as_signed(), nz=s9["nz"], zp=s9["zp"], relu=s9["relu"])

        # 11: Q (2^23 <= Q <= 2^24 unless acc = 0); classify k
        k = s10["k"]
        s11 = pipe_stage(m, "s11", valid=s10["valid"], neg=s10["neg"], q=(s10["kept"] + s10["up"])[:25],
                    big=s10["nz"] & (k <= 15), tiny=k >= 26, j=(k - 16)[:4], zp=s10["zp"], relu=s10["relu"])

        # 12: nearbyint(Q / 2^(16 + j)), j in [0, 9]: result bits, guard, sticky (bits below the guard)
        q, j = s11["q"], s11["j"]
        rt = (q[16:] >> j)[:9]
        guard = (q[15:] >> j)[0]
        below = Const(2**24 - 1, 24) >> (9 - j)[:4]       # bits i < 15 + j
        s12 = pipe_stage(m, "s12", valid=s11["valid"], neg=s11["neg"], rt=rt,
                    up=guard & (((q[:24] & below) != 0) | rt[0]), big=s11["big"], tiny=s11["tiny"],
                    zp=s11["zp"], relu=s11["relu"])

        # 13: the rounded magnitude, <= 256 (>= 256 saturates below like anything bigger)
        s13 = pipe_stage(m, "s13", valid=s12["valid"], neg=s12["neg"],
                    r=Mux(s12["tiny"], 0, s12["rt"] + s12["up"])[:9], big=s12["big"], zp=s12["zp"],
                    relu=s12["relu"])

        # 14: sign and zero point (both sums side by side)
        r, zp = s13["r"], s13["zp"]
        s14 = pipe_stage(m, "s14", valid=s13["valid"], neg=s13["neg"],
                    v=Mux(s13["neg"], zp - r, zp + r)[:11].as_signed(), lo=Mux(s13["relu"], zp, 0)[:8],
                    big=s13["big"])

        # 15: clamp to [lo, 255]; |value| >= 256 saturates to 255 or lo by the sign
        v, lo = s14["v"], s14["lo"]
        y = Mux(s14["big"], Mux(s14["neg"], lo, 255),
                Mux(v > 255, 255, Mux(v < lo, lo, v)))
        m.d.sync += [self.out_valid.eq(s14["valid"]), self.out.eq(y[:8])]
        return m
