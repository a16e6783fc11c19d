"""The rules of a poem's shape and rhyme, one ``sample.Rule`` object each (tones are in
``tones.py``, repetition and novelty in ``repeats.py``, 对仗 in ``duizhang.py``; ``decoder.py``
lists them in order).

Hard rules (marks where lines end, Chinese characters inside them, the characters the plan fixes,
the mood's bonus) always hold. The rhyme rules are soft: in the rare row where one would leave
nothing to draw it gives way there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from poetgen.poems.forms import Form
from poetgen.poems.masks import VocabMasks
from poetgen.poems.slot import Slot, only
from poetgen.sample import Rule

MOOD_BONUS = 1.0  # nats added to the mood's characters at every character slot


# -- the shape (hard) ---------------------------------------------------------------------------


class Shape(Rule):
    """Chinese characters inside a line, the plan's mark (，/。/？/！) after it, nothing else."""

    soft = False

    def __init__(self, vocab: VocabMasks, marks: list[str]) -> None:
        self.vocab, self.mark_ids = vocab, [vocab.mark_id(m) for m in marks]

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark:
            allowed = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
            allowed[self.mark_ids[slot.line]] = True
            return only(logits, allowed)
        return only(logits, self.vocab.cjk)


class Fixed(Rule):
    """The characters the plan fixes (a prefix, an acrostic's heads, theme keywords) stand where
    the plan put them."""

    soft = False

    def __init__(self, vocab: VocabMasks, given: list[str]) -> None:
        self.ids = [[vocab.char_id[ch] for ch in line] for line in given]

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        line = self.ids[slot.line]
        if slot.pos >= len(line):
            return logits
        allowed = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
        allowed[line[slot.pos]] = True
        return only(logits, allowed)


class Mood(Rule):
    """The mood's characters get ``MOOD_BONUS`` nats at every character slot."""

    soft = False

    def __init__(self, vocab_size: int, ids: list[int], device: torch.device) -> None:
        self.bonus = torch.zeros(vocab_size, device=device)
        self.bonus[ids] = MOOD_BONUS

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        return logits if slot.mark else logits + self.bonus


# -- rhyme ---------------------------------------------------------------------------------------


class Rhyme(Rule):
    """The rhyming lines end on level-tone (平) members of one group, never on a rhyme character
    used before (重韵). The group is open until the model picks the first rhyme character (or the
    plan fixes one); a polyphonic character keeps all its groups. Line 1 ending on a character
    with a 平 reading counts as rhyming (首句入韵): a reader hears that reading, so it narrows the
    group too (see ``FirstLine``).

    If the user's own rhyme character is oblique (仄), the poem follows it: its groups in any tone.
    Groups with too few members in the vocabulary to fill the poem are avoided. A character read
    平 in two groups rhymes only in those a reader hears it in (``VocabMasks.rhyme_level``).
    """

    def __init__(self, vocab: VocabMasks, form: Form, given: list[str]) -> None:
        self.vocab, self.form = vocab, form
        self.lines = set(form.rhyme)
        width = form.width
        fixed = [vocab.char_id[given[i][-1]] for i in form.rhyme if len(given[i]) == width]
        open_slots = sum(len(given[i]) < width for i in form.rhyme)
        self.matrix = vocab.rhyme_level
        cand = torch.ones(len(vocab.groups), dtype=torch.bool, device=vocab.cjk.device)
        known = [t for t in fixed if vocab.member[:, t].any()]
        if known:
            level = torch.stack([vocab.level[:, t] for t in known]).all(0)
            if level.any():
                cand = level
            else:  # the user's rhyme is oblique (仄): follow it rather than break it
                self.matrix = vocab.member
                member = torch.stack([vocab.member[:, t] for t in known]).all(0)
                cand = member if member.any() else vocab.member[:, known[-1]]
        viable = cand & ((self.matrix & vocab.cjk).sum(1) >= open_slots + width)
        self.start = viable if viable.any() else cand
        self.matrix_f = self.matrix.float()

    def candidates(self, slot: Slot) -> Tensor:
        """(b, G) the groups still possible for each row, from the rhyme characters so far."""
        cand = self.start.expand(slot.rows, -1)
        ends = slot.ends()
        lines = sorted(self.lines | ({0} if self.form.first_line else set()))
        for line in lines:
            t = ends[:, line]
            written = t != -1
            if not bool(written.any()):
                continue
            ids = t.clamp(min=0)
            column = self.matrix[:, ids].T
            if line == 0:  # line 1 narrows unless it ends on a sure 仄 character
                written &= self.vocab.tone[ids] != 1
                column = self.vocab.rhyme_level[:, ids].T
            narrowed = cand & column
            keep = written & narrowed.any(-1)
            cand = torch.where(keep[:, None], narrowed, cand)
        return cand

    def used(self, slot: Slot) -> Tensor:
        """(b, V) rhyme characters already used (line 1's last character included)."""
        ends = slot.ends()[:, sorted(self.lines | {0})]
        V = self.vocab.cjk.shape[0]
        out = torch.zeros(slot.rows, V + 1, dtype=torch.bool, device=ends.device)
        return out.scatter_(1, torch.where(ends == -1, V, ends), True)[:, :V]

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if not slot.last or slot.line not in self.lines:
            return logits
        allowed = (self.candidates(slot).float() @ self.matrix_f) > 0
        return only(logits, allowed & ~self.used(slot))


class FirstLine(Rule):
    """首句: line 1 ends on a character that is surely 仄, or on one with a 平 reading in a rhyme
    group still possible, so that a level ending always rhymes (Tang poems break this 0.3–2% of
    the time; BENCHMARKS.md). A character read both ways whose 平 reading lies in another group
    (回 of 灰 before a 东 rhyme) is out: a reader hears the common 平 reading, off the rhyme."""

    def __init__(self, rhyme: Rhyme) -> None:
        self.rhyme = rhyme

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.line != 0 or not slot.last:
            return logits
        v = self.rhyme.vocab
        rhymes = (self.rhyme.candidates(slot).float() @ v.rhyme_level_f) > 0
        return only(logits, (v.tone == 1) | rhymes)


class ObliqueEnds(Rule):
    """The odd lines after the first (3, 5, 7) end on a character with an oblique (仄) reading."""

    def __init__(self, vocab: VocabMasks, form: Form) -> None:
        self.vocab, self.lines = vocab, set(form.oblique_ends)

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.last and slot.line in self.lines:
            return only(logits, self.vocab.oblique)
        return logits
