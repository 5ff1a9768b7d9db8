"""The engine's results rebuilt from the writes seen on its AXI bus, checked against the golden model.

Shared by the engine-over-AXI tests (cocotbext-axi's ``AxiRam``, LiteDRAM): every layer's result is the
initial memory with the writes accepted before that layer's ``layer_done``.
"""

from __future__ import annotations

import numpy as np

from fireforge.core.layout import read_layer_result, read_tensor


def replay_writes(mem: np.ndarray, writes, layer_ends, base: int, vector: int):
    """(a memory image after each layer, the memory after every write) from ``writes`` [(byte addr, data)]."""
    snaps, shadow, applied = [], mem.copy(), 0
    for end in [*layer_ends, len(writes)]:
        for addr, data in writes[applied:end]:
            shadow[(addr - base) // vector] = np.frombuffer(int(data).to_bytes(vector, "little"), np.uint8)
        applied = end
        snaps.append(shadow.copy())
    return snaps[:len(layer_ends)], shadow


def assert_exact(compiled, expected, final: np.ndarray, snaps, shadow) -> None:
    """The memory read back equals the writes seen; the output and every layer equal the golden model."""
    assert np.array_equal(final, shadow), "the memory read back differs from the writes seen on the bus"
    got = read_tensor(compiled.output_layout, final, compiled.vector)
    bad = int(np.count_nonzero(got != expected.output))
    assert bad == 0, f"output: {bad} of {got.size} bytes differ from the golden model"
    assert len(snaps) == len(compiled.layers)
    for entry, snap in zip(compiled.layers, snaps):
        layer = read_layer_result(entry.descriptor, compiled.layer_channel_index(entry), snap, compiled.vector)
        bad = int(np.count_nonzero(layer != expected.layer_outputs[entry.name]))
        assert bad == 0, f"{entry.name}: {bad} of {layer.size} bytes differ from the golden model"
