// ff_sim_ram.v -- behavioural RAM for simulation only (Verilator); NOT synthesisable.
//
// One request port with a valid/ready handshake and an in-order read-response channel:
//
//   request   : req_valid, req_ready, req_we, req_addr, req_wdata
//               A request is taken at a rising clk edge where req_valid && req_ready.
//               A write updates mem at that edge.  A read samples mem at that edge (so it sees
//               every earlier write) and is answered later.
//   response  : resp_valid, resp_rdata  (no back-pressure: the requester must accept it)
//               Responses come in request order.  Without stalls the latency is exactly one
//               cycle (resp_valid is high in the cycle after the one in which the read was
//               taken), like a registered block RAM.
//
// Plusargs (read once at time 0; "ram" is the default of parameter NAME, so a design with
// several RAMs gives each its own NAME and plusargs):
//   +ram_init=<file>       $readmemh into mem after zero-filling it (zero-filled otherwise).
//   +ram_dump=<file>       where `dump` writes the contents ($writememh, all DEPTH words).
//   +ram_stall_seed=<N>    N != 0 turns on pseudo-random back-pressure: req_ready drops in
//                          about P% of cycles and each read gets 0..3 extra cycles of latency
//                          (still in order).  The pattern is a 32-bit xorshift seeded with N,
//                          so a given seed reproduces the same run exactly.
//   +ram_stall_pct=<P>     P in 0..100, default 25.
//
// `dump` high at a rising edge writes the whole memory to +ram_dump (the writes taken at the
// same edge included).  `rst` (synchronous, active high) empties the response queue and
// re-seeds the stall generator; it does not clear mem.
`default_nettype none

module ff_sim_ram #(
    parameter integer WIDTH      = 32,
    parameter integer DEPTH      = 1024,
    parameter integer ADDR_WIDTH = 10,
    parameter         NAME       = "ram"
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  req_valid,
    output reg                   req_ready,
    input  wire                  req_we,
    input  wire [ADDR_WIDTH-1:0] req_addr,
    input  wire [WIDTH-1:0]      req_wdata,
    output reg                   resp_valid,
    output reg  [WIDTH-1:0]      resp_rdata,
    input  wire                  dump
);

    localparam integer QDEPTH = 8;        // outstanding reads
    localparam integer QBITS  = 3;
    localparam [QBITS:0] QFULL = 4'd8;      // == QDEPTH

    reg [WIDTH-1:0] mem [0:DEPTH-1];

    // Plusarg values.
    reg [8*1024-1:0] init_path;
    reg [8*1024-1:0] dump_path;
    reg              have_dump;
    reg [31:0]       stall_seed;
    reg [31:0]       stall_pct;

    // In-order response queue: data and the cycle at which it may be delivered.
    reg [WIDTH-1:0]  q_data [0:QDEPTH-1];
    reg [63:0]       q_due  [0:QDEPTH-1];
    reg [QBITS-1:0]  q_head, q_tail;
    reg [QBITS:0]    q_count;
    reg [63:0]       now;                 // cycle counter
    reg [63:0]       last_due;
    reg [31:0]       lfsr;

    integer i;
    integer fd;

    function [31:0] xorshift32(input [31:0] x);
        reg [31:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 17);
            xorshift32 = y ^ (y << 5);
        end
    endfunction

    initial begin
        for (i = 0; i < DEPTH; i = i + 1)
            mem[i] = {WIDTH{1'b0}};
        init_path = 0;
        dump_path = 0;
        stall_seed = 0;
        stall_pct = 25;
        if ($value$plusargs({NAME, "_init=%s"}, init_path)) begin
            fd = $fopen(init_path, "r");
            if (fd == 0) begin
                $display("ff_sim_ram %m: ERROR: cannot open +%0s_init=%0s", NAME, init_path);
                $finish;
            end else begin
                $fclose(fd);
                $readmemh(init_path, mem);
            end
        end
        have_dump = $value$plusargs({NAME, "_dump=%s"}, dump_path) != 0;
        if (!$value$plusargs({NAME, "_stall_seed=%d"}, stall_seed))
            stall_seed = 0;
        if (!$value$plusargs({NAME, "_stall_pct=%d"}, stall_pct))
            stall_pct = 25;
        lfsr = stall_seed;
        req_ready = 1'b1;
        resp_valid = 1'b0;
        resp_rdata = {WIDTH{1'b0}};
        q_head = 0;
        q_tail = 0;
        q_count = 0;
        now = 0;
        last_due = 0;
    end

    // Blocking assignments on the internal queue state are deliberate: within one edge the
    // order is push (request taken now) then pop (response due now), which is what gives the
    // exact 1-cycle latency without stalls.  Outputs use non-blocking assignments.
    reg [63:0] due;
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        if (rst) begin
            q_head = 0;
            q_tail = 0;
            q_count = 0;
            last_due = 0;
            lfsr = stall_seed;
            resp_valid <= 1'b0;
            req_ready <= 1'b1;
        end else begin
            if (stall_seed != 0)
                lfsr = xorshift32(lfsr);
            // Take a request.
            if (req_valid && req_ready) begin
                if (req_we) begin
                    mem[req_addr] = req_wdata;
                end else begin
                    due = now + 1;
                    if (stall_seed != 0)
                        due = due + {62'd0, lfsr[9:8]};
                    if (due < last_due)
                        due = last_due;       // keep responses in order
                    last_due = due;
                    q_data[q_tail] = mem[req_addr];
                    q_due[q_tail]  = due;
                    q_tail  = q_tail + 1'b1;
                    q_count = q_count + 1'b1;
                end
            end
            // Deliver the oldest response whose time has come.
            if (q_count != 0 && q_due[q_head] <= now + 1) begin
                resp_valid <= 1'b1;
                resp_rdata <= q_data[q_head];
                q_head  = q_head + 1'b1;
                q_count = q_count - 1'b1;
            end else begin
                resp_valid <= 1'b0;
            end
            // Ready for the next cycle: room for one more read, and not stalled.
            req_ready <= (q_count < QFULL) &&
                         !(stall_seed != 0 && (lfsr % 100) < stall_pct);
        end
        if (dump) begin
            if (have_dump)
                $writememh(dump_path, mem);
            else
                $display("ff_sim_ram %m: dump requested but no +%0s_dump=<file> given", NAME);
        end
        now = now + 1;
    end
    /* verilator lint_on BLKSEQ */

endmodule

`default_nettype wire
