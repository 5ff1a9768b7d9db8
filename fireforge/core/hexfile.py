"""``$readmemh`` / ``$writememh`` images: the one reader and writer of memory words in hex.

A word is a row of bytes, least significant byte first (``uint8 [n, word_bytes]``, the layout of the
``.bin`` images); in the file it is one line, most significant digit first, ``ceil(bits/4)`` digits.
The compiler's images, the simulator's activation memory, the board tops' padded ROMs and the tests all
go through here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["format_words", "write_words", "parse_words", "read_words", "words_to_ints", "ints_to_words"]


def _as_rows(words) -> np.ndarray:
    words = np.ascontiguousarray(words, np.uint8)
    return words.reshape(-1, 1) if words.ndim == 1 else words


def format_words(words, bits: int | None = None, depth: int | None = None) -> str:
    """The text of an image: one word per line; ``bits`` trims the digits, ``depth`` pads with zero words
    (yosys leaves words a file does not cover undefined)."""
    rows = _as_rows(words)
    n, nbytes = rows.shape
    if depth is not None:
        if n > depth:
            raise ValueError(f"{n} words do not fit a memory {depth} words deep")
        rows = np.concatenate([rows, np.zeros((depth - n, nbytes), np.uint8)])
        n = depth
    if n == 0:
        return ""
    width = 2 * nbytes
    digits = width if bits is None else max(1, min(width, -(-bits // 4)))
    chars = np.frombuffer(np.ascontiguousarray(rows[:, ::-1]).tobytes().hex().encode(), np.uint8)
    lines = np.empty((n, digits + 1), np.uint8)
    lines[:, :digits] = chars.reshape(n, width)[:, width - digits:]
    lines[:, digits] = ord("\n")
    return lines.tobytes().decode()


def write_words(path: Path, words, bits: int | None = None, depth: int | None = None) -> Path:
    """Write :func:`format_words` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_words(words, bits, depth))
    return path


def parse_words(text: str, word_bytes: int, depth: int | None = None, *, where: str = "image") -> np.ndarray:
    """Words of an image's text as ``uint8 [n, word_bytes]`` (``n`` = ``depth``, or up to the last word
    written). ``@addr`` lines and ``//`` comments are honoured, words never written are 0; X/Z digits or a
    word wider than ``word_bytes`` raise ValueError naming ``where``."""
    width = 2 * word_bytes
    placed: list[tuple[int, list[str]]] = []
    if "@" not in text and "//" not in text:
        placed.append((0, text.split()))
    else:
        addr, run = 0, []
        for raw in text.splitlines():
            for tok in raw.split("//", 1)[0].split():
                if tok.startswith("@"):
                    placed.append((addr - len(run), run))
                    addr, run = int(tok[1:], 16), []
                else:
                    run.append(tok)
                    addr += 1
        placed.append((addr - len(run), run))
    end = max((a + len(r) for a, r in placed), default=0)
    out = np.zeros((end if depth is None else depth, word_bytes), np.uint8)
    for addr, run in placed:
        if not run:
            continue
        toks = [t.replace("_", "") for t in run]
        if max(map(len, toks)) > width and any(len(t.lstrip("0")) > width for t in toks):
            raise ValueError(f"{where}: a word is wider than {word_bytes} bytes")
        try:
            raw = bytes.fromhex("".join(t[-width:].rjust(width, "0") for t in toks))
        except ValueError:
            bad = next(t for t in toks if any(c not in "0123456789abcdefABCDEF" for c in t))
            raise ValueError(f"{where}: undefined or non-hex value {bad!r}") from None
        rows = np.frombuffer(raw, np.uint8).reshape(len(toks), word_bytes)[:, ::-1]
        stop = min(addr + len(toks), len(out))
        if stop > addr:
            out[addr:stop] = rows[:stop - addr]
    return out


def read_words(path: Path, word_bytes: int, depth: int | None = None) -> np.ndarray:
    """:func:`parse_words` of a file."""
    path = Path(path)
    return parse_words(path.read_text(), word_bytes, depth, where=str(path))


def words_to_ints(words) -> list[int]:
    """Rows of bytes (least significant first) as Python integers."""
    return [int.from_bytes(row.tobytes(), "little") for row in _as_rows(words)]


def ints_to_words(values, word_bytes: int) -> np.ndarray:
    """Non-negative integers (or two's complement of ``word_bytes`` bytes for negative ones) as rows of bytes."""
    mask = (1 << (8 * word_bytes)) - 1
    data = b"".join((int(v) & mask).to_bytes(word_bytes, "little") for v in values)
    return np.frombuffer(data, np.uint8).reshape(-1, word_bytes).copy()
