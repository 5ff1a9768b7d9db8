"""The whole DRAM-mode board in simulation, on a pseudo-terminal (issue #20): ``fireforge run OUT --port sim``.

:class:`BoardSimTop` is what the board top holds minus the PLL and the pins: the engine side
(:class:`~fireforge.hw.link.DramBoardCore`: the DRAM-mode engine, the UART host link, the AXI owner mux),
LiteDRAM's ULX3S ``--sim`` core (the controller's RTL with ``SDRAMPHYModel``, :mod:`fireforge.sim.litedram`) and
the init sequencer on its ``wb_ctrl`` — all on the profile's one clock. Its only ports are the UART pins and the
LEDs. It is Verilated with ``board_sim.cpp`` as ``main``: the C++ loop bridges the pins to a pty at the bit
level (no Python per cycle) and can damage the line (``line_errors``). The DRAM starts empty: the host uploads
the program over the link, as on a board after power-up.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fireforge.core.config import BuildVariant
from fireforge.errors import FireforgeError
from fireforge.sim import litedram
from fireforge.sim.build_cache import cached_build

__all__ = ["BoardSimTop", "BoardSim", "build", "start", "SIM_DIVISOR", "SIM_FRAME_TIMEOUT"]

TOP = "ff_board_sim"
#: UART clock cycles per bit on the simulated line (the receiver's minimum: the fastest line to simulate; a
#: board runs its bridge's baud rate, e.g. 3 Mbaud at 50 MHz = 17)
SIM_DIVISOR = 4
#: cycles without a byte after which the simulated board drops a request: 100 bytes' time on its line, ~5 ms
#: of the host's time at the simulation's speed (~1 M cycles/s), below the 12 ms the host waits at least for an answer
#: (fireforge.sw.run)
SIM_FRAME_TIMEOUT = 100 * 10 * SIM_DIVISOR
HARNESS = Path(__file__).with_name("board_sim.cpp")



class BoardSimTop(wiring.Component):
    """The board's engine side, LiteDRAM's sim core and its init sequencer; ports ``uart_rx``, ``uart_tx``,
    ``leds``. One clock (``clk``) when ``engine_mhz`` is the profile's; else the engine on ``clk`` and the
    controller on ``dram_clk``, the AXI port carried across by :class:`~fireforge.hw.dram.axi_cdc.AxiCdc` and
    ``init_done`` / ``init_error`` synchronised, as the board top does it."""

    def __init__(self, config, core: litedram.LiteDRAMCore, *, variant=None, divisor: int = SIM_DIVISOR,
                 engine_mhz: float | None = None):
        from fireforge.hw.link import DramBoardCore

        self.core = core
        self.engine_mhz = engine_mhz or core.profile.clock_mhz
        self.two_clocks = self.engine_mhz != core.profile.clock_mhz
        addr_width = (core.profile.size_bytes - 1).bit_length()
        self.board = DramBoardCore(config, variant or BuildVariant(), data_width=core.axi_data_width,
                                   addr_width=addr_width, id_width=core.config["user_ports"]["axi_0"]["id_width"],
                                   clk_hz=self.engine_mhz * 1e6, divisor=divisor, frame_timeout=SIM_FRAME_TIMEOUT,
                                   dram_bytes=core.profile.size_bytes)
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(8),
                          **({"dram_clk": In(1), "dram_rst": In(1)} if self.two_clocks else {})})

    def elaborate(self, platform):
        from amaranth import ClockDomain, ClockSignal, DomainRenamer, ResetSignal, Signal
        from amaranth.lib.cdc import FFSynchronizer

        from fireforge.hw.dram.axi_cdc import AxiCdc
        from fireforge.hw.dram.init_sequencer import DramInitSequencer

        m = Module()
        m.submodules.board = b = self.board
        dom = "dram" if self.two_clocks else "sync"
        seq = DramInitSequencer(litedram.init_sequence(self.core))
        m.submodules.seq = DomainRenamer(dom)(seq) if self.two_clocks else seq
        m.d.comb += [b.uart_rx.eq(self.uart_rx), self.uart_tx.eq(b.uart_tx), self.leds.eq(b.leds)]
        port = b.m_axi
        init_done, init_error = Signal(), Signal()
        if self.two_clocks:
            m.domains.dram = ClockDomain("dram")
            m.d.comb += [ClockSignal("dram").eq(self.dram_clk), ResetSignal("dram").eq(self.dram_rst)]
            m.submodules.cdc = cdc = AxiCdc(b.axi_sig, up_domain="sync", down_domain="dram")
            wiring.connect(m, b.m_axi, cdc.up)
            port = cdc.down
            m.submodules += [FFSynchronizer(init_done, b.init_done), FFSynchronizer(init_error, b.init_error)]
        else:
            m.d.comb += [b.init_done.eq(init_done), b.init_error.eq(init_error)]
        requests = {n: getattr(port, n) for n, member in b.axi_sig.members.items() if member.flow == Out}
        m.submodules.dram, responses = litedram.sim_core_instance(self.core, b.axi_sig, requests, seq.bus,
                                                                  init_done=init_done, init_error=init_error,
                                                                  domain=dom)
        m.d.comb += [getattr(port, n).eq(sig) for n, sig in responses.items()]
        return m


def build(config, *, variant=None, build_root: Path | None = None, divisor: int = SIM_DIVISOR,
          engine_mhz: float | None = None, profile: str | None = None) -> tuple[Path, "BoardSimTop"]:
    """The Verilated board (the binary), built once per content under ``build_root/verilator``, and its top."""
    from amaranth.back import verilog

    from fireforge.core.tools import verilator_env
    from fireforge.hw.top import verilog_ports
    from fireforge.sim.dram_run import DATA_WIDTH, ID_WIDTH, PROFILE
    from fireforge.sim.dram_top import _hdl_sources
    from fireforge.sim.hw_run import default_build_root
    from fireforge.sim.verilator_build import BUILD_FLAGS, WAIVERS, log_excerpt

    root = Path(build_root) if build_root is not None else default_build_root()
    core = litedram.generate(profile or PROFILE, axi_data_width=DATA_WIDTH, axi_id_width=ID_WIDTH, build_root=root)
    sim_top = litedram.write_sim_top(core)
    top = BoardSimTop(config, core, variant=variant, divisor=divisor, engine_mhz=engine_mhz)
    text = verilog.convert(top, name=TOP, emit_src=False, ports=verilog_ports(top))
    sources = [WAIVERS, *_hdl_sources(text), core.verilog, sim_top, HARNESS]
    key = hashlib.sha256(text.encode() + b"".join(Path(s).read_bytes() for s in sources)).hexdigest()[:16]

    def make(out: Path) -> dict:
        (out / f"{TOP}.v").write_text(text)
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "--top-module", TOP, "--prefix", "Vtop",
               *(["-CFLAGS", "-DTWO_CLOCKS"] if top.two_clocks else []),
               "-o", TOP, "-Mdir", str(out), "--no-timing", *BUILD_FLAGS, str(WAIVERS), str(out / f"{TOP}.v"),
               *map(str, sources[1:])]
        log = out / "build.log"
        with log.open("w") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                               env={**os.environ, **verilator_env(root / "verilator")})
        if r.returncode or not (out / TOP).is_file():
            raise FireforgeError(f"Verilator build of the simulated board failed; log {log}:\n{log_excerpt(log)}")
        return {"key": key, "toplevel": TOP}

    return cached_build(root / "verilator" / f"{TOP}-{key}", make) / TOP, top


@dataclass
class BoardSim:
    """A running simulated board: its pty (``port``) and process."""
    port: str
    process: subprocess.Popen

    def close(self) -> str:
        """Stop the simulation; returns its line statistics."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err.strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start(config, *, line_errors: float = 0.0, seed: int = 1, variant=None, build_root: Path | None = None,
          divisor: int = SIM_DIVISOR, engine_mhz: float | None = None, profile: str | None = None) -> BoardSim:
    """Build (or reuse) and start the simulated board for ``config`` (``engine_mhz``: the engine's clock when
    it is not the DRAM profile's); returns once its pty exists."""
    binary, top = build(config, variant=variant, build_root=build_root, divisor=divisor, engine_mhz=engine_mhz,
                        profile=profile)
    periods = [f"+clk_ps={round(1e6 / top.engine_mhz)}", f"+dram_clk_ps={round(1e6 / top.core.profile.clock_mhz)}"]
    proc = subprocess.Popen([str(binary), f"+divisor={divisor}", f"+line_errors={line_errors}", f"+seed={seed}",
                             *periods],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = proc.stdout.readline().strip()
    if not port:
        raise FireforgeError(f"the simulated board did not start: {proc.stderr.read().strip()[-500:]}")
    return BoardSim(port, proc)
