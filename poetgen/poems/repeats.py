"""Repetition and novelty, one ``sample.Rule`` each: no character twice in a line, no more repeated
characters in the poem than its form's budget (the Tang rate),
no two-character phrase twice, and no line copied from the training corpus."""

from __future__ import annotations

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.poems.slot import OPEN, Slot, without
from poetgen.sample import Rule


def _present(ids: Tensor, vocab_size: int) -> Tensor:
    """(b, V) which ids (b, k) occur in each row (OPEN ignored)."""
    index = torch.where(ids == OPEN, vocab_size, ids)
    out = torch.zeros(ids.shape[0], vocab_size + 1, dtype=torch.bool, device=ids.device)
    return out.scatter_(1, index, True)[:, :vocab_size]


class LineRepeats(Rule):
    """No character twice in a line. Reduplications (悠悠) are ruled out too: real poets use them
    well, but a small model's doubles (身身, 霜霜) read as stammering, the first thing a reader
    notices."""

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark:
            return logits
        return logits.masked_fill(_present(slot.chars[:, slot.line], logits.shape[1]), float("-inf"))


class PoemRepeats(Rule):
    """A character used before in the poem comes back only while the poem's repeats stay within
    ``budget`` (the form's, ``Form.repeats``), never a third time. No two-character phrase
    appears twice."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark:
            return logits
        V = logits.shape[1]
        uses = slot.uses(V)
        spent = (uses - 1).clamp(min=0).sum(1)
        banned = (uses >= 2) | ((uses >= 1) & (spent >= self.budget)[:, None])
        if slot.pos:  # phrases: what followed this slot's previous character elsewhere in the poem
            prev = slot.chars[:, slot.line, slot.pos - 1]
            first, second = slot.chars[:, :, :-1], slot.chars[:, :, 1:]
            follows = torch.where(first == prev[:, None, None], second, OPEN).flatten(1)
            banned |= _present(follows, V)
        return logits.masked_fill(banned, float("-inf"))


class Novelty(Rule):
    """No line identical to a training line (``ck.has_seen``). A copy is seen only once drawn, so
    the decoder asks ``copied`` after each line and re-draws the rows that copied; on a re-draw
    this rule bans the copy's last character, so even greedy decoding escapes."""

    def __init__(self, ck: Checkpoint) -> None:
        self.ck = ck

    def copied(self, lines: list[str]) -> list[bool]:
        return [self.ck.has_seen(line) for line in lines]

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.redraw is None or not slot.last:
            return logits
        return without(logits, slot.redraw)
