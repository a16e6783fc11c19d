"""One season per poem: a ``sample.Rule`` that keeps a poem from drifting from autumn into spring.

Readers of generated poems named clashing seasons more than any other fault of sense (秋日西风 then
春事 and 东君; spring willows beside 重阳). A Tang poem names two of 春夏秋冬 2.4% of the time; the
generator did 8.3% (BENCHMARKS.md, "Blind reading").

The sides, measured on the Tang training split (``tools/season_markers.py`` prints the table):
the four season characters, and the characters that stand with one of 春 / 秋 at least 85% of
the time in poems naming exactly one season (rates normalised by how often each season is named;
at least 100 such poems each). 梅 (0.83) and 蝉 (0.16) fall just outside; 夏 and 冬 are named too
rarely (458 and 293 poems) for their markers to be trusted.
"""

from __future__ import annotations

import torch
from torch import Tensor

from poetgen.corpora import SCRIPTS, to_script
from poetgen.poems.masks import VocabMasks
from poetgen.poems.slot import Slot
from poetgen.sample import Rule

SEASONS = "春夏秋冬"
SPRING_MARKS = "莺杏暖絮"  # with 春 (vs 秋): 0.94 0.92 0.89 0.86
AUTUMN_MARKS = "菊砧萤凉"  # with 秋 (vs 春): 0.95 0.95 0.88 0.86
# sides, and which sides clash: any two seasons; a spring marker with autumn, an autumn marker with spring
SIDES = [*SEASONS, SPRING_MARKS, AUTUMN_MARKS]
_PAIRS = {(a, b) for a in range(4) for b in range(a + 1, 4)} | {(4, 2), (4, 5), (5, 0)}
CLASH = _PAIRS | {(b, a) for a, b in _PAIRS}


def side_of(ch: str) -> int | None:
    """The side a character of either script stands on, None for most characters."""
    simple = to_script(ch, "simplified")
    return next((i for i, side in enumerate(SIDES) if simple in side), None)


def clashes(text: str) -> bool:
    """Whether ``text`` holds characters of two clashing sides (two seasons, 莺 with 秋, 菊 with 春)."""
    sides = {side_of(ch) for ch in text} - {None}
    return any((a, b) in CLASH for a in sides for b in sides)


class Season(Rule):
    """Once a poem (its fixed characters included) stands on a side, the sides clashing with it are
    closed. Soft: an acrostic of 春夏秋冬 still gets its heads."""

    def __init__(self, vocab: VocabMasks) -> None:
        V = len(vocab.tokens)
        self.members = torch.zeros(len(SIDES), V)
        for i, side in enumerate(SIDES):
            for ch in side:
                for script in SCRIPTS:
                    idx = vocab.char_id.get(to_script(ch, script))
                    if idx is not None:
                        self.members[i, idx] = 1.0
        self.clash = torch.zeros(len(SIDES), len(SIDES))
        for a, b in CLASH:
            self.clash[a, b] = 1.0

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark:
            return logits
        members = self.members.to(logits.device)
        present = (slot.uses(logits.shape[1]) > 0).float()
        stands = (present @ members.T > 0).float()
        closed = (stands @ self.clash.to(logits.device) > 0).float()
        return logits.masked_fill(closed @ members > 0, float("-inf"))
