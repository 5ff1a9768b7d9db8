"""External memory (DRAM) side of the engine: the AXI4 master port and the DMA engines behind it
(issue #19; ``docs/dram.md``)."""

from fireforge.hw.dram.act_port import AxiActivationPort
from fireforge.hw.dram.arbiter import AxiReadArbiter, AxiWriteArbiter
from fireforge.hw.dram.axi import AXI4, AXI4Read, AXI4Write
from fireforge.hw.dram.dma import BurstSplitter, ReadDma, WriteDma
from fireforge.hw.dram.dram_engine import DramEngine
from fireforge.hw.dram.engine_axi import EngineAxiTop
from fireforge.hw.dram.init_sequencer import DramInitSequencer
from fireforge.hw.dram.width import WidthConverter

__all__ = ["AXI4", "AXI4Read", "AXI4Write", "AxiActivationPort", "AxiReadArbiter", "AxiWriteArbiter", "BurstSplitter", "DramEngine", "DramInitSequencer", "EngineAxiTop",
           "ReadDma", "WriteDma", "WidthConverter"]
