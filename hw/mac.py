"""The MAC array: ``vector`` output lanes × ``vector`` input lanes of uint8 × int8 products, summed per lane.

Hardware twin of the inner product in :func:`fireforge.sim.golden.conv_accumulate`: for one tap,
``sums[o] = Σ_i w[o][i] · x[i]``. Products are registered, then each level of the adder tree, so the
longest path is one 8×9-bit multiply or one adder; :attr:`MacArray.latency` counts those stages.

Every register here is reset-less (pure data: the reset net need not reach ~5,000 more flip-flops).

Products are ``*`` (synthesis maps each to a DSP multiplier) or, ``products="lut"``, shift-and-add logic
in two registered stages (four sums of two shifted partial products, then their sum): for FPGAs whose
multipliers are few and sit in a few rows of the die (ECP5: 156 MULT18X18D; 64 MAC products plus the
requantizers' took 128 of them, and nextpnr could not route the wires converging on those rows).
"""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacArray", "PRODUCTS"]

#: how the MAC products are built: DSP multipliers, or LUT shift-and-add logic
PRODUCTS = ("dsp", "lut")


class MacArray(wiring.Component):
    """Parameters
    ----------
    vector : int
        Input and output lanes (a power of two ≥ 2); ``vector²`` multipliers.

    Members
    -------
    x : In(ArrayLayout(ArrayLayout(unsigned(8), vector), vector))
        One activation word (registered by the caller), a copy per output lane: ``x[o][i]`` multiplies into
        output lane ``o`` (the engine's lanes sit apart on the die, each beside its own copy).
    w : In(ArrayLayout(signed(8), vector·vector))
        One weight word; element ``o·vector + i`` multiplies ``x[i]`` into output lane ``o``.
    sums : Out(ArrayLayout(signed(sum_width), vector))
        Per output lane, :attr:`latency` cycles after ``x``/``w``.
    """

    def __init__(self, *, vector: int, products: str = "dsp"):
        if not isinstance(vector, int) or vector < 2 or vector & (vector - 1):
            raise ValueError(f"vector must be a power of two ≥ 2, not {vector!r}")
        if products not in PRODUCTS:
            raise ValueError(f"products must be one of {PRODUCTS}, not {products!r}")
        self.products = products
        self.vector = vector
        self.levels = vector.bit_length() - 1
        self.sum_width = 17 + self.levels
        super().__init__({
            "x": In(data.ArrayLayout(data.ArrayLayout(unsigned(8), vector), vector)),
            "w": In(data.ArrayLayout(signed(8), vector * vector)),
            "sums": Out(data.ArrayLayout(signed(self.sum_width), vector)),
        })

    @property
    def latency(self) -> int:
        return (1 if self.products == "dsp" else 2) + self.levels

    @classmethod
    def needs(cls, *, vector: int, products: str = "dsp") -> dict:
        """Resource report (:mod:`fireforge.hw.engine.needs`): ``vector²`` int8 × uint8 multiplications when
        the products are ``"dsp"``; none with ``"lut"`` (shift-and-add logic); no memories."""
        return {"products": {(8, True, 8, False): vector * vector} if products == "dsp" else {}, "memories": []}

    def elaborate(self, platform):
        m = Module()
        v = self.vector
        for o in range(v):
            level = []
            for i in range(v):
                p = Signal(signed(17), name=f"s0_p{o}_{i}", reset_less=True)
                if self.products == "dsp":
                    m.d.sync += p.eq(self.w[o * v + i] * self.x[o][i])
                else:
                    m.d.sync += p.eq(self._lut_product(m, self.w[o * v + i], self.x[o][i], f"{o}_{i}"))
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
            m.d.comb += self.sums[o].eq(level[0])
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
