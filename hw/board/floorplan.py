"""Where the ECP5 memories' DP16KD tiles go: a floorplan of block-RAM sites, written as nextpnr ``BEL`` attributes.

Why: left to itself, nextpnr's placer spreads the 64-MAC ULX3S design's 179 blocks over all four block-RAM rows
without regard to which blocks feed one multiplexer, so one register hop runs from a block at the die's edge to
a multiplexer ~70 columns away (~10.5 ns of routing: the critical path at 94.94 MHz). Each multiplexer column
(a weight-ROM tile column: the blocks of 36 weight bits, all rows) gathers only its own blocks, so placing those
blocks side by side keeps that hop short; the MAC lanes they feed can then sit beside them.

The plan, for the sites of :data:`SITES`:

* weight-ROM tiles first, tile column by tile column, along a snake path that starts on the two middle block-RAM rows
  (left to right on one, right to left on the next), so tile columns c and c + 1 — which share an output lane —
  are neighbours, and a column's row pairs (the multiplexer's first level) are adjacent sites;
* each quant-ROM tile beside the weight tile column with the same bits (the same output lanes), the free site
  nearest that column's centre;
* the activation RAM's tiles column by column, each on a run of free sites in the row with the most left, as
  near that row's middle as it goes (its read data goes to every lane).

DRAM mode (:func:`dram_floorplan`): the engine's buffers are amaranth memories that yosys maps to DP16KD cells itself,
so the plan goes in as ``setattr`` commands after ``synth_ecp5``, by the cells' names (``<memory>.0.<k>``). Each
memory's blocks on adjacent sites of one row, memories in order (the ACT slices bank by bank, then WEIGHTS and
QUANT) along the snake path, each row's run centred. Why: nextpnr scattered an ACT slice's 8 blocks up to 43
columns apart from the slice's address register (11.8 ns of routing, the critical path at 79.37 MHz).

Sites are the LFE5U-85F's (measured: nextpnr-ecp5 0.11 places 208 DP16KD on four rows, y = 22, 46, 70, 82, at the
same 52 x positions each, BEL ``X{x}/Y{y}/EBR{i mod 4}`` for the i-th position of a row).
"""

from __future__ import annotations

__all__ = ["SITES", "DEVICES", "plan_memories", "plan_runs", "dram_floorplan", "bel_name"]

_X_85F = (4, 6, 8, 10, 13, 15, 17, 19, 22, 24, 26, 28, 31, 33, 35, 37, 40, 42, 44, 46, 49, 51, 53, 55, 58, 60, 62,
          64, 69, 71, 73, 75, 78, 80, 82, 84, 87, 89, 91, 93, 96, 98, 100, 102, 105, 107, 109, 111, 114, 116,
          118, 120)
_ROWS_85F = (22, 46, 70, 82)

#: device -> (x positions of a block-RAM row, row y coordinates)
DEVICES = {"LFE5U-85F": (_X_85F, _ROWS_85F)}
#: the LFE5U-85F's DP16KD sites as (x, y, index within the row)
SITES = tuple((x, y, i) for y in _ROWS_85F for i, x in enumerate(_X_85F))


def bel_name(site: tuple[int, int, int]) -> str:
    x, y, i = site
    return f"X{x}/Y{y}/EBR{i % 4}"


def _snake(device: str) -> list[tuple[int, int, int]]:
    """All sites as one path: the two middle rows first (left to right, then right to left), then each other
    row nearest the last one, the direction alternating, so consecutive sites are neighbours on the die."""
    xs, rows = DEVICES[device]
    centre = (rows[0] + rows[-1]) / 2
    order = sorted(sorted(rows, key=lambda y: abs(y - centre))[:2])
    while len(order) < len(rows):
        order.append(min((y for y in rows if y not in order), key=lambda y: abs(y - order[-1])))
    sites = []
    for n, y in enumerate(order):
        row = [(x, y, i) for i, x in enumerate(xs)]
        sites += row if n % 2 == 0 else row[::-1]
    return sites


def plan_memories(device: str, weights: tuple[int, int], quant: tuple[int, int], act: tuple[int, int] | None,
                  *, lane_bits: tuple[int, int], tile_bits: int) -> dict[str, dict[tuple[int, int], str]] | None:
    """memory -> {(tile row, tile column): BEL} for the ``(columns, rows)`` tilings given; ``None`` when the
    device has no site table here or the tiles outnumber its sites (then nextpnr places them itself).

    ``lane_bits``: bits of one output lane in a (weight, quant) word; ``tile_bits``: bits of a ROM tile column."""
    if device not in DEVICES:
        return None
    tilings = {"weights": weights, "quant": quant, **({"act": act} if act else {})}
    xs, ys = DEVICES[device]
    if sum(c * r for c, r in tilings.values()) > len(xs) * len(ys):
        return None
    free = _snake(device)
    plan: dict[str, dict[tuple[int, int], str]] = {k: {} for k in tilings}
    centres = []
    cols, rows = weights
    for c in range(cols):
        column = free[:rows]
        del free[:rows]
        for r, s in enumerate(column):
            plan["weights"][(r, c)] = bel_name(s)
        centres.append((sum(s[0] for s in column) / rows, sum(s[1] for s in column) / rows))
    qcols, qrows = quant
    for c in range(qcols):
        lane = (c * tile_bits + tile_bits // 2) // lane_bits[1]
        cx, cy = centres[min((lane * lane_bits[0] + lane_bits[0] // 2) // tile_bits, cols - 1)]
        for r in range(qrows):
            s = min(free, key=lambda s: (abs(s[0] - cx) + abs(s[1] - cy), s))
            free.remove(s)
            plan["quant"][(r, c)] = bel_name(s)
    if act:
        acols, arows = act
        mid = (xs[0] + xs[-1]) / 2
        for c in range(acols):
            # the row with the most free sites, and in it the run of free sites centred nearest the row's middle
            y = max(sorted({s[1] for s in free}), key=lambda y: sum(s[1] == y for s in free))
            row = sorted(s for s in free if s[1] == y)
            start = min(range(max(1, len(row) - arows + 1)),
                        key=lambda k: abs(sum(s[0] for s in row[k:k + arows]) / len(row[k:k + arows]) - mid))
            column = row[start:start + arows]
            if len(column) < arows:        # no row holds the whole column: the rest along the path
                column += [s for s in free if s not in column][:arows - len(column)]
            for r, s in enumerate(column):
                free.remove(s)
                plan["act"][(r, c)] = bel_name(s)
    return plan


def plan_runs(device: str, runs: list[tuple[str, int]]) -> dict[str, list[str]] | None:
    """name -> the BELs of its ``blocks`` for ``runs`` of (name, blocks): each run on adjacent sites of one row,
    the first row along the snake path with room for it, each row's runs together and centred in the row (the
    middle of the die). ``None`` when the device has no site table here; a run longer than a row, or for which
    no row has room, is left out (nextpnr places it)."""
    if device not in DEVICES:
        return None
    xs, _ = DEVICES[device]
    path = _snake(device)
    rows = [path[k:k + len(xs)] for k in range(0, len(path), len(xs))]      # each in the path's direction
    filled: list[list[tuple[str, int]]] = [[] for _ in rows]
    for name, blocks in runs:
        row = next((r for r in range(len(rows)) if sum(n for _, n in filled[r]) + blocks <= len(xs)), None)
        if row is not None and blocks > 0:
            filled[row].append((name, blocks))
    plan = {}
    for row, members in zip(rows, filled):
        k = (len(xs) - sum(n for _, n in members)) // 2
        for name, blocks in members:
            plan[name] = [bel_name(s) for s in row[k:k + blocks]]
            k += blocks
    return plan


#: data bits of a DP16KD yosys uses at each depth of a memory (its widest configuration that holds the depth)
_BLOCK_BITS = {512: 36, 1024: 18, 2048: 9, 4096: 4, 8192: 2, 16384: 1}


def _dp16kd_blocks(bits: int, depth: int) -> int | None:
    """DP16KD cells yosys 0.70's ``synth_ecp5`` maps a ``bits`` × ``depth`` memory to (measured: one column of
    blocks, ``bits`` over the widest configuration deep enough); None where that is not what it does: 16 words or
    fewer (LUT RAM) and depths not a power of two past 1,024 (3,000 words: a 2,048-deep and a 1,024-deep part)."""
    if depth <= 16:
        return None
    fit = next((d for d in _BLOCK_BITS if depth <= d), None)
    if fit is None or (depth > 1024 and depth != fit):
        return None
    return -(-bits // _BLOCK_BITS[fit])


def dram_floorplan(config, device: str) -> str | None:
    """yosys commands (for after ``synth_ecp5``) giving the DRAM-mode buffers' DP16KD cells
    (:func:`fireforge.hw.dram.buffers.block_memories`) their sites by :func:`plan_runs`; None when the device has
    no site table here."""
    from fireforge.hw.dram.buffers import block_memories

    runs = [(name, n) for name, bits, depth in block_memories(config)
            if (n := _dp16kd_blocks(bits, depth)) is not None]
    plan = plan_runs(device, runs)
    if plan is None:
        return None
    return "".join(f'setattr -set BEL "{bel}" c:*buffers.{name}.0.{k}\n'
                   for name, bels in plan.items() for k, bel in enumerate(bels))
