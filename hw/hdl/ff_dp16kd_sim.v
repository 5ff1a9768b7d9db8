// ff_dp16kd_sim.v -- behavioural models of the Lattice ECP5 DP16KD block RAM and TRELLIS_FF flip-flop,
// for simulation only.
//
// Covers what fireforge.hw.ecp5_memory generates, nothing more: both ports 18 bits wide (DATA_WIDTH 18,
// word address AD[13:4], byte enables AD[1:0] both set for writes), INITVAL_00..3F in the layout of yosys's
// brams_map_16kd.v (16 words of 18 bits per value, each in a 20-bit slot), REGMODE NOREG / OUTREG
// (OUTREG: one more register behind the read latch, clocked when OCE), CE gating the read latch and the
// write, WE. It lets Verilator run the generated ECP5 memories inside the engine (tests/test_ecp5_memory.py);
// a read and a write of the same word in one cycle return the old word here (the real block leaves it
// undefined, and the engine never does it).
`default_nettype none

module DP16KD #(
    parameter integer DATA_WIDTH_A = 18,
    parameter integer DATA_WIDTH_B = 18,
    parameter [47:0] REGMODE_A = "NOREG",   // "NOREG" or "OUTREG"
    parameter [47:0] REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC",
    parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000",
    parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL",
    parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "AUTO",
    parameter INITVAL_00 = 320'h0,
    parameter INITVAL_01 = 320'h0,
    parameter INITVAL_02 = 320'h0,
    parameter INITVAL_03 = 320'h0,
    parameter INITVAL_04 = 320'h0,
    parameter INITVAL_05 = 320'h0,
    parameter INITVAL_06 = 320'h0,
    parameter INITVAL_07 = 320'h0,
    parameter INITVAL_08 = 320'h0,
    parameter INITVAL_09 = 320'h0,
    parameter INITVAL_0A = 320'h0,
    parameter INITVAL_0B = 320'h0,
    parameter INITVAL_0C = 320'h0,
    parameter INITVAL_0D = 320'h0,
    parameter INITVAL_0E = 320'h0,
    parameter INITVAL_0F = 320'h0,
    parameter INITVAL_10 = 320'h0,
    parameter INITVAL_11 = 320'h0,
    parameter INITVAL_12 = 320'h0,
    parameter INITVAL_13 = 320'h0,
    parameter INITVAL_14 = 320'h0,
    parameter INITVAL_15 = 320'h0,
    parameter INITVAL_16 = 320'h0,
    parameter INITVAL_17 = 320'h0,
    parameter INITVAL_18 = 320'h0,
    parameter INITVAL_19 = 320'h0,
    parameter INITVAL_1A = 320'h0,
    parameter INITVAL_1B = 320'h0,
    parameter INITVAL_1C = 320'h0,
    parameter INITVAL_1D = 320'h0,
    parameter INITVAL_1E = 320'h0,
    parameter INITVAL_1F = 320'h0,
    parameter INITVAL_20 = 320'h0,
    parameter INITVAL_21 = 320'h0,
    parameter INITVAL_22 = 320'h0,
    parameter INITVAL_23 = 320'h0,
    parameter INITVAL_24 = 320'h0,
    parameter INITVAL_25 = 320'h0,
    parameter INITVAL_26 = 320'h0,
    parameter INITVAL_27 = 320'h0,
    parameter INITVAL_28 = 320'h0,
    parameter INITVAL_29 = 320'h0,
    parameter INITVAL_2A = 320'h0,
    parameter INITVAL_2B = 320'h0,
    parameter INITVAL_2C = 320'h0,
    parameter INITVAL_2D = 320'h0,
    parameter INITVAL_2E = 320'h0,
    parameter INITVAL_2F = 320'h0,
    parameter INITVAL_30 = 320'h0,
    parameter INITVAL_31 = 320'h0,
    parameter INITVAL_32 = 320'h0,
    parameter INITVAL_33 = 320'h0,
    parameter INITVAL_34 = 320'h0,
    parameter INITVAL_35 = 320'h0,
    parameter INITVAL_36 = 320'h0,
    parameter INITVAL_37 = 320'h0,
    parameter INITVAL_38 = 320'h0,
    parameter INITVAL_39 = 320'h0,
    parameter INITVAL_3A = 320'h0,
    parameter INITVAL_3B = 320'h0,
    parameter INITVAL_3C = 320'h0,
    parameter INITVAL_3D = 320'h0,
    parameter INITVAL_3E = 320'h0,
    parameter INITVAL_3F = 320'h0,
    parameter INIT_DATA = "STATIC"
) (
    input  wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4,
    input  wire DIA3, DIA2, DIA1, DIA0,
    input  wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input  wire CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output wire DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4,
    output wire DOA3, DOA2, DOA1, DOA0,
    input  wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4,
    input  wire DIB3, DIB2, DIB1, DIB0,
    input  wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input  wire CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4,
    output wire DOB3, DOB2, DOB1, DOB0
);
    reg [17:0] mem [0:1023];
    reg [17:0] latch_a, latch_b, out_a, out_b;
    integer i;

    task init_slot(input [7:0] k, input [319:0] v);
        for (i = 0; i < 16; i = i + 1)
            mem[k * 16 + i] = v[i * 20 +: 18];
    endtask

    initial begin
        if (DATA_WIDTH_A != 18 || DATA_WIDTH_B != 18) begin
            $display("DP16KD %m: ERROR: the simulation model covers 18-bit ports only");
            $finish;
        end
        init_slot(8'h00, INITVAL_00);
        init_slot(8'h01, INITVAL_01);
        init_slot(8'h02, INITVAL_02);
        init_slot(8'h03, INITVAL_03);
        init_slot(8'h04, INITVAL_04);
        init_slot(8'h05, INITVAL_05);
        init_slot(8'h06, INITVAL_06);
        init_slot(8'h07, INITVAL_07);
        init_slot(8'h08, INITVAL_08);
        init_slot(8'h09, INITVAL_09);
        init_slot(8'h0A, INITVAL_0A);
        init_slot(8'h0B, INITVAL_0B);
        init_slot(8'h0C, INITVAL_0C);
        init_slot(8'h0D, INITVAL_0D);
        init_slot(8'h0E, INITVAL_0E);
        init_slot(8'h0F, INITVAL_0F);
        init_slot(8'h10, INITVAL_10);
        init_slot(8'h11, INITVAL_11);
        init_slot(8'h12, INITVAL_12);
        init_slot(8'h13, INITVAL_13);
        init_slot(8'h14, INITVAL_14);
        init_slot(8'h15, INITVAL_15);
        init_slot(8'h16, INITVAL_16);
        init_slot(8'h17, INITVAL_17);
        init_slot(8'h18, INITVAL_18);
        init_slot(8'h19, INITVAL_19);
        init_slot(8'h1A, INITVAL_1A);
        init_slot(8'h1B, INITVAL_1B);
        init_slot(8'h1C, INITVAL_1C);
        init_slot(8'h1D, INITVAL_1D);
        init_slot(8'h1E, INITVAL_1E);
        init_slot(8'h1F, INITVAL_1F);
        init_slot(8'h20, INITVAL_20);
        init_slot(8'h21, INITVAL_21);
        init_slot(8'h22, INITVAL_22);
        init_slot(8'h23, INITVAL_23);
        init_slot(8'h24, INITVAL_24);
        init_slot(8'h25, INITVAL_25);
        init_slot(8'h26, INITVAL_26);
        init_slot(8'h27, INITVAL_27);
        init_slot(8'h28, INITVAL_28);
        init_slot(8'h29, INITVAL_29);
        init_slot(8'h2A, INITVAL_2A);
        init_slot(8'h2B, INITVAL_2B);
        init_slot(8'h2C, INITVAL_2C);
        init_slot(8'h2D, INITVAL_2D);
        init_slot(8'h2E, INITVAL_2E);
        init_slot(8'h2F, INITVAL_2F);
        init_slot(8'h30, INITVAL_30);
        init_slot(8'h31, INITVAL_31);
        init_slot(8'h32, INITVAL_32);
        init_slot(8'h33, INITVAL_33);
        init_slot(8'h34, INITVAL_34);
        init_slot(8'h35, INITVAL_35);
        init_slot(8'h36, INITVAL_36);
        init_slot(8'h37, INITVAL_37);
        init_slot(8'h38, INITVAL_38);
        init_slot(8'h39, INITVAL_39);
        init_slot(8'h3A, INITVAL_3A);
        init_slot(8'h3B, INITVAL_3B);
        init_slot(8'h3C, INITVAL_3C);
        init_slot(8'h3D, INITVAL_3D);
        init_slot(8'h3E, INITVAL_3E);
        init_slot(8'h3F, INITVAL_3F);
        latch_a = 18'd0;
        latch_b = 18'd0;
        out_a = 18'd0;
        out_b = 18'd0;
    end

    wire [9:0]  addr_a = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4};
    wire [9:0]  addr_b = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4};
    wire [17:0] din_a = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6,
                         DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] din_b = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6,
                         DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};

    // one clock for both ports (what the generated memories use): reads see the word before this edge's write
    always @(posedge CLKA) begin
        if (CEA) begin
            if (!WEA) latch_a <= mem[addr_a];
        end
        if (CEB) begin
            if (!WEB) latch_b <= mem[addr_b];
        end
        if (CEA && WEA) mem[addr_a] <= din_a;
        if (CEB && WEB) mem[addr_b] <= din_b;
        if (OCEA) out_a <= latch_a;
        if (OCEB) out_b <= latch_b;
    end

    wire [17:0] q_a = REGMODE_A == "OUTREG" ? out_a : latch_a;
    wire [17:0] q_b = REGMODE_B == "OUTREG" ? out_b : latch_b;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3,
            DOA2, DOA1, DOA0} = q_a;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3,
            DOB2, DOB1, DOB0} = q_b;
endmodule

// TRELLIS_FF as fireforge.hw.ecp5_memory's copy registers use it: CEMUX "1", LSR tied low, reset value 0,
// M unconnected (nextpnr's packer fails an internal check when M is tied to 0 in this design).
module TRELLIS_FF #(
    parameter GSR = "ENABLED",
    parameter CEMUX = "1",
    parameter CLKMUX = "CLK",
    parameter LSRMUX = "LSR",
    parameter SRMODE = "LSR_OVER_CE",
    parameter REGSET = "RESET",
    parameter LSRMODE = "LSR"
) (
    input  wire CLK,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire LSR,
    input  wire CE,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire DI,
    output reg  Q
);
    initial Q = 1'b0;
    always @(posedge CLK) Q <= DI;
endmodule

`default_nettype wire
