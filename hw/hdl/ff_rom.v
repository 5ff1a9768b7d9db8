// ff_rom.v -- single-port ROM with a registered read port (plain Verilog-2005).
//
//   always @(posedge clk) if (en) q[1] <= mem[addr];      // LATENCY = 1: data = q[1]
//   always @(posedge clk) q[k] <= q[k-1];                 // LATENCY = k: data = q[k]
//
// LATENCY (1..6) is the engine's ROM latency (fireforge.hw.engine.ROM_LATENCY, 6): two levels of address
// copies (no flip-flop drives more than a few block RAMs), the block RAM, its output register, two
// registered levels of row multiplexer. The ECP5 ROMs fireforge generates for boards (fireforge.hw.ecp5_memory) have exactly
// this behaviour with those stages in flip-flop copies and the DP16KD's own registers.
//
// Synthesis (yosys read_verilog; synth_ecp5 / synth_xilinx / synth_ice40): block RAM is inferred
// for large DEPTH (32768x8 -> DP16KD), small ROMs become LUTs.  Contents come from
// $readmemh(INIT_FILE).  Words the file does not cover are *undefined* to yosys (it may
// optimise on them), so write hex files that cover all DEPTH words for synthesis
// (fireforge.sim.verilator.write_memh(..., depth=DEPTH) pads with zeros).  No zero-fill loop is
// given to yosys: unrolling it takes minutes for a 32K-word ROM.
//
// Simulation (`VERILATOR or `FF_SIM defined), in this order:
//   1. every word is zero-filled, so words past the end of a short hex file read as 0;
//   2. if INIT_FILE != "" : $readmemh(INIT_FILE, mem);
//   3. if PLUSARG != "" and the simulator was started with +<PLUSARG>=<path>: zero-fill again
//      and $readmemh(<path>) *instead of* INIT_FILE.  One Verilated model can thus be run with
//      many memory images without being rebuilt.  The format string is the constant expression
//      {PLUSARG, "=%s"} (a parameter concatenation, accepted by Verilator 5), so no runtime-built
//      format string is needed.  A missing file stops the simulation ($finish) with an ERROR
//      line instead of silently simulating an all-zero ROM.
//
// Hex files: one WIDTH-bit word per line in hex; `@addr` lines and // comments are allowed.
`default_nettype none

module ff_rom #(
    parameter integer WIDTH      = 8,
    parameter integer DEPTH      = 256,
    parameter integer ADDR_WIDTH = 8,
    parameter         INIT_FILE  = "",
    parameter         PLUSARG    = "",
    parameter integer LATENCY    = 1
) (
    input  wire                  clk,
    input  wire                  en,
    input  wire [ADDR_WIDTH-1:0] addr,
    output wire [WIDTH-1:0]      data
);

    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg [WIDTH-1:0] q1, q2, q3, q4, q5, q6;     // read register and the LATENCY - 1 stages after it

`ifdef VERILATOR
 `define FF_ROM_SIM_
`elsif FF_SIM
 `define FF_ROM_SIM_
`endif

`ifdef FF_ROM_SIM_
    // File name given by +<PLUSARG>=<path>; up to 1024 characters.
    reg [8*1024-1:0] plusarg_path;
    integer fd;
    integer i;
`endif

    initial begin
`ifdef FF_ROM_SIM_
        for (i = 0; i < DEPTH; i = i + 1)
            mem[i] = {WIDTH{1'b0}};
`endif
        if (INIT_FILE != "")
            $readmemh(INIT_FILE, mem);
`ifdef FF_ROM_SIM_
        q1 = {WIDTH{1'b0}};
        q2 = {WIDTH{1'b0}};
        q3 = {WIDTH{1'b0}};
        q4 = {WIDTH{1'b0}};
        q5 = {WIDTH{1'b0}};
        q6 = {WIDTH{1'b0}};
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

    always @(posedge clk) begin
        if (en)
            q1 <= mem[addr];
        q2 <= q1;
        q3 <= q2;
        q4 <= q3;
        q5 <= q4;
        q6 <= q5;
    end
    assign data = LATENCY >= 6 ? q6 : LATENCY == 5 ? q5 : LATENCY == 4 ? q4 : LATENCY == 3 ? q3 :
                  LATENCY == 2 ? q2 : q1;

`ifdef FF_ROM_SIM_
 `undef FF_ROM_SIM_
`endif

endmodule

`default_nettype wire
