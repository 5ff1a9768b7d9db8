"""The engine clock of a board top: PLL / MMCM settings and the primitives that make the clock.

:func:`clock_plan` decides: the board's oscillator when ``--clock`` is its frequency (or not given and the
board default is it), else the family's PLL (ECP5 EHXPLLL) or MMCM (7-series MMCME2_BASE + BUFG) set to the
closest frequency within 1 %. :func:`add_clock` puts that into a module.
"""

from __future__ import annotations

import math

from amaranth import ClockSignal, Instance, Signal

from fireforge.errors import FireforgeError

__all__ = ["ecp5_pll_params", "xc7_mmcm_params", "clock_plan", "add_clock"]


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


def clock_plan(board, clock_mhz: float | None) -> dict:
    """``{"board_mhz", "mhz", "pll"}`` for ``board`` at ``clock_mhz`` (None: the board's default clock);
    ``pll`` is None (the oscillator) or the settings with ``kind`` ("ecp5" / "xc7")."""
    fin = board.board_clock_mhz
    want = float(board.default_clock_mhz if clock_mhz is None else clock_mhz)
    if not (math.isfinite(want) and want > 0):
        raise FireforgeError(f"--clock must be a positive number of MHz, not {want}")
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


def add_clock(m, plan: dict, clk_in) -> Signal:
    """Drive ``sync`` from the oscillator ``clk_in`` as ``plan`` says (directly, or through the PLL / MMCM
    added to ``m``); returns the lock signal (constant 1 without a PLL)."""
    locked = Signal(init=1)
    pll = plan["pll"]
    if pll is None:
        m.d.comb += ClockSignal("sync").eq(clk_in)
    elif pll["kind"] == "ecp5":
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{plan['board_mhz']:g}", a_FREQUENCY_PIN_CLKOP=f"{pll['fout']:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=pll["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll["CLKOP_DIV"],
            p_CLKOP_CPHASE=pll["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=pll["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk_in, o_CLKOP=ClockSignal("sync"), i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
    else:   # xc7 MMCM + global buffer
        fb, raw = Signal(), Signal()
        m.submodules.mmcm = Instance(
            "MMCME2_BASE", p_BANDWIDTH="OPTIMIZED", p_CLKIN1_PERIOD=round(1000 / plan["board_mhz"], 3),
            p_DIVCLK_DIVIDE=pll["DIVCLK_DIVIDE"], p_CLKFBOUT_MULT_F=float(pll["CLKFBOUT_MULT_F"]),
            p_CLKOUT0_DIVIDE_F=float(pll["CLKOUT0_DIVIDE_F"]),
            i_CLKIN1=clk_in, i_CLKFBIN=fb, o_CLKFBOUT=fb, o_CLKOUT0=raw, o_LOCKED=locked,
            i_RST=0, i_PWRDWN=0)
        m.submodules.bufg = Instance("BUFG", i_I=raw, o_O=ClockSignal("sync"))
    return locked
