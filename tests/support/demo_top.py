"""A tiny autonomous design that exercises the simulation infrastructure end to end.

``DemoTop`` follows the bench contract of :mod:`fireforge.sim.cocotb_engine`: ports ``clk``,
``rst``, ``start``, ``busy``, ``done``, ``cycles`` (32 bit) and ``dump``.  On ``start`` it does,
for ``i`` in ``0 .. n_words-1`` (one word at a time, no overlap; about five cycles a word)::

    a      = rom[i]                          # ff_rom, registered read, image from +rom_init
    b      = ram[i]                          # ff_sim_ram read (valid/ready + in-order response)
    ram[n_words + i] = (a + b + addend) mod 2**width

and then raises ``done`` (a level, cleared by the next ``start``).  ``cycles`` counts the cycles
spent busy.  ``dump`` is passed to the RAM, which writes its contents to ``+ram_dump``.

Both memories are Verilog ``Instance``\\ s of ``hw/hdl/ff_rom.v`` and ``hw/hdl/ff_sim_ram.v``, so
the design is only simulatable together with those files (see :func:`hdl_sources`).
"""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal

from fireforge.sim.verilator import hdl_file

__all__ = ["DemoTop", "write_demo_verilog", "hdl_sources", "expected_ram"]


class DemoTop(Elaboratable):
    def __init__(self, n_words: int = 64, width: int = 16, addend: int = 3,
                 rom_plusarg: str = "rom_init"):
        if n_words < 1:
            raise ValueError("n_words must be >= 1")
        self.n_words = n_words
        self.width = width
        self.addend = addend
        self.rom_plusarg = rom_plusarg
        self.rom_depth = n_words
        self.ram_depth = 2 * n_words
        self.rom_aw = max(1, (self.rom_depth - 1).bit_length())
        self.ram_aw = max(1, (self.ram_depth - 1).bit_length())

        self.start = Signal()
        self.busy = Signal()
        self.done = Signal()
        self.cycles = Signal(32)
        self.dump = Signal()

    def ports(self) -> list[Signal]:
        return [self.start, self.busy, self.done, self.cycles, self.dump]

    def elaborate(self, platform):
        m = Module()
        w = self.width

        rom_en = Signal()
        rom_addr = Signal(self.rom_aw)
        rom_data = Signal(w)
        # INIT_FILE is left at its default "": Amaranth would emit an empty string parameter
        # as `.INIT_FILE()`.  The image comes from +<rom_plusarg>=<file> at run time.
        m.submodules.rom = Instance(
            "ff_rom",
            p_WIDTH=w, p_DEPTH=self.rom_depth, p_ADDR_WIDTH=self.rom_aw,
            p_PLUSARG=self.rom_plusarg,
            i_clk=ClockSignal(), i_en=rom_en, i_addr=rom_addr, o_data=rom_data,
        )

        req_valid = Signal()
        req_ready = Signal()
        req_we = Signal()
        req_addr = Signal(self.ram_aw)
        req_wdata = Signal(w)
        resp_valid = Signal()
        resp_rdata = Signal(w)
        m.submodules.ram = Instance(
            "ff_sim_ram",
            p_WIDTH=w, p_DEPTH=self.ram_depth, p_ADDR_WIDTH=self.ram_aw,
            i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_req_valid=req_valid, o_req_ready=req_ready, i_req_we=req_we,
            i_req_addr=req_addr, i_req_wdata=req_wdata,
            o_resp_valid=resp_valid, o_resp_rdata=resp_rdata,
            i_dump=self.dump,
        )

        idx = Signal(range(self.n_words))
        total = Signal(w)

        with m.FSM(name="ctl") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [idx.eq(0), self.done.eq(0), self.cycles.eq(0)]
                    m.next = "ROM_RD"
            with m.State("ROM_RD"):
                m.d.comb += [rom_en.eq(1), rom_addr.eq(idx)]
                m.next = "RAM_RD"
            with m.State("RAM_RD"):
                m.d.comb += [req_valid.eq(1), req_we.eq(0), req_addr.eq(idx)]
                with m.If(req_ready):
                    m.next = "RAM_WAIT"
            with m.State("RAM_WAIT"):
                with m.If(resp_valid):
                    m.d.sync += total.eq(rom_data + resp_rdata + self.addend)
                    m.next = "WR"
            with m.State("WR"):
                m.d.comb += [req_valid.eq(1), req_we.eq(1),
                             req_addr.eq(self.n_words + idx), req_wdata.eq(total)]
                with m.If(req_ready):
                    with m.If(idx == self.n_words - 1):
                        m.d.sync += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += idx.eq(idx + 1)
                        m.next = "ROM_RD"
        # rom_data keeps its value after ROM_RD (en is low afterwards), so RAM_WAIT can use it.
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m


def write_demo_verilog(top: DemoTop, path: Path, name: str = "demo_top") -> Path:
    """Convert *top* to Verilog at *path* (only rewritten when the text changes, so file
    modification times - and anything keyed on them - stay stable)."""
    text = verilog.convert(top, name=name, ports=top.ports())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def hdl_sources(top_verilog: Path) -> list[Path]:
    """All Verilog files needed to simulate the demo top."""
    return [hdl_file("ff_rom.v"), hdl_file("ff_sim_ram.v"), Path(top_verilog)]


def expected_ram(rom, ram_init, n_words: int, width: int, addend: int):
    """NumPy reference of the RAM contents after one (or more) runs."""
    import numpy as np

    mask = (1 << width) - 1
    rom = np.zeros(n_words, np.uint64) if rom is None else np.asarray(rom, np.uint64)
    ram = np.zeros(2 * n_words, np.uint64)
    if ram_init is not None:
        ram[: len(ram_init)] = np.asarray(ram_init, np.uint64)
    out = ram.copy()
    out[n_words:] = (rom[:n_words] + ram[:n_words] + np.uint64(addend)) & np.uint64(mask)
    return out
