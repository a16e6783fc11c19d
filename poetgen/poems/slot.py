"""What a poem rule sees (``Slot``) and two small edits every rule uses.

A ``Slot`` is where the next character goes (line, position; position ``width`` is the mark that
ends the line) and the poem so far, fixed characters (prefix, acrostic heads, theme keywords)
included, as one (b, lines, width) tensor of token ids. Lines of several lengths (a 词 tune) are
written from the left, their unused tail OPEN, and ``widths`` says each line's length. Rules are
stateless: whatever they need (the rhyme groups still possible, the tone pattern's base, how often
a character was used) is read off that history, so re-drawing a line or searching over candidate
lines needs no bookkeeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

OPEN = -1  # an id in ``Slot.chars`` that is not written yet


@dataclass
class Slot:
    line: int
    pos: int  # 0-based; ``width`` is the slot of the mark after the line
    chars: Tensor  # (b, lines, width) token ids of the poem so far, fixed ones included; OPEN elsewhere
    redraw: Tensor | None = None  # (b,) on a re-draw of a line copied from the corpus: its last character
    widths: tuple[int, ...] = ()  # each line's length, when they differ (empty: all of ``chars``' width)

    @property
    def rows(self) -> int:
        return self.chars.shape[0]

    @property
    def width(self) -> int:
        """The length of this slot's line."""
        return self.widths[self.line] if self.widths else self.chars.shape[2]

    @property
    def last(self) -> bool:
        """The line's last character (where rhymes and line-end tones fall)."""
        return self.pos == self.width - 1

    @property
    def mark(self) -> bool:
        return self.pos == self.width

    def ends(self) -> Tensor:
        """(b, lines) the last character of every line (OPEN where not written yet)."""
        if not self.widths:
            return self.chars[:, :, -1]
        index = torch.tensor(self.widths, device=self.chars.device) - 1
        return self.chars.gather(2, index.expand(self.rows, -1)[:, :, None]).squeeze(2)

    @cached_property
    def previous(self) -> Tensor | None:
        """(b,) the character before this slot in its line, None at a line's start."""
        return self.chars[:, self.line, self.pos - 1] if self.pos else None

    def uses(self, vocab_size: int) -> Tensor:
        """(b, V) how often each character is used in the poem so far (fixed ones included); the
        second character of a reduplication (悠悠) does not count."""
        chars = self.chars
        repeat = torch.zeros_like(chars, dtype=torch.bool)
        repeat[:, :, 1:] = chars[:, :, 1:] == chars[:, :, :-1]
        ids = torch.where((chars == OPEN) | repeat, vocab_size, chars).flatten(1)
        counts = torch.zeros(self.rows, vocab_size + 1, dtype=torch.long, device=chars.device)
        return counts.scatter_add_(1, ids, torch.ones_like(ids))[:, :vocab_size]


def only(logits: Tensor, allowed: Tensor) -> Tensor:
    """-inf wherever ``allowed`` (V,) or (b, V) is False."""
    return logits.masked_fill(~allowed.expand_as(logits), -math.inf)


def without(logits: Tensor, ids: Tensor) -> Tensor:
    """-inf at one id per row (b,); ids < 0 ban nothing."""
    valid = ids >= 0
    out = logits.clone()
    rows = valid.nonzero().flatten()
    out[rows, ids[rows]] = -math.inf
    return out


