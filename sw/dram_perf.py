"""DRAM mode's cycle model: a DRAM-mode command stream timed without simulating it.

The DRAM-mode engine (``fireforge.hw.dram.dram_engine``) runs its commands in order: a compute tile only starts
the engine core (when it is idle) and the next commands go on; a transfer runs to completion, after waiting
for the core when its ``wait`` flag says so. :func:`predict_stream` replays that with two clocks — when the
transfer queue is next free, when the core is — and costs

* a compute tile as the resident engine runs the same descriptor (:func:`fireforge.sw.perf.layer_cycles`);
* a transfer by the bus: its bytes at the profile's bytes per cycle, plus a fixed cost per DMA run
  (:class:`Bus`: measured on the ULX3S LiteDRAM core, docs/dram.md);
* the command fetch as bus bytes too (64 bytes per command, prefetched beside the transfers).

Layer boundaries are the ``mark`` transfers, as the simulation stamps them; per layer the model also says how
long the core and the bus were busy in it, and so whether it is memory-bound (the bus busier than the core).
"""

from __future__ import annotations

from dataclasses import dataclass

from fireforge.core.config import BuildVariant, EngineConfig
from fireforge.core.descriptor import COMMAND_BYTES, Op, unpack_command
from fireforge.sw.dram_emit import word_bytes
from fireforge.sw.perf import engine_timing, layer_cycles

__all__ = ["Bus", "BUSES", "BOARD_BUS", "StreamPrediction", "predict_stream", "predict_compiled_stream",
           "bus_for"]


@dataclass(frozen=True)
class Bus:
    """A DRAM port as the engine sees it: sustained bytes per engine cycle each way, and the cycles one DMA run
    (one command to a ReadDma / WriteDma) costs besides its bytes (address, first-beat latency, completion)."""
    read_bytes_per_cycle: float
    write_bytes_per_cycle: float
    per_run: int
    clock_mhz: float


#: ULX3S profile, 16-bit AXI port, one 50 MHz clock: 1.92 B/cycle streaming (96 MB/s, docs/dram.md's table)
#: both ways; 4 cycles per run is the one fitted term (best of 0..8 over three Verilated networks: within 2.8 %)
BUSES = {"ulx3s": Bus(1.92, 1.92, 4, 50.0),
         # not simulated (docs/dram.md): DDR3 16-bit at 100 MHz 1:4 (peak 400 MB/s), assumed at half its peak
         "arty": Bus(2.0, 2.0, 4, 100.0),
         # DDR3 64-bit SODIMM at 125 MHz 1:4 through a 64-bit port: assumed one beat per cycle
         "kc705": Bus(8.0, 8.0, 4, 100.0)}
#: the bus each board's DRAM-mode engine sees
BOARD_BUS = {"ulx3s-85f": "ulx3s", "arty-a7-100": "arty", "kc705": "kc705"}


def bus_for(board: str | None) -> Bus:
    """The bus a DRAM-mode engine on ``board`` sees (none: the simulated ULX3S profile's)."""
    return BUSES[BOARD_BUS.get(board, "ulx3s")]


@dataclass
class StreamPrediction:
    cycles: int
    compute_cycles: int                  # cycles the core is busy
    layer_cycles: list[int]              # between mark transfers, as the simulation stamps layers
    bus_cycles: int                      # cycles the transfer queue is busy
    layer_compute: list[int]             # per mark span: cycles of the tiles issued in it
    layer_bus: list[int]                 # per mark span: cycles of its transfers and command fetches

    @property
    def stall_cycles(self) -> int:
        return self.cycles - self.compute_cycles

    def bound(self, span: int) -> str:
        """``"memory"`` when the bus was busier than the core in mark span ``span``, else ``"compute"``."""
        return "memory" if self.layer_bus[span] > self.layer_compute[span] else "compute"


def predict_stream(commands: list[dict], config: EngineConfig, bus: Bus, variant: BuildVariant | None = None
                   ) -> StreamPrediction:
    """Cycles of one run of ``commands`` (field dicts in stream order) on the DRAM-mode engine of ``config``."""
    t = engine_timing(config, variant)
    now = core_free = busy = bus_busy = 0
    stamps, spans = [], []
    span_core = span_bus = 0.0
    fetch = COMMAND_BYTES / bus.read_bytes_per_cycle
    for c in commands:
        now += fetch                                   # the command's own bytes share the bus
        bus_busy += fetch
        span_bus += fetch
        op = c["op"]
        if op == Op.END:
            break
        if op in (Op.LOAD, Op.STORE):
            if c["wait"]:
                now = max(now, core_free)
            nbytes = c["runs"] * c["run_words"] * word_bytes(config, c["buffer"])
            rate = bus.read_bytes_per_cycle if op == Op.LOAD else bus.write_bytes_per_cycle
            cost = nbytes / rate + c["runs"] * bus.per_run
            now += cost
            bus_busy += cost
            span_bus += cost
            if c.get("mark"):
                stamps.append(now)
                spans.append((round(span_core), round(span_bus)))
                span_core = span_bus = 0.0
        else:
            start = max(now, core_free)
            cycles = layer_cycles(c, t)
            core_free, now = start + cycles, start
            busy += cycles
            span_core += cycles
    end = max(now, core_free)
    marks = [round(s) for s in stamps]
    return StreamPrediction(round(end), busy, [b - a for a, b in zip([0, *marks], marks)], round(bus_busy),
                            [c for c, _ in spans], [b for _, b in spans])


def predict_compiled_stream(compiled, bus: Bus | str = "ulx3s", variant: BuildVariant | None = None
                            ) -> StreamPrediction:
    """:func:`predict_stream` for a DRAM-mode compile output (its commands image)."""
    from fireforge.core.compiled import Compiled

    c = Compiled.of(compiled)
    raw = c.images["commands"].bin.read_bytes()
    commands = [unpack_command(int.from_bytes(raw[i:i + COMMAND_BYTES], "little"))
                for i in range(0, len(raw), COMMAND_BYTES)]
    return predict_stream(commands, c.config, BUSES[bus] if isinstance(bus, str) else bus, variant)
