// ff_rom.v -- single-port ROM with a registered read port (plain Verilog-2005).
//
// Synthesis: infers block RAM (DP16KD / RAMB18E1 / SB_RAM40_4K) because the read is registered
// and the contents come from $readmemh(INIT_FILE).
//
// Contents, in this order (later steps overwrite earlier ones):
//   1. every word is zero-filled, so words past the end of a short hex file read as 0;
//   2. if INIT_FILE != "" : $readmemh(INIT_FILE, mem)       (synthesis and simulation)
//   3. simulation only (`VERILATOR or `FF_SIM defined): if PLUSARG != "" and the simulator was
//      started with +<PLUSARG>=<path>, the memory is zero-filled again and $readmemh(<path>)
//      is loaded *instead of* INIT_FILE.  This lets one Verilated model be run with many memory
//      images without being rebuilt.  The plusarg format string is the constant expression
//      {PLUSARG, "=%s"}, which Verilator and Icarus accept (no runtime-built format needed).
//
// Hex files: one WIDTH-bit word per line in hex, `@addr` lines and // comments allowed.
`default_nettype none

module ff_rom #(
    parameter integer WIDTH      = 8,
    parameter integer DEPTH      = 256,
    parameter integer ADDR_WIDTH = 8,
    parameter         INIT_FILE  = "",
    parameter         PLUSARG    = ""
) (
    input  wire                  clk,
    input  wire                  en,
    input  wire [ADDR_WIDTH-1:0] addr,
    output reg  [WIDTH-1:0]      data
);

    reg [WIDTH-1:0] mem [0:DEPTH-1];

    integer i;

`ifdef VERILATOR
 `define FF_ROM_SIM_
`elsif FF_SIM
 `define FF_ROM_SIM_
`endif

`ifdef FF_ROM_SIM_
    // File name given by +<PLUSARG>=<path>; up to 1024 characters.
    reg [8*1024-1:0] plusarg_path;
    integer fd;
`endif

    initial begin
        for (i = 0; i < DEPTH; i = i + 1)
            mem[i] = {WIDTH{1'b0}};
        if (INIT_FILE != "")
            $readmemh(INIT_FILE, mem);
`ifdef FF_ROM_SIM_
        data = {WIDTH{1'b0}};
        plusarg_path = 0;
        if (PLUSARG != "") begin
            if ($value$plusargs({PLUSARG, "=%s"}, plusarg_path)) begin
                fd = $fopen(plusarg_path, "r");
                if (fd == 0) begin
                    // A missing image must not silently simulate an all-zero ROM.
                    $display("ff_rom %m: ERROR: cannot open +%0s=%0s", PLUSARG, plusarg_path);
                    $finish;
                end else begin
                    $fclose(fd);
                    for (i = 0; i < DEPTH; i = i + 1)
                        mem[i] = {WIDTH{1'b0}};
                    $readmemh(plusarg_path, mem);
                end
            end
        end
`endif
    end

    always @(posedge clk)
        if (en)
            data <= mem[addr];

`ifdef FF_ROM_SIM_
 `undef FF_ROM_SIM_
`endif

endmodule

`default_nettype wire
