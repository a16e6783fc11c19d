"""One season per poem: a ``sample.Rule`` that keeps a poem from drifting from autumn into spring.

Readers of generated poems named clashing seasons more than any other fault of sense (秋日西风 then
春事 and 东君; lotus leaves falling among apricot blossom). A regulated Tang poem names two of
春夏秋冬 2.4% of the time; the generator did 8.3% (BENCHMARKS.md, "Blind reading").

The sides, measured on the Tang training split by ``tools/season_markers.py``: the four season
characters, and the characters and two-character words that stand with 春 rather than 秋 (or the
reverse) at least 85% of the time in poems naming exactly one season, each season's rate
normalised by how often it is named; characters seen in at least 100 such poems, words in 60. 梅
(0.83) and 蝉 (0.16) fall just outside; 夏 and 冬 are named too rarely (458 and 293 poems) for
their markers to be trusted. Words holding a marker character (杏花, 菊花) are left to it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from poetgen.corpora import SCRIPTS, to_script
from poetgen.poems.masks import VocabMasks
from poetgen.poems.slot import OPEN, Slot
from poetgen.sample import Rule

SEASONS = "春夏秋冬"
SPRING = ("莺", "杏", "暖", "絮", "梨花", "东风", "柳色", "花枝", "花前", "落花", "花飞", "桃李", "风光", "花时",
          "百花", "桃花", "三月", "花下", "看花", "芳菲", "二月", "寒食")
AUTUMN = ("菊", "砧", "萤", "凉", "黄叶", "落叶", "红叶", "白露", "清光")
SIDES: list[tuple[str, ...]] = [*((s,) for s in SEASONS), SPRING, AUTUMN]
# which sides clash: any two seasons; a spring marker with autumn, an autumn marker with spring
_PAIRS = {(a, b) for a in range(4) for b in range(a + 1, 4)} | {(4, 2), (4, 5), (5, 0)}
CLASH = _PAIRS | {(b, a) for a, b in _PAIRS}


def sides_in(text: str) -> set[int]:
    """The sides that ``text`` (either script) stands on."""
    simple = to_script(text, "simplified")
    return {i for i, words in enumerate(SIDES) if any(w in simple for w in words)}


def clashes(text: str) -> bool:
    """Whether ``text`` stands on two clashing sides (two seasons, 莺 with 秋, 菊 or 黄叶 with 春)."""
    sides = sides_in(text)
    return any((a, b) in CLASH for a in sides for b in sides)


class Season(Rule):
    """Once a poem (its fixed characters included) stands on a side, the sides clashing with it are
    closed: their characters, and the second character of their words after the first. Soft: an
    acrostic of 春夏秋冬 still gets its heads."""

    def __init__(self, vocab: VocabMasks) -> None:
        V = len(vocab.tokens)
        self.members = torch.zeros(len(SIDES), V)
        self.words: list[tuple[int, int, int]] = []  # (first id, second id, side)
        for side, words in enumerate(SIDES):
            for word in words:
                for script in SCRIPTS:
                    ids = [vocab.char_id.get(ch) for ch in to_script(word, script)]
                    if None in ids:
                        continue
                    if len(ids) == 1:
                        self.members[side, ids[0]] = 1.0
                    else:
                        self.words.append((ids[0], ids[1], side))
        self.clash = torch.zeros(len(SIDES), len(SIDES))
        for a, b in CLASH:
            self.clash[a, b] = 1.0

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark:
            return logits
        members, chars = self.members.to(logits.device), slot.chars
        stands = (slot.uses(logits.shape[1]) > 0).float() @ members.T > 0
        firsts, seconds = chars[:, :, :-1], chars[:, :, 1:]
        for a, b, side in self.words:
            stands[:, side] |= ((firsts == a) & (seconds == b)).flatten(1).any(1)
        closed = stands.float() @ self.clash.to(logits.device) > 0
        banned = closed.float() @ members > 0
        prev = chars[:, slot.line, slot.pos - 1] if slot.pos else torch.full_like(chars[:, 0, 0], OPEN)
        for a, b, side in self.words:
            banned[:, b] |= closed[:, side] & (prev == a)
        return logits.masked_fill(banned, float("-inf"))
