// ff_act_ram.v -- activation memory behind the engine's memory port (plain Verilog-2005).
//
// One read channel (request valid/ready, response LATENCY cycles after acceptance; 6 in every top
// (fireforge.hw.top.ACT_RAM_LATENCY): two levels of address copies, the block RAM, its output register, two
// registered levels of bank multiplexer) and one write channel (valid/ready), i.e. a simple
// dual-port RAM: synthesis infers block RAM (the ECP5 boards use fireforge.hw.ecp5_memory's DP16KD
// version with the same behaviour). A board without room for activations maps the same two channels
// onto external RAM instead.
//
// Simulation only (`VERILATOR or `FF_SIM):
//   +act_init=<file>       $readmemh the contents at time 0 (zero-filled otherwise);
//   +act_dump=<file>       $writememh the contents whenever `dump` is high at a clock edge;
//   +act_dump_layers=<pfx> $writememh the contents to <pfx>.<n>.hex at the n-th edge with `dump_layer` high
//                          (the engine raises it as each layer finishes: every layer's output survives);
//   +act_stall_seed=<n>    n != 0: rd_ready / wr_ready drop pseudo-randomly (two LFSRs seeded by n);
//   +act_stall_pct=<p>     roughly p % of cycles stall on each channel (default 30);
//   +act_latency=<n>       read responses arrive n cycles after acceptance (LATENCY..64, default LATENCY): models an
//                          external memory (DRAM) behind the same channels; still in order.
`default_nettype none

module ff_act_ram #(
    parameter integer WIDTH      = 64,
    parameter integer DEPTH      = 1024,
    parameter integer ADDR_WIDTH = 10,
    parameter integer LATENCY    = 6        // 3..6
) (
    input  wire                  clk,
    input  wire                  rd_valid,
    output wire                  rd_ready,
    input  wire [ADDR_WIDTH-1:0] rd_addr,
    output wire                  rd_resp_valid,
    output wire [WIDTH-1:0]      rd_resp_data,
    input  wire                  wr_valid,
    output wire                  wr_ready,
    input  wire [ADDR_WIDTH-1:0] wr_addr,
    input  wire [WIDTH-1:0]      wr_data,
    input  wire                  dump,
    input  wire                  dump_layer
);

    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg             r_valid, r2_valid, r3_valid, r4_valid, r5_valid, r6_valid;   // read pipeline
    reg [WIDTH-1:0] r_data, r2_data, r3_data, r4_data, r5_data, r6_data;
    // the pipeline's last stage: the response after LATENCY cycles
    wire             p_valid = LATENCY >= 6 ? r6_valid : LATENCY == 5 ? r5_valid : LATENCY == 4 ? r4_valid : r3_valid;
    wire [WIDTH-1:0] p_data = LATENCY >= 6 ? r6_data : LATENCY == 5 ? r5_data : LATENCY == 4 ? r4_data : r3_data;
    integer i;

`ifdef VERILATOR
 `define FF_ACT_SIM_
`elsif FF_SIM
 `define FF_ACT_SIM_
`endif

`ifdef FF_ACT_SIM_
    reg [8*1024-1:0] init_path, dump_path, layers_path, layer_file;
    reg              have_dump, have_layers;
    integer          layer_n;
    integer          stall_seed, stall_pct, fd;
    reg [31:0]       lfsr_r, lfsr_w;
    reg              stall_r, stall_w;
    integer          latency;
    reg              lat_valid [0:63];
    reg [WIDTH-1:0]  lat_data  [0:63];
    reg [5:0]        lat_ptr, lat_back;
    initial begin
        for (i = 0; i < DEPTH; i = i + 1)
            mem[i] = {WIDTH{1'b0}};
        init_path = 0;
        dump_path = 0;
        if ($value$plusargs("act_init=%s", init_path)) begin
            fd = $fopen(init_path, "r");
            if (fd == 0) begin
                $display("ff_act_ram %m: ERROR: cannot open +act_init=%0s", init_path);
                $finish;
            end
            $fclose(fd);
            $readmemh(init_path, mem);
        end
        have_dump = $value$plusargs("act_dump=%s", dump_path);
        layers_path = 0;
        have_layers = $value$plusargs("act_dump_layers=%s", layers_path);
        layer_n = 0;
        stall_seed = 0;
        stall_pct = 30;
        if (!$value$plusargs("act_stall_seed=%d", stall_seed)) stall_seed = 0;
        if (!$value$plusargs("act_stall_pct=%d", stall_pct)) stall_pct = 30;
        if (!$value$plusargs("act_latency=%d", latency)) latency = LATENCY;
        if (latency < LATENCY || latency > 64) begin
            $display("ff_act_ram %m: ERROR: +act_latency=%0d is outside %0d..64", latency, LATENCY);
            $finish;
        end
        lat_ptr = 6'd0;
        lat_back = latency - LATENCY;
        for (i = 0; i < 64; i = i + 1) begin
            lat_valid[i] = 1'b0;
            lat_data[i] = {WIDTH{1'b0}};
        end
        lfsr_r = stall_seed ^ 32'h1234_5678;
        lfsr_w = stall_seed ^ 32'h8765_4321;
        stall_r = 1'b0;
        stall_w = 1'b0;
        r_valid = 1'b0;
        r_data = {WIDTH{1'b0}};
        r2_valid = 1'b0;
        r2_data = {WIDTH{1'b0}};
        r3_valid = 1'b0;
        r3_data = {WIDTH{1'b0}};
        r4_valid = 1'b0;
        r4_data = {WIDTH{1'b0}};
        r5_valid = 1'b0;
        r5_data = {WIDTH{1'b0}};
        r6_valid = 1'b0;
        r6_data = {WIDTH{1'b0}};
    end
    // Galois LFSRs (x^32 + x^22 + x^2 + x + 1); a stall whenever the low byte falls below the threshold
    always @(posedge clk) begin
        lfsr_r <= {1'b0, lfsr_r[31:1]} ^ (lfsr_r[0] ? 32'h8020_0003 : 32'h0);
        lfsr_w <= {1'b0, lfsr_w[31:1]} ^ (lfsr_w[0] ? 32'h8020_0003 : 32'h0);
        stall_r <= (stall_seed != 0) && ((lfsr_r[15:8] * 100) < (stall_pct * 256));
        stall_w <= (stall_seed != 0) && ((lfsr_w[15:8] * 100) < (stall_pct * 256));
        if (dump && have_dump)
            $writememh(dump_path, mem);
        if (dump_layer && have_layers) begin
            $sformat(layer_file, "%0s.%0d.hex", layers_path, layer_n);
            $writememh(layer_file, mem);
            layer_n <= layer_n + 1;
        end
    end
    // latency: the LATENCY-cycle response goes into a 64-entry ring and comes out latency-LATENCY cycles later
    always @(posedge clk) begin
        lat_valid[lat_ptr] <= p_valid;
        lat_data[lat_ptr] <= p_data;
        lat_ptr <= lat_ptr + 6'd1;
    end
    assign rd_ready = !stall_r;
    assign wr_ready = !stall_w;
    assign rd_resp_valid = latency == LATENCY ? p_valid : lat_valid[lat_ptr - lat_back];
    assign rd_resp_data = latency == LATENCY ? p_data : lat_data[lat_ptr - lat_back];
`else
    assign rd_ready = 1'b1;
    assign wr_ready = 1'b1;
    assign rd_resp_valid = p_valid;
    assign rd_resp_data = p_data;
`endif

    always @(posedge clk) begin
        r_valid <= rd_valid && rd_ready;
        if (rd_valid && rd_ready)
            r_data <= mem[rd_addr];
        if (wr_valid && wr_ready)
            mem[wr_addr] <= wr_data;
        r2_valid <= r_valid;
        r2_data <= r_data;
        r3_valid <= r2_valid;
        r3_data <= r2_data;
        r4_valid <= r3_valid;
        r4_data <= r3_data;
        r5_valid <= r4_valid;
        r5_data <= r4_data;
        r6_valid <= r5_valid;
        r6_data <= r5_data;
    end

`ifdef FF_ACT_SIM_
 `undef FF_ACT_SIM_
`endif

endmodule

`default_nettype wire
