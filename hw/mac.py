"""The MAC array: ``vector`` output lanes × ``vector`` input lanes of uint8 × int8 products, summed per lane.

Hardware twin of the inner product in :func:`fireforge.sim.golden.conv_accumulate`: for one tap,
``sums[o] = Σ_i w[o][i] · x[i]``. Products are registered, then each level of the adder tree, so the
longest path is one 8×9-bit multiply or one adder; :attr:`MacArray.latency` counts those stages.

Every register here but the valid bit's is reset-less (pure data: the reset net need not reach ~5,000 more
flip-flops).

What must travel with a tap rides through the array beside it (``meta``; ``lane_meta`` leaves as a copy per
output lane), so no caller counts the array's stages to line up side bands.

Products are ``*`` (synthesis maps each to a DSP multiplier) or, ``products="lut"``, shift-and-add logic
in two registered stages (four sums of two shifted partial products, then their sum): for FPGAs whose
multipliers are few and sit in a few rows of the die (ECP5: 156 MULT18X18D; 64 MAC products plus the
requantizers' took 128 of them, and nextpnr could not route the wires converging on those rows).
"""

from amaranth import Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fireforge.hw.fanout import delayed_copies

__all__ = ["MacArray", "PRODUCTS"]

#: how the MAC products are built: DSP multipliers, or LUT shift-and-add logic
PRODUCTS = ("dsp", "lut")


class MacArray(wiring.Component):
    """Parameters
    ----------
    vector : int
        Input and output lanes (a power of two ≥ 2); ``vector²`` multipliers.
    products : str
        ``"dsp"`` (``*``) or ``"lut"`` (shift-and-add logic, one more cycle): :data:`PRODUCTS`.
    meta : ShapeLike
        What travels beside the products, as one copy (reset-less: it is qualified by ``valid``).
    lane_meta : ShapeLike
        What travels beside the products and leaves as a copy per output lane (the last stages of its delay
        line are a copy tree, :func:`fireforge.hw.fanout.delayed_copies`): for values every lane reads, which
        one register could only deliver across the whole die.

    Members
    -------
    i : In(stream.Signature(StructLayout({"x", "w", "meta", "lane_meta"}), always_ready=True))
        ``x``: one activation word (registered by the caller), a copy per output lane: ``x[o][i]`` multiplies
        into output lane ``o`` (the lanes sit apart on the die, each beside its own copy). ``w``: one weight
        word; element ``o·vector + i`` multiplies ``x[i]`` into output lane ``o``.
    o : Out(stream.Signature(StructLayout({"sums", "meta", "lanes"}), always_ready=True))
        ``sums[o] = Σ_i w[o·vector + i] · x[o][i]`` (``signed(sum_width)``), ``meta``, and ``lanes[o]``, lane
        ``o``'s copy of ``lane_meta``: :attr:`latency` cycles after ``i``.
    """

    def __init__(self, *, vector: int, products: str = "dsp", meta=0, lane_meta=0):
        if not isinstance(vector, int) or vector < 2 or vector & (vector - 1):
            raise ValueError(f"vector must be a power of two ≥ 2, not {vector!r}")
        if products not in PRODUCTS:
            raise ValueError(f"products must be one of {PRODUCTS}, not {products!r}")
        Shape.cast(meta), Shape.cast(lane_meta)
        self.products = products
        self.vector = vector
        self.levels = vector.bit_length() - 1
        self.sum_width = 17 + self.levels
        self.lane_meta = lane_meta
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "x": data.ArrayLayout(data.ArrayLayout(unsigned(8), vector), vector),
                "w": data.ArrayLayout(signed(8), vector * vector), "meta": meta, "lane_meta": lane_meta}),
                always_ready=True)),
            "o": Out(stream.Signature(data.StructLayout({
                "sums": data.ArrayLayout(signed(self.sum_width), vector), "meta": meta,
                "lanes": data.ArrayLayout(lane_meta, vector)}), always_ready=True)),
        })

    @property
    def latency(self) -> int:
        """The products' register (two with ``"lut"``), then one per level of the adder tree."""
        return (1 if self.products == "dsp" else 2) + self.levels

    @classmethod
    def needs(cls, *, vector: int, products: str = "dsp", meta=0, lane_meta=0) -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): ``vector²`` int8 × uint8 multiplications when
        the products are ``"dsp"``; none with ``"lut"`` (shift-and-add logic); no memories."""
        return {"products": {(8, True, 8, False): vector * vector} if products == "dsp" else {}, "memories": []}

    def elaborate(self, platform):
        m = Module()
        v, i = self.vector, self.i
        for o in range(v):
            level = []
            for k in range(v):
                p = Signal(signed(17), name=f"s0_p{o}_{k}", reset_less=True)
                if self.products == "dsp":
                    m.d.sync += p.eq(i.p.w[o * v + k] * i.p.x[o][k])
                else:
                    m.d.sync += p.eq(self._lut_product(m, i.p.w[o * v + k], i.p.x[o][k], f"{o}_{k}"))
                level.append(p)
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for j in range(0, len(level), 2):
                    s = Signal(signed(17 + depth), name=f"s{depth}_t{o}_{j // 2}", reset_less=True)
                    m.d.sync += s.eq(level[j] + level[j + 1])
                    nxt.append(s)
                level = nxt
            m.d.comb += self.o.p.sums[o].eq(level[0])
        # beside the products: valid (reset), meta (reset-less), lane_meta ending in a copy per lane
        valid, meta = i.valid, Value.cast(i.p.meta)
        for stage in range(self.latency):
            nv, nm = Signal(name=f"m{stage}_valid"), Signal(len(meta), name=f"m{stage}_meta", reset_less=True)
            m.d.sync += [nv.eq(valid), nm.eq(meta)]
            valid, meta = nv, nm
        m.d.comb += [self.o.valid.eq(valid), Value.cast(self.o.p.meta).eq(meta)]
        if Shape.cast(self.lane_meta).width:
            copies = delayed_copies(m, Value.cast(i.p.lane_meta), v, self.latency, "lane_meta")
            m.d.comb += [Value.cast(self.o.p.lanes[o]).eq(copy) for o, copy in enumerate(copies)]
        return m

    @staticmethod
    def _lut_product(m, w, x, name):
        """w (int8) × x (uint8) = Σ_j x[j]·w·2^j without a multiplier: pairs of partial products summed and
        registered, then (pair0 + pair1·4) + (pair2 + pair3·4)·16 (the caller registers it)."""
        pairs = []
        for j in range(0, 8, 2):
            lo = Mux(x[j], w, 0).as_signed()
            hi = Mux(x[j + 1], w, 0).as_signed()
            s = Signal(signed(11), name=f"pp{name}_{j // 2}", reset_less=True)
            m.d.sync += s.eq(lo + (hi << 1))
            pairs.append(s)
        return (pairs[0] + (pairs[1] << 2)) + ((pairs[2] + (pairs[3] << 2)) << 4)
