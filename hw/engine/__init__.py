"""The fireforge engine: components joined by streams (see :mod:`fireforge.hw.engine.engine` for the map).

=====================  ==================================================================  ===========
module                 component                                                           latency
=====================  ==================================================================  ===========
``sequencer``          :class:`Sequencer` (descriptor fetch / decode, group pacing),        1 + quant
                       :class:`LayerFields` (the descriptor, a copy per lane)               v / log2 v
``agu``                :class:`AddressGenerator` (the loop nest) and its twin :func:`ref_agu`   1
``fetch``              :class:`ActivationFetch` (reads, tap and response FIFOs, join)        2
``quant``              :class:`QuantFetch` (an output group's requant word)                 rom
``weights``            :class:`WeightFetch` (weight ROM, per-lane activation copies)         rom + 2
``fireforge.hw.mac``   :class:`~fireforge.hw.mac.MacArray`                                  1 (2) + log2 v
``accumulate``         :class:`Accumulator` (sum / max / GAP / add pair)                    2
``lanes``              :class:`LaneRequantizers` (requant, add requant, pool)               16
``writeq``             :class:`WriteQueue` (LUT-RAM FIFO chain to the write port)           10
``fifo``               :class:`StreamFIFO`                                                  2
``ports``              the memory-port signatures and the records between stages
``needs``              resource reports (:meth:`Engine.needs`)
=====================  ==================================================================  ===========
"""

from fireforge.core.config import EXTERNAL_TAP_DEPTH, TAP_DEPTH
from fireforge.hw.engine.agu import AddressGenerator, ref_agu
from fireforge.hw.engine.engine import ROM_LATENCY, WRITE_DEPTH, Engine
from fireforge.hw.engine.ports import (ActMemoryPort, HostPort, ReadChannel, ReadResponse, RomPort, WriteChannel,
                                       bits_for)

__all__ = ["Engine", "ROM_LATENCY", "WRITE_DEPTH", "TAP_DEPTH", "EXTERNAL_TAP_DEPTH", "bits_for", "AddressGenerator",
           "ref_agu", "RomPort", "ReadChannel", "ReadResponse", "WriteChannel", "ActMemoryPort", "HostPort"]
