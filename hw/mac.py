"""The MAC array: ``vector`` output lanes × ``vector`` input lanes of uint8 × int8 products, summed per lane.

Hardware twin of the inner product in :func:`fireforge.sim.golden.conv_accumulate`: for one tap,
``sums[o] = Σ_i w[o][i] · x[i]``. Products are registered, then each level of the adder tree, so the
longest path is one 8×9-bit multiply or one adder; :attr:`MacArray.latency` counts those stages.
"""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacArray"]


class MacArray(wiring.Component):
    """Parameters
    ----------
    vector : int
        Input and output lanes (a power of two ≥ 2); ``vector²`` multipliers.

    Members
    -------
    x : In(ArrayLayout(unsigned(8), vector))
        One activation word (registered by the caller).
    w : In(ArrayLayout(signed(8), vector·vector))
        One weight word; element ``o·vector + i`` multiplies ``x[i]`` into output lane ``o``.
    sums : Out(ArrayLayout(signed(sum_width), vector))
        Per output lane, :attr:`latency` cycles after ``x``/``w``.
    """

    def __init__(self, *, vector: int):
        if not isinstance(vector, int) or vector < 2 or vector & (vector - 1):
            raise ValueError(f"vector must be a power of two ≥ 2, not {vector!r}")
        self.vector = vector
        self.levels = vector.bit_length() - 1
        self.sum_width = 17 + self.levels
        super().__init__({
            "x": In(data.ArrayLayout(unsigned(8), vector)),
            "w": In(data.ArrayLayout(signed(8), vector * vector)),
            "sums": Out(data.ArrayLayout(signed(self.sum_width), vector)),
        })

    @property
    def latency(self) -> int:
        return 1 + self.levels

    def elaborate(self, platform):
        m = Module()
        v = self.vector
        for o in range(v):
            level = []
            for i in range(v):
                p = Signal(signed(17), name=f"s0_p{o}_{i}")
                m.d.sync += p.eq(self.w[o * v + i] * self.x[i])
                level.append(p)
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for j in range(0, len(level), 2):
                    s = Signal(signed(17 + depth), name=f"s{depth}_t{o}_{j // 2}")
                    m.d.sync += s.eq(level[j] + level[j + 1])
                    nxt.append(s)
                level = nxt
            m.d.comb += self.sums[o].eq(level[0])
        return m
