"""The fit check: what a compiled program's engine needs on a board, against what the board has.

Block RAM: the descriptor, weight and quant ROMs and the activation buffer (``act_depth × act_word_bits``),
each tiled into the family's blocks as synthesis does, plus the engine's FIFOs. Multipliers: the MAC array's
products (one block each on 7-series; LUT logic on the Lattice parts, see
:meth:`~fireforge.core.config.BuildVariant.for_family`) and, per output lane, the requantizer's and — for a
program with Add layers — the add requantizer's (:func:`~fireforge.hw.board.needs.engine_needs`). LUTs and
flip-flops are estimates (:func:`~fireforge.hw.board.resources.estimate_logic`) until ``--synth`` /
``--pnr`` replace them. A misfit comes with what would fit (:mod:`fireforge.hw.board.suggest`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fireforge.core.compiled import Compiled
from fireforge.core.config import EngineConfig
from fireforge.errors import FireforgeError
from fireforge.hw.board.catalogue import BOARDS, Board, get_board
from fireforge.hw.board.needs import ACT_MEMORY_CHOICES, evaluate
from fireforge.hw.board.resources import format_bits
from fireforge.hw.board.suggest import suggest as what_would_fit
from fireforge.core.config import BuildVariant

__all__ = ["FitReport", "fit_check", "require_fit"]


@dataclass
class FitReport:
    """What a compiled program's engine needs on a board, against what the board has."""

    board: Board
    config: EngineConfig
    needs: dict                         # fireforge.hw.board.needs.board_needs
    fits: bool
    problems: list[str]                 # one phrase per resource that does not fit
    suggestions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    act_memory: str = BuildVariant.act_memory         # where the activations live: "on-chip" or "external" (board DRAM)

    @property
    def resources(self) -> dict[str, list[int]]:
        b, n = self.board, self.needs
        return {"lut": [n["lut"], b.luts], "ff": [n["ff"], b.ffs], "dsp": [n["dsp"], b.multipliers],
                "bram_bits": [n["bram_bits"], b.bram_bits]}

    def to_json(self) -> dict:
        """The ``--json`` shape of a refusal (or of a fit before any tool ran)."""
        return {"board": self.board.name, "fits": self.fits, "resources": self.resources, "fmax_mhz": None,
                "bitstream": None}

    def details(self) -> dict:
        return {"board": self.board.name, "device": self.board.device, "fits": self.fits,
                "config": self.config.to_dict(), "memories": self.needs["memories"],
                "bram_blocks": [self.needs["bram_blocks"], self.board.bram_blocks],
                "dsp_detail": self.needs["dsp_detail"], "resources": self.resources,
                "act_memory": self.act_memory_details(),
                "resources_source": "estimate (fit check): LUT/FF from estimate_logic, DSP and block RAM "
                                    "from the memory tiling and multiplier count",
                "problems": self.problems, "notes": self.notes, "suggestions": self.suggestions}

    def act_memory_details(self) -> dict:
        """Where the activations live and what the memory port asks of an external memory."""
        w, d = self.needs["memories"]["activations"]["width"], self.needs["memories"]["activations"]["depth"]
        info = {"placement": self.act_memory, "words": d, "word_bits": w, "bits": w * d}
        if self.act_memory == "external":
            info.update(external_ram=self.board.external_ram, controller="ff_ext_act_mem (user-supplied: the "
                        "board's DRAM controller behind the engine's two channels; see hw/hdl/ff_ext_act_mem.v)",
                        peak_bytes_per_cycle={"read": w // 8, "write": w // 8})
        return info

    def _act_phrase(self) -> str:
        mem = self.needs["memories"]["activations"]
        if self.act_memory == "external":
            return f"activations {format_bits(mem['bits'])} in the board's {self.board.external_ram}"
        return f"activations {mem['blocks']}"

    def message(self) -> str:
        """One line: needed vs available per resource, and what would fit."""
        b, n = self.board, self.needs
        mem = n["memories"]
        parts = [f"block RAM {n['bram_blocks']} {b.block_name} = {format_bits(n['bram_bits'])} needed "
                 f"(weights {mem['weights']['blocks']}, {self._act_phrase()}, "
                 f"quant {mem['quant']['blocks']}, descriptors {mem['descriptors']['blocks']}, "
                 f"FIFOs {mem['engine FIFOs']['blocks']}) vs "
                 f"{b.bram_blocks} = {format_bits(b.bram_bits)} available",
                 f"multipliers {n['dsp']} {b.multiplier_cell} needed ({n['dsp_detail']['mac']} MAC array + "
                 f"{n['dsp_detail']['lanes']} lanes × {n['dsp_detail']['per_lane']:g} "
                 f"{'requant/add' if self.config.has_add_unit else 'requant'}) vs "
                 f"{b.multipliers}",
                 f"LUTs ≈{n['lut']:,} vs {b.luts:,}"]
        verdict = "fits" if self.fits else "does not fit"
        text = f"{self.config.mac_units}-MAC engine {verdict} {b.name} ({b.device}): " + "; ".join(parts)
        if self.notes:
            text += "; " + "; ".join(self.notes)
        if self.suggestions:
            text += " — would fit: " + "; or ".join(self.suggestions)
        return text


def _load_source(source) -> tuple[EngineConfig, Compiled | None]:
    """(config, compiled or None) from a :class:`Compiled`, an ``OUT/`` directory or an EngineConfig."""
    if isinstance(source, EngineConfig):
        return source, None
    if isinstance(source, (str, Path)):
        source = Compiled.of(source)
    if not isinstance(source, Compiled):
        raise FireforgeError(f"the fit check takes a Compiled, an OUT/ directory or an EngineConfig, not a "
                             f"{type(source).__name__}")
    return source.config, source


def fit_check(source, board, *, suggest: bool = True, act_memory: str = "auto") -> FitReport:
    """Check a compiled program's engine against a board; never raises for a misfit (see ``.fits``).

    ``source``: a :class:`~fireforge.core.compiled.Compiled` or its ``OUT/`` directory — which also allows
    suggestions for other MAC counts and smaller variants — or a resolved :class:`EngineConfig`.
    ``act_memory``: ``"auto"`` (on chip when everything fits, else the board's external RAM when the rest
    fits), ``"on-chip"`` or ``"external"``.
    """
    board = get_board(board)
    if act_memory not in ACT_MEMORY_CHOICES:
        raise FireforgeError(f"--act-memory must be one of {', '.join(ACT_MEMORY_CHOICES)}, not {act_memory!r}")
    if act_memory == "external" and not board.external_ram:
        raise FireforgeError(f"{board.name} has no external RAM for the activations; use --act-memory on-chip "
                             f"(boards with external RAM: "
                             f"{', '.join(b.name for b in BOARDS.values() if b.external_ram)})")
    config, compiled = _load_source(source)
    if 0 in (config.weight_depth, config.quant_depth, config.desc_depth, config.act_depth):
        raise FireforgeError("fit check needs resolved memory depths (a compiled program's engine config)")
    needs, problems, placement = evaluate(config, board, act_memory)
    rep = FitReport(board, config, needs, not problems, problems, act_memory=placement)
    if placement == "external" and not problems:
        rep.notes.append(f"the activations ({format_bits(needs['memories']['activations']['bits'])}) do not fit "
                         f"beside the ROMs in block RAM and go to the board's {board.external_ram} through the "
                         f"engine's memory port (ff_ext_act_mem)" if act_memory == "auto" else
                         f"the activations go to the board's {board.external_ram} (--act-memory external)")
    if problems and suggest:
        rep.notes, rep.suggestions = what_would_fit(config, compiled, board, act_memory)
    return rep


def require_fit(source, board, act_memory: str = "auto") -> FitReport:
    """:func:`fit_check`, raising a one-line FireforgeError when the engine does not fit."""
    rep = fit_check(source, board, act_memory=act_memory)
    if not rep.fits:
        raise FireforgeError(rep.message())
    return rep
