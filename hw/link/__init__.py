"""The host link of a DRAM-mode board (protocol v2, :mod:`fireforge.core.link`) and the board's engine side."""

from fireforge.hw.link.board_core import DramBoardCore
from fireforge.hw.link.controller import LinkController
from fireforge.hw.link.frames import FrameReceiver, FrameSender

__all__ = ["DramBoardCore", "LinkController", "FrameReceiver", "FrameSender"]
