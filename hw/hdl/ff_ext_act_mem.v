// ff_ext_act_mem.v -- the activation memory outside the chip: the interface a board's DRAM controller
// adapter implements (a black box here; fireforge does not ship a DRAM controller).
//
// A board top generated with the activations in external RAM (`fireforge generate --board NAME`, when
// the fit check puts them there, or `--act-memory external`) instantiates this module between the engine
// and the board's DRAM. Implement it around the vendor or open controller of your board (Xilinx MIG's
// app_* user interface on the KC705 / Arty A7, an SDRAM controller on the ULX3S); it runs in the
// engine's clock domain (cross to the controller's clock inside it when they differ).
//
// Channels (the same as ff_act_ram, the on-chip version, so the engine cannot tell them apart):
//   reads    rd_valid/rd_ready/rd_addr taken at a rising edge with rd_valid && rd_ready;
//            responses rd_resp_valid/rd_resp_data any number of cycles later, in request order, with no
//            back-pressure (the engine never has more reads outstanding than it can buffer).
//   writes   wr_valid/wr_ready/wr_addr/wr_data taken at a rising edge with wr_valid && wr_ready.
//   A read returns the data of every write accepted before it.
// Addresses count WIDTH-bit words (lane 0 in the low byte); the memory holds DEPTH words from any base
// address the adapter chooses. Peak demand: one read and one write per cycle (WIDTH/8 bytes each).
// Simulate with `fireforge simulate OUT --read-latency N` to see the engine behind an N-cycle memory.
`default_nettype none

(* blackbox *)
module ff_ext_act_mem #(
    parameter integer WIDTH      = 64,
    parameter integer DEPTH      = 1024,
    parameter integer ADDR_WIDTH = 10
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  rd_valid,
    output wire                  rd_ready,
    input  wire [ADDR_WIDTH-1:0] rd_addr,
    output wire                  rd_resp_valid,
    output wire [WIDTH-1:0]      rd_resp_data,
    input  wire                  wr_valid,
    output wire                  wr_ready,
    input  wire [ADDR_WIDTH-1:0] wr_addr,
    input  wire [WIDTH-1:0]      wr_data
);
endmodule

`default_nettype wire
