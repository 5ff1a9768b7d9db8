"""The engine against the golden model, byte for byte: ``rtl_run(program, x) == golden.run(program, x)``.

Each engine config is Verilated once (cached under build/verilator) and runs every program that fits
its memory depths. ``--engine-shapes N`` raises the number of random layer shapes (default 50).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from amaranth.sim import Simulator
from conftest import assert_hw_equals_golden, random_input
from onnx import TensorProto, helper, numpy_helper

from fireforge.hw.requant import Requantizer
from fireforge.models import squeezenet
from fireforge.sim import golden, requant
from fireforge.sim.hw_run import rtl_run
from fireforge.sw.compile import compile_model
from fireforge.core.config import EngineConfig
from fireforge.core.program import Program


def _config(mac_units: int) -> EngineConfig:
    return EngineConfig(mac_units=mac_units, weight_depth=8192, quant_depth=512, desc_depth=64, act_depth=16384)


def _compile(model: onnx.ModelProto, out, mac_units: int):
    path = out.with_suffix(".onnx")
    onnx.save(model, path)
    compile_model(path, out, config=_config(mac_units))
    return out


# -- the requantizer alone ----------------------------------------------------------------------------------

def _requant_cases():
    rng = np.random.default_rng(1)
    cases = []
    for acc in (0, 1, -1, 2**24 - 1, 2**24, 2**24 + 1, 2**24 + 3, -(2**24 + 3), 2**31 - 1, -(2**31), 3 * 2**25 + 5):
        for scale in (0.5, 2.0**-20, 1 / 3, 0.0123, 0.75):
            for zp in (0, 128, 255):
                cases.append((acc, np.float32(scale), zp, 0))
                cases.append((acc, np.float32(scale), zp, 1))
    for acc in range(-21, 22):           # exact ties: acc * 0.5 and * 0.25 end in .5
        cases += [(acc, np.float32(0.5), 128, 0), (acc, np.float32(0.25), 3, 1)]
    for _ in range(1500):
        scale = np.float32(rng.uniform(0.5, 1.0) * 2.0 ** rng.integers(-14, 2))
        span = int(rng.choice([2**31 - 1, 2**16, int(300 / scale)]))
        cases.append((int(rng.integers(-span, span)), scale, int(rng.integers(0, 256)), int(rng.integers(0, 2))))
    return cases


def _run_requantizer(cases):
    """The Requantizer streaming one case per cycle; its outputs, in order."""
    dut = Requantizer()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []

    async def bench(ctx):
        for acc, (m, sh), zp, relu in cases + [cases[-1]] * Requantizer.latency:
            ctx.set(dut.valid, 1)
            ctx.set(dut.acc, acc)
            ctx.set(dut.mantissa, m)
            ctx.set(dut.shift, sh)
            ctx.set(dut.zero_point, zp)
            ctx.set(dut.relu, relu)
            await ctx.tick()
            if ctx.get(dut.out_valid):
                got.append(ctx.get(dut.out))

    sim.add_testbench(bench)
    sim.run()
    return got[:len(cases)]


def _golden_requant(cases):
    return [int(requant.requantize(acc, m, sh, zp, relu=bool(r))) for acc, (m, sh), zp, r in cases]


def test_requantizer_matches_the_golden_function_on_edge_values():
    cases = [(acc, requant.requant_multiplier(s), zp, r) for acc, s, zp, r in _requant_cases()]
    assert _run_requantizer(cases) == _golden_requant(cases)


def _carry_products(count):
    """Normalised (A, M) whose product rounds up to 2^24 in the float32 multiply (P just under 2^47)."""
    found = []
    a = 11863283                              # ≈ 2^23.5
    while len(found) < count:
        mm = -(-(2**47 - 2**22) // a)          # smallest M with A·M >= 2^47 - 2^22
        if 2**23 <= mm < 2**24 and a * mm < 2**47:
            found.append((a, mm))
        a += 1
    return found


def _conversion_sensitive(per_acc=4):
    """(acc, (M, shift)) where the int->float32 rounding of acc decides the output byte: |acc| >= 2^25 at
    ties, near ties and single sticky bits, with M and shift put so the float32 product lands next to a
    rounding boundary of the final result; kept only if acc's float32 neighbours give another byte."""
    accs = set()
    for bits in range(25, 33):
        d = bits - 24
        for extra in [2**(d - 1), 2**(d - 1) - 1] + [2**(d - 1) + 2**i for i in range(d - 1)]:
            for base in (2**(bits - 1), 2**(bits - 1) + 2**d):
                accs.update({base + extra, -(base + extra)})
    out = []
    for acc in sorted(a for a in accs if -2**31 <= a < 2**31):
        u, sign = abs(acc), (-1 if acc < 0 else 1)
        d = u.bit_length() - 24
        a = int(np.float32(u)) >> d
        carry = a == 2**24
        a >>= carry
        cand = []
        for k in (16, 17, 21, 25):           # the final shift; boundary (2y+1)·2^(k-1) of Q
            for y in range(2**(23 - k) if k <= 23 else 0, max(2**(24 - k), 1)):
                for t in (0, 1):             # product of 47 or 48 bits
                    mm = -(-((2 * y + 1) << (k - 1 + 23 + t)) // a)
                    if 2**23 <= mm < 2**24 and (a * mm) >> 47 == t:
                        cand.append((mm, k + u.bit_length() - 1 + t + carry))
        cand = np.array(cand, np.int64)
        want = requant.requantize(np.full(len(cand), acc), cand[:, 0], cand[:, 1], 128)
        hit = np.zeros(len(cand), bool)
        for alt in ((a - 1) << (d + carry), (a + 1) << (d + carry)):
            if alt < 2**31:
                hit |= requant.requantize(np.full(len(cand), sign * alt), cand[:, 0], cand[:, 1], 128) != want
        idx = np.nonzero(hit)[0]
        out += [(acc, (int(cand[i, 0]), int(cand[i, 1]))) for i in idx[::max(1, len(idx) // per_acc)][:per_acc]]
    return out


def _double_rounding_ties():
    """(acc, (M, shift)) where the float32 multiply's rounding of P = A·M (A = 3·2^22) rounds up to a Q that
    is a tie of the final rounding: M = ((2y+1)·2^(k+t) - 1) / 3 leaves exactly half an ulp (P of 47 bits,
    t = 0) or half an ulp plus one sticky bit (48 bits, t = 1) under Q - 1."""
    out = []
    for t in (0, 1):
        for k in (16, 17, 20, 23):
            for y in range(2**(23 - k), 2**(24 - k)):
                top = (2 * y + 1) << (k + t)
                if top % 3 == 1 and 3 * 2**23 < top <= 3 * 2**24 and ((top - 1) // 3 * 3 >= 2**25) == t:
                    mm = (top - 1) // 3
                    for j in (0, 5, 8):
                        out += [(sign * 3 * 2**(22 + j), (mm, k + 23 + j + t)) for sign in (1, -1)
                                if -2**31 <= sign * 3 * 2**(22 + j) < 2**31]
    return out[::max(1, len(out) // 300)]


def test_requantizer_normalisation_rounding_and_range_edges():
    """The pipelined datapath's own edges: every bit length of |acc| (normalising shift 0..31), the int->float
    rounding carry (|acc| = 2^L - 1) and the cases where that rounding decides the byte, float32-multiply ties
    that are also final-rounding ties, the multiply's carry to 2^24, and every right shift k around the
    saturate (k <= 15) / zero (k >= 26) boundaries."""
    accs = {0}
    for bits in range(32):
        for d in (-1, 0, 1):
            accs.update({2**bits + d, -(2**bits + d)})
    accs = sorted(a for a in accs if -2**31 <= a < 2**31)
    mants = [2**23, 2**23 + 1, 11184811, 2**24 - 1]
    pairs = [(acc, m) for acc in accs for m in mants]
    pairs += [(sign * a, m) for a, m in _carry_products(4) for sign in (1, -1)]
    cases = []
    for i, (acc, m) in enumerate(pairs):
        bits = max(abs(acc).bit_length(), 1)
        for sh in range(bits + 23 - 14, bits + 23 + 5):     # k from about 13 to 29
            if 0 <= sh <= 255:
                cases.append((acc, (m, sh), (0, 128, 255, 37)[i % 4], (i // 4) % 2))
    special = _conversion_sensitive() + _double_rounding_ties()
    assert len(special) > 500
    cases += [(acc, ms, (128, 0, 255)[i % 3], i % 2) for i, (acc, ms) in enumerate(special)]
    assert _run_requantizer(cases) == _golden_requant(cases)


# -- single convolutions --------------------------------------------------------------------------------------

CONV_SHAPES = [  # in, out, kernel, stride, padding, size
    (3, 24, 3, 2, 1, 17),    # conv1-like, odd size, 3 input channels
    (5, 7, 1, 1, 0, 6),      # channels not a multiple of the lanes
    (16, 16, 3, 1, 1, 3),    # tiny 3x3 map
    (8, 12, 3, 1, 1, 1),     # 1x1 map, 3x3 kernel all padding but the centre
    (12, 5, 1, 2, 0, 9),     # strided 1x1
    (7, 9, 3, 2, 0, 8),      # strided 3x3 without padding
    (4, 20, 1, 1, 1, 5),     # padded 1x1 (Caffe's conv10)
    (3, 16, 7, 2, 0, 23),    # v1.0's conv1 kernel
]


@pytest.mark.parametrize("cin,cout,k,s,p,size", CONV_SHAPES)
def test_conv_is_byte_exact(tmp_path, cin, cout, k, s, p, size):
    model = squeezenet.build_conv(in_channels=cin, out_channels=cout, kernel=k, stride=s, padding=p,
                                  input_size=size, seed=cin * 100 + cout)
    out = _compile(model, tmp_path / "conv", 16)
    assert_hw_equals_golden(out, random_input((1, cin, size, size), size))


# -- Fire modules -----------------------------------------------------------------------------------------------

def _v11_fire_shapes(input_size=64):
    """(name, in_channels, squeeze, e1, e3, map size) of every Fire module of v1.1 at this input size."""
    model = squeezenet.build_squeezenet("v1_1", input_size=input_size, classes=10)
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in inferred.graph.value_info}
    inits = {t.name: t.dims for t in model.graph.initializer}
    fires = []
    for node in model.graph.node:
        if node.op_type == "Conv" and node.name.endswith("/squeeze1x1"):
            fire = node.name.split("/")[0]
            x = shapes[node.input[0]]
            sq = inits[node.input[1]][0]
            e1 = inits[f"{fire}/expand1x1/weight"][0]
            e3 = inits[f"{fire}/expand3x3/weight"][0]
            fires.append((fire, x[1], sq, e1, e3, x[2]))
    return fires


@pytest.mark.parametrize("fire,cin,sq,e1,e3,size", _v11_fire_shapes())
def test_every_v11_fire_module_at_64(tmp_path, fire, cin, sq, e1, e3, size):
    model = squeezenet.build_fire(in_channels=cin, squeeze=sq, expand1x1=e1, expand3x3=e3, input_size=size,
                                  seed=int(fire[4:]))
    out = _compile(model, tmp_path / fire, 64)
    hw = assert_hw_equals_golden(out, random_input((1, cin, size, size), 7))
    assert hw.cycles > 0


def test_fire_module_on_256_mac_units(tmp_path):
    model = squeezenet.build_fire(in_channels=64, squeeze=16, expand1x1=64, expand3x3=64, input_size=15)
    out = _compile(model, tmp_path / "fire256", 256)
    assert_hw_equals_golden(out, random_input((1, 64, 15, 15), 2))


# -- random layer shapes ----------------------------------------------------------------------------------------

def _random_chain(rng, n_layers):
    """A chain of conv+ReLU layers of random shapes (ONNX float model) and its input shape."""
    cin = int(rng.integers(1, 40))
    size = int(rng.integers(5, 20))
    shape = (1, cin, size, size)
    nodes, inits, x = [], [], "input"
    for i in range(n_layers):
        k = int(rng.choice([1, 1, 3, 3, 3, 5]))
        s = int(rng.choice([1, 1, 1, 2]))
        p = int(rng.integers(0, k // 2 + 1))
        if (size + 2 * p - k) // s + 1 < 1:
            k, s, p = 1, 1, 0
        cout = int(rng.integers(1, 48))
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.05).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"l{i}/w"), numpy_helper.from_array(b, f"l{i}/b")]
        nodes.append(helper.make_node("Conv", [x, f"l{i}/w", f"l{i}/b"], [f"l{i}"], name=f"l{i}", kernel_shape=[k, k],
                                      strides=[s, s], pads=[p] * 4))
        relu = i == n_layers - 1 or rng.random() < 0.8
        if relu:
            nodes.append(helper.make_node("Relu", [f"l{i}"], [f"l{i}/relu"], name=f"l{i}/relu"))
        x = f"l{i}/relu" if relu else f"l{i}"
        cin, size = cout, (size + 2 * p - k) // s + 1
    nodes.append(helper.make_node("Identity", [x], ["output"], name="out"))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", "c", "h", "w"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model, shape


def test_random_layer_shapes(tmp_path, request):
    """≥ 50 random conv shapes (seeded), in chains of 10 so one simulator run checks ten layers."""
    n_shapes = request.config.getoption("--engine-shapes")
    rng = np.random.default_rng(2024)
    done = 0
    while done < n_shapes:
        n = min(10, n_shapes - done)
        model, shape = _random_chain(rng, n)
        out = _compile(model, tmp_path / f"chain{done}", 16)
        assert_hw_equals_golden(out, random_input(shape, done))
        done += n


# -- memory-port stalls and back-to-back runs --------------------------------------------------------------------

@pytest.fixture(scope="module")
def fire_program(tmp_path_factory):
    model = squeezenet.build_fire(in_channels=32, squeeze=16, expand1x1=64, expand3x3=64, input_size=15)
    return _compile(model, tmp_path_factory.mktemp("fire") / "fire", 16)


@pytest.mark.parametrize("seed,pct", [(7, 30), (3, 60)])
def test_random_stalls_on_the_memory_port(fire_program, seed, pct):
    x = random_input((1, 32, 15, 15), 3)
    calm = rtl_run(fire_program, x)
    stalled = assert_hw_equals_golden(fire_program, x, stall_seed=seed, stall_pct=pct)
    assert stalled.cycles > calm.cycles


def test_two_back_to_back_runs(fire_program):
    x = random_input((1, 32, 15, 15), 4)
    hw = rtl_run(fire_program, x, runs=2)
    assert len(hw.runs) == 2 and hw.runs[0] == hw.runs[1] > 0
    np.testing.assert_array_equal(hw.output, golden.run(Program.load(fire_program), x).output)


# -- the commands ------------------------------------------------------------------------------------------------

def test_simulate_command_json(fire_program, tmp_path, capsys):
    from fireforge.cli import main

    np.save(tmp_path / "x.npy", random_input((1, 32, 15, 15), 5))
    assert main(["simulate", str(fire_program), "--input", str(tmp_path / "x.npy"), "--json", "--dump-layers"]) == 0
    doc = __import__("json").loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0 and doc["total_cycles"] > 0
    assert [l["name"] for l in doc["layers"]] == ["fire/squeeze1x1", "fire/expand1x1", "fire/expand3x3"]
    for layer in doc["layers"]:
        assert {"name", "cycles", "ideal_cycles", "utilization", "mismatches", "size"} <= set(layer)
        assert layer["mismatches"] == 0 and 0 < layer["ideal_cycles"] <= layer["cycles"]
    assert sum(l["cycles"] for l in doc["layers"]) <= doc["total_cycles"]


def test_generate_writes_lint_clean_verilog(fire_program, tmp_path):
    from fireforge.hw.generate import generate, lint

    rtl = tmp_path / "rtl"
    generate(fire_program, rtl)
    for name in ("fireforge_top.v", "ff_rom.v", "ff_act_ram.v", "waivers.vlt", "engine.json", "weights.hex",
                 "quant.hex", "descriptors.hex"):
        assert (rtl / name).is_file(), name
    assert lint(rtl) == ""
    # without the waiver file Verilator does complain (so the waivers are what makes it clean)
    (rtl / "waivers.vlt").write_text("`verilator_config\n")
    assert "WIDTH" in lint(rtl)


def test_classifier_tail_conv_relu_global_average_pool(tmp_path):
    """conv 1x1 + ReLU + GlobalAveragePool (SqueezeNet's classifier) on the engine."""
    rng = np.random.default_rng(8)
    w = (rng.standard_normal((10, 24, 1, 1)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv10", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["output"], name="flatten")]
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 24, 7, 7])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    out = _compile(model, tmp_path / "tail", 16)
    assert [l.kind for l in Program.load(out).layers] == ["conv", "gap"]
    assert_hw_equals_golden(out, random_input((1, 24, 7, 7), 1))


def test_max_pool_ceil_mode(tmp_path):
    """v1.1's conv1 + ceil-mode max pool (the window at the edge is clipped)."""
    model = squeezenet.build_squeezenet("v1_1", input_size=38, classes=10)   # conv1 gives 18x18: 9x9 in ceil mode
    keep = {"conv1", "conv1/relu", "pool1"}
    nodes = [n for n in model.graph.node if n.name in keep]
    out_name = [n for n in nodes if n.name == "pool1"][0].output[0]
    used = {i for n in nodes for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in used]
    graph = helper.make_graph(nodes, "pool", list(model.graph.input),
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["n", "c", "h", "w"])], inits)
    sub = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sub.ir_version = 8
    out = _compile(sub, tmp_path / "pool", 16)
    pool = Program.load(out).layer("pool1")
    assert pool.pads[2:] == (1, 1)            # the last window hangs over the map's edge
    assert_hw_equals_golden(out, random_input((1, 3, 38, 38), 2))
