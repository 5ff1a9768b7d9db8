"""The engine clock of a board top: PLL / MMCM settings and the primitives that make the clock.

:func:`clock_plan` decides: the board's oscillator when ``--clock`` is its frequency (or not given and the
board default is it), else the family's PLL (ECP5 EHXPLLL) or MMCM (7-series MMCME2_BASE + BUFG) set to the
closest frequency within 1 %. :func:`add_clock` puts that into a module.
"""

from __future__ import annotations

import math

from amaranth import ClockDomain, ClockSignal, Instance, ResetSignal, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from fireforge.errors import FireforgeError

__all__ = ["ecp5_pll_params", "xc7_mmcm_params", "clock_plan", "add_clock", "add_reset"]


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


def add_clock(m, plan: dict, clk_in, domain: str = "sync") -> Signal:
    """Drive ``domain``'s clock from the oscillator ``clk_in`` as ``plan`` says (directly, or through the PLL /
    MMCM added to ``m``, named after the domain unless it is ``sync``); returns the lock signal (constant 1
    without a PLL)."""
    prefix = "" if domain == "sync" else f"{domain}_"
    locked = Signal(init=1, name=f"{prefix}locked")
    pll = plan["pll"]
    out = ClockSignal(domain)
    if pll is None:
        m.d.comb += out.eq(clk_in)
    elif pll["kind"] == "ecp5":
        m.submodules[f"{prefix}pll"] = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{plan['board_mhz']:g}", a_FREQUENCY_PIN_CLKOP=f"{pll['fout']:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=pll["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll["CLKOP_DIV"],
            p_CLKOP_CPHASE=pll["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=pll["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk_in, o_CLKOP=out, i_CLKFB=out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
    else:   # xc7 MMCM + global buffer
        fb, raw = Signal(), Signal()
        m.submodules[f"{prefix}mmcm"] = Instance(
            "MMCME2_BASE", p_BANDWIDTH="OPTIMIZED", p_CLKIN1_PERIOD=round(1000 / plan["board_mhz"], 3),
            p_DIVCLK_DIVIDE=pll["DIVCLK_DIVIDE"], p_CLKFBOUT_MULT_F=float(pll["CLKFBOUT_MULT_F"]),
            p_CLKOUT0_DIVIDE_F=float(pll["CLKOUT0_DIVIDE_F"]),
            i_CLKIN1=clk_in, i_CLKFBIN=fb, o_CLKFBOUT=fb, o_CLKOUT0=raw, o_LOCKED=locked,
            i_RST=0, i_PWRDWN=0)
        m.submodules[f"{prefix}bufg"] = Instance("BUFG", i_I=raw, o_O=out)
    return locked


def add_reset(m, platform, rst, family: str, domain: str = "sync") -> None:
    """``domain``'s reset: ``rst`` or the board's reset button (if amaranth-boards names one), synchronised to the
    domain's clock. ECP5: the synchronised reset reaches thousands of flip-flops' LSR all over the die, so it goes
    on a global (DCCA), not general routing (9.8 ns from the synchroniser in a corner was the floorplanned 64-MAC
    ULX3S design's critical path); nextpnr promotes only clocks by itself."""
    prefix = "" if domain == "sync" else f"{domain}_"
    if platform.default_rst is not None:
        m.submodules[f"{prefix}rst_buf"] = rst_buf = io.Buffer("i", platform.request(platform.default_rst, 0,
                                                                                      dir="-"))
        rst = rst | rst_buf.i
    if family == "ecp5":
        gen = f"{prefix}reset_gen"
        m.domains += ClockDomain(gen)
        m.d.comb += ClockSignal(gen).eq(ClockSignal(domain))
        m.submodules[f"{prefix}reset_sync"] = ResetSynchronizer(rst, domain=gen)
        m.submodules[f"{prefix}reset_global"] = Instance("DCCA", i_CLKI=ResetSignal(gen), i_CE=1,
                                                          o_CLKO=ResetSignal(domain))
    else:
        m.submodules[f"{prefix}reset_sync"] = ResetSynchronizer(rst, domain=domain)
