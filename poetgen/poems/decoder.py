"""Writing poems: one loop over the slots of a form, the list of rules around the decoding core,
and a search over candidate lines.

The model proposes, the rules dispose: before every draw ``sample.constrain`` runs the poem's rules
(``poem_rules``: the shape, the plan's fixed characters, the mood, novelty, rhyme, 首句, repetition,
one season, the model's stock phrases, the 平仄 pattern, 三平尾/孤平, 对仗; for a 词 tune its rhyme
sets and fixed tones, ``tune_rules.py``) over the logits, each seeing the poem so far
(``slot.Slot``). So every poem has exactly its form's lines and characters, its marks, its rhyme;
nothing is rejection-sampled except whole lines copied from the training data (a bounded number of retries).

Line search: with ``search`` = K > 1, each line is drawn K times (K candidate rows per poem) and
the candidate kept is the one with the highest score:

    log p(line | poem so far) + PMI_WEIGHT · [log p(line | poem so far) − log p(line | nothing)]

the model's own likelihood plus a mutual-information term that favours a line the earlier lines
make likely over a line that is likely anywhere (stock phrases), so that lines answer each other.
A candidate copied from the corpus is kept only if all K are.

Seeds: poem ``i`` draws its random numbers from its own generator seeded with ``seed + i``, one
number per (line, candidate, retry, slot), so a poem does not depend on the other rows of its
batch, and the same seed and options give the same poem.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.poems.duizhang import Parallel
from poetgen.poems.forms import Form
from poetgen.poems.masks import VocabMasks
from poetgen.poems.plan import Plan
from poetgen.poems.repeats import LineRepeats, Novelty, PoemRepeats
from poetgen.poems.rules import FirstLine, Fixed, Mood, ObliqueEnds, Rhyme, Shape
from poetgen.poems.seasons import Season
from poetgen.poems.slot import OPEN, Slot
from poetgen.poems.stock import StockPhrases, stock_phrases
from poetgen.poems.tones import LevelTail, TonePattern
from poetgen.poems.tune_rules import TuneRhyme, TuneTones
from poetgen.sample import Rule, Sampling, Stepper, constrain, draw
from poetgen.vocab import BOS, EOS

NOVELTY_RETRIES = 3  # re-draws of a line identical to a training line before it is kept (and marked)
PMI_WEIGHT = 0.5  # weight of the mutual-information term in the line search


def poem_rules(ck: Checkpoint, vocab: VocabMasks, plan: Plan, form: Form, *, rhyme: bool = True, tones: bool = True,
               allow_repeats: bool = False, allow_copies: bool = False, mood_ids: Sequence[int] = (),
               stock: bool = True) -> list[Rule]:
    """The rules of one poem, most important first (a soft rule gives way to those before it)."""
    rules: list[Rule] = [Shape(vocab, plan.marks), Fixed(vocab, plan.given)]
    if mood_ids:
        rules.append(Mood(len(vocab.tokens), list(mood_ids), vocab.cjk.device))
    if not allow_copies:
        rules.append(Novelty(ck))
    if rhyme and form.tune:
        rules.append(TuneRhyme(vocab, form))
    elif rhyme:
        rhymes = Rhyme(vocab, form, plan.given)
        rules += [rhymes, *([FirstLine(rhymes)] if form.first_line else []), ObliqueEnds(vocab, form)]
    if not allow_repeats:
        rules += [LineRepeats(), PoemRepeats(form.repeats), Season(vocab)]
    phrases = stock_phrases(ck) if stock else {}
    if phrases:
        rules.append(StockPhrases(vocab, phrases))
    if rhyme and tones and form.tune:
        rules.append(TuneTones(vocab, form))
    elif rhyme and tones and form.tones:
        pattern = TonePattern(vocab, form)
        rules += [pattern, LevelTail(vocab, form, pattern)]
    if form.parallel:
        rules.append(Parallel(vocab.tokens, form))
    return rules


class Decoder:
    """Writes ``len(seeds)`` poems of one plan in lockstep, line by line, slot by slot."""

    def __init__(self, ck: Checkpoint, vocab: VocabMasks, plan: Plan, form: Form, sampling: Sampling,
                 seeds: list[int], rules: list[Rule], *, search: int = 1, mood_ids: Sequence[int] = ()) -> None:
        self.device = next(ck.model.parameters()).device
        self.ck, self.v, self.plan, self.form, self.sampling = ck, vocab.on(self.device), plan, form, sampling
        self.rules = rules
        self.novelty = next((r for r in rules if isinstance(r, Novelty)), None)
        self.B, self.L, self.W = len(seeds), form.lines, form.width
        # lines of several lengths (a 词 tune) are written from the left; the slots know each length
        self.widths = form.widths if len(set(form.widths)) > 1 else ()
        self.K = 1 if sampling.greedy else search  # greedy candidates would all be the same line
        self.mood_ids = list(mood_ids)
        B = self.B
        self.cats = torch.full((B,), plan.category, dtype=torch.long) if plan.category is not None else None
        self.style = torch.full((B,), plan.style, dtype=torch.long) if plan.style else None
        per_row = self.L * self.K * (NOVELTY_RETRIES + 1) * (self.W + 1)
        self.u = torch.stack([torch.rand(per_row, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                              for s in seeds]).view(self.B, self.L, self.K, NOVELTY_RETRIES + 1, self.W + 1)
        self.u = self.u.to(self.device)

    @torch.no_grad()
    def run(self) -> tuple[list[list[str]], list[list[int]], list[float]]:
        """Lines of every poem (model script), per poem the lines kept although copied, and the
        model's NLL per token of each poem as written (marks included)."""
        B, plan = self.B, self.plan
        if self.mood_ids:
            # Every row reads the same mood: fed once and copied to the rows, a long mood costs the
            # time of one poem, not of each (40,000 characters for 10 poems: 73 s before, 24 s now).
            one = Stepper(self.ck, 1, self.cats[:1] if self.cats is not None else None,
                          self.style[:1] if self.style is not None else None)
            logp = one.feed(torch.tensor([[BOS, *self.mood_ids, EOS, BOS]], device=self.device)).expand(B, -1)
            stepper = one.subset(torch.zeros(B, dtype=torch.long))
        else:
            stepper = Stepper(self.ck, B, self.cats, self.style)
            logp = stepper.feed(torch.tensor([[BOS]] * B, device=self.device))
        chars = torch.full((B, self.L, self.W), OPEN, dtype=torch.long, device=self.device)
        for line, text in enumerate(plan.given):
            chars[:, line, : len(text)] = torch.tensor([self.v.char_id[ch] for ch in text], dtype=torch.long)
        copied: list[list[int]] = [[] for _ in range(B)]
        nll = torch.zeros(B, device=self.device)
        for line in range(self.L):
            stepper, logp, ll, kept_copy = self._line(stepper, logp, chars, line)
            nll -= ll
            for i in kept_copy:
                copied[i].append(line)
        tokens = self.v.tokens
        lines = [["".join(tokens[t] for t in row[:w]) for row, w in zip(poem, self.form.widths, strict=True)]
                 for poem in chars.tolist()]
        return lines, copied, (nll / (sum(self.form.widths) + self.L)).tolist()

    def _line(self, stepper: Stepper, logp: Tensor, chars: Tensor, line: int
              ) -> tuple[Stepper, Tensor, Tensor, list[int]]:
        """Draw ``line`` for every poem (K candidates each, the best kept); writes it into ``chars``.
        Returns the stepper and log-probs after the line's mark, the kept line's log-likelihood
        and the poems whose kept line is a copy."""
        B, K = self.B, self.K
        rows = torch.arange(B, device=self.device).repeat_interleave(K)
        start = stepper.subset(rows)
        u = self.u[:, line].reshape(B * K, NOVELTY_RETRIES + 1, self.W + 1)
        cand = chars[rows]
        st, lp, ll = self._draw(copy.copy(start), logp[rows], cand, line, u[:, 0], None)
        width = self.form.widths[line]
        copies = self._copies(cand[:, line, :width])
        for attempt in range(1, NOVELTY_RETRIES + 1):
            bad = [r for r in range(B * K) if copies[r] and all(copies[(r // K) * K : (r // K + 1) * K])]
            if not bad:
                break
            idx = torch.tensor(bad, device=self.device)
            sub_chars = cand[idx]
            redraw = sub_chars[:, line, -1].clone()
            sub_chars[:, line] = chars[rows[idx], line]  # back to what the plan fixes
            sub, sub_lp, sub_ll = self._draw(start.subset(idx), logp[rows[idx]], sub_chars, line, u[idx, attempt],
                                             redraw)
            cand[idx], lp[idx], ll[idx] = sub_chars, sub_lp, sub_ll
            st.update(idx, sub)
            for r, is_copy in zip(bad, self._copies(sub_chars[:, line, :width]), strict=True):
                copies[r] = is_copy
        score = ll.clone()
        if K > 1 and line:
            score += PMI_WEIGHT * (ll - self._alone(cand[:, line, :width], rows, line))
        score = score.masked_fill(torch.tensor(copies, device=self.device), -1e9).view(B, K)
        best = torch.arange(B, device=self.device) * K + score.argmax(1)
        chars[:, line] = cand[best, line]
        kept_copy = [i for i in range(B) if copies[int(best[i])]]
        return st.subset(best), lp[best], ll[best], kept_copy

    def _draw(self, stepper: Stepper, logp: Tensor, chars: Tensor, line: int, u: Tensor, redraw: Tensor | None
              ) -> tuple[Stepper, Tensor, Tensor]:
        """Draw the slots of ``line`` (its characters and its mark) into ``chars`` for every row;
        the stepper ends fed with the mark. Returns it, the next log-probs and the line's
        log-likelihood under the model (rules aside)."""
        total = torch.zeros(chars.shape[0], device=self.device)
        width = self.form.widths[line]
        for pos in range(width + 1):
            logits = constrain(self.rules, Slot(line, pos, chars, redraw, self.widths), logp.float())
            tok = draw(logits, self.sampling, u[:, pos])
            total += logp.float().gather(1, tok[:, None]).squeeze(1)
            if pos < width:
                chars[:, line, pos] = tok
            logp = stepper.feed(tok)
        return stepper, logp, total

    def _copies(self, ids: Tensor) -> list[bool]:
        if self.novelty is None:
            return [False] * len(ids)
        tokens = self.v.tokens
        return self.novelty.copied(["".join(tokens[t] for t in row) for row in ids.tolist()])

    def _alone(self, ids: Tensor, rows: Tensor, line: int) -> Tensor:
        """log p(line and its mark | nothing before it) for candidate lines ``ids`` (n, W)."""
        mark = self.v.mark_id(self.plan.marks[line])
        n = len(ids)
        tokens = torch.cat([torch.full((n, 1), BOS, device=self.device), ids], dim=1)
        targets = torch.cat([ids, torch.full((n, 1), mark, device=self.device)], dim=1)
        cats = self.cats[rows.cpu()].to(self.device) if self.cats is not None else None
        style = self.style[rows.cpu()].to(self.device) if self.style is not None else None
        return self.ck.model.token_log_probs(tokens, targets, cats, style).sum(1)
