// ff_dp16kd_sim.v -- behavioural models of the Lattice ECP5 DP16KD block RAM, TRELLIS_FF flip-flop and
// MULT18X18D multiplier, for simulation only.
//
// DP16KD: covers what fireforge.hw.ecp5_memory generates, nothing more: both ports 18 bits wide (DATA_WIDTH 18,
// word address AD[13:4], byte enables AD[1:0] both set for writes), INITVAL_00..3F in the layout of yosys's
// brams_map_16kd.v (16 words of 18 bits per value, each in a 20-bit slot), REGMODE NOREG / OUTREG
// (OUTREG: one more register behind the read latch, clocked when OCE), CE gating the read latch and the
// write, WE. It lets Verilator run the generated ECP5 memories inside the engine (tests/test_ecp5_memory.py);
// a read and a write of the same word in one cycle return the old word here (the real block leaves it
// undefined, and the engine never does it).
//
// MULT18X18D: covers what fireforge.hw.dsp.registered_product instantiates, nothing more: an unsigned
// 18 x 18 multiply with the A and B input registers and the output register on CLK0 / CE0 and no pipeline
// register (two clock edges from A, B to P). Any other REG_* setting, MULT_BYPASS, or SIGNEDA/B, SOURCEA/B
// or RST0 high stops the simulation with an error; C, the shift and cascade ports are not modelled (the
// outputs read 0). It lets Verilator run the requantizers built with multipliers="ecp5"
// (tests/test_dsp.py).
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

// MULT18X18D as fireforge.hw.dsp.registered_product uses it (see the header). Port and parameter names and
// parameter defaults are the real block's.
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE",      // "CLK0" only, here
    parameter REG_INPUTA_CE = "CE0",
    parameter REG_INPUTA_RST = "RST0",
    parameter REG_INPUTB_CLK = "NONE",      // "CLK0" only
    parameter REG_INPUTB_CE = "CE0",
    parameter REG_INPUTB_RST = "RST0",
    parameter REG_INPUTC_CLK = "NONE",      // "NONE" only (C unused)
    parameter REG_PIPELINE_CLK = "NONE",    // "NONE" only
    parameter REG_OUTPUT_CLK = "NONE",      // "CLK0" only
    parameter REG_OUTPUT_CE = "CE0",
    parameter REG_OUTPUT_RST = "RST0",
    parameter MULT_BYPASS = "DISABLED",
    parameter RESETMODE = "SYNC",
    /* verilator lint_off UNUSEDPARAM */
    parameter REG_INPUTC_CE = "CE0",
    parameter REG_INPUTC_RST = "RST0",
    parameter REG_PIPELINE_CE = "CE0",
    parameter REG_PIPELINE_RST = "RST0",
    parameter CLK0_DIV = "ENABLED",
    parameter CLK1_DIV = "ENABLED",
    parameter CLK2_DIV = "ENABLED",
    parameter CLK3_DIV = "ENABLED",
    parameter HIGHSPEED_CLK = "NONE",
    parameter GSR = "ENABLED",
    parameter CAS_MATCH_REG = "FALSE",
    parameter SOURCEB_MODE = "B_SHIFT"
    /* verilator lint_on UNUSEDPARAM */
) (
    input  wire A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input  wire B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input  wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CE0, RST0,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input  wire CLK3, CLK2, CLK1, CE3, CE2, CE1, RST3, RST2, RST1,
    input  wire SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
    input  wire SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
    output wire SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
    output wire ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
    output wire ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
    output wire ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
    output wire SIGNEDP
);
    reg [17:0] a_reg, b_reg;
    reg [35:0] p_reg;

    initial begin
        if (REG_INPUTA_CLK != "CLK0" || REG_INPUTB_CLK != "CLK0" || REG_OUTPUT_CLK != "CLK0"
                || REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_OUTPUT_CE != "CE0"
                || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0" || REG_OUTPUT_RST != "RST0"
                || REG_PIPELINE_CLK != "NONE" || REG_INPUTC_CLK != "NONE" || MULT_BYPASS != "DISABLED"
                || RESETMODE != "SYNC") begin
            $display("MULT18X18D %m: ERROR: the simulation model covers input and output registers on CLK0 / CE0 without the pipeline register only");
            $finish;
        end
        a_reg = 18'd0;
        b_reg = 18'd0;
        p_reg = 36'd0;
    end

    always @(posedge CLK0) begin
        if (SIGNEDA || SIGNEDB || SOURCEA || SOURCEB || RST0) begin
            $display("MULT18X18D %m: ERROR: the simulation model covers unsigned A and B inputs without reset only");
            $finish;
        end
        if (CE0) begin
            a_reg <= {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
            b_reg <= {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
            p_reg <= {18'd0, a_reg} * {18'd0, b_reg};
        end
    end

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p_reg;
    assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = 18'd0;
    assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = 18'd0;
    assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = 18'd0;
    assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = 18'd0;
    assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = 18'd0;
    assign SIGNEDP = 1'b0;
endmodule

`default_nettype wire
