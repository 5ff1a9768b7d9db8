"""The requantizer: int32 accumulator → uint8, bit-exact with ONNX Runtime's float32 requantization.

Hardware twin of :func:`fireforge.sim.requant.requantize`. ORT computes ``nearbyint(fp32(fp32(acc)·scale))``
(+ zero point, clamped); the same result comes from integers alone, step by step:

1. ``|acc|`` rounded to 24 significant bits, half to even (what ``int → float32`` does);
2. the exact product with the scale's 24-bit mantissa, rounded again to 24 significant bits (the float32
   multiply) — the product of two normalised 24-bit numbers has 47 or 48 bits, so one bit tells which;
3. a right shift by ``shift − exponent`` rounding half to even (``nearbyint``);
4. sign, + zero point, clamp to [0, 255] (or [zero point, 255] with ReLU).

Each step is one pipeline stage (the multiply two), so no path is longer than a 32-bit add or a
24×25-bit multiply; :attr:`Requantizer.latency` says how many cycles the result trails its input.
"""


from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantizer", "round_shift_rne"]


def round_shift_rne(m: Module, value: Signal, amount, width_out: int, *, name: str):
    """Combinational ``round_half_even(value / 2**amount)`` for an unsigned ``value``; returns a Signal."""
    out = Signal(width_out, name=name)
    w = len(value)
    q = Signal(w, name=f"{name}_q")
    m.d.comb += q.eq(value >> amount)
    # remainder vs half: remainder = value mod 2^amount, half = 2^(amount-1)
    mask = Signal(w, name=f"{name}_mask")
    m.d.comb += mask.eq((Const(1, w + 1) << amount) - 1)
    rem = Signal(w, name=f"{name}_rem")
    m.d.comb += rem.eq(value & mask)
    half = Signal(w + 1, name=f"{name}_half")
    m.d.comb += half.eq((Const(1, w + 2) << amount) >> 1)
    up = Signal(name=f"{name}_up")
    m.d.comb += up.eq((amount != 0) & ((rem > half) | ((rem == half) & q[0])))
    m.d.comb += out.eq(q + up)
    return out


class Requantizer(wiring.Component):
    """One lane of requantization, fully pipelined (one result per cycle).

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

    latency = 6

    def elaborate(self, platform):
        m = Module()

        # s1: sign, magnitude, and how many low bits the int→float32 conversion drops
        s1_valid = Signal()
        s1_neg = Signal()
        s1_mag = Signal(32)
        s1_drop = Signal(range(9))
        s1_mant, s1_shift, s1_zp, s1_relu = Signal(24), Signal(8), Signal(8), Signal()
        mag = Signal(32)
        m.d.comb += mag.eq(Mux(self.acc < 0, -self.acc, self.acc))
        drop = Signal(range(9))
        for bit in range(24, 32):  # bit-length L > 24 drops L-24 bits
            with m.If(mag[bit]):
                m.d.comb += drop.eq(bit - 23)
        m.d.sync += [s1_valid.eq(self.valid), s1_neg.eq(self.acc < 0), s1_mag.eq(mag), s1_drop.eq(drop),
                     s1_mant.eq(self.mantissa), s1_shift.eq(self.shift), s1_zp.eq(self.zero_point),
                     s1_relu.eq(self.relu)]

        # s2: round the magnitude to 24 significant bits (A < 2^24, or exactly 2^24 after a carry)
        s2_valid, s2_neg, s2_a, s2_ea = Signal(), Signal(), Signal(25), Signal(range(9))
        s2_mant, s2_shift, s2_zp, s2_relu = Signal(24), Signal(8), Signal(8), Signal()
        a = round_shift_rne(m, s1_mag, s1_drop, 25, name="s1_round")
        m.d.sync += [s2_valid.eq(s1_valid), s2_neg.eq(s1_neg), s2_a.eq(a), s2_ea.eq(s1_drop),
                     s2_mant.eq(s1_mant), s2_shift.eq(s1_shift), s2_zp.eq(s1_zp), s2_relu.eq(s1_relu)]

        # s3, s4: the exact product (two stages so it maps onto pipelined DSPs)
        s3_valid, s3_neg, s3_ea = Signal(), Signal(), Signal(range(9))
        s3_a, s3_mant = Signal(25), Signal(24)
        s3_shift, s3_zp, s3_relu = Signal(8), Signal(8), Signal()
        m.d.sync += [s3_valid.eq(s2_valid), s3_neg.eq(s2_neg), s3_ea.eq(s2_ea), s3_a.eq(s2_a),
                     s3_mant.eq(s2_mant), s3_shift.eq(s2_shift), s3_zp.eq(s2_zp), s3_relu.eq(s2_relu)]
        s4_valid, s4_neg, s4_ea = Signal(), Signal(), Signal(range(9))
        s4_p = Signal(49)
        s4_shift, s4_zp, s4_relu = Signal(8), Signal(8), Signal()
        m.d.sync += [s4_valid.eq(s3_valid), s4_neg.eq(s3_neg), s4_ea.eq(s3_ea), s4_p.eq(s3_a * s3_mant),
                     s4_shift.eq(s3_shift), s4_zp.eq(s3_zp), s4_relu.eq(s3_relu)]

        # s5: round the product to 24 significant bits (float32 multiply) and shift to the binary point
        # (nearbyint). The product's bit length: ≤ 24 only when A = 0; else 47, 48 or 49 (A = 2^24).
        plen = Signal(range(50))
        for bit in range(49):
            with m.If(s4_p[bit]):
                m.d.comb += plen.eq(bit + 1)
        d2 = Signal(range(26))
        m.d.comb += d2.eq(Mux(plen > 24, plen - 24, 0))
        q = round_shift_rne(m, s4_p, d2, 25, name="s4_round")         # Q ≤ 2^24
        # value = Q · 2^(ea + d2 − shift); k = shift − ea − d2 is the right shift to the integer
        k = Signal(signed(10))
        m.d.comb += k.eq(s4_shift - s4_ea - d2)
        shift_amt = Signal(range(27))
        m.d.comb += shift_amt.eq(Mux(k < 0, 0, Mux(k > 26, 26, k)))
        r = round_shift_rne(m, q, shift_amt, 25, name="s5_round")
        big = Signal()      # |value| ≥ 512 saturates whatever the zero point
        m.d.comb += big.eq(((k <= 0) & (q != 0)) | (r >= 512))
        s5_valid, s5_neg, s5_big, s5_r = Signal(), Signal(), Signal(), Signal(10)
        s5_zp, s5_relu = Signal(8), Signal()
        m.d.sync += [s5_valid.eq(s4_valid), s5_neg.eq(s4_neg), s5_big.eq(big), s5_r.eq(r[:10]),
                     s5_zp.eq(s4_zp), s5_relu.eq(s4_relu)]

        # s6: sign, zero point, clamp
        v = Signal(signed(12))
        m.d.comb += v.eq(Mux(s5_neg, -s5_r, s5_r) + s5_zp)
        lo = Signal(signed(12))
        m.d.comb += lo.eq(Mux(s5_relu, s5_zp, 0))
        y = Signal(8)
        with m.If(s5_big):
            m.d.comb += y.eq(Mux(s5_neg, lo, 255))
        with m.Elif(v > 255):
            m.d.comb += y.eq(255)
        with m.Elif(v < lo):
            m.d.comb += y.eq(lo)
        with m.Else():
            m.d.comb += y.eq(v)
        m.d.sync += [self.out_valid.eq(s5_valid), self.out.eq(y)]
        return m
