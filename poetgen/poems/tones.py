"""The tone (平仄) rules of regulated verse, one ``sample.Rule`` each: the form's pattern at its key
positions (二四六分明, 对, 粘), no three level tones at the end of a level-ending line (三平尾) and no
lone level tone in one (孤平). Characters of unsure tone (both readings, or unknown to the table)
always stay allowed, as the checker never fails them either."""

from __future__ import annotations

import torch
from torch import Tensor

from poetgen.poems.forms import Form
from poetgen.poems.masks import VocabMasks
from poetgen.poems.slot import OPEN, Slot
from poetgen.sample import Rule

LEVEL, OBLIQUE, UNSURE = 0, 1, -1  # VocabMasks.tone


def sure_tones(vocab: VocabMasks, ids: Tensor) -> Tensor:
    """Sure tones of ``ids`` (UNSURE where the tone is unsure or the slot not written yet)."""
    return torch.where(ids == OPEN, UNSURE, vocab.tone[ids.clamp(min=0)])


class TonePattern(Rule):
    """At the pattern's key positions, characters of the surely wrong tone are out. The pattern is
    relative: the poem's base is the tone that its first key character of sure tone implies, in
    reading order (the plan's fixed characters agree with each other, see ``plan.plan_theme``)."""

    def __init__(self, vocab: VocabMasks, form: Form) -> None:
        self.vocab, self.form = vocab, form
        keys = [[form.key(line, pos) for pos in range(form.width)] for line in range(form.lines)]
        self.keys = torch.tensor([[-1 if k is None else k for k in row] for row in keys], device=vocab.cjk.device)

    def base(self, slot: Slot) -> Tensor:
        """(b,) the pattern's base per row: LEVEL, OBLIQUE, or UNSURE while nothing fixes it."""
        tones = sure_tones(self.vocab, slot.chars)
        rel = torch.where((tones >= 0) & (self.keys >= 0), tones ^ self.keys.clamp(min=0), UNSURE).flatten(1)
        found = rel >= 0
        first = found.float().argmax(1)
        return torch.where(found.any(1), rel.gather(1, first[:, None]).squeeze(1), UNSURE)

    def wanted(self, slot: Slot, pos: int) -> Tensor:
        """(b,) the tone the pattern wants at ``pos`` of the slot's line (UNSURE: either)."""
        key = self.form.key(slot.line, pos)
        base = self.base(slot)
        if key is None:
            return torch.full_like(base, UNSURE)
        return torch.where(base < 0, UNSURE, base ^ key)

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark or self.form.key(slot.line, slot.pos) is None:
            return logits
        want = self.wanted(slot, slot.pos)
        return logits + self.vocab.tone_bias[torch.where(want < 0, 2, want)]


class LevelTail(Rule):
    """三平尾 and 孤平, in lines that end on a level (平) rhyme.

    三平尾: the three last characters all 平. Where the pattern wants 平 before the rhyme, the
    character before that must not be surely 平; where a 平 already stands there, the next one
    must not be. 孤平: in the 五言 span before the rhyme (the whole line of a 五言, the last five of
    a 七言) a single 平 between 仄s, which happens when the pattern is 平平仄仄平 and its first
    character is 仄: then the third is made 平 (拗救), as the poets did.

    Line 1 may end on 平 or 仄 (首句入韵 or not), so its tail is settled at its last character:
    after two sure 平 it does not end on a third.
    """

    def __init__(self, vocab: VocabMasks, form: Form, pattern: TonePattern | None) -> None:
        self.vocab, self.lines, self.pattern = vocab, set(form.rhyme), pattern
        self.first_line = form.first_line and 0 not in self.lines
        self.ban_level = vocab.tone_bias[OBLIQUE]  # -inf where surely 平
        self.ban_oblique = vocab.tone_bias[LEVEL]  # -inf where surely 仄

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        w, pos = slot.width, slot.pos
        if self.first_line and slot.line == 0 and slot.last and w >= 5:
            line = sure_tones(self.vocab, slot.chars[:, 0])
            bad = (line[:, w - 3] == LEVEL) & (line[:, w - 2] == LEVEL)
            return torch.where(bad[:, None], logits + self.ban_level, logits)
        if slot.line not in self.lines or slot.mark or w < 5 or pos not in (w - 3, w - 2):
            return logits
        line = sure_tones(self.vocab, slot.chars[:, slot.line])
        if pos == w - 2:  # a 平 just before: no third one
            bad = line[:, w - 3] == LEVEL
            return torch.where(bad[:, None], logits + self.ban_level, logits)
        if self.pattern is None:
            return logits
        ahead = self.pattern.wanted(slot, w - 2)
        tail = ahead == LEVEL  # 平 wanted before the rhyme: this one must not be 平 too
        lone = (ahead == OBLIQUE) & (line[:, w - 5] == OBLIQUE)  # 仄平_仄平: only 平 here saves it
        out = torch.where(tail[:, None], logits + self.ban_level, logits)
        return torch.where(lone[:, None], out + self.ban_oblique, out)
