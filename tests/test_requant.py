"""Byte-exactness of fireforge.sim.requant against itself (integer == float32 twin) and ONNX Runtime.

Every comparison is exact (0 mismatching bytes).  ORT runs single-threaded on tiny single-node
models; all randomness is seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fireforge.sim import requant as R
from fireforge.sim import softfloat as SF

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F32 = np.float32


# ----------------------------------------------------------------------------------------------
# ORT single-node runners
# ----------------------------------------------------------------------------------------------


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def _run(nodes, inputs: dict, inits, ms_domain=True):
    vis = [helper.make_tensor_value_info(k, TensorProto.UINT8, v.shape) for k, v in inputs.items()]
    graph = helper.make_graph(nodes, "g", vis, [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    opsets = [helper.make_opsetid("", 13)]
    if ms_domain:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


def ort_qlinear_add(a, sa, za, b, sb, zb, sy, zy):
    inits = [_init("sa", F32(sa)), _init("za", np.uint8(za)), _init("sb", F32(sb)), _init("zb", np.uint8(zb)),
             _init("sy", F32(sy)), _init("zy", np.uint8(zy))]
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"],
                            domain="com.microsoft")
    return _run([node], {"a": np.asarray(a, np.uint8), "b": np.asarray(b, np.uint8)}, inits)


def ort_qlinear_concat(xs, scales, zps, sy, zy, axis):
    inits = [_init("sy", F32(sy)), _init("zy", np.uint8(zy))]
    names, feeds = ["sy", "zy"], {}
    for i, (x, s, z) in enumerate(zip(xs, scales, zps)):
        inits += [_init(f"s{i}", F32(s)), _init(f"z{i}", np.uint8(z))]
        names += [f"x{i}", f"s{i}", f"z{i}"]
        feeds[f"x{i}"] = np.asarray(x, np.uint8)
    node = helper.make_node("QLinearConcat", names, ["y"], domain="com.microsoft", axis=axis)
    return _run([node], feeds, inits)


def _pool_inits(xs, xz, ys, yz):
    return [_init("xs", F32(xs)), _init("xz", np.uint8(xz)), _init("ys", F32(ys)), _init("yz", np.uint8(yz))]


def ort_global_average_pool(x, xs, xz, ys, yz):
    node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                            domain="com.microsoft", channels_last=0)
    return _run([node], {"x": np.asarray(x, np.uint8)}, _pool_inits(xs, xz, ys, yz))


def ort_average_pool(x, xs, xz, ys, yz, kernel, strides, pads, count_include_pad):
    node = helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft",
                            kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                            count_include_pad=int(count_include_pad))
    return _run([node], {"x": np.asarray(x, np.uint8)}, _pool_inits(xs, xz, ys, yz))


def ort_qlinear_conv(x, xs, xz, w, ws, bias, ys, yz):
    inits = [_init("xs", F32(xs)), _init("xz", np.uint8(xz)), _init("w", np.asarray(w, np.int8)),
             _init("ws", np.asarray(ws, F32)), _init("wz", np.zeros(len(ws), np.int8)), _init("ys", F32(ys)),
             _init("yz", np.uint8(yz)), _init("b", np.asarray(bias, np.int32))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"])
    return _run([node], {"x": np.asarray(x, np.uint8)}, inits, ms_domain=False)


def _conv_acc(x, xz, w, bias):
    """Exact int32 accumulators of a stride-1, unpadded conv (x [1,Ci,H,W] u8, w [Co,Ci,kh,kw])."""
    _, _, h, wd = x.shape
    co, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    xd = x[0].astype(np.int64) - xz
    acc = np.zeros((co, oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            acc += np.einsum("chw,oc->ohw", xd[:, i:i + oh, j:j + ow], w[:, :, i, j].astype(np.int64))
    acc += np.asarray(bias, np.int64)[:, None, None]
    assert np.all((acc >= -2**31) & (acc < 2**31))
    return acc


def _zp(rng):
    return int(rng.choice([0, 128, 255, int(rng.integers(256))]))


GRID_A = np.repeat(np.arange(256, dtype=np.uint8), 256)  # every (a, b) byte pair
GRID_B = np.tile(np.arange(256, dtype=np.uint8), 256)


# ----------------------------------------------------------------------------------------------
# requant_multiplier
# ----------------------------------------------------------------------------------------------


def test_requant_multiplier_is_exact():
    rng = np.random.default_rng(0)
    bits = rng.integers(0x00800000, 0x7F800000, 20000, dtype=np.int64).astype(np.uint32)
    scales = list(bits.view(F32)) + [F32(1.0), F32(0.5), np.finfo(F32).tiny, np.finfo(F32).max, F32(2.0**-126),
                                     F32(2.0**24), F32(3.0)]
    for s in scales:
        m, sh = R.requant_multiplier(s)
        assert 2**23 <= m < 2**24 and -104 <= sh <= 149
        assert math.ldexp(m, -sh) == float(s)
    assert R.requant_multiplier(F32(1.0)) == (2**23, 23)
    assert R.requant_multiplier(np.finfo(F32).tiny) == (2**23, 149)
    m, sh = R.requant_multipliers(np.array([[0.5, 0.25]], F32))
    assert m.shape == sh.shape == (1, 2) and list(sh.ravel()) == [24, 25]


@pytest.mark.parametrize("bad", [0.0, -0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-45,
                                 float(np.finfo(F32).tiny) / 2, 0.1, 1e39])
def test_requant_multiplier_rejects(bad):
    with pytest.raises(ValueError) as exc:
        R.requant_multiplier(bad)
    assert repr(bad) in str(exc.value) or str(bad) in str(exc.value)


# ----------------------------------------------------------------------------------------------
# integer requantize == float32 twin
# ----------------------------------------------------------------------------------------------


def _edge_accs(rng):
    edges = [0, 1, -1, 2, -2, 3, -3, 2**23 - 1, 2**23, 2**23 + 1, 2**24 - 1, 2**24, 2**24 + 1, 2**24 + 2,
             2**24 + 3, 2**25 + 2, 2**25 + 6, 2**30 + 2**6, 2**31 - 1, -2**31, -2**31 + 1, 2**31 - 64,
             2**31 - 65, 2**31 - 128, 2**31 - 129]
    edges += [-e for e in edges if -2**31 <= -e < 2**31]
    # ties of the int32 -> float32 conversion: 24 significant bits + exactly half an ulp
    k = rng.integers(1, 8, 4000)
    ties = (rng.integers(2**23, 2**24, 4000) * 2 + 1) << (k - 1)
    ties = np.where(rng.integers(0, 2, 4000) == 1, -ties, ties)
    parts = [np.array(edges, np.int64), ties, rng.integers(-2**31, 2**31, 6000), rng.integers(-600, 600, 3000),
             rng.integers(-2**24, 2**24, 4000), rng.integers(2**23, 2**24 * 2 // 3, 2000) | 1]
    acc = np.concatenate(parts)
    return np.clip(acc, -2**31, 2**31 - 1).astype(np.int64)


def _edge_scales(rng):
    out = []
    for e in range(-126, 128, 5):  # whole float32 exponent range, incl. fp32 overflow of the product
        out.append(F32(2.0**e))
    for e in range(-40, 12):  # realistic range, with short mantissas (product-rounding ties)
        for frac in (1.0, 1.25, 1.5, 1.75):
            out.append(F32(frac * 2.0**e))
    out += list(F32(2.0 ** rng.uniform(-40, 10, 60)))
    out += [np.finfo(F32).tiny, F32(2.0**-125 * 1.5), np.finfo(F32).max, F32(1.0 - 2.0**-24)]
    return out


def test_requantize_int_equals_float32_edges():
    rng = np.random.default_rng(1)
    acc = _edge_accs(rng)
    total = 0
    for i, s in enumerate(_edge_scales(rng)):
        m, sh = R.requant_multiplier(s)
        zp = [0, 128, 255, int(rng.integers(256))][i % 4]
        for relu in (False, True):
            got = R.requantize(acc, m, sh, zp, relu=relu)
            ref = R.requantize_float32(acc, s, zp, relu=relu)
            assert got.dtype == np.uint8
            np.testing.assert_array_equal(got, ref, err_msg=f"scale={s!r} zp={zp} relu={relu}")
            total += got.size
    assert total > 3_000_000


def test_requantize_known_values():
    # ties at .5 go to even, on both signs; saturation at both ends; relu clamps at the zero point
    acc = np.array([1, 3, 5, -1, -3, -5, 2**31 - 1, -2**31, 0])
    m, sh = R.requant_multiplier(F32(0.5))
    assert list(R.requantize(acc, m, sh, 128)) == [128, 130, 130, 128, 126, 126, 255, 0, 128]
    assert list(R.requantize(acc, m, sh, 128, relu=True)) == [128, 130, 130, 128, 128, 128, 255, 128, 128]
    # 2^24 + 1 converts to 2^24 (tie to even) before scaling: exactly 2^24 * 2^-24 = 1
    m, sh = R.requant_multiplier(F32(2.0**-24))
    assert list(R.requantize(np.array([2**24 + 1, 2**24 + 3, 3 * 2**23]), m, sh, 0)) == [1, 1, 2]


def test_requantize_per_channel_broadcast():
    rng = np.random.default_rng(2)
    c = 37
    scales = (2.0 ** rng.uniform(-30, 2, c)).astype(F32)
    zps = rng.integers(0, 256, c)
    m, sh = R.requant_multipliers(scales)
    acc = rng.integers(-2**31, 2**31, (2, c, 5, 7))
    acc[..., 0] = rng.integers(-5000, 5000, (2, c, 5))
    got = R.requantize(acc, m[:, None, None], sh[:, None, None], zps[:, None, None])
    ref = R.requantize_float32(acc, scales[:, None, None], zps[:, None, None])
    np.testing.assert_array_equal(got, ref)
    got = R.requantize(acc, m[:, None, None], sh[:, None, None], zps[:, None, None], relu=True)
    ref = R.requantize_float32(acc, scales[:, None, None], zps[:, None, None], relu=True)
    np.testing.assert_array_equal(got, ref)


def test_requantize_input_validation():
    m, sh = R.requant_multiplier(F32(0.25))
    with pytest.raises(ValueError):
        R.requantize(np.array([2**31]), m, sh, 0)
    with pytest.raises(ValueError):
        R.requantize(np.array([1]), 2**24, sh, 0)
    with pytest.raises(ValueError):
        R.requantize(np.array([1]), m, sh, 256)
    with pytest.raises(TypeError):
        R.requantize(np.array([1.0]), m, sh, 0)


# ----------------------------------------------------------------------------------------------
# QLinearConv requant vs ORT
# ----------------------------------------------------------------------------------------------


def test_conv_requant_matches_ort():
    """Per-channel QLinearConv.  |w| <= 64: this AVX2 machine's u8s8 kernel (VPMADDUBSW) saturates
    pairs of products to int16 for larger weights, which is an accumulator effect, not requant."""
    rng = np.random.default_rng(3)
    n = 0
    for t in range(12):
        ci, co, k = int(rng.integers(1, 17)), int(rng.integers(1, 40)), int(rng.choice([1, 3]))
        h = w = int(rng.integers(k, 8))
        xs = F32(10 ** rng.uniform(-3, 0))
        ws = (10 ** rng.uniform(-4, -1, co)).astype(F32)
        xz, yz = _zp(rng), _zp(rng)
        x = rng.integers(0, 256, (1, ci, h, w)).astype(np.uint8)
        wt = rng.integers(-64, 65, (co, ci, k, k)).astype(np.int8)
        big = t % 2 == 1  # accumulators up to the int32 limits (int->fp32 rounding)
        bias = rng.integers(-2**31 + 2**22, 2**31 - 2**22, co) if big else rng.integers(-5000, 5000, co)
        acc = _conv_acc(x, xz, wt, bias)
        typical = float(np.median(np.abs(acc))) * float(np.median(xs * ws))
        ys = F32(typical / (100.0 if t % 4 != 3 else 1e5) + 1e-12)
        scale = R.conv_requant_scales(xs, ws, ys)
        m, sh = R.requant_multipliers(scale)
        y = ort_qlinear_conv(x, xs, xz, wt, ws, bias, ys, yz)[0]
        np.testing.assert_array_equal(R.requantize(acc, m[:, None, None], sh[:, None, None], yz), y)
        np.testing.assert_array_equal(R.requantize_float32(acc, scale[:, None, None], yz), y)
        n += y.size
    assert n > 1000


# ----------------------------------------------------------------------------------------------
# QLinearAdd
# ----------------------------------------------------------------------------------------------


def _add_variant(a, sa, za, b, sb, zb, sy, zy, variant):
    """Plausible-but-wrong formulas, used only to prove the ORT test cases discriminate them."""
    ra, rb, f = R.qlinear_add_params(sa, za, sb, zb, sy, zy)
    af, bf = a.astype(F32), b.astype(F32)
    with np.errstate(all="ignore"):
        if variant == "unfused_F":
            f = F32(F32(zy) - F32(F32(ra * F32(za)) + F32(rb * F32(zb))))
            r = SF.fma_f32(af, ra, SF.fma_f32(bf, rb, f))
        elif variant == "a_first":
            r = SF.fma_f32(bf, rb, SF.fma_f32(af, ra, f))
        elif variant == "no_fma":
            r = (f + af * ra) + bf * rb
        else:  # dequantize, add, divide
            da = (a.astype(np.int32) - za).astype(F32) * F32(sa)
            db = (b.astype(np.int32) - zb).astype(F32) * F32(sb)
            r = (da + db) / F32(sy) + F32(zy)
    return np.clip(SF.cvtps2dq(r), 0, 255).astype(np.uint8)


def _add_cases():
    rng = np.random.default_rng(4)
    cases = []
    for _ in range(10):
        sa, sb, sy = (F32(10 ** rng.uniform(-4, 1)) for _ in range(3))
        cases.append((sa, _zp(rng), sb, _zp(rng), sy, _zp(rng)))
    cases.append((F32(0.1), 128, F32(0.1), 128, F32(0.2), 128))  # halves: ties everywhere
    cases.append((F32(0.5), 0, F32(0.25), 255, F32(1.0), 0))
    # huge ratios: |r| >= 2^31 -> CVTPS2DQ gives INT32_MIN -> output 0 even for large positive sums
    cases.append((F32(1.0), 0, F32(1.0), 0, F32(1e-7), 0))
    cases.append((F32(1.0), 128, F32(2.0), 128, F32(2.0**-23), 128))
    cases.append((F32(1e20), 3, F32(1.0), 4, F32(1e-20), 7))  # fp32 overflow to inf
    # cases where the zero-point term's FMA contraction matters (searched, seeded)
    found = 0
    while found < 4:
        sa, sb, sy = (F32(10 ** rng.uniform(-3, 1)) for _ in range(3))
        p = (sa, int(rng.integers(256)), sb, int(rng.integers(256)), sy, int(rng.integers(256)))
        ra, rb, f = R.qlinear_add_params(*p)
        unfused = F32(F32(p[5]) - F32(F32(ra * F32(p[1])) + F32(rb * F32(p[3]))))
        if unfused == f:
            continue
        ours = R.qlinear_add(GRID_A, p[0], p[1], GRID_B, p[2], p[3], p[4], p[5])
        alt = _add_variant(GRID_A, p[0], p[1], GRID_B, p[2], p[3], p[4], p[5], "unfused_F")
        if np.any(ours != alt):
            cases.append(p)
            found += 1
    return cases


def test_qlinear_add_matches_ort_exhaustive_grid():
    n = 0
    differs = {"unfused_F": 0, "a_first": 0, "no_fma": 0, "dequant_divide": 0}
    for sa, za, sb, zb, sy, zy in _add_cases():
        y = ort_qlinear_add(GRID_A, sa, za, GRID_B, sb, zb, sy, zy)
        np.testing.assert_array_equal(R.qlinear_add(GRID_A, sa, za, GRID_B, sb, zb, sy, zy), y)
        np.testing.assert_array_equal(R.qlinear_add_int(GRID_A, sa, za, GRID_B, sb, zb, sy, zy), y)
        for v in differs:
            differs[v] += int(np.sum(_add_variant(GRID_A, sa, za, GRID_B, sb, zb, sy, zy, v) != y))
        n += y.size
    assert n == 19 * 65536
    assert all(c > 0 for c in differs.values()), differs  # the cases really pin the formula down


def test_qlinear_add_broadcast_matches_ort():
    rng = np.random.default_rng(5)
    for _ in range(4):
        p = (F32(10 ** rng.uniform(-3, 0)), _zp(rng), F32(10 ** rng.uniform(-3, 0)), _zp(rng),
             F32(10 ** rng.uniform(-3, 0)), _zp(rng))
        a = rng.integers(0, 256, (1, 6, 5, 7)).astype(np.uint8)
        for b in (np.array([int(rng.integers(256))], np.uint8), rng.integers(0, 256, (1, 6, 1, 1)).astype(np.uint8)):
            for lhs, rhs, q in ((a, b, p), (b, a, (p[2], p[3], p[0], p[1], p[4], p[5]))):
                y = ort_qlinear_add(lhs, q[0], q[1], rhs, q[2], q[3], q[4], q[5])
                np.testing.assert_array_equal(R.qlinear_add(lhs, q[0], q[1], rhs, q[2], q[3], q[4], q[5]), y)
                np.testing.assert_array_equal(R.qlinear_add_int(lhs, q[0], q[1], rhs, q[2], q[3], q[4], q[5]), y)


def test_qlinear_add_int_equals_float_wide_scales():
    rng = np.random.default_rng(6)
    x = np.arange(256, dtype=np.uint8)
    checked = 0
    nonfinite = 0
    while checked < 300:
        sa, sb, sy = (F32(10 ** rng.uniform(-30, 30)) for _ in range(3))
        p = (sa, int(rng.integers(256)), sb, int(rng.integers(256)), sy, int(rng.integers(256)))
        ra, rb, f = R.qlinear_add_params(*p)
        b = x[::-1] if checked % 2 else np.uint8(rng.integers(256))
        np.testing.assert_array_equal(R.qlinear_add_int(x, p[0], p[1], b, p[2], p[3], p[4], p[5]),
                                      R.qlinear_add(x, p[0], p[1], b, p[2], p[3], p[4], p[5]))
        nonfinite += not (np.isfinite(ra) and np.isfinite(rb) and np.isfinite(f))
        checked += 1
    assert nonfinite > 0  # scale ratios overflowing float32 were exercised too


def test_soft_float_constants_equal_float32():
    rng = np.random.default_rng(7)
    a = (2.0 ** rng.uniform(-126, 127, 5000)).astype(F32)
    b = (2.0 ** rng.uniform(-126, 127, 5000)).astype(F32)
    sa, sb = SF.sf_from_f32(a), SF.sf_from_f32(b)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(SF.sf_to_f32(SF.sf_div(sa, sb)), a / b)
        np.testing.assert_array_equal(SF.sf_to_f32(SF.sf_mul(sa, sb)), a * b)
        np.testing.assert_array_equal(SF.sf_to_f32(SF.sf_add(sa, SF.sf_neg(sb))), a - b)
        near = (a * F32(1.0000001)).astype(F32)  # cancellation / Sterbenz cases
        np.testing.assert_array_equal(SF.sf_to_f32(SF.sf_add(sa, SF.sf_neg(SF.sf_from_f32(near)))), a - near)
        i = rng.integers(-255, 256, 5000)
        np.testing.assert_array_equal(SF.sf_to_f32(SF.sf_fma(SF.sf_from_int(i), sa, sb)),
                                      SF.fma_f32(i.astype(F32), a, b))


# ----------------------------------------------------------------------------------------------
# QLinearConcat
# ----------------------------------------------------------------------------------------------


def test_concat_tables_match_ort():
    rng = np.random.default_rng(8)
    sy, zy = F32(0.037), 131  # 1/0.037 is inexact in float32
    params = [(sy, zy), (sy, 0), (F32(sy * 2), zy)]  # identity copy, zp-only, scale-only
    for ratio in (0.5, 2.0, 0.25, 4.0, 1.5, 2.5, 3.0, 1 / 3, 0.1, 7.0):  # exact quotient ties
        params.append((F32(sy * F32(ratio)), _zp(rng)))
    while len(params) < 40:
        params.append((F32(sy * 10 ** rng.uniform(-1.5, 1.5)), _zp(rng)))
    recip_differs = 0  # dividing by y_scale vs multiplying by fl(1/y_scale): must be told apart
    for xs, xz in params[1:]:
        recip = (np.arange(256) - xz).astype(F32) * xs * F32(F32(1) / sy)
        recip = np.rint(np.clip(recip, -zy, 255 - zy)).astype(np.int64) + zy
        recip_differs += int(np.sum(recip != R.concat_requant_table(xs, xz, sy, zy)))
    assert recip_differs > 0
    xs_in = [np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16) for _ in params]
    y = ort_qlinear_concat(xs_in, [p[0] for p in params], [p[1] for p in params], sy, zy, axis=1)
    for i, (xs, xz) in enumerate(params):
        np.testing.assert_array_equal(R.concat_requant_table(xs, xz, sy, zy), y[0, i].ravel(),
                                      err_msg=f"x_scale={xs!r} x_zp={xz}")
    assert np.array_equal(R.concat_requant_table(sy, zy, sy, zy), np.arange(256))
    # the whole op on random data, concatenated on another axis
    ins = [rng.integers(0, 256, (2, 3, 4, k)).astype(np.uint8) for k in (1, 5, 2)]
    sc, zs = [F32(0.02), F32(0.5), sy], [3, 255, zy]
    np.testing.assert_array_equal(R.qlinear_concat(ins, sc, zs, sy, zy, axis=3),
                                  ort_qlinear_concat(ins, sc, zs, sy, zy, axis=3))


# ----------------------------------------------------------------------------------------------
# QLinearGlobalAveragePool
# ----------------------------------------------------------------------------------------------


def _gap_check(x, xs, xz, ys, yz):
    y = ort_global_average_pool(x[None], xs, xz, ys, yz).reshape(x.shape[0])
    np.testing.assert_array_equal(R.global_average_pool(x, xs, xz, ys, yz), y)
    np.testing.assert_array_equal(R.global_average_pool_int(x, xs, xz, ys, yz), y)
    return y.size


def test_global_average_pool_matches_ort():
    rng = np.random.default_rng(9)
    n = 0
    for t in range(25):
        h, w = (int(v) for v in rng.choice([1, 2, 3, 5, 7, 13, 14, 15, 32], 2))
        c = int(rng.integers(1, 70))
        xs = F32(10 ** rng.uniform(-3, 1))
        ys = F32(xs * 10 ** rng.uniform(-1.5, 1)) if t % 3 else xs
        xz, yz = _zp(rng), _zp(rng)
        x = rng.integers(0, 256, (c, h, w)).astype(np.uint8)
        if t % 4 == 0:
            x = np.clip(rng.normal(xz, 4, (c, h, w)), 0, 255).astype(np.uint8)
        n += _gap_check(x, xs, xz, ys, yz)
    # ties: N = 2, x_scale == y_scale -> averages land on .5 exactly (round half to even)
    x = np.stack([np.array([[a, b]], np.uint8) for a in range(0, 256, 3) for b in (a + 1, a + 3) if b < 256])
    n += _gap_check(x, F32(0.1), 0, F32(0.1), 0)
    n += _gap_check(x, F32(0.1), 128, F32(0.1), 3)
    # scales where fl(xs / fl(ys*N)) differs from fl(fl(xs/ys)/N) and it changes the output
    found = 0
    while found < 6:
        h, w = (int(v) for v in rng.integers(1, 20, 2))
        nn = h * w
        xs = F32(10 ** rng.uniform(-3, 1))
        ys = F32(xs * 10 ** rng.uniform(-1.5, 0.5))
        s1 = R.global_average_pool_scale(xs, ys, nn)
        s2 = F32(F32(xs / ys) / F32(nn))
        xz, yz = int(rng.integers(256)), int(rng.integers(256))
        sums = np.arange(-xz * nn, (255 - xz) * nn + 1)
        r1 = np.rint(np.clip(sums.astype(F32) * s1, -yz, 255 - yz))
        r2 = np.rint(np.clip(sums.astype(F32) * s2, -yz, 255 - yz))
        hit = sums[r1 != r2]
        if s1 == s2 or hit.size == 0:
            continue
        raw = (hit[: 32] + xz * nn).astype(np.int64)
        x = np.zeros((raw.size, nn), np.uint8)
        for i, total in enumerate(raw):
            x[i] = total // nn
            x[i, : total % nn] += 1
        n += _gap_check(x.reshape(-1, h, w), xs, xz, ys, yz)
        found += 1
    assert n > 1000


def test_global_average_pool_range_check_like_ort():
    """ORT throws unless 2^-32 <= fl(xs / fl(ys*N)) < 256; just inside the range it computes."""
    x = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)  # N = 4
    for xs, ys in ((1.0, 1e-4), (1e-12, 1.0)):  # scale 2500 >= 256; scale 2.5e-13 < 2^-32
        with pytest.raises(Exception, match="out of computation range"):
            ort_global_average_pool(x[None], xs, 0, ys, 0)
        with pytest.raises(ValueError):
            R.global_average_pool(x, xs, 0, ys, 0)
        with pytest.raises(ValueError):
            R.global_average_pool_int(x, xs, 0, ys, 0)
    _gap_check(x, F32(1.0), 0, F32(1e-3), 0)  # scale 250
    _gap_check(x, F32(2.0**-30), 3, F32(1.0), 200)  # scale 2^-32


# ----------------------------------------------------------------------------------------------
# QLinearAveragePool
# ----------------------------------------------------------------------------------------------


def test_average_pool_matches_ort():
    rng = np.random.default_rng(10)
    n = 0
    configs = [((3, 3), (1, 1), (1, 1, 1, 1)), ((3, 3), (2, 2), (1, 1, 1, 1)), ((2, 2), (2, 2), (0, 0, 0, 0)),
               ((3, 3), (2, 2), (0, 0, 1, 1)), ((3, 2), (1, 2), (1, 0, 0, 1))]
    for t in range(20):
        kernel, strides, pads = configs[t % len(configs)]
        h, w = (int(v) for v in rng.integers(3, 10, 2))
        c = int(rng.integers(1, 6))
        if t % 7 == 6:  # kernel == image, no pads: ORT falls back to the global-average-pool formula
            kernel, strides, pads = (h, w), (1, 1), (0, 0, 0, 0)
        xs = F32(10 ** rng.uniform(-3, 1))
        ys = F32(xs * 10 ** rng.uniform(-1, 1)) if t % 3 else xs
        if t == 19:
            ys = F32(xs * 1e-9)  # >= 2^31 after scaling -> INT32_MIN -> 0 in ORT
        xz, yz = _zp(rng), _zp(rng)
        cip = bool(t % 2)
        x = rng.integers(0, 256, (2, c, h, w)).astype(np.uint8)
        y = ort_average_pool(x, xs, xz, ys, yz, kernel, strides, pads, cip)
        np.testing.assert_array_equal(R.qlinear_average_pool(x, xs, xz, ys, yz, kernel, strides, pads, cip), y)
        np.testing.assert_array_equal(R.qlinear_average_pool_int(x, xs, xz, ys, yz, kernel, strides, pads, cip), y)
        n += y.size
    assert n > 1000
