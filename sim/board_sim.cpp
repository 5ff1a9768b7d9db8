// The simulated board's serial line (fireforge.sim.board_sim): a Verilated board top whose UART pins are
// bridged to a pseudo-terminal, so that the host's real client opens it as it would /dev/ttyUSB0.
//
// Prints the pty's path on stdout, then runs the clock forever (it dies with its parent). Bytes the host
// writes are sent to the top's uart_rx, 8N1, +divisor=N cycles per bit; the top's uart_tx is sampled in the
// middle of each bit and every byte received is written to the pty. +line_errors=P (0..1) damages the line
// in both directions: each byte is, with probability P, flipped in one random bit, dropped or sent twice
// (one of the three at random; +seed=S seeds it). Line statistics go to stderr on SIGTERM.
// Built with -DTWO_CLOCKS the top has the engine's clk and the controller's dram_clk: +clk_ps / +dram_clk_ps are
// their periods and the loop steps from edge to edge of either (the UART counts engine cycles).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <random>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include "Vtop.h"
#include "verilated.h"

static volatile sig_atomic_t g_stop = 0;
static void on_term(int) { g_stop = 1; }

struct Damage {
    std::mt19937_64 rng;
    double p;
    long flipped = 0, dropped = 0, doubled = 0;
    // the bytes that reach the other side for one byte sent
    int apply(unsigned char b, unsigned char out[2]) {
        if (p <= 0 || std::uniform_real_distribution<double>(0, 1)(rng) >= p) { out[0] = b; return 1; }
        switch (rng() % 3) {
            case 0: out[0] = b ^ (1u << (rng() % 8)); flipped++; return 1;
            case 1: dropped++; return 0;
            default: out[0] = out[1] = b; doubled++; return 2;
        }
    }
};

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int divisor = 4;
    double p = 0;
    unsigned long seed = 1;
    const char* arg;
    if ((arg = Verilated::commandArgsPlusMatch("divisor="))[0]) divisor = atoi(strchr(arg, '=') + 1);
    if ((arg = Verilated::commandArgsPlusMatch("line_errors="))[0]) p = atof(strchr(arg, '=') + 1);
    if ((arg = Verilated::commandArgsPlusMatch("seed="))[0]) seed = strtoul(strchr(arg, '=') + 1, nullptr, 10);
    unsigned long long clk_ps = 20000, dram_ps = 20000;
    if ((arg = Verilated::commandArgsPlusMatch("clk_ps="))[0]) clk_ps = strtoull(strchr(arg, '=') + 1, nullptr, 10);
    if ((arg = Verilated::commandArgsPlusMatch("dram_clk_ps="))[0]) dram_ps = strtoull(strchr(arg, '=') + 1, nullptr, 10);

    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) { perror("pty"); return 1; }
    const char* name = ptsname(master);
    int keep = open(name, O_RDWR | O_NOCTTY);     // held open: the master never sees a hang-up between clients
    struct termios t;
    tcgetattr(keep, &t);
    cfmakeraw(&t);
    tcsetattr(keep, TCSANOW, &t);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    printf("%s\n", name);
    fflush(stdout);

    Damage down{std::mt19937_64(seed), p}, up{std::mt19937_64(seed * 7919 + 1), p};
    Vtop* top = new Vtop;
    // one engine cycle: up to and including the engine clock's next rising edge
#ifdef TWO_CLOCKS
    unsigned long long next_clk = clk_ps / 2, next_dram = dram_ps / 2;
    auto engine_cycle = [&]() {
        for (;;) {
            unsigned long long t = next_clk < next_dram ? next_clk : next_dram;
            bool rise = false;
            if (next_clk == t) { top->clk = !top->clk; rise = top->clk; next_clk += clk_ps / 2; }
            if (next_dram == t) { top->dram_clk = !top->dram_clk; next_dram += dram_ps / 2; }
            top->eval();
            if (rise) return;
        }
    };
    top->dram_rst = 1;
#else
    auto engine_cycle = [&]() { top->clk = 0; top->eval(); top->clk = 1; top->eval(); };
#endif
    top->uart_rx = 1;
    top->rst = 1;
    for (int i = 0; i < 16; i++) engine_cycle();
    top->rst = 0;
#ifdef TWO_CLOCKS
    top->dram_rst = 0;
#endif

    std::deque<unsigned char> to_board;
    int tx_bits = 0, tx_timer = 0;        // bits left of the byte on uart_rx, cycles left of the current bit
    unsigned tx_shift = 0;
    int rx_state = -1, rx_timer = 0;      // -1: idle, 0..7 data bits, 8 stop bit
    unsigned rx_byte = 0;
    unsigned long long cycle = 0;
    long host_bytes = 0, board_bytes = 0;
    while (!g_stop) {
        if ((cycle & 63) == 0 && to_board.size() < 4096) {
            unsigned char buf[512];
            ssize_t n = read(master, buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++) {
                unsigned char out[2];
                int k = down.apply(buf[i], out);
                for (int j = 0; j < k; j++) to_board.push_back(out[j]);
                host_bytes++;
            }
        }
        // host -> board: 8N1 on uart_rx
        if (tx_bits == 0 && !to_board.empty()) {
            tx_shift = (1u << 9) | ((unsigned)to_board.front() << 1);   // start 0, 8 data bits, stop 1
            to_board.pop_front();
            tx_bits = 10;
            tx_timer = divisor;
        }
        top->uart_rx = tx_bits ? (tx_shift & 1) : 1;
        engine_cycle();
        cycle++;
        if (tx_bits && --tx_timer == 0) { tx_shift >>= 1; tx_bits--; tx_timer = divisor; }
        // board -> host: sample uart_tx in the middle of each bit
        int line = top->uart_tx;
        if (rx_state < 0) {
            if (!line) { rx_state = 0; rx_timer = divisor + divisor / 2; rx_byte = 0; }
        } else if (--rx_timer == 0) {
            if (rx_state < 8) {
                rx_byte |= (unsigned)line << rx_state;
                rx_state++;
                rx_timer = divisor;
            } else {
                if (line) {                 // a stop bit: a byte
                    unsigned char out[2];
                    int k = up.apply((unsigned char)rx_byte, out);
                    if (k && write(master, out, k) < 0) {}
                    board_bytes++;
                }
                rx_state = -1;
            }
        }
    }
    fprintf(stderr, "board_sim: %llu cycles, %ld bytes from the host, %ld from the board; damaged to the board "
            "%ld flipped %ld dropped %ld doubled, to the host %ld flipped %ld dropped %ld doubled\n", cycle,
            host_bytes, board_bytes, down.flipped, down.dropped, down.doubled, up.flipped, up.dropped, up.doubled);
    top->final();
    delete top;
    return 0;
}
