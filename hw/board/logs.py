"""Reading the tools' logs: yosys's ``stat`` cell counts and nextpnr's Fmax, utilisation and critical path."""

from __future__ import annotations

import re

__all__ = ["parse_yosys_stat", "synth_resources", "parse_nextpnr_log", "PNR_RESOURCES"]

_STAT_LINE = re.compile(r"^\s+(\d+)\s+(\S+)\s*$")


def parse_yosys_stat(log_text: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` in a yosys log: the flattened top module, or the totals of the
    ``design hierarchy`` section (counts including submodules) when the hierarchy was kept."""
    idx = log_text.rfind("Printing statistics")
    if idx < 0:
        return {}
    text = log_text[idx:]
    hier = text.rfind("=== design hierarchy ===")
    if hier >= 0:
        text = text[hier:]
        last = text.rfind("Count including submodules")
        text = text[last:] if last >= 0 else text
    cells: dict[str, int] = {}
    for line in text.splitlines():
        mt = _STAT_LINE.match(line)
        if mt and not mt.group(2)[0].isdigit() and mt.group(2) not in ("cells", "wires", "bits"):
            name = mt.group(2)
            if name.startswith("$") or name[0].isupper() or name.startswith("SB_") or name.startswith("TRELLIS"):
                cells.setdefault(name, int(mt.group(1)))
    return cells


#: LUT-equivalents per cell (distributed RAM and carry cells take LUT sites)
_LUT_WEIGHTS = {
    "ecp5": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4},
    "xc7": {"INV": 1, "LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "RAM32M": 4, "RAM64M": 4,
            "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32X1S": 1, "RAM64X1S": 1, "SRL16E": 1, "SRLC32E": 1},
    "ice40": {"SB_LUT4": 1},
}
_FF_CELLS = {"ecp5": ("TRELLIS_FF",), "xc7": ("FDRE", "FDSE", "FDCE", "FDPE"),
             "ice40": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR", "SB_DFFER",
                       "SB_DFFES", "SB_DFFSS", "SB_DFFESS")}
_BRAM_CELLS = {"ecp5": {"DP16KD": 18432, "PDPW16KD": 18432}, "xc7": {"RAMB36E1": 36864, "RAMB18E1": 18432},
               "ice40": {"SB_RAM40_4K": 4096}}
_DSP_CELLS = {"ecp5": ("MULT18X18D",), "xc7": ("DSP48E1",), "ice40": ("SB_MAC16",)}


def synth_resources(cells: dict[str, int], family: str) -> dict[str, int]:
    """``{"lut", "ff", "dsp", "bram_bits"}`` of yosys's cell counts (LUT-equivalents: see _LUT_WEIGHTS)."""
    def count(prefix):
        return sum(v for k, v in cells.items() if k == prefix or k.endswith("\\" + prefix) or k.endswith(prefix))

    lut = sum(w * count(c) for c, w in _LUT_WEIGHTS[family].items())
    ff = sum(cells.get(c, 0) for c in _FF_CELLS[family])
    dsp = sum(cells.get(c, 0) for c in _DSP_CELLS[family])
    bram = sum(bits * cells.get(c, 0) for c, bits in _BRAM_CELLS[family].items())
    return {"lut": lut, "ff": ff, "dsp": dsp, "bram_bits": bram}


def parse_nextpnr_log(text: str) -> dict:
    """Fmax per clock (the last, post-route report), device utilisation, and the critical path's ends."""
    fmax = {}
    for mt in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)", text):
        fmax[mt.group(1)] = {"mhz": float(mt.group(2)), "pass": mt.group(3) == "PASS", "target_mhz": float(mt.group(4))}
    util = {}
    idx = text.rfind("Device utilisation:")
    if idx >= 0:
        for line in text[idx:].splitlines()[1:]:
            mt = re.search(r"^Info:\s+(\S+):\s+(\d+)/\s*(\d+)", line)
            if not mt:
                break
            util[mt.group(1)] = [int(mt.group(2)), int(mt.group(3))]
    return {"fmax": fmax, "utilisation": util, "critical_path": _critical_path(text)}


def _critical_path(text: str) -> dict:
    """The last critical-path report for a clock: its ends, nets, delays, the design's source lines along it."""
    path = {}
    idx = text.rfind("Critical path report for clock")
    if idx < 0:
        return path
    block = text[idx:].split("\n\n", 1)[0].splitlines()
    path["clock"] = re.sub(r"^.*for clock '([^']*)'.*$", r"\1", block[0])
    srcs = [l for l in block if "Source " in l]
    sinks = [l for l in block if re.search(r"\b(Sink|Setup)\b", l)]
    if srcs:
        path["from"] = srcs[0].split("Source", 1)[1].strip()
    if sinks:
        path["to"] = sinks[-1].split(None)[-1]
    path["nets"] = sum(1 for l in block if " Net " in l)
    sources = []                     # the design's own source lines along the path, in order
    for l in block:
        mt = re.search(r"(\S+\.py:\d+)", l)
        if mt and (not sources or sources[-1] != mt.group(1)):
            sources.append(mt.group(1))
    path["sources"] = [re.sub(r"^.*/(hw|sw|sim)/", r"\1/", x) for x in sources]
    delay = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", text[idx:])
    if delay:
        path["logic_ns"], path["routing_ns"] = float(delay.group(1)), float(delay.group(2))
    path["report"] = block[:80]
    return path


#: nextpnr's utilisation names per family (iCE40: no flip-flop count of its own, yosys's stays)
PNR_RESOURCES = {
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": ("DP16KD", 18432)},
    "ice40": {"lut": "ICESTORM_LC", "ff": None, "dsp": "ICESTORM_DSP", "bram": ("ICESTORM_RAM", 4096)},
}
