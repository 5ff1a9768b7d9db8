# amaranth: UnusedElaboratable=no
"""Each engine component alone (amaranth.sim): what it computes, against a Python model or the golden
function it twins, and that its stated ``latency`` is what it takes."""

from __future__ import annotations

import random
from collections import deque

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.lib import fifo
from amaranth.sim import Simulator

from fireforge.core.descriptor import Op, pack
from fireforge.core.quant import QUANT_LANE
from fireforge.hw.add_requant import add_port_constants
from fireforge.hw.engine.accumulate import LANE_META, Accumulator
from fireforge.hw.engine.fetch import ActivationFetch
from fireforge.hw.engine.fifo import StreamFIFO
from fireforge.hw.engine.lanes import LaneRequantizers
from fireforge.hw.engine.quant import QuantFetch
from fireforge.hw.engine.sequencer import LANE_FIELDS, LayerFields, Sequencer
from fireforge.hw.engine.weights import WeightFetch
from fireforge.hw.engine.writeq import WriteQueue
from fireforge.hw.mac import MacArray
from fireforge.sim import requant
from fireforge.sim.requant_add import qlinear_add_params


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def word(values, bits=8) -> int:
    return sum((int(v) & ((1 << bits) - 1)) << (bits * i) for i, v in enumerate(values))


# -- StreamFIFO ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [3, 16, 6])
def test_stream_fifo_is_the_stdlib_buffered_fifo_cycle_for_cycle(depth):
    """Same ports' values every cycle as SyncFIFOBuffered under random writes and reads."""
    from amaranth import Module

    ours, theirs = StreamFIFO(shape=8, depth=depth), fifo.SyncFIFOBuffered(width=8, depth=depth)
    m = Module()
    m.submodules.ours, m.submodules.theirs = ours, theirs
    rng = random.Random(depth)

    async def bench(ctx):
        for cycle in range(400):
            w, r, data = rng.random() < 0.6, rng.random() < 0.5, rng.randrange(256)
            ctx.set(ours.w.valid, w), ctx.set(theirs.w_en, w)
            ctx.set(ours.r.ready, r), ctx.set(theirs.r_en, r)
            ctx.set(ours.w.payload, data), ctx.set(theirs.w_data, data)
            assert (ctx.get(ours.w.ready), ctx.get(ours.r.valid), ctx.get(ours.level)) == \
                   (ctx.get(theirs.w_rdy), ctx.get(theirs.r_rdy), ctx.get(theirs.level)), cycle
            if ctx.get(ours.r.valid):
                assert ctx.get(ours.r.payload) == ctx.get(theirs.r_data)
            await ctx.tick()

    run(m, bench)


def test_stream_fifo_latency_and_lut_ram():
    dut = StreamFIFO(shape=8, depth=4)
    seen = []

    async def bench(ctx):
        ctx.set(dut.w.valid, 1)
        ctx.set(dut.w.payload, 42)
        for _ in range(4):
            seen.append(ctx.get(dut.r.valid))
            await ctx.tick()
            ctx.set(dut.w.valid, 0)

    run(dut, bench)
    assert seen.index(1) == StreamFIFO.latency
    assert 'ram_style = "distributed"' in verilog.convert(StreamFIFO(shape=8, depth=16, ram_style="distributed"))
    assert "ram_style" not in verilog.convert(StreamFIFO(shape=8, depth=16))
    with pytest.raises(ValueError, match="depth must be an integer ≥ 2, not 1"):
        StreamFIFO(shape=8, depth=1)


# -- ActivationFetch -------------------------------------------------------------------------------------------

def test_activation_fetch_joins_taps_with_their_reads():
    """Taps (some padding) under random memory stalls and response delays leave in order, each with its
    word; a padding tap is joined StreamFIFO.latency cycles after it was issued."""
    v, depth, rng = 2, 6, random.Random(3)
    dut = ActivationFetch(vector=v, addr_bits=8, read_depth=depth)
    mem = {a: word([a, 255 - a]) for a in range(256)}
    pad = word([7, 7])
    sent, got, first_join = [], [], []

    async def bench(ctx):
        ctx.set(dut.pad_value, 7)
        pending = deque()           # (cycle the response may come, data)
        level = 0
        for cycle in range(300):
            ready = rng.random() < 0.7
            offer = len(sent) < 60 and ctx.get(dut.level) + 1 <= depth - 2
            tap = (not sent or rng.random() < 0.3, rng.randrange(256), len(sent))     # the first: padding
            ctx.set(dut.read.ready, ready)
            ctx.set(dut.taps.valid, offer)
            ctx.set(dut.taps.payload, {"addr": tap[1], "pad": tap[0], "w_addr": tap[2],
                                       "meta": {"first": 0, "last": 1, "out_addr": tap[2]}})
            if pending and pending[0][0] <= cycle and rng.random() < 0.7:
                ctx.set(dut.read.resp.valid, 1)
                ctx.set(dut.read.resp.data, pending.popleft()[1])
            else:
                ctx.set(dut.read.resp.valid, 0)
            if offer and ready:
                sent.append(tap)
                if not tap[0]:
                    assert ctx.get(dut.read.valid) and ctx.get(dut.read.addr) == tap[1]
                    pending.append((cycle + rng.randrange(1, 8), mem[tap[1]]))
                if len(sent) == 1 and tap[0]:
                    first_join.append(cycle)
            if ctx.get(dut.joined.valid):
                p = ctx.get(dut.joined.payload)
                got.append((p.x.as_bits(), p.w_addr))
                if len(got) == 1 and first_join:
                    first_join.append(cycle)
            await ctx.tick()

    run(dut, bench)
    want = [(pad if t[0] else mem[t[1]], t[2]) for t in sent]
    assert len(sent) == 60 and got == want
    assert first_join[1] - first_join[0] == ActivationFetch.latency


# -- WeightFetch, QuantFetch -----------------------------------------------------------------------------------

def _rom(ctx, port, history, latency, contents):
    """One cycle of a ROM model: data = contents(the address presented `latency` cycles ago)."""
    history.append(ctx.get(port.addr) if ctx.get(port.en) else None)
    addr = history[-1 - latency] if len(history) > latency else None
    ctx.set(port.data, contents(addr) if addr is not None else 0)


@pytest.mark.parametrize("rom_latency", [1, 6])
def test_weight_fetch_pairs_each_tap_with_its_weight_word(rom_latency):
    v = 4
    dut = WeightFetch(vector=v, weight_addr_bits=6, rom_latency=rom_latency)
    contents = lambda a: word([(a * 7 + k) % 256 for k in range(v * v)])   # noqa: E731
    ins, outs, history = {}, [], []

    async def bench(ctx):
        for cycle in range(60):
            valid = cycle % 3 != 1 and cycle < 40
            xs = [(cycle + k) % 256 for k in range(v)]
            x = word(xs)
            ctx.set(dut.taps.valid, valid)
            ctx.set(dut.taps.payload, {"x": xs, "w_addr": cycle % 64,
                                       "meta": {"first": cycle % 2, "last": 1, "out_addr": cycle}})
            if valid:
                ins[cycle] = (x, contents(cycle % 64))
            _rom(ctx, dut.rom, history, rom_latency, contents)
            if ctx.get(dut.operands.valid):
                p = ctx.get(dut.operands.payload)
                outs.append((cycle, p.meta.out_addr, [p.x[o].as_bits() for o in range(v)],
                             p.w.as_bits(), p.meta.first))
            await ctx.tick()

    run(dut, bench)
    assert len(outs) == len(ins)
    for cycle, tag, xs, w, first in outs:
        assert cycle - tag == dut.latency and first == tag % 2
        assert xs == [ins[tag][0]] * v and w == ins[tag][1]


def test_quant_fetch_loads_every_lane():
    v, latency = 4, 3
    dut = QuantFetch(vector=v, quant_addr_bits=4, rom_latency=latency)
    lanes = lambda a: [{"bias": -1000 * a - k, "mantissa": 2**23 + a, "shift": 30 + k} for k in range(v)]  # noqa
    contents = lambda a: word([QUANT_LANE.const(lane).as_bits() for lane in lanes(a)], QUANT_LANE.size)  # noqa
    history, loaded = [], []

    async def bench(ctx):
        for cycle in range(12):
            ctx.set(dut.request.valid, cycle == 1)
            ctx.set(dut.request.payload, 5)
            _rom(ctx, dut.rom, history, latency, contents)
            q = ctx.get(dut.quant)
            loaded.append([{"bias": q[k].bias, "mantissa": q[k].mantissa, "shift": q[k].shift} for k in range(v)])
            await ctx.tick()

    run(dut, bench)
    assert loaded[1 + latency] != lanes(5) and loaded[2 + latency] == lanes(5)


# -- MacArray --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("products", ["dsp", "lut"])
def test_mac_array_sums_and_carries_meta(products):
    v, rng = 4, np.random.default_rng(4)
    dut = MacArray(vector=v, products=products, meta=8, lane_meta=LANE_META)
    x = rng.integers(0, 256, (20, v, v))
    w = rng.integers(-128, 128, (20, v * v))
    got = {}

    async def bench(ctx):
        for cycle in range(20 + dut.latency):
            k = min(cycle, 19)
            ctx.set(dut.i.valid, cycle < 20)
            ctx.set(dut.i.payload, {"x": [list(map(int, x[k][o])) for o in range(v)], "w": list(map(int, w[k])),
                                    "meta": cycle, "lane_meta": {"valid": 1, "first": cycle % 2}})
            if ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got[p.meta] = ([p.sums[o] for o in range(v)], [p.lanes[o].first for o in range(v)], cycle)
            await ctx.tick()

    run(dut, bench)
    assert sorted(got) == list(range(20))
    for k, (sums, firsts, cycle) in got.items():
        assert sums == [int(np.dot(w[k][o * v:(o + 1) * v], x[k][o])) for o in range(v)]
        assert firsts == [k % 2] * v and cycle - k == dut.latency


# -- Accumulator -----------------------------------------------------------------------------------------------

def _accumulate_model(op, taps, bias, aux):
    """One output of one lane: taps are (sum, x) pairs."""
    if op == "conv":
        return bias + sum(s for s, _ in taps)
    if op == "gap":
        return aux + sum(x for _, x in taps)
    if op == "max":
        return max(x for _, x in taps)
    return taps[0][1]                       # add: input A kept (its low byte)


@pytest.mark.parametrize("op", ["conv", "gap", "max", "add"])
def test_accumulator_reduces_each_output(op):
    v, rng = 2, random.Random(5)
    mac = MacArray(vector=v)
    dut = Accumulator(vector=v, sum_width=mac.sum_width)
    outputs = [[(rng.randrange(-5000, 5000), rng.randrange(256)) for _ in range(rng.randint(1, 5))]
               for _ in range(8)]
    bias, aux = [-17, 23], 1000
    got = []

    async def bench(ctx):
        for lane in range(v):
            ctx.set(dut.ops[lane], {"conv": op == "conv", "gap": op == "gap", "max": op == "max"})
            ctx.set(dut.fields[lane].aux, aux)
            ctx.set(dut.quant[lane].bias, bias[lane])
        stream = [(s, x, k == 0, k == len(o) - 1) for o in outputs for k, (s, x) in enumerate(o)]
        cycle = 0
        while stream or cycle < 200:
            bubble = rng.random() < 0.3 or not stream
            s, x, first, last = (0, 0, 0, 0) if bubble else stream.pop(0)
            ctx.set(dut.i.valid, not bubble)
            ctx.set(dut.i.payload, {"sums": [s + lane for lane in range(v)],
                                    "meta": {"tap": {"first": first, "last": last, "out_addr": len(got)},
                                             "x": [x] * v},
                                    "lanes": [{"valid": not bubble, "first": first}] * v})
            if ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got.append([p.acc[lane] for lane in range(v)])
            await ctx.tick()
            cycle += 1
            if not stream and len(got) == len(outputs):
                break

    run(dut, bench)
    want = [[_accumulate_model(op, [(s + lane, x) for s, x in o], bias[lane], aux) for lane in range(v)]
            for o in outputs]
    if op in ("max", "add"):
        got = [[a & 0xFF for a in g] for g in got]
    assert got == want


# -- LaneRequantizers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["conv", "gap", "max", "add"])
def test_lane_requantizers_twin_the_golden_functions(op):
    v, rng = 2, np.random.default_rng(6)
    dut = LaneRequantizers(vector=v, add_unit=True)
    n = 24
    acc = rng.integers(-40000, 40000, (n, v)) if op in ("conv", "gap") else rng.integers(0, 256, (n, v))
    b = rng.integers(0, 256, (n, v))
    quant = [{"bias": 0, "mantissa": 2**23 + 12345 * (lane + 1), "shift": 38 + lane} for lane in range(v)]
    fields = {"gap": op == "gap", "max": op == "max", "add": op == "add", "relu": 1, "out_zp": 9,
              "mult_a": 2**23 + 777, "shift_a": 37, "mult_b": 0, "shift_b": 0, "aux": 0}
    if op == "add":
        ra, rb, f = qlinear_add_params(0.05, 3, 0.07, 250, 0.1, 9)
        fields.update(add_port_constants(ra, rb, f))
        fields["aux"] = fields.pop("addend")
    got = []

    async def bench(ctx):
        for lane in range(v):
            ctx.set(dut.fields[lane], LANE_FIELDS.const(fields))
            ctx.set(dut.quant[lane], QUANT_LANE.const(quant[lane]))
        for cycle in range(n + dut.latency):
            k = min(cycle, n - 1)
            ctx.set(dut.i.valid, cycle < n)
            ctx.set(dut.i.payload, {"acc": list(map(int, acc[k])), "b": list(map(int, b[k])), "out_addr": cycle})
            if ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got.append(([p.data[lane] for lane in range(v)], p.addr, cycle))
            await ctx.tick()

    run(dut, bench)
    assert [a for _, a, _ in got] == list(range(n)) and all(c - a == dut.latency for _, a, c in got)
    out = np.array([g for g, _, _ in got])
    for lane in range(v):
        if op == "conv":
            q = quant[lane]
            want = requant.requantize(acc[:, lane], q["mantissa"], q["shift"], 9, relu=True)
        elif op == "gap":
            want = requant.requantize(acc[:, lane], fields["mult_a"], fields["shift_a"], 9, relu=False)
        elif op == "max":
            want = acc[:, lane]
        else:
            want = requant.qlinear_add(acc[:, lane], 0.05, 3, b[:, lane], 0.07, 250, 0.1, 9)
        np.testing.assert_array_equal(out[:, lane], want, err_msg=f"{op} lane {lane}")


# -- WriteQueue ------------------------------------------------------------------------------------------------

def test_write_queue_keeps_order_under_back_pressure():
    v, rng = 2, random.Random(7)
    dut = WriteQueue(vector=v, addr_bits=10, depth=32)
    written, first = [], []

    async def bench(ctx):
        sent = 0
        for cycle in range(400):
            # the engine's credit: never more words in flight than the queue holds
            send = sent < 100 and sent - len(written) < dut.depth - 1 and rng.random() < 0.7
            ctx.set(dut.i.valid, send)
            ctx.set(dut.i.payload, {"addr": sent, "data": [sent % 256, 255 - sent % 256]})
            ready = cycle > 50 and rng.random() < 0.6
            ctx.set(dut.write.ready, ready)
            if ctx.get(dut.write.valid) and ready:
                assert ctx.get(dut.retire)
                written.append((ctx.get(dut.write.addr), ctx.get(dut.write.data)))
            if send and sent == 0:
                first.append(cycle)
            if ctx.get(dut.write.valid) and len(first) == 1:
                first.append(cycle)
            sent += send
            await ctx.tick()

    run(dut, bench)
    assert written == [(k, word([k % 256, 255 - k % 256])) for k in range(100)]
    assert first[1] - first[0] == dut.latency


# -- LayerFields -----------------------------------------------------------------------------------------------

def test_layer_fields_follow_a_new_descriptor_within_their_latencies():
    v = 8
    dut = LayerFields(vector=v)
    trace = []

    async def bench(ctx):
        ctx.set(dut.desc.as_value(), pack({"op": Op.MAXPOOL, "out_zp": 3}))
        for _ in range(v + 2):
            await ctx.tick()
        ctx.set(dut.desc.as_value(), pack({"op": Op.GAP, "out_zp": 77, "aux": 123}))
        for cycle in range(v + 2):
            ops = [(ctx.get(dut.ops[k].gap), ctx.get(dut.ops[k].max)) for k in range(v)]
            fields = [(ctx.get(dut.fields[k].gap), ctx.get(dut.fields[k].out_zp), ctx.get(dut.fields[k].aux))
                      for k in range(v)]
            trace.append((ops, fields))
            await ctx.tick()

    run(dut, bench)
    assert trace[dut.ops_latency][0] == [(1, 0)] * v and trace[dut.ops_latency - 1][0][-1] == (0, 1)
    assert trace[dut.fields_latency][1] == [(1, 77, 123)] * v and trace[dut.fields_latency - 1][1][0][1] == 3


# -- Sequencer -------------------------------------------------------------------------------------------------

def test_sequencer_walks_descriptors_and_paces_groups():
    """A conv of two output groups, then END: the commands come in order (load; per group: when drained, the
    requant request and group, then run Sequencer.latency cycles after the descriptor for the first group),
    the layer ends when drained, done rises at END and cycles counts the run."""
    rom_latency, quant_latency = 3, 4
    dut = Sequencer(desc_depth=4, quant_depth=16, rom_latency=rom_latency, quant_latency=quant_latency)
    descs = [pack({"op": Op.CONV, "og_count": 2, "quant_addr": 9}), pack({"op": Op.END})]
    events, history = [], []

    async def bench(ctx):
        og, pending = 0, 0
        ctx.set(dut.start, 1)
        for cycle in range(80):
            history.append(ctx.get(dut.rom.addr) if ctx.get(dut.rom.en) else None)
            back = history[-1 - rom_latency] if len(history) > rom_latency else None
            ctx.set(dut.rom.data, descs[back] if back is not None else 0)
            # the AGU and the pipeline behind it: a group's taps finish 5 cycles after run, its results drain 3
            # cycles later
            ctx.set(dut.agu.og, og)
            ctx.set(dut.agu.last_group, og == 1)
            ctx.set(dut.agu.drained, pending == 0)
            run_at = [c for c, e in events if e == "run"]
            finished = bool(run_at) and cycle == run_at[-1] + 5
            ctx.set(dut.agu.finished, finished)
            if ctx.get(dut.desc.op) == Op.CONV and not [e for _, e in events if e == "desc"]:
                events.append((cycle, "desc"))
            for name in ("load", "group", "run"):
                if ctx.get(getattr(dut.agu, name)):
                    events.append((cycle, name))
            if ctx.get(dut.quant.valid):
                events.append((cycle, f"quant {ctx.get(dut.quant.payload)}"))
            if ctx.get(dut.layer_done):
                events.append((cycle, "layer_done"))
            if ctx.get(dut.done) and not [e for _, e in events if e == "done"]:
                events.append((cycle, "done"))
                assert ctx.get(dut.cycles) == cycle - 1 and not ctx.get(dut.busy)
            await ctx.tick()
            ctx.set(dut.start, 0)
            if finished:
                pending, og = 3, og + (og != 1)
            elif pending:
                pending -= 1

    run(dut, bench)
    names = [e for _, e in events]
    assert names == ["desc", "load", "group", "quant 9", "run", "group", "quant 10", "run", "layer_done", "done"]
    at = dict((e, c) for c, e in reversed(events))
    assert at["run"] - at["desc"] == dut.latency


def test_component_parameters_are_checked():
    with pytest.raises(ValueError, match="quant_latency must be a positive integer, not 0"):
        Sequencer(desc_depth=4, quant_depth=4, rom_latency=1, quant_latency=0)
    with pytest.raises(ValueError, match="depth must be a positive multiple of 16, not 40"):
        WriteQueue(vector=2, addr_bits=4, depth=40)
    with pytest.raises(ValueError, match="vector must be a power of two ≥ 2, not 3"):
        LayerFields(vector=3)
