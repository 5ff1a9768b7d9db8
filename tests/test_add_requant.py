"""The QLinearAdd unit (fireforge.hw.add_requant) against the float32 emulation of ORT's QLinearAdd.

Every comparison is exact (0 mismatching bytes).  The reference is ``requant.qlinear_add`` (itself
checked against ONNX Runtime in test_requant.py); for host constants that do not come from scales
(huge, subnormal or negative-zero F, ratios at the edges of the supported range) the same float32
steps are applied to the constants directly, and those are cross-checked with the integer soft-float
model of sim/softfloat.py.  All randomness is seeded.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from fireforge.hw import add_requant as AR
from fireforge.hw.add_requant import AddRequantizer, add_constants_supported, add_port_constants
from fireforge.sim import requant as R
from fireforge.sim import softfloat as SF

F32 = np.float32
PORTS = ("mult_a", "shift_a", "mult_b", "shift_b", "addend")


# ----------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------


def ref_from_constants(a, b, ra, rb, f):
    """ORT's per-element QLinearAdd on host constants: clamp(cvt(fma(a, ra, fma(b, rb, F))))."""
    a = np.asarray(a, np.uint8).astype(F32)
    b = np.asarray(b, np.uint8).astype(F32)
    t = SF.fma_f32(b, np.asarray(rb, F32), np.asarray(f, F32))
    r = SF.fma_f32(a, np.asarray(ra, F32), t)
    return np.clip(SF.cvtps2dq(r), 0, 255).astype(np.uint8)


def ref_soft_float(a, b, ra, rb, f):
    """The same with the integer soft-float model (independent of NumPy float arithmetic)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    t = SF.sf_fma(SF.sf_from_int(b), SF.sf_from_f32(np.asarray(rb, F32)), SF.sf_from_f32(np.asarray(f, F32)))
    r = SF.sf_fma(SF.sf_from_int(a), SF.sf_from_f32(np.asarray(ra, F32)), t)
    return np.clip(SF.sf_cvt(r), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Simulation: one case per cycle
# ----------------------------------------------------------------------------------------------


def port_arrays(ra, rb, f):
    """Per-case port values (int64 arrays) for arrays of host constants."""
    ra, rb, f = (np.atleast_1d(np.asarray(x, F32)) for x in (ra, rb, f))
    cols = {k: np.empty(len(ra), np.int64) for k in PORTS}
    cache = {}
    for i, key in enumerate(zip(ra.view(np.uint32), rb.view(np.uint32), f.view(np.uint32))):
        if key not in cache:
            cache[key] = add_port_constants(ra[i], rb[i], f[i])
        for k in PORTS:
            cols[k][i] = cache[key][k]
    return cols


PERIOD = 1e-8
FIELDS = (("valid", 1), ("a", 8), ("b", 8), ("mult_a", 24), ("shift_a", 8), ("mult_b", 24), ("shift_b", 8),
          ("addend", 32))


def stream(fields, cols: dict, build, out_width: int, latency: int) -> np.ndarray:
    """Feed case i to a pipeline at cycle i; check its valid output is ``valid`` delayed by ``latency``;
    return each case's output (0 for bubbles).

    ``build(m, inputs)`` adds the design under test to ``m`` (``inputs`` maps field names to Values) and
    returns ``(out_valid, out)``.  The stimulus sits in a ROM inside the simulated design (addressed by
    a cycle counter) and every cycle's (out_valid, out) is written to a capture RAM read back at the end,
    so the testbench does not wake up each cycle: less than half the simulation time of ctx.set/ctx.get
    per cycle, for the same one-case-per-cycle stream.
    """
    n = len(cols["valid"])
    words = [0] * n
    off = 0
    for name, width in fields:
        col = np.broadcast_to(np.asarray(cols[name], np.int64), (n,)).tolist()
        assert all(0 <= v < 2**width for v in col), name
        words = [w | (v << off) for w, v in zip(words, col)]
        off += width
    cycles = n + latency + 1

    m = Module()
    m.submodules.stim = stim = Memory(shape=unsigned(off), depth=cycles + 1, init=words)  # then zeros
    m.submodules.capture = capture = Memory(shape=unsigned(out_width + 1), depth=cycles, init=[])
    rd = stim.read_port(domain="comb")
    wr = capture.write_port()
    cycle = Signal(range(cycles + 1))
    m.d.sync += cycle.eq(cycle + 1)
    m.d.comb += rd.addr.eq(cycle)
    inputs, off = {}, 0
    for name, width in fields:
        inputs[name] = rd.data[off:off + width]
        off += width
    out_valid, out = build(m, inputs)
    m.d.comb += [wr.addr.eq(cycle), wr.en.eq(cycle < cycles), wr.data.eq(Cat(out, out_valid))]

    sim = Simulator(m)
    sim.add_clock(PERIOD)             # rising edges at (k + 1/2) * PERIOD
    seen = []

    async def bench(ctx):
        await ctx.delay(cycles * PERIOD)   # one wake-up for the whole run (tick().repeat wakes per cycle)
        seen.extend(ctx.get(capture.data[i]) for i in range(cycles))

    sim.add_testbench(bench)
    sim.run()
    seen = np.array(seen, dtype=object)
    got_valid = (seen >> out_width).astype(np.int64)
    want_valid = np.zeros(cycles, np.int64)
    want_valid[latency:latency + n] = cols["valid"]
    bad = np.flatnonzero(got_valid != want_valid)
    assert not len(bad), f"out_valid is not valid delayed by {latency} cycles (first difference at cycle {bad[0]})"
    return np.where(want_valid == 1, seen & (2**out_width - 1), 0)[latency:latency + n]


def simulate(a, b, ports: dict, valid=None) -> np.ndarray:
    """AddRequantizer on case i = (a[i], b[i], ports[*][i]) at cycle i; the outputs (0 for bubbles)."""
    n = len(a)
    cols = {"a": a, "b": b, "valid": np.ones(n, np.int64) if valid is None else valid, **ports}

    def build(m, inputs):
        m.submodules.dut = dut = AddRequantizer()
        for name, value in inputs.items():
            m.d.comb += getattr(dut, name).eq(value)
        return dut.out_valid, dut.out

    return stream(FIELDS, cols, build, 8, AddRequantizer.latency).astype(np.uint8)


def assert_same(got, want, what, **cases):
    bad = np.flatnonzero(got != want)
    if len(bad):
        i = bad[0]
        detail = ", ".join(f"{k}={np.asarray(v)[i] if np.ndim(v) else v!r}" for k, v in cases.items())
        pytest.fail(f"{what}: {len(bad)} of {len(want)} mismatch; first: {detail}: got {got[i]}, want {want[i]}")


# ----------------------------------------------------------------------------------------------
# Full 256 x 256 grids on realistic layers
# ----------------------------------------------------------------------------------------------

GRID = np.arange(256 * 256)
GRID_A, GRID_B = GRID >> 8, GRID & 255

GRID_LAYERS = [  # a_scale, a_zp, b_scale, b_zp, y_scale, y_zp
    (0.0473, 128, 0.1109, 128, 0.1327, 128),  # ratios 0.36 / 0.84
    (0.3913, 0, 0.0517, 255, 0.1306, 0),      # ratios 3.0 / 0.40, F negative
    (0.0625, 128, 0.1875, 255, 0.125, 255),   # ratios 0.5 / 1.5 exactly, F = -191.5: many .5 ties
]


@pytest.mark.parametrize("layer", GRID_LAYERS, ids=["ratio0.36-0.84", "ratio3.0-0.4", "ties0.5-1.5"])
def test_full_grid(layer):
    sa, za, sb, zb, sy, zy = layer
    ra, rb, f = R.qlinear_add_params(F32(sa), za, F32(sb), zb, F32(sy), zy)
    assert add_constants_supported(ra, rb, f) is None
    want = R.qlinear_add(GRID_A, F32(sa), za, GRID_B, F32(sb), zb, F32(sy), zy)
    assert 0 < np.count_nonzero(want == 0) and 0 < np.count_nonzero(want == 255)  # both saturations
    got = simulate(GRID_A, GRID_B, add_port_constants(ra, rb, f))
    assert_same(got, want, f"grid {layer}", a=GRID_A, b=GRID_B)


# ----------------------------------------------------------------------------------------------
# Random parameter sets, one case per cycle
# ----------------------------------------------------------------------------------------------


def _scale_cases(rng, n_sets, per_set, ratio_lo, ratio_hi, zps=None, ties=False):
    """Cases from (scale, zp) layers: returns a, b, ra, rb, F arrays and the qlinear_add reference."""
    a, b, ra, rb, f, want = [], [], [], [], [], []
    for _ in range(n_sets):
        sy = F32(np.exp(rng.uniform(np.log(1e-3), np.log(1.0))))
        if ties:  # ratios k / 2^n: products exact, many .5 ties and 24-bit ties
            ka, kb = (F32(int(rng.integers(1, 64)) / 2.0 ** int(rng.integers(0, 8))) for _ in range(2))
            sa, sb = F32(sy * ka), F32(sy * kb)
        else:
            sa, sb = (F32(sy * np.exp(rng.uniform(np.log(ratio_lo), np.log(ratio_hi)))) for _ in range(2))
        za, zb, zy = (int(rng.choice(zps)) if zps else int(rng.integers(0, 256)) for _ in range(3))
        r_a, r_b, r_f = R.qlinear_add_params(sa, za, sb, zb, sy, zy)
        if add_constants_supported(r_a, r_b, r_f) is not None:
            continue
        x_a = rng.integers(0, 256, per_set)
        x_b = rng.integers(0, 256, per_set)
        # half the cases: a chosen so the result lands inside [0, 255] (extreme ratios saturate otherwise)
        aim = rng.uniform(-1, 256, per_set)
        a_aim = np.rint((aim - float(r_f) - x_b * float(r_b)) / float(r_a))
        use = (rng.random(per_set) < 0.5) & (a_aim >= 0) & (a_aim <= 255)
        x_a = np.where(use, a_aim, x_a).astype(np.int64)
        a.append(x_a)
        b.append(x_b)
        ra.append(np.full(per_set, r_a))
        rb.append(np.full(per_set, r_b))
        f.append(np.full(per_set, r_f))
        want.append(R.qlinear_add(x_a, sa, za, x_b, sb, zb, sy, zy))
    return [np.concatenate(x) for x in (a, b, ra, rb, f, want)]


def _constant_cases(rng, n):
    """Cases straight from host constants over the whole supported range (edges, F of any size)."""
    tiny, top = np.finfo(F32).tiny, F32(2.0**24)
    ra = F32(2.0) ** rng.uniform(-126, 24, n).astype(F32)
    rb = F32(2.0) ** rng.uniform(-126, 24, n).astype(F32)
    # bias towards the interesting middle: output-relevant ratios
    mid = rng.random(n) < 0.5
    ra[mid] = F32(2.0) ** rng.uniform(-12, 12, mid.sum()).astype(F32)
    rb[mid] = F32(2.0) ** rng.uniform(-12, 12, mid.sum()).astype(F32)
    edge = rng.random(n) < 0.05
    ra[edge] = rng.choice(np.array([tiny, np.nextafter(top, F32(0)), F32(2.0**23), F32(1.0)], F32), edge.sum())
    rb[edge[::-1]] = rng.choice(np.array([tiny, np.nextafter(top, F32(0)), F32(1.0)], F32), edge.sum())
    ra = np.minimum(np.maximum(ra, tiny), np.nextafter(top, F32(0))).astype(F32)
    rb = np.minimum(np.maximum(rb, tiny), np.nextafter(top, F32(0))).astype(F32)
    # F: random bit patterns of every exponent (subnormals, +-0 included), plus output-range values
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    bits = np.where(((bits >> 23) & 0xFF) == 0xFF, bits & ~np.uint32(0x40000000), bits)  # no inf/NaN
    f = bits.view(F32).copy()
    k = rng.random(n)
    f[k < 0.5] = rng.uniform(-300, 600, (k < 0.5).sum()).astype(F32)
    f[(k >= 0.5) & (k < 0.55)] = F32(0.0)
    f[(k >= 0.55) & (k < 0.6)] = F32(-0.0)
    f[(k >= 0.6) & (k < 0.65)] = (rng.integers(1, 2**23, ((k >= 0.6) & (k < 0.65)).sum())
                                 .astype(np.uint32).view(F32))          # subnormal F
    a = rng.integers(0, 256, n)
    b = rng.integers(0, 256, n)
    a[rng.random(n) < 0.05] = 0
    b[rng.random(n) < 0.05] = 0
    # cancellation: F = -(b*rb) (+ a few ulps) so t is tiny, zero or subnormal; or r lands near 0.5 / 255.5
    c = rng.random(n)
    cancel_t = c < 0.1
    f[cancel_t] = (-(b[cancel_t] * rb[cancel_t].astype(np.float64))).astype(F32)
    wiggle = cancel_t & (rng.random(n) < 0.5)
    for _ in range(3):
        f[wiggle] = np.nextafter(f[wiggle], rng.choice(np.array([np.inf, -np.inf], F32), wiggle.sum()))
    near = (c >= 0.1) & (c < 0.25)
    target = rng.choice(np.array([0.5, 1.5, 254.5, 255.5, 2.0**31 - 64, 0.0]), near.sum())
    f[near] = (target - a[near] * ra[near].astype(np.float64) - b[near] * rb[near].astype(np.float64)).astype(F32)
    return a, b, ra, rb, f


def _int32_min_cases():
    """r crosses 2^31 - 64 (float32 2^31 - 128 vs 2^31: 255 vs INT32_MIN -> 0), including the tie."""
    a = np.full(256, 255)
    b = np.arange(256)
    ra = np.full(256, F32(2.0**23))
    rb = np.full(256, F32(1.0))
    f = np.full(256, F32(2.0**23 - 64 - 128))   # r = 255*2^23 + b + F crosses at b = 128
    return a, b, ra, rb, f


def _fma_tie_cases(rng, n):
    """t = b + F with |t| in [2^24, 2^25) and b odd: an exact tie at the first fma's rounding (ulp 2),
    which r = a*2^17 + t (a = a0) then exposes as output b - 2c +- 1."""
    a0 = rng.integers(128, 256, n)
    c = rng.integers(0, 60, n)
    b = rng.integers(0, 256, n)
    f = (-(a0 * 2**17 + 2 * c)).astype(F32)
    assert np.array_equal(f.astype(np.int64), -(a0 * 2**17 + 2 * c))     # F exactly representable
    return a0, b, np.full(n, F32(2.0**17)), np.full(n, F32(1.0)), f


def test_random_parameter_sets():
    rng = np.random.default_rng(20240611)
    parts = []
    # realistic layers: ratios 0.3..3, zero points 0 / 128 / 255
    parts.append(_scale_cases(rng, 150, 20, 0.3, 3.0, zps=(0, 128, 255)))
    # any zero points, extreme ratios 1e-3..1e3
    parts.append(_scale_cases(rng, 300, 20, 1e-3, 1e3))
    # ratios k / 2^n: exact products, .5 ties at the conversion and ties at the 24-bit roundings
    parts.append(_scale_cases(rng, 150, 20, 0, 0, ties=True))
    # ratios up to ~1e7: a * ra reaches 2^31 (ORT's INT32_MIN -> 0 quirk)
    parts.append(_scale_cases(rng, 50, 20, 1e5, 1.6e7))
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    ra, rb, f = (np.concatenate([p[i] for p in parts]).astype(F32) for i in (2, 3, 4))
    want_scales = np.concatenate([p[5] for p in parts])
    assert np.array_equal(ref_from_constants(a, b, ra, rb, f), want_scales)

    # host constants over the whole supported range
    ca, cb, cra, crb, cf = _constant_cases(rng, 8000)
    ta, tb, tra, trb, tf = _fma_tie_cases(rng, 512)
    ia, ib, ira, irb, i_f = _int32_min_cases()
    a = np.concatenate([a, ca, ta, ia])
    b = np.concatenate([b, cb, tb, ib])
    ra = np.concatenate([ra, cra, tra, ira]).astype(F32)
    rb = np.concatenate([rb, crb, trb, irb]).astype(F32)
    f = np.concatenate([f, cf, tf, i_f]).astype(F32)
    want = ref_from_constants(a, b, ra, rb, f)
    assert np.array_equal(want[:len(want_scales)], want_scales)
    assert np.array_equal(ref_soft_float(a, b, ra, rb, f), want)        # two independent references agree
    # the directed cases hit what they are meant to hit
    assert list(want[-256:]) == [255] * 128 + [0] * 128
    for v in (0, 255):
        assert np.count_nonzero(want == v) > 1000
    assert np.count_nonzero((want > 0) & (want < 255)) > 6000
    approx = a * ra.astype(np.float64) + b * rb.astype(np.float64) + f.astype(np.float64)
    assert np.count_nonzero((approx > 2.0**31 + 2**12) & (want == 0)) > 100    # INT32_MIN -> 0 quirk
    assert np.count_nonzero(np.abs(f) < np.finfo(F32).tiny) > 500              # zero / subnormal F
    r = SF.fma_f32(a.astype(F32), ra, SF.fma_f32(b.astype(F32), rb, f)).astype(np.float64)
    assert np.count_nonzero((r > 0) & (r < 256) & (r % 1 == 0.5)) > 300         # cvt ties (x.5 exactly)
    tied = slice(len(want) - 768, len(want) - 256)
    t_exact = b[tied] + f[tied].astype(np.float64)
    assert np.count_nonzero(t_exact % 2 != 0) > 200                            # first-fma ties
    assert np.count_nonzero((want[tied] > 0) & (want[tied] < 255)) > 300

    got = simulate(a, b, port_arrays(ra, rb, f))
    assert_same(got, want, "random cases", a=a, b=b, ra=ra, rb=rb, F=f)


# ----------------------------------------------------------------------------------------------
# Supported constants
# ----------------------------------------------------------------------------------------------


def test_supported_constants():
    ok = add_constants_supported
    assert ok(F32(0.5), F32(1.25), F32(-3.0)) is None
    assert ok(np.finfo(F32).tiny, np.nextafter(F32(2.0**24), F32(0)), F32(0.0)) is None
    assert ok(F32(1.0), F32(1.0), F32(1e-45)) is None                 # subnormal F is fine
    assert ok(F32(1.0), F32(1.0), np.finfo(F32).max) is None
    assert "2^24" in ok(F32(2.0**24), F32(1.0), F32(0.0))
    assert "subnormal" in ok(F32(1.0), F32(1e-40), F32(0.0))
    assert "positive" in ok(F32(0.0), F32(1.0), F32(0.0))
    assert "positive" in ok(F32(1.0), F32(-1.0), F32(0.0))
    assert "finite" in ok(F32(1.0), F32(1.0), F32(np.inf))
    assert "finite" in ok(F32(1.0), F32(1.0), F32(np.nan))
    assert "float32" in ok(0.1, F32(1.0), F32(0.0))                    # float64 0.1 is not a float32
    with pytest.raises(ValueError, match="2\\^24"):
        add_port_constants(F32(3e7), F32(1.0), F32(0.0))
    p = add_port_constants(F32(0.75), F32(2.0), F32(-0.0))
    assert p == {"mult_a": 0xC00000, "shift_a": 24, "mult_b": 0x800000, "shift_b": 22, "addend": 0x80000000}


def test_bubbles_and_latency():
    """Cases with valid low in between: out_valid is valid delayed by exactly ``latency`` cycles."""
    rng = np.random.default_rng(7)
    n = 600
    a, b = rng.integers(0, 256, n), rng.integers(0, 256, n)
    ra, rb, f = R.qlinear_add_params(F32(0.02), 77, F32(0.035), 200, F32(0.04), 131)
    valid = (rng.random(n) < 0.6).astype(np.int64)
    got = simulate(a, b, add_port_constants(ra, rb, f), valid=valid)
    want = np.where(valid == 1, R.qlinear_add(a, F32(0.02), 77, b, F32(0.035), 200, F32(0.04), 131), 0)
    assert_same(got, want, "bubbles", a=a, b=b)


# ----------------------------------------------------------------------------------------------
# One fused multiply-add stage on its own: its float32 result is visible, so every rounding case
# (ties, sticky bits under the window, cancellation, exact subnormals) is checked directly.
# ----------------------------------------------------------------------------------------------

FMA_FIELDS = (("valid", 1), ("x", 8), ("mult", 24), ("shift", 8), ("addend", 32))


def _fma_cases(rng, n):
    """(x, r, F) for fl(x*r + F): random, cancelling, tie products with sticky-only addends, power-of-two
    products minus addends straddling the window bottom, addends far above, exact subnormal results."""
    kinds = rng.integers(0, 6, n)
    x = rng.integers(0, 256, n)
    x[rng.random(n) < 0.03] = 0
    r = (F32(2.0) ** rng.uniform(-126, 24, n).astype(F32)).astype(F32)
    r = np.clip(r, np.finfo(F32).tiny, np.nextafter(F32(2.0**24), F32(0))).astype(F32)
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    bits = np.where(((bits >> 23) & 0xFF) == 0xFF, bits & ~np.uint32(0x40000000), bits)
    f = bits.view(F32).copy()
    prod = x * r.astype(np.float64)                          # exact in float64
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)

    # 1: cancellation: F = -fl(x r) moved by a few ulps, exact zero or tiny results
    k = kinds == 1
    f[k] = np.nextafter((-prod[k]).astype(F32), (sign[k] * np.inf).astype(F32))
    e = k & (rng.random(n) < 0.3)
    f[e] = (-prod[e]).astype(F32)                 # x r - fl(x r): the exact rounding error (or 0)
    # 2: products x*M that are exact ties at 24 bits, plus an addend 2^20..2^80 times smaller (partly or
    #    wholly under the window bottom: the sticky bit decides the rounding) or zero
    k = np.flatnonzero(kinds == 2)
    cand_x = rng.integers(3, 256, 400000)
    cand_m = rng.integers(2**23, 2**24, 400000)
    p = cand_x * cand_m
    d = np.floor(np.log2(p)).astype(np.int64) + 1 - 24
    tie = (d >= 1) & ((p & ((1 << np.maximum(d, 1)) - 1)) == (1 << np.maximum(d - 1, 0)))
    pick = rng.choice(np.flatnonzero(tie), len(k))
    shift = rng.integers(0, 150, len(k))
    x[k] = cand_x[pick]
    r[k] = (cand_m[pick] * 2.0 ** -shift).astype(F32)
    prod[k] = x[k] * r[k].astype(np.float64)
    scale = 2.0 ** rng.integers(-80, -20, len(k)) * np.where(rng.random(len(k)) < 0.5, -1, 1)
    f[k] = np.where(rng.random(len(k)) < 0.15, 0.0, prod[k] * scale * rng.uniform(1, 2, len(k))).astype(F32)
    # 3: power-of-two product minus an addend 8..1000 times smaller (borrow into the binade below; the
    #    addend's low bits fall under the window bottom)
    k = np.flatnonzero(kinds == 3)
    x[k] = 2 ** rng.integers(0, 8, len(k))
    r[k] = (2.0 ** rng.integers(-100, 24, len(k))).astype(F32)
    prod[k] = x[k] * r[k].astype(np.float64)
    f[k] = (-prod[k] / rng.uniform(8, 1000, len(k))).astype(F32)
    # 4: addend far above the product, either sign, often a power of two (binade edge when subtracting)
    k = np.flatnonzero(kinds == 4)
    # 2^22..2^30 straddles the switch to "product only sticky" (addend LSB 2^34 product LSBs up)
    big = prod[k] * 2.0 ** np.where(rng.random(len(k)) < 0.5, rng.integers(22, 31, len(k)),
                                    rng.integers(12, 60, len(k)))
    big = np.where(rng.random(len(k)) < 0.5, 2.0 ** np.ceil(np.log2(np.maximum(big, 1e-300))), big)
    f[k] = (sign[k] * big).astype(F32)
    # 5: tiny operands: results in or near the subnormal range (exact)
    k = np.flatnonzero(kinds == 5)
    r[k] = (2.0 ** rng.uniform(-126, -100, len(k))).astype(F32)
    r[k] = np.maximum(r[k], np.finfo(F32).tiny)
    prod[k] = x[k] * r[k].astype(np.float64)
    f[k] = (-prod[k] * rng.uniform(0.5, 1.5, len(k))).astype(F32)
    f[k[: len(k) // 4]] = (rng.integers(1, 2**23, len(k[: len(k) // 4])).astype(np.uint32)).view(F32)
    return kinds, x, r.astype(F32), f.astype(F32)


def test_fma_stage_is_ieee_fma():
    """fl(x * r + F) from one fma pipeline (``FMA_LATENCY`` stages) against IEEE fma, for x uint8, r in the supported
    range and F any finite float32."""
    rng = np.random.default_rng(99)
    kinds, x, r, f = _fma_cases(rng, 12000)
    for i in range(len(r)):
        assert add_constants_supported(r[i], F32(1), f[i]) is None, (r[i], f[i])
    want = SF.fma_f32(x.astype(F32), r, f)
    # the soft-float model agrees (independent of the float64 round-to-odd trick)
    sf = SF.sf_to_f32(SF.sf_fma(SF.sf_from_int(x.astype(np.int64)), SF.sf_from_f32(r), SF.sf_from_f32(f)))
    assert np.array_equal(sf.view(np.uint32), want.view(np.uint32))
    rm, rs = map(np.array, zip(*(R.requant_multiplier(v) for v in r)))
    cols = {"valid": np.ones(len(x), np.int64), "x": x, "mult": rm, "shift": rs,
            "addend": f.view(np.uint32).astype(np.int64)}

    def build(m, inputs):
        valid, sign, mant, exp, _ = AR._fma(m, "fma", inputs["valid"], inputs["x"], inputs["mult"],
                                            inputs["shift"], *AR._unpack_f32(inputs["addend"]), carry={})
        return valid, Cat(mant, exp, sign)

    got = stream(FMA_FIELDS, cols, build, 36, AR.FMA_LATENCY)
    got = np.array([int(v) for v in got], np.int64)
    g_m, g_e, g_s = got & 0xFFFFFF, (got >> 24) & 0x7FF, got >> 35
    g_e = np.where(g_e >= 0x400, g_e - 0x800, g_e)                 # 11-bit two's complement
    assert np.all((g_m == 0) | ((g_m >= 2**23) & (g_m < 2**24))), "fma output not normalised"
    got_value = np.where(g_s == 1, -1.0, 1.0) * np.ldexp(g_m.astype(np.float64), g_e)
    want_value = want.astype(np.float64)
    bad = np.flatnonzero(got_value != want_value)
    if len(bad):
        i = bad[0]
        pytest.fail(f"fma: {len(bad)} of {len(x)} mismatch; first: x={x[i]} r={r[i]!r} F={f[i]!r}: "
                    f"got {got_value[i]!r}, want {want_value[i]!r}")
    # what the cases were meant to reach
    exact_small = (np.abs(want_value) < np.finfo(F32).tiny) & (want_value != 0)
    assert np.count_nonzero(exact_small) > 100 and np.count_nonzero(want_value == 0) > 100
    sticky_decided = (kinds == 2) & (f != 0) & (want != (x * r.astype(np.float64)).astype(F32))
    assert np.count_nonzero(sticky_decided) > 300       # tie products pushed off the tie by a tiny F
