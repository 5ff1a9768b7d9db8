"""``Engine.needs(config, variant)`` — the engine's resource report, made without elaboration — equals what
the elaborated engine really contains: its multiplications by operand shape, and its memories.

The walker below reads Amaranth's private AST (``amaranth.hdl._ast``): only this test may, to check the
report; nothing else in the tree should need it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from amaranth.hdl import Fragment, Shape

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.hw.add_requant import AddRequantizer
from fireforge.hw.engine import Engine
from fireforge.hw.mac import MacArray
from fireforge.hw.requant import Requantizer


def _walk(frag) -> tuple[Counter, list, Counter]:
    """(multiplications by operand shape, memories as (width, depth), instances by type) of an elaborated
    design."""
    from amaranth.hdl._ast import Assign, Concat, Operator, Part, Slice, Switch, SwitchValue
    from amaranth.hdl._ir import Instance
    from amaranth.hdl._mem import MemoryInstance

    products, memories, instances = Counter(), [], Counter()
    seen = set()

    def value(v):
        if id(v) in seen:
            return
        seen.add(id(v))
        if isinstance(v, Operator):
            if v.operator == "*" and len(v.operands) == 2:
                a, b = v.operands
                products[(len(a), a.shape().signed, len(b), b.shape().signed)] += 1
            for o in v.operands:
                value(o)
        elif isinstance(v, (Slice, Part)):
            value(v.value)
            if isinstance(v, Part):
                value(v.offset)
        elif isinstance(v, Concat):
            for p in v.parts:
                value(p)
        elif isinstance(v, SwitchValue):
            value(v.test)
            for _, val in v.cases:
                value(val)

    def statement(st):
        if isinstance(st, Assign):
            value(st.lhs)
            value(st.rhs)
        elif isinstance(st, Switch):
            value(st.test)
            for _, stmts, _ in st.cases:
                for s in stmts:
                    statement(s)

    def walk(f):
        if isinstance(f, MemoryInstance):
            memories.append((Shape.cast(f._data.shape).width, f._data.depth))
        if isinstance(f, Instance):
            instances[f.type] += 1
        for stmts in getattr(f, "statements", {}).values():
            for st in stmts:
                statement(st)
        for sub, _, _ in getattr(f, "subfragments", []):
            walk(sub)

    walk(frag)
    return products, memories, instances


def _engine(config: EngineConfig, variant: BuildVariant) -> Engine:
    return Engine(config, variant)


def _config(mac_units: int, add_unit: bool = True) -> EngineConfig:
    return EngineConfig(mac_units=mac_units, weight_depth=512, quant_depth=512, desc_depth=32, act_depth=1024,
                        add_unit=add_unit)


@pytest.mark.parametrize("mac_units, add_unit, variant", [
    (4, True, BuildVariant()),
    (16, False, BuildVariant(mac_products="lut")),
    (64, True, BuildVariant(act_memory="external")),
    (64, False, BuildVariant(mac_products="lut", read_depth=32)),
])
def test_needs_equal_the_elaborated_engine(mac_units, add_unit, variant):
    cfg = _config(mac_units, add_unit)
    needs = Engine.needs(cfg, variant)
    products, memories, _ = _walk(Fragment.get(_engine(cfg, variant), None))
    assert needs["products"] == dict(products)
    assert sorted(needs["memories"]) == sorted(memories)


def test_needs_count_ecp5_multipliers_as_products():
    """With ``multipliers="ecp5"`` the requantizers' products are MULT18X18D instances: the report names the
    same products (the fit check costs blocks, not how they are written), one instance each."""
    cfg, variant = _config(16), BuildVariant(mac_products="lut", multipliers="ecp5")
    needs = Engine.needs(cfg, variant)
    assert needs == Engine.needs(cfg, BuildVariant(mac_products="lut"))
    _, _, instances = _walk(Fragment.get(_engine(cfg, variant), None))
    assert instances["MULT18X18D"] == sum(needs["products"].values())


def test_needs_of_each_part():
    assert MacArray.needs(vector=8) == {"products": {(8, True, 8, False): 64}, "memories": []}
    assert MacArray.needs(vector=8, products="lut")["products"] == {}
    for cls in (Requantizer, AddRequantizer):
        products, memories, _ = _walk(Fragment.get(cls(), None))
        assert cls.needs() == {"products": dict(products), "memories": memories}
    parts = Engine.needs(_config(64), BuildVariant())["parts"]
    assert parts["lane_requantizers"]["products"][(18, False, 18, False)] == 8
    assert parts["mac_array"]["products"] == {(8, True, 8, False): 64}


@pytest.mark.parametrize("data_width", [16, 32])
def test_dram_engine_needs_equal_the_elaborated_design(data_width):
    """``DramEngine.needs``: the core's report, the three buffers, the DMAs' and the STORE path's FIFOs."""
    from fireforge.hw.dram.dram_engine import DramEngine

    cfg = EngineConfig(mac_units=16, weight_depth=128, quant_depth=16, desc_depth=4, act_depth=512, memory="dram")
    needs = DramEngine.needs(cfg, data_width=data_width, max_burst=16)
    products, memories, _ = _walk(Fragment.get(DramEngine(cfg, data_width=data_width, max_burst=16), None))
    assert needs["products"] == dict(products)
    assert sorted(needs["memories"]) == sorted(memories)
    assert set(needs["parts"]) >= {"core", "buffers", "fetch_dma", "load_dma", "store_dma", "transfer"}
