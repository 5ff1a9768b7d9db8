"""LiteDRAM's simulated chip, preloaded and dumped by the simulator instead of over the bus (issue #19).

A copy of the ``--sim`` core's Verilog (:func:`write_backdoor_core`) reads each bank array from a plusarg hex
file at time 0 and writes a plusarg-given index range of it in a ``final`` block; :func:`write_dram_image`,
:func:`backdoor_plusargs` and :func:`read_dram_dump` turn DRAM byte addresses into those files and back.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fireforge.sim.litedram import LiteDRAMCore

__all__ = ["BACKDOOR_VERSION", "DramGeometry", "dram_geometry", "dram_location", "dram_byte_address",
           "write_backdoor_core", "write_dram_image", "dump_index_range", "backdoor_plusargs", "read_dram_dump"]

# SDRAMPHYModel keeps each bank in one Verilog array (``reg [W-1:0] mem[0:N-1]``, ``mem_1``, ...), indexed
# ``row · ncols + col`` (``slice_proxy = row * ncols | col`` in the generated Verilog). The controller maps a
# native word address ROW_BANK_COL (litedram.core.crossbar: col in the low bits, then the bank, then the
# row), and the AXI port's byte address is the native word address × native bytes + the byte lane. So for
# the ULX3S (16-bit native words, 512 columns, 4 banks, 8192 rows):
#     word = addr >> 1; col = word[8:0]; bank = word[10:9]; row = word[23:11]; lane = addr[0]
#     index = row · 512 + col
# measured, not assumed: tests/test_dram_sim.py preloads by backdoor and reads over AXI, and writes over AXI
# and dumps (both byte-exact at random addresses across banks and rows).

#: bump when the backdoor patch changes (part of the patched file's content, so of its name and build key)
BACKDOOR_VERSION = 1
_MEM_DECL = r"^reg \[(\d+):0\] (mem(?:_\d+)?)\[0:(\d+)\];$"


@dataclass(frozen=True)
class DramGeometry:
    """Where a byte of the AXI address space lives in SDRAMPHYModel's arrays (see :func:`dram_location`).

    ``word_bytes`` native word (array width / 8), ``col_bits`` / ``bank_bits`` / ``row_bits`` of the
    module, ``arrays`` the bank arrays' names in bank order, ``depth`` words per array."""

    word_bytes: int
    col_bits: int
    bank_bits: int
    row_bits: int
    arrays: tuple[str, ...]
    depth: int

    @property
    def banks(self) -> int:
        return len(self.arrays)

    @property
    def size_bytes(self) -> int:
        return self.banks * self.depth * self.word_bytes


def dram_geometry(core: LiteDRAMCore) -> DramGeometry:
    """The backdoor geometry of *core*: its bank arrays read from the generated Verilog, the column / bank /
    row bits from the module. Only SDR (one phase, burst length 1: the column address is the native word's
    low bits) is supported; that is the ULX3S profile, the only one simulated."""
    import re

    import litedram.modules

    if core.profile.memtype != "SDR":
        raise ValueError(f"the DRAM backdoor supports SDR (ULX3S) only, not {core.profile.memtype}")
    m = getattr(litedram.modules, core.profile.sdram_module)
    decls = re.findall(_MEM_DECL, core.verilog.read_text(), re.M)
    widths = {int(w) + 1 for w, _, _ in decls}
    depths = {int(d) + 1 for _, _, d in decls}
    names = sorted((n for _, n, _ in decls), key=lambda n: 0 if n == "mem" else int(n[4:]))
    if len(names) != m.nbanks or len(widths) != 1 or depths != {m.nrows * m.ncols}:
        raise ValueError(f"{core.verilog}: expected {m.nbanks} bank arrays of {m.nrows * m.ncols} words, "
                         f"found {decls}")
    (width,) = widths
    if width != core.profile.dram_data_bits:
        raise ValueError(f"{core.verilog}: bank arrays are {width} bits, the SDR bus {core.profile.dram_data_bits}")
    return DramGeometry(word_bytes=width // 8, col_bits=(m.ncols - 1).bit_length(),
                        bank_bits=(m.nbanks - 1).bit_length(), row_bits=(m.nrows - 1).bit_length(),
                        arrays=tuple(names), depth=m.nrows * m.ncols)


def dram_location(geometry: DramGeometry, byte_address: int) -> tuple[int, int, int]:
    """``(bank, index, lane)`` of AXI byte address *byte_address*: the bank array, the word in it, the byte
    in that word (0 = bits 7:0)."""
    g = geometry
    if not 0 <= byte_address < g.size_bytes:
        raise ValueError(f"byte address {byte_address:#x} outside the DRAM ({g.size_bytes:#x} bytes)")
    word, lane = divmod(byte_address, g.word_bytes)
    col = word & ((1 << g.col_bits) - 1)
    bank = (word >> g.col_bits) & ((1 << g.bank_bits) - 1)
    row = word >> (g.col_bits + g.bank_bits)
    return bank, (row << g.col_bits) | col, lane


def dram_byte_address(geometry: DramGeometry, bank: int, index: int, lane: int = 0) -> int:
    """The inverse of :func:`dram_location`."""
    g = geometry
    row, col = index >> g.col_bits, index & ((1 << g.col_bits) - 1)
    return (((row << g.bank_bits | bank) << g.col_bits) | col) * g.word_bytes + lane


def _locate(g: DramGeometry, addrs):
    import numpy as np

    word, lane = np.divmod(addrs, g.word_bytes)
    col = word & ((1 << g.col_bits) - 1)
    bank = (word >> g.col_bits) & ((1 << g.bank_bits) - 1)
    row = word >> (g.col_bits + g.bank_bits)
    return bank, (row << g.col_bits) | col, lane


def _backdoor_text(core: LiteDRAMCore, g: DramGeometry) -> str:
    src = core.verilog.read_text()
    end = src.rstrip().rfind("endmodule")
    if end < 0 or src.count("\nendmodule") != 1:
        raise ValueError(f"{core.verilog}: expected exactly one module")
    k = range(g.banks)
    lines = [
        "",
        f"// ---- fireforge backdoor v{BACKDOOR_VERSION} (fireforge.sim.litedram.write_backdoor_core) ----",
        "// +dram_init_bank<k>=FILE   $readmemh into bank k's array at time 0 (sparse: @index records)",
        "// +dram_dump_bank<k>=FILE   $writememh of bank k's words +dram_dump_lo .. +dram_dump_hi (inclusive,",
        "//                           decimal indices) when the simulation ends (final block)",
        "reg [8*1024-1:0] ff_bd_path;",
        "integer ff_bd_lo, ff_bd_hi, ff_bd_fd;",
        "initial begin",
        *(f"    if ($value$plusargs(\"dram_init_bank{b}=%s\", ff_bd_path)) begin\n"
          f"        ff_bd_fd = $fopen(ff_bd_path, \"r\");\n"
          f"        if (ff_bd_fd == 0) begin\n"
          f"            $display(\"litedram backdoor: ERROR: cannot open +dram_init_bank{b}=%0s\", ff_bd_path);\n"
          f"            $finish;\n"
          f"        end else begin\n"
          f"            $fclose(ff_bd_fd);\n"
          f"            $readmemh(ff_bd_path, {g.arrays[b]});\n"
          f"        end\n"
          f"    end" for b in k),
        "end",
        "final begin",
        "    if ($value$plusargs(\"dram_dump_lo=%d\", ff_bd_lo) && $value$plusargs(\"dram_dump_hi=%d\", ff_bd_hi)) begin",
        *(f"        if ($value$plusargs(\"dram_dump_bank{b}=%s\", ff_bd_path))\n"
          f"            $writememh(ff_bd_path, {g.arrays[b]}, ff_bd_lo, ff_bd_hi);" for b in k),
        "    end",
        "end",
        "// ---- end of the fireforge backdoor ----",
        "",
    ]
    return src[:end] + "\n".join(lines) + src[end:]


def write_backdoor_core(core: LiteDRAMCore) -> Path:
    """A copy of *core*'s ``litedram_core.v`` with the backdoor added before ``endmodule`` (the generated file
    is never edited): ``gateware/litedram_core.backdoor-<sha16>.v`` beside it, named by the hash of its own
    text, written atomically (an existing file is reused). Same module name ``litedram_core``: build it
    *instead of* :attr:`LiteDRAMCore.verilog`, with :func:`write_sim_top` as usual. Plusargs: see
    :func:`backdoor_plusargs`."""
    text = _backdoor_text(core, dram_geometry(core))
    path = core.verilog.with_name(f"litedram_core.backdoor-{hashlib.sha256(text.encode()).hexdigest()[:16]}.v")
    if not path.is_file():
        tmp = path.with_suffix(f".v.tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def write_dram_image(image: dict[int, bytes], out_dir: Path, geometry: DramGeometry) -> dict[int, Path]:
    """The per-bank ``$readmemh`` files of *image* (DRAM byte address → bytes) in *out_dir*:
    ``{bank: out_dir/dram_init_bank<bank>.hex}`` for the banks it touches. Sparse: ``@index`` (hex) before
    every run of consecutive words. A native word the image covers only partly gets 0 in its other bytes
    (the DRAM starts as zeros); where image entries overlap, the later one wins."""
    import numpy as np

    from fireforge.core.hexfile import format_words

    g = geometry
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [(a, np.frombuffer(bytes(b), np.uint8)) for a, b in image.items() if len(b)]
    files: dict[int, Path] = {}
    if not parts:
        return files
    for a, b in parts:
        if a < 0 or a + len(b) > g.size_bytes:
            raise ValueError(f"image bytes {a:#x}..{a + len(b):#x} outside the DRAM ({g.size_bytes:#x} bytes)")
    addrs = np.concatenate([np.arange(a, a + len(b), dtype=np.int64) for a, b in parts])
    data = np.concatenate([b for _, b in parts])
    # later entries win: keep the last occurrence of each address
    order = np.argsort(addrs, kind="stable")
    addrs, data = addrs[order], data[order]
    last = np.ones(len(addrs), bool)
    last[:-1] = addrs[1:] != addrs[:-1]
    addrs, data = addrs[last], data[last]
    bank, index, lane = _locate(g, addrs)
    for b in np.unique(bank):
        sel = bank == b
        idx, ln, d = index[sel], lane[sel], data[sel]
        words_idx, inv = np.unique(idx, return_inverse=True)
        words = np.zeros((len(words_idx), g.word_bytes), np.uint8)
        words[inv, ln] = d
        starts = np.flatnonzero(np.diff(words_idx, prepend=-2) != 1)
        stops = np.append(starts[1:], len(words_idx))
        text = "".join(f"@{words_idx[s]:x}\n" + format_words(words[s:e]) for s, e in zip(starts, stops))
        path = out_dir / f"dram_init_bank{int(b)}.hex"
        path.write_text(text)
        files[int(b)] = path
    return files


def dump_index_range(geometry: DramGeometry, lo: int, hi: int) -> tuple[int, int]:
    """The bank-array indices (first, last, inclusive; the same for every bank) that hold the bytes
    ``[lo, hi)``: whole rows from the row of *lo* to the row of ``hi - 1``."""
    g = geometry
    if not 0 <= lo < hi <= g.size_bytes:
        raise ValueError(f"dump range [{lo:#x}, {hi:#x}) empty or outside the DRAM ({g.size_bytes:#x} bytes)")
    shift = g.col_bits + g.bank_bits
    row_lo, row_hi = (lo // g.word_bytes) >> shift, ((hi - 1) // g.word_bytes) >> shift
    return row_lo << g.col_bits, ((row_hi + 1) << g.col_bits) - 1


def backdoor_plusargs(geometry: DramGeometry, init_files: dict[int, Path] | None = None,
                      dump: tuple[Path, int, int] | None = None) -> tuple[dict[str, object], dict[int, Path]]:
    """Plusargs for a model built from :func:`write_backdoor_core`: ``+dram_init_bank<k>`` for *init_files*
    (:func:`write_dram_image`), and with ``dump = (directory, lo_byte, hi_byte)`` the dump of every bank's
    :func:`dump_index_range` into ``directory/dram_dump_bank<k>.hex``. Returns ``(plusargs, dump files)``."""
    plus: dict[str, object] = {f"dram_init_bank{b}": Path(p) for b, p in (init_files or {}).items()}
    files: dict[int, Path] = {}
    if dump is not None:
        d, lo, hi = dump
        first, last = dump_index_range(geometry, lo, hi)
        plus.update(dram_dump_lo=str(first), dram_dump_hi=str(last))
        for b in range(geometry.banks):
            files[b] = Path(d) / f"dram_dump_bank{b}.hex"
            plus[f"dram_dump_bank{b}"] = files[b]
    return plus, files


def read_dram_dump(dump_files: dict[int, Path], lo: int, hi: int, geometry: DramGeometry) -> bytes:
    """The bytes ``[lo, hi)`` from the per-bank dumps of :func:`backdoor_plusargs` (each holds the words of
    :func:`dump_index_range`, first to last, as ``$writememh`` writes them; ``@`` records are honoured)."""
    import numpy as np

    from fireforge.core.hexfile import read_words

    g = geometry
    first, last = dump_index_range(g, lo, hi)
    n = last - first + 1
    banks = []
    for b in range(g.banks):
        path = Path(dump_files[b])
        if not path.is_file():
            raise FileNotFoundError(f"no DRAM dump {path} (did the simulation end normally?)")
        words = read_words(path, g.word_bytes)
        # $writememh with a range may or may not write an @first record: both parse to the right place
        if len(words) >= first + n:
            words = words[first:first + n]
        elif len(words) != n:
            raise ValueError(f"{path}: {len(words)} words, expected {n} (indices {first}..{last})")
        banks.append(words)
    stack = np.stack(banks)                        # [bank, index - first, lane]
    addrs = np.arange(lo, hi, dtype=np.int64)
    bank, index, lane = _locate(g, addrs)
    return stack[bank, index - first, lane].tobytes()
