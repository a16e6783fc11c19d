"""The rules a 词 tune binds (``decoder.poem_rules`` lists them for a tune's ``Form``): each rhyme
set's line ends share one 词林正韵 部, each in the tone the tune rhymes in there (平, 上去 or 入),
never on a rhyme character used before; and the positions the tune fixes take a character of
that tone. Both are soft, as the shi rhyme is: in the rare row where one would leave nothing to
draw, it gives way there.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from poetgen.poems import cilin
from poetgen.poems.forms import Form
from poetgen.poems.masks import VocabMasks
from poetgen.poems.slot import Slot, only
from poetgen.sample import Rule

TONE_CLASSES = (cilin.PING, cilin.SHANGQU, cilin.RU)
RHYME_TONE = {"平": 0, "仄": 1, "入": 2}  # a tune's rhyme tone (``Form.rhyme_tones``) → its class
BUS = 19


@functools.cache
def _bu_masks(tokens: tuple[str, ...]) -> Tensor:
    """(3, 19, V): does a token have a reading of tone class t in 部 b, and in no other 部 of that tone
    (``cilin.bus``, the writer's strict reading: a split group's character only in its own half)."""
    out = torch.zeros(len(TONE_CLASSES), BUS, len(tokens), dtype=torch.bool)
    for i, token in enumerate(tokens):
        if i < 4 or len(token) != 1:
            continue
        for tone, bu in cilin.readings(token):
            out[TONE_CLASSES.index(tone), bu - 1, i] = True
    # A character read in two 部 of one tone (平: 第十一部 píng, 第七部 pián) rhymes in neither for
    # the writer: a reader hears its common reading, which may be the other one.
    return out & (out.sum(1, keepdim=True) == 1)


class TuneRhyme(Rule):
    """The line ends of each rhyme set (``Form.rhyme_sets``) in one 部, in the line's rhyme tone,
    on characters of that one sure tone. A set's 部 is open until its first rhyme character is
    written (or fixed by the prefix); 部 with too few characters in the vocabulary to fill the set
    are avoided."""

    def __init__(self, vocab: VocabMasks, form: Form) -> None:
        masks = _bu_masks(tuple(vocab.tokens)).to(vocab.cjk.device)
        # A rhyme is heard in a character's common reading: only characters of one sure tone (了 has
        # a 平 reading in 第十部, but a reader hears it 仄) end a rhyme line.
        sure = torch.stack([vocab.tone == 0, vocab.tone == 1, vocab.tone == 1])
        self.masks = masks & sure[:, None, :]
        self.set_of = {line: k for k, lines in enumerate(form.rhyme_sets) for line in lines}
        self.tone = [RHYME_TONE.get(t) for t in form.rhyme_tones]
        self.sets = form.rhyme_sets
        self.start = [self._viable(lines) for lines in form.rhyme_sets]

    def _viable(self, lines: tuple[int, ...]) -> Tensor:
        """(19,) the 部 with enough characters for every tone the set rhymes in."""
        ok = torch.ones(BUS, dtype=torch.bool, device=self.masks.device)
        for tone in {self.tone[line] for line in lines if self.tone[line] is not None}:
            wanted = sum(self.tone[line] == tone for line in lines)
            ok &= self.masks[tone].sum(1) >= 2 * wanted + 2
        return ok

    def candidates(self, slot: Slot, k: int) -> Tensor:
        """(b, 19) the 部 still possible for rhyme set ``k`` of each row."""
        cand = self.start[k].expand(slot.rows, -1)
        ends = slot.ends()
        for line in self.sets[k]:
            tone = self.tone[line]
            written = ends[:, line] != -1
            if tone is None or not bool(written.any()):
                continue
            narrowed = cand & self.masks[tone][:, ends[:, line].clamp(min=0)].T
            keep = written & narrowed.any(-1)
            cand = torch.where(keep[:, None], narrowed, cand)
        return cand

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        k = self.set_of.get(slot.line)
        if not slot.last or k is None or self.tone[slot.line] is None:
            return logits
        allowed = (self.candidates(slot, k).float() @ self.masks[self.tone[slot.line]].float()) > 0
        ends = slot.ends()[:, sorted(self.set_of)]
        used = torch.zeros_like(allowed)
        rows, cols = (ends >= 0).nonzero(as_tuple=True)
        used[rows, ends[rows, cols]] = True  # 重韵: a rhyme character comes once
        return only(logits, allowed & ~used)


class TuneTones(Rule):
    """At the positions the tune fixes (``Form.fixed``), characters surely of the other tone are out."""

    def __init__(self, vocab: VocabMasks, form: Form) -> None:
        self.bias = vocab.tone_bias
        self.fixed = form.fixed

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark or not self.fixed:
            return logits
        mark = self.fixed[slot.line][slot.pos]
        if mark == ".":
            return logits
        return logits + self.bias[0 if mark == "平" else 1]
