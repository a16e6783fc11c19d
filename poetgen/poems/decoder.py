"""Writing poems: constrained decoding that guarantees the form.

``write_poems`` turns a trained poem language model into 五绝 / 七绝 / 五律 / 七律 (or acrostic
古体) poems. The model proposes, masks dispose: before every draw the logits of all tokens that
would break the form are set to -inf, so every poem has exactly the right number of lines and
characters per line, ，/。 alternating at the line ends and nowhere else, no special or non-Chinese
token, no character twice in a line (nor thrice in the poem, nor a two-character phrase twice:
``allow_repeats`` lifts all three), and (by default) even lines rhyming in one level-tone (平)
group. Nothing is rejection-sampled except whole lines copied from the training data (a bounded
number of retries). ``poems.evaluate`` measures the result.

Design, in short (details at each function):

* Rhyme: the group is chosen where the first even line ends: that position may take any
  character read 平 in a group with enough members in the vocabulary, and the model's choice
  fixes the candidate groups (all level groups of that character; a polyphonic one keeps
  several). Later rhyme positions may take only level-tone members of a still-possible group, and
  never a rhyme character used before (重韵). Line 1 is free: it rhymes when the model wants.
  A prefix that already holds a rhyme position fixes the group (or an oblique group, if that is
  what the user wrote). Odd lines after the first (3, 5, 7) end in a character that has a 仄
  reading, as regulated verse wants.
* Tone pattern (绝句 and 律诗, not 古体): at the 2nd, 4th and 6th character of every line, characters
  whose tone is surely the wrong one are masked, so 二四六分明, 对 and 粘 hold; the model's first
  sure-toned key character (or the prefix's) sets the pattern. Characters with both readings, or
  unknown to the table, stay allowed (the checker never fails them either). ``tones=False`` lifts
  this rule; ``rhyme=False`` lifts it and the two rhyme rules above.
* Soft fallback: every rule after "a Chinese character" is a mask layer; in the (rare) row where
  all layers together leave nothing, the last layers are dropped one by one for that row only, so
  a draw is never impossible and never unbounded.
* Mood: the mood text is fed first, as if it were an earlier poem (``<bos> mood <eos>``) before the
  poem's own ``<bos>``, and its characters get a small logit bonus (MOOD_BONUS nats) in the poem.
  It is never printed; its characters the model lacks are skipped.
* Novelty: a drawn line identical to a training line (``ck.has_seen``) is re-drawn from the line's
  start, at most NOVELTY_RETRIES times, with the copy's last character banned (so greedy decoding
  escapes too); a line still copied after that is kept and listed in ``Poem.copied_lines``.
* Input: ASCII marks become full width, spaces are ignored, either script is converted to the
  model's (OpenCC); ？ and ！ typed at a line end are kept, other marks become ，/。 by position.
* Seeds: poem ``i`` of a call draws its random numbers from its own generator seeded with
  ``seed + i`` (``seed`` drawn at random and reported when not given), and a row's random numbers do
  not depend on the other rows. So the same seed and options give the same poems, and poem ``i``
  alone is reproduced by ``seed + i`` with ``n=1`` (barring floating-point ties between batch sizes).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.poems.masks import VocabMasks
from poetgen.poems.plan import Plan
from poetgen.poems.plan import tone_key as _key
from poetgen.sample import Sampling, Stepper, draw
from poetgen.vocab import BOS, EOS

NOVELTY_RETRIES = 3  # re-draws of a line identical to a training line before it is kept (and marked)
MAX_CHAR_USES = 2  # a character at most twice in a poem, as in nearly all real regulated verse (BENCHMARKS.md)
MOOD_BONUS = 1.0  # nats added to the mood's characters at every character slot


@dataclass
class _Rows:
    """Per-row state: candidate rhyme groups (b, G), rhyme characters used so far (b, V), the tone
    pattern's base (b,): the tone (0 平, 1 仄) of line 1's 2nd character, -1 while unknown; and for
    repetition control the poem's character counts (b, V) and its two-character phrases so far,
    as first / second character ids (b, k) (every row has the same number of them)."""

    cand: Tensor
    rhymed: Tensor
    base: Tensor
    count: Tensor
    first: Tensor
    second: Tensor

    def take(self, idx: Tensor) -> _Rows:
        return _Rows(*(t[idx] for t in self._fields()))

    def put(self, idx: Tensor, other: _Rows) -> None:
        for mine, theirs in zip(self._fields(), other._fields(), strict=True):
            mine[idx] = theirs

    def clone(self) -> _Rows:
        return _Rows(*(t.clone() for t in self._fields()))

    def _fields(self) -> tuple[Tensor, ...]:
        return self.cand, self.rhymed, self.base, self.count, self.first, self.second

    def note(self, prev: Tensor | None, tok: Tensor, counted: bool = False) -> None:
        """Count character ``tok`` (b,) (unless ``counted`` already) and, after ``prev`` in the same
        line, the phrase prev+tok."""
        if not counted:
            self.count.scatter_add_(1, tok[:, None], torch.ones_like(tok[:, None], dtype=self.count.dtype))
        if prev is not None:
            self.first = torch.cat([self.first, prev[:, None]], dim=1)
            self.second = torch.cat([self.second, tok[:, None]], dim=1)

    def repeats(self, prev: Tensor | None, V: int) -> Tensor:
        """(b, V) tokens that would repeat: a character already twice in the poem, or the second
        character of a phrase the poem already has after ``prev``."""
        out = self.count >= MAX_CHAR_USES
        if prev is not None and self.first.shape[1]:
            hits = torch.where(self.first == prev[:, None], self.second, V)  # V: no phrase here
            phrase = torch.zeros(len(prev), V + 1, dtype=torch.bool, device=out.device).scatter_(1, hits, True)
            out = out | phrase[:, :V]
        return out


def _unless_empty(before: Tensor, after: Tensor) -> Tensor:
    """``after`` (more tokens masked), except in rows where it would leave no token at all."""
    alive = torch.isfinite(after.max(-1).values)
    return after if bool(alive.all()) else torch.where(alive[:, None], after, before)


class Decoder:
    """Writes ``B`` poems of one plan in lockstep, one token slot at a time."""

    def __init__(self, ck: Checkpoint, vocab: VocabMasks, plan: Plan, sampling: Sampling, seeds: list[int], *,
                 rhyme: bool, tones: bool, allow_repeats: bool, allow_copies: bool, mood: str) -> None:
        self.device = next(ck.model.parameters()).device
        vocab = vocab.on(self.device)
        self.ck, self.v, self.plan, self.sampling = ck, vocab, plan, sampling
        self.B, self.L, self.W = len(seeds), len(plan.given), plan.width
        self.allow_repeats, self.allow_copies = allow_repeats, allow_copies
        V = len(vocab.tokens)
        # Random numbers: row i draws them from its own generator, so rows are independent.
        per_row = self.L * (NOVELTY_RETRIES + 1) * self.W
        self.u = torch.stack([torch.rand(per_row, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                              for s in seeds]).view(self.B, self.L, NOVELTY_RETRIES + 1, self.W).to(self.device)
        self.mood_ids = [vocab.char_id[ch] for ch in mood if ch in vocab.char_id]
        # Added to the log-probs at every character slot: -inf off Chinese characters, the mood's bonus.
        self.bias = torch.zeros(V, device=self.device).masked_fill(~vocab.cjk, -math.inf)
        chars = [vocab.char_id[ch] for ch in mood if ch in vocab.char_id and vocab.cjk[vocab.char_id[ch]]]
        self.bias[chars] += MOOD_BONUS
        self.rhyme_lines = {i for i in range(1, self.L, 2)} if rhyme else set()
        self.oblique_lines = {i for i in range(2, self.L - 1, 2)} if rhyme else set()
        self.tones = tones and self.L in (4, 8)  # the 平仄 pattern binds regulated verse, not 古体
        self._init_rhyme(V)
        self._init_tones()

    def _init_rhyme(self, V: int) -> None:
        """Candidate groups before any drawing, from the rhyme characters the plan already fixes."""
        v, W = self.v, self.W
        fixed = [v.char_id[self.plan.given[i][-1]] for i in sorted(self.rhyme_lines)
                 if len(self.plan.given[i]) == W]
        open_positions = sum(len(self.plan.given[i]) < W for i in self.rhyme_lines)
        self.matrix, self.matrix_f = v.level, v.level_f
        cand = torch.ones(len(v.groups), dtype=torch.bool, device=self.device)
        known = [t for t in fixed if v.member[:, t].any()]
        if known:
            level = torch.stack([v.level[:, t] for t in known]).all(0)
            if level.any():
                cand = level
            else:  # the user's rhyme is oblique (仄): follow it rather than break it
                self.matrix, self.matrix_f = v.member, v.member_f
                member = torch.stack([v.member[:, t] for t in known]).all(0)
                cand = member if member.any() else v.member[:, known[-1]]
        # Groups with too few members in the vocabulary could run dry: prefer the others.
        viable = cand & ((self.matrix & v.cjk).sum(1) >= open_positions + W)
        cand = viable if viable.any() else cand
        empty = torch.zeros(self.B, 0, dtype=torch.long, device=self.device)
        self.rows = _Rows(cand.expand(self.B, -1).clone(), torch.zeros(self.B, V, dtype=torch.bool, device=self.device),
                          torch.full((self.B,), -1, dtype=torch.long, device=self.device),
                          torch.zeros(self.B, V, dtype=torch.int16, device=self.device), empty, empty.clone())
        for t in fixed + [v.char_id[g[-1]] for g in self.plan.given[:1] if len(g) == W]:
            self.rows.rhymed[:, t] = True
        # Every fixed character counts from the start: an acrostic head of line 7 is one of its
        # character's two uses before line 1 is drawn.
        for ch in "".join(self.plan.given):
            self.rows.count[:, v.char_id[ch]] += 1

    def _init_tones(self) -> None:
        """The tone pattern's base from the first key character of the prefix whose tone is sure."""
        for line, text in enumerate(self.plan.given):
            for pos, ch in enumerate(text):
                key = _key(line, pos)
                tone = int(self.v.tone[self.v.char_id[ch]])
                if key is not None and tone >= 0:
                    self.rows.base.fill_(tone ^ key)
                    return

    # -- one slot ----------------------------------------------------------------------------

    def _line_end_mask(self, rows: _Rows, used: Tensor, line: int, ban: Tensor | None, prev: Tensor | None
                       ) -> Tensor:
        """(b, V) mask of the tokens allowed at the last slot of a line, after the soft fallback.

        Mid-line slots need no such mask: "a Chinese character not yet in this line" can never
        be empty (the vocabulary has more such characters than a line is long).
        """
        layers = []  # soft rules, most important first
        rhyming = line in self.rhyme_lines
        if rhyming:
            layers.append((rows.cand.float() @ self.matrix_f) > 0)
        if not self.allow_repeats:
            layers.append(~used)
        if ban is not None:
            layers.append(torch.ones_like(used).scatter_(1, ban[:, None], False))
        if rhyming and not self.allow_repeats:
            layers.append(~rows.rhymed)
        if line in self.oblique_lines:
            layers.append(self.v.oblique.expand_as(used))
        if not self.allow_repeats:
            layers.append(~rows.repeats(prev, used.shape[1]))
        mask = self.v.cjk.expand_as(used)
        steps = [mask]
        for layer in layers:
            mask = mask & layer
            steps.append(mask)
        ok = mask.any(-1)
        if not bool(ok.all()):
            mask = mask.clone()
            for fallback in reversed(steps[:-1]):
                empty = ~ok
                mask[empty] = fallback[empty]
                ok = mask.any(-1)
                if bool(ok.all()):
                    break
        return mask

    # -- one line ----------------------------------------------------------------------------

    def _line(self, stepper: Stepper, logp: Tensor, rows: _Rows, index: Tensor, line: int, attempt: int,
              ban: Tensor | None) -> tuple[Tensor, _Rows]:
        """Draw the free slots of ``line`` for the rows ``index``; the last token is left unfed."""
        given = [self.v.char_id[ch] for ch in self.plan.given[line]]
        rows = rows.clone()
        b = len(index)
        # ids already in the line (b, k)
        used = torch.tensor([given] * b, dtype=torch.long, device=self.device).view(b, len(given))
        self._note_given(rows, used)
        out: list[Tensor] = []
        last = self.W - 1
        for pos in range(len(given), self.W):
            if out:
                logp = stepper.feed(out[-1])
            logits = logp.float() + self.bias
            key = _key(line, pos) if self.tones and pos < last else None
            prev = used[:, -1] if used.shape[1] else None
            if pos < last:
                if not self.allow_repeats and used.shape[1]:
                    logits.scatter_(1, used, -math.inf)
                if not self.allow_repeats:  # across lines: no character thrice, no phrase twice
                    logits = _unless_empty(logits, logits.masked_fill(rows.repeats(prev, logits.shape[1]), -math.inf))
                if key is not None:  # 二四六分明, 对, 粘: characters of the wrong (sure) tone are out
                    want = torch.where(rows.base < 0, 2, rows.base ^ key)
                    logits = _unless_empty(logits, logits + self.v.tone_bias[want])
            else:
                seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, used, True)
                logits.masked_fill_(~self._line_end_mask(rows, seen, line, ban, prev), -math.inf)
            tok = draw(logits, self.sampling, self.u[index, line, attempt, pos])
            out.append(tok)
            rows.note(prev, tok)
            used = torch.cat([used, tok[:, None]], dim=1)
            if key is not None:
                tone = self.v.tone[tok]
                rows.base = torch.where((rows.base < 0) & (tone >= 0), tone ^ key, rows.base)
        if line in self.rhyme_lines:
            narrowed = rows.cand & self.matrix[:, tok].T
            rows.cand = torch.where(narrowed.any(-1, keepdim=True), narrowed, rows.cand)
        if line in self.rhyme_lines or line == 0:
            rows.rhymed.scatter_(1, tok[:, None], True)
        return torch.stack(out, dim=1), rows

    @staticmethod
    def _note_given(rows: _Rows, ids: Tensor) -> None:
        """A line's fixed characters (prefix, acrostic head): their phrases, for repetition control
        (the characters themselves were counted at the start)."""
        for pos in range(ids.shape[1]):
            rows.note(ids[:, pos - 1] if pos else None, ids[:, pos], counted=True)

    def _line_text(self, given: str, ids: Tensor) -> list[str]:
        tokens = self.v.tokens
        return [given + "".join(tokens[t] for t in row) for row in ids.tolist()]

    # -- the poem ----------------------------------------------------------------------------

    @torch.no_grad()
    def run(self) -> tuple[list[list[str]], list[list[int]]]:
        """Lines of every poem (model script) and, per poem, the lines kept although copied."""
        B, plan, v = self.B, self.plan, self.v
        cats = None
        if plan.category is not None:
            cats = torch.full((B,), plan.category, dtype=torch.long, device=self.device)
        style = torch.full((B,), plan.style, dtype=torch.long, device=self.device) if plan.style else None
        stepper = Stepper(self.ck, B, cats, style)
        start = [BOS, *self.mood_ids, EOS, BOS] if self.mood_ids else [BOS]
        pending = start + [v.char_id[ch] for ch in plan.given[0]]
        pending_t = torch.tensor([pending] * B, device=self.device)
        lines: list[list[str]] = [[] for _ in range(B)]
        copied: list[list[int]] = [[] for _ in range(B)]
        for line in range(self.L):
            given = plan.given[line]
            if len(given) < self.W:
                logp = stepper.feed(pending_t)
                texts = self._free_line(stepper, logp, line, copied)
                pending_t = self._last
            else:  # a line the prefix already holds: its tokens wait in ``pending_t``
                texts = [given] * B
                self._note_given(self.rows, torch.tensor([[v.char_id[ch] for ch in given]] * B, device=self.device))
            for i, t in enumerate(texts):
                lines[i].append(t)
            if line + 1 < self.L:
                nxt = [v.mark_id(plan.marks[line]), *(v.char_id[ch] for ch in plan.given[line + 1])]
                pending_t = torch.cat([pending_t, torch.tensor([nxt] * B, dtype=torch.long, device=self.device)], dim=1)
        return lines, copied

    def _free_line(self, stepper: Stepper, logp: Tensor, line: int,
                   copied: list[list[int]]) -> list[str]:
        """Draw ``line`` for all rows, re-drawing (from the line's start) rows that copied a training
        line, at most NOVELTY_RETRIES times; at a retry the last character of the copy is banned."""
        given = self.plan.given[line]
        # feed() replaces the state rather than changing it, so a shallow copy is the line's starting point
        start, snap_rows = copy.copy(stepper), self.rows
        ids, rows = self._line(stepper, logp, snap_rows, torch.arange(self.B, device=self.device), line, 0, None)
        texts = self._line_text(given, ids)
        bad = [] if self.allow_copies else [i for i, t in enumerate(texts) if self.ck.has_seen(t)]
        for attempt in range(1, NOVELTY_RETRIES + 1):
            if not bad:
                break
            idx = torch.tensor(bad, device=self.device)
            sub = start.subset(idx)
            sub_ids, sub_rows = self._line(sub, logp[idx], snap_rows.take(idx), idx, line, attempt, ids[idx, -1])
            ids[idx] = sub_ids
            rows.put(idx, sub_rows)
            stepper.update(idx, sub)
            for i, t in zip(bad, self._line_text(given, sub_ids), strict=True):
                texts[i] = t
            bad = [i for i in bad if self.ck.has_seen(texts[i])]
        for i in bad:
            copied[i].append(line)
        self.rows = rows
        self._last = ids[:, -1:]
        return texts
