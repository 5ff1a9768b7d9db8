"""ECP5 block-RAM memories built from DP16KD primitives with their output registers in use.

Why: a DP16KD read without its output register has a 5.6 ns clock-to-out in nextpnr's ECP5 speed-6 model
(measured: a lone DP16KD into a flip-flop, 156 MHz with ``REGMODE NOREG``, the block RAM off the critical
path with ``OUTREG``). Yosys infers DP16KD / PDPW16KD for ``ff_rom.v`` / ``ff_act_ram.v`` but never uses that
register, so on the 64-MAC ULX3S design every weight, quant and activation path started with 5.6 ns before
its row multiplexer and a route across the chip. These generators write the same memories — same module
ports, same behaviour cycle for cycle — as explicit DP16KD tiles:

* cycle 0: address (and enable) into the block; edge 1: the block's read latch; edge 2: its output
  register (``REGMODE OUTREG``); edge 3: the row multiplexer's register. ``LATENCY`` = 3 =
  :data:`fireforge.hw.engine.ROM_LATENCY` = :data:`fireforge.hw.top.ACT_RAM_LATENCY`, exactly
  ``hdl/ff_rom.v`` (LATENCY 3) and ``hdl/ff_act_ram.v``, which simulation runs.
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

__all__ = ["ROM_TILE", "RAM_TILE", "MEMORY_CELLS", "rom_tiles", "ram_tiles", "rom_verilog", "act_ram_verilog",
           "read_hex_words", "memory_modules", "SIM_MODEL"]

#: memory -> module name in an ECP5 top (``FireforgeTop(memory_cells=...)``); the descriptor ROM (a few dozen
#: words) stays ff_rom.v, which yosys builds from LUTs
MEMORY_CELLS = {"weights": "ff_rom_weights_ecp5", "quant": "ff_rom_quant_ecp5", "act": "ff_act_ram_ecp5"}
#: the DP16KD simulation model that lets Verilator run these memories
SIM_MODEL = Path(__file__).parent / "hdl" / "ff_dp16kd_sim.v"

ROM_TILE = (36, 512)        # width, depth of one DP16KD read as a 36-bit ROM (both 18-bit ports)
RAM_TILE = (18, 1024)       # one DP16KD as a simple dual-port RAM (write port A, read port B)
_NATIVE = 1024              # 18-bit words in a DP16KD


def rom_tiles(width: int, depth: int) -> tuple[int, int]:
    """(columns, rows) of DP16KD tiles of a ``width`` × ``depth`` ROM."""
    return -(-width // ROM_TILE[0]), -(-depth // ROM_TILE[1])


def ram_tiles(width: int, depth: int) -> tuple[int, int]:
    return -(-width // RAM_TILE[0]), -(-depth // RAM_TILE[1])


def read_hex_words(path: Path) -> list[int]:
    """The words of a ``$readmemh`` image written by the compiler (one hex word per line, no addresses)."""
    words = []
    for line in Path(path).read_text().split():
        if line.startswith("//"):
            continue
        if line.startswith("@"):
            raise ValueError(f"{path}: address lines (@...) are not expected in a compiled image")
        words.append(int(line, 16))
    return words


def _initvals(native: list[int]) -> list[str]:
    """64 INITVAL parameter values for 1024 native 18-bit words (yosys brams_map_16kd.v layout)."""
    vals = []
    for k in range(64):
        v = 0
        for i in range(16):
            v |= (native[k * 16 + i] & 0x3FFFF) << (i * 20)
        vals.append(f"320'h{v:080X}")
    return vals


def _dp16kd(inst: str, params: dict[str, str], pins: dict[str, str]) -> str:
    ps = ",\n".join(f"        .{k}({v})" for k, v in params.items())
    cs = ",\n".join(f"        .{k}({v})" for k, v in pins.items())
    return f"    DP16KD #(\n{ps}\n    ) {inst} (\n{cs}\n    );\n"


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
    return (f"// {module}: {width} x {depth} {kind}. Generated by fireforge.hw.ecp5_memory; read latency 3.\n"
            f"`default_nettype none\n"
            f"module {module} #(\n    parameter integer WIDTH = {width},\n    parameter integer DEPTH = {depth},\n"
            f"    parameter integer ADDR_WIDTH = {abits}{params}\n) (\n    input  wire                  clk,\n{ports});\n")


def _low_address(lines: list[str], name: str, addr: str, abits: int, bits: int) -> None:
    """``name`` = the low ``bits`` of ``addr`` (zero-extended when the memory is shallower)."""
    if abits >= bits:
        lines.append(f"    wire [{bits - 1}:0] {name} = {addr}[{bits - 1}:0];\n")
    else:
        lines.append(f"    wire [{bits - 1}:0] {name} = {{{bits - abits}'d0, {addr}}};\n")


def _row_mux(lines: list[str], rows: int, width: int, tile_out: str, sel: str, out: str) -> None:
    """``out <= tile_out[sel]`` (a registered row multiplexer), or a plain register for one row."""
    if rows == 1:
        lines.append(f"    always @(posedge clk) {out} <= {tile_out}0[{width - 1}:0];\n")
        return
    lines.append(f"    always @(posedge clk)\n        case ({sel})\n")
    for r in range(rows):
        lines.append(f"        {r}: {out} <= {tile_out}{r}[{width - 1}:0];\n")
    lines.append(f"        default: {out} <= {{{width}{{1'b0}}}};\n        endcase\n")


def rom_verilog(module: str, width: int, depth: int, words: list[int]) -> str:
    """A ROM with ``ff_rom``'s ports and LATENCY 3 behaviour, contents ``words`` (zero beyond them)."""
    if len(words) > depth:
        raise ValueError(f"{module}: {len(words)} words do not fit a ROM {depth} deep")
    cols, rows = rom_tiles(width, depth)
    tw, td = ROM_TILE
    abits = max(1, (max(depth, 2) - 1).bit_length())
    row_bits = max(1, (rows - 1).bit_length())
    lines = [_header(module, f"ROM, {cols} x {rows} DP16KD (both ports read, OUTREG) as ff_rom.v with LATENCY 3",
                     width, depth, abits,
                     ',\n    parameter INIT_FILE = "",\n    parameter PLUSARG = "",\n    parameter integer LATENCY = 3',
                     "    input  wire                  en,\n    input  wire [ADDR_WIDTH-1:0] addr,\n"
                     "    output reg  [WIDTH-1:0]      data\n")]
    # every tile reads the same word of its row (AD[13:5]; AD4 picks the half); the row number follows the
    # data: captured with `en` like the block's read latch, then once more like its output register
    _low_address(lines, "a9", "addr", abits, 9)
    lines.append("    wire [9:0] lo_half = {a9, 1'b0}, hi_half = {a9, 1'b1};\n")
    if rows > 1:
        lines.append(f"    reg [{row_bits - 1}:0] row1 = 0, row2 = 0;\n"
                     f"    always @(posedge clk) begin\n        if (en) row1 <= addr[{abits - 1}:9];\n"
                     f"        row2 <= row1;\n    end\n")
    lines.append("    initial data = {WIDTH{1'b0}};\n")
    for r in range(rows):
        lines.append(f"    wire [{cols * tw - 1}:0] q{r};\n")
    for r in range(rows):
        for c in range(cols):
            native = [0] * _NATIVE
            for a in range(min(td, max(0, len(words) - r * td))):
                tile_word = (words[r * td + a] >> (c * tw)) & ((1 << tw) - 1)
                native[2 * a] = tile_word & 0x3FFFF
                native[2 * a + 1] = tile_word >> 18
            params = dict(_COMMON, REGMODE_A='"OUTREG"', REGMODE_B='"OUTREG"')
            params.update({f"INITVAL_{k:02X}": v for k, v in enumerate(_initvals(native))})
            pins = {**_port_pins("A", "en", "1'b0", "lo_half", "1'b0", None, (f"q{r}", c * tw)),
                    **_port_pins("B", "en", "1'b0", "hi_half", "1'b0", None, (f"q{r}", c * tw + 18))}
            lines.append(_dp16kd(f"rom_r{r}_c{c}", params, pins))
    _row_mux(lines, rows, width, "q", "row2", "data")
    lines.append("endmodule\n`default_nettype wire\n")
    return "".join(lines)


def act_ram_verilog(module: str, width: int, depth: int) -> str:
    """The activation RAM with ``ff_act_ram``'s ports and behaviour (read latency 3, always ready)."""
    cols, rows = ram_tiles(width, depth)
    tw, td = RAM_TILE
    abits = max(1, (max(depth, 2) - 1).bit_length())
    row_bits = max(1, (rows - 1).bit_length())
    padded = cols * tw
    lines = [_header(module, f"RAM, {cols} x {rows} DP16KD (port A writes, port B reads, OUTREG) as ff_act_ram.v",
                     width, depth, abits, "",
                     "    input  wire                  rd_valid,\n    output wire                  rd_ready,\n"
                     "    input  wire [ADDR_WIDTH-1:0] rd_addr,\n    output wire                  rd_resp_valid,\n"
                     "    output wire [WIDTH-1:0]      rd_resp_data,\n    input  wire                  wr_valid,\n"
                     "    output wire                  wr_ready,\n    input  wire [ADDR_WIDTH-1:0] wr_addr,\n"
                     "    input  wire [WIDTH-1:0]      wr_data,\n    input  wire                  dump,\n"
                     "    input  wire                  dump_layer\n"),
             "    assign rd_ready = 1'b1;\n    assign wr_ready = 1'b1;\n"
             "    reg v1 = 1'b0, v2 = 1'b0, v3 = 1'b0;\n    reg [WIDTH-1:0] d3 = {WIDTH{1'b0}};\n"
             "    always @(posedge clk) begin\n        v1 <= rd_valid;\n        v2 <= v1;\n        v3 <= v2;\n"
             "    end\n    assign rd_resp_valid = v3;\n    assign rd_resp_data = d3;\n"]
    pad = f"{{{padded - width}'d0, wr_data}}" if padded > width else "wr_data"
    lines.append(f"    wire [{padded - 1}:0] wd = {pad};\n")
    _low_address(lines, "ra10", "rd_addr", abits, 10)
    _low_address(lines, "wa10", "wr_addr", abits, 10)
    if rows > 1:
        lines.append(f"    reg [{row_bits - 1}:0] row1 = 0, row2 = 0;\n"
                     f"    always @(posedge clk) begin\n        if (rd_valid) row1 <= rd_addr[{abits - 1}:10];\n"
                     f"        row2 <= row1;\n    end\n")
    for r in range(rows):
        lines.append(f"    wire [{padded - 1}:0] q{r};\n")
    for r in range(rows):
        hit_w = "wr_valid" if rows == 1 else f"wr_valid & (wr_addr[{abits - 1}:10] == {row_bits}'d{r})"
        for c in range(cols):
            params = dict(_COMMON, REGMODE_A='"NOREG"', REGMODE_B='"OUTREG"')
            pins = {**_port_pins("A", hit_w, hit_w, "wa10", "1'b1", ("wd", c * tw), None),
                    **_port_pins("B", "rd_valid", "1'b0", "ra10", "1'b0", None, (f"q{r}", c * tw))}
            lines.append(_dp16kd(f"ram_r{r}_c{c}", params, pins))
    _row_mux(lines, rows, width, "q", "row2", "d3")
    lines.append("endmodule\n`default_nettype wire\n")
    return "".join(lines)


def memory_modules(config, out_dir: Path, *, act_memory: str = "on-chip") -> dict[str, tuple[str, str]]:
    """memory -> (module name, Verilog) of an ECP5 top for the program compiled in ``out_dir``: the weight and
    quant ROMs with its images as contents, and the activation RAM unless it is external."""
    from fireforge.errors import FireforgeError
    from fireforge.hw.top import ROM_IMAGES

    out = {}
    for key in ("weights", "quant"):
        width, depth = {"weights": (config.weight_word_bits, config.weight_depth),
                        "quant": (config.quant_word_bits, config.quant_depth)}[key]
        path = Path(out_dir) / f"{ROM_IMAGES[key][0]}.hex"
        try:
            words = read_hex_words(path)
        except (OSError, ValueError) as e:
            raise FireforgeError(f"{path}: cannot read the {key} image ({e})") from None
        if len(words) > depth:
            raise FireforgeError(f"{path} holds {len(words)} words but the {key} ROM is {depth} deep; recompile")
        out[key] = (MEMORY_CELLS[key], rom_verilog(MEMORY_CELLS[key], width, depth, words))
    if act_memory != "external":
        out["act"] = (MEMORY_CELLS["act"], act_ram_verilog(MEMORY_CELLS["act"], config.act_word_bits,
                                                           config.act_depth))
    return out
