"""Schedule a program for one engine: one descriptor per layer, on the memory plan of
:func:`fireforge.core.layout.plan_memory` (tensor layouts, activation addresses, ROM offsets).

Resident mode fuses a max pool into the layer that writes its input (:func:`fuse_pools`): the writer's
descriptor then computes the pool in its output path (:mod:`fireforge.hw.engine.pool`) and writes the pool's
destination; its own output is never stored, and the pool has no descriptor in the ROM."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import Op
from fireforge.core.layout import MemoryPlan, TensorLayout, plan_memory
from fireforge.core.program import AddLayer, ConvLayer, GlobalAvgPoolLayer, MaxPoolLayer, Program
from fireforge.errors import FireforgeError
from fireforge.hw.add_requant import add_constants_supported
from fireforge.sim import requant

__all__ = ["Schedule", "schedule", "fuse_pools"]


@dataclass
class Schedule:
    """A program on one engine: its memory plan and one descriptor (as a field dict) per layer."""

    config: EngineConfig
    plan: MemoryPlan
    descriptors: list[dict]      # descriptor fields per layer, in program order (END not included)
    fused: dict[str, tuple] = field(default_factory=dict)  # max pool -> the layers whose descriptors compute it

    @property
    def rom_descriptors(self) -> list[dict]:
        """The descriptors the engine runs, in order: every layer's but a fused pool's."""
        return [d for d, l in zip(self.descriptors, self._names) if l not in self.fused]

    @property
    def rom_names(self) -> list[str]:
        return [n for n in self._names if n not in self.fused]

    _names: list = field(default_factory=list, repr=False)

    @property
    def layouts(self) -> dict[str, TensorLayout]:
        return self.plan.layouts

    def conv_weights(self, layer: ConvLayer) -> np.ndarray:
        """The [O, C, kh, kw] weights the engine runs: an im2col conv is a 1x1 conv over kh·kw·C channels."""
        if layer is self.plan.im2col:
            o, c, kh, kw = layer.weights.shape
            return np.ascontiguousarray(layer.weights.transpose(0, 2, 3, 1).reshape(o, kh * kw * c, 1, 1))
        return layer.weights


def _float_fields(value, layer: str, what: str) -> tuple[int, int]:
    try:
        return requant.requant_multiplier(float(value))
    except ValueError as e:
        raise FireforgeError(f"layer '{layer}': {what} {value} cannot be requantized: {e}") from None


def _add_fields(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp, layer: str) -> dict:
    """ADD: ORT's r = fma(a, ra, fma(b, rb, F)) constants (see sim.requant.qlinear_add): ra and rb as
    mantissa/shift, F as float32 bits."""

    ra, rb, f = requant.qlinear_add_params(a_scale, a_zp, b_scale, b_zp, y_scale, y_zp)
    problem = add_constants_supported(ra, rb, f)
    if problem:
        raise FireforgeError(f"layer '{layer}': the engine's adder cannot represent this add's scales: {problem}")
    mult_a, shift_a = _float_fields(ra, layer, "input A scale ratio")
    mult_b, shift_b = _float_fields(rb, layer, "input B scale ratio")
    for name, shift in (("A", shift_a), ("B", shift_b)):
        if not 0 <= shift < 256:
            raise FireforgeError(f"layer '{layer}': input {name} scale ratio is out of the engine's range")
    return {"mult_a": mult_a, "shift_a": shift_a, "mult_b": mult_b, "shift_b": shift_b,
            "aux": int(np.array(f, np.float32).view(np.uint32))}


def _gap_fields(x_scale, x_zp, y_scale, size: int, layer: str) -> dict:
    """GAP: the conv requantizer on Σx − zp·N with scale fl(x_scale / fl(y_scale·N))."""
    try:
        scale = requant.global_average_pool_scale(x_scale, y_scale, size)
    except ValueError as e:
        raise FireforgeError(f"layer '{layer}': {e}") from None
    mult, shift = _float_fields(scale, layer, "average scale")
    if not 0 <= shift < 256:
        raise FireforgeError(f"layer '{layer}': average scale {scale} is out of the engine's range")
    return {"mult_a": mult, "shift_a": shift, "aux": (-x_zp * size) & 0xFFFFFFFF}


def _geometry(layer, src: TensorLayout, packed) -> dict:
    """Kernel, stride and padding fields: a GAP's kernel is the whole map, an im2col conv is 1x1."""
    kh, kw, sh, sw, pt, pl = 1, 1, 1, 1, 0, 0
    if isinstance(layer, (ConvLayer, MaxPoolLayer)) and layer is not packed:
        kh, kw = layer.kernel
        sh, sw = layer.stride
        pt, pl = layer.pads[0], layer.pads[1]
    elif isinstance(layer, GlobalAvgPoolLayer):
        kh, kw = src.height, src.width
    pad_en = isinstance(layer, (ConvLayer, MaxPoolLayer)) and layer is not packed and any(layer.pads)
    return {"kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_t": pt, "pad_l": pl,
            "pad_en": int(pad_en)}


def _descriptor(program: Program, plan: MemoryPlan, layer) -> dict:
    """The descriptor fields of one layer (see fireforge.core.descriptor for the loop nest they drive)."""
    out_t = program.tensors[layer.output]
    dst, src = plan.layouts[layer.output], plan.layouts[layer.inputs[0]]
    y_scale, y_zp = program.requant_target(layer)
    geo = _geometry(layer, src, plan.im2col)
    groups = src.groups
    conv = isinstance(layer, ConvLayer)
    g_count = groups if conv else 1
    d = {**geo, "og_count": plan.out_groups(layer), "out_h": out_t.height, "out_w": out_t.width,
         "g_count": g_count, "in_h": src.height, "in_w": src.width, "depthwise": int(not conv),
         "win_addr0": src.addr - (geo["pad_t"] * src.width + geo["pad_l"]) * groups,
         "row_step": geo["stride_h"] * src.width * groups, "pix_step": geo["stride_w"] * groups,
         "ky_step": src.width * groups, "kx_step": groups, "taps": geo["kernel_h"] * geo["kernel_w"] * g_count,
         "out_addr": dst.addr + plan.group_offsets[layer.name], "out_pitch": dst.groups,
         "in_zp": program.tensors[layer.inputs[0]].zero_point, "out_zp": y_zp}
    if conv:
        d.update(op=Op.CONV, relu=int(layer.relu), weight_addr=plan.weight_offsets[layer.name],
                 quant_addr=plan.quant_offsets[layer.name])
    elif isinstance(layer, MaxPoolLayer):
        d.update(op=Op.MAXPOOL)
    elif isinstance(layer, AddLayer):
        a, b = program.tensors[layer.input_a], program.tensors[layer.input_b]
        p = _add_fields(a.scale, a.zero_point, b.scale, b.zero_point, y_scale, y_zp, layer.name)
        d.update(op=Op.ADD, kernel_w=2, kx_step=plan.layouts[layer.input_b].addr - src.addr, **p)
    elif isinstance(layer, GlobalAvgPoolLayer):
        x = program.tensors[layer.input]
        d.update(op=Op.GAP, **_gap_fields(x.scale, x.zero_point, y_scale, x.height * x.width, layer.name))
    return d


def _overlap(a: TensorLayout, b: TensorLayout) -> bool:
    return a.addr < b.addr + b.words and b.addr < a.addr + a.words


def fuse_pools(program: Program, plan: MemoryPlan, descriptors: list[dict]) -> dict[str, tuple]:
    """The pools the memory plan was made for (:attr:`MemoryPlan.fused`, :func:`fireforge.core.fusion.pool_writers`)
    fused into their writers' descriptors, in place: each writer gets the pool's fields, and its ``out_addr``
    / ``out_pitch`` become the pool's destination at the writer's group offset. Returns pool -> writers."""
    index = {l.name: i for i, l in enumerate(program.layers)}
    layers = {l.name: l for l in program.layers}
    for name, writers in plan.fused.items():
        pool, dp = layers[name], descriptors[index[name]]
        t_out, dst = program.tensors[pool.output], plan.layouts[pool.output]
        # the plan keeps the pool's output live from its first writer on: it never overlaps what they read
        assert not any(_overlap(dst, plan.layouts[x]) for w in writers for x in layers[w].inputs), name
        for w in writers:
            descriptors[index[w]].update(
                pool_en=1, pool_k=pool.kernel[0], pool_s=pool.stride[0], pool_pad_t=pool.pads[0],
                pool_pad_l=pool.pads[1], pool_out_h=t_out.height, pool_out_w=t_out.width,
                out_addr=dp["out_addr"] + plan.group_offsets[w], out_pitch=dp["out_pitch"])
    return dict(plan.fused)


def schedule(program: Program, config: EngineConfig, *, fuse: bool = True) -> Schedule:
    """Plan memory for ``config`` and describe every layer (DRAM mode: every tensor its own DRAM words, and the
    descriptors address DRAM; :mod:`fireforge.sw.dram_program` tiles them into the buffers). Resident mode
    fuses max pools into their writers unless ``fuse=False``."""
    plan = plan_memory(program, config.vector, reuse=not config.dram, fuse_pools=fuse and not config.dram)
    descriptors = [_descriptor(program, plan, layer) for layer in program.layers]
    fused = fuse_pools(program, plan, descriptors)
    return Schedule(config, plan, descriptors, fused, [l.name for l in program.layers])
