"""The decoding core that poems, names and free text share: temperature → top-k → top-p
filtering, one draw routine, one greedy rule, the rule pipeline (``Rule``, ``constrain``), one way
to ban tokens and to end a sequence, and a step-by-step driver that keeps a language model's
recurrent state between steps.

Every constraint on what may come next is a ``Rule``: an object called with the decoder's view of
the history (its own context type: a poem's characters so far and the slot in the form, a name's
letters) and the (B, V) logits, returning edited logits, as the logits-processor lists of the
well-known generation libraries do. A sampler is a list of rules around ``draw``; adding a rule is
adding one object, not editing the core.

Names follow Hugging Face ``generate``: ``temperature``, ``top_k`` (0 = off), ``top_p`` (1.0 = off).
``temperature=0`` means greedy decoding (the CLI spells it ``--greedy``). A draw turns one uniform
number per row into a token (inverse CDF), so callers decide where the uniforms come from: a local
``torch.Generator`` seeded by the caller (names, free text) or one generator per row (poems, so
that a poem does not depend on the others in its batch). The same seed gives the same text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.config import check_seed
from poetgen.defaults import TEXT_TEMPERATURE, TOP_K, TOP_P
from poetgen.errors import PoetgenError, bad_value
from poetgen.vocab import BOS, EOS, PAD, UNK

# Below this temperature sampling is greedy in all but name, and dividing by it would overflow
# float32 logits to inf (NaN after softmax): such temperatures are decoded greedily.
GREEDY_BELOW = 1e-3
FEED_WINDOW = 512  # tokens fed to the model at once


@dataclass
class Sampling:
    temperature: float | None = None  # None: the task's own default (``resolved``); 0: greedy
    top_k: int = TOP_K
    top_p: float = TOP_P
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        """The one greedy rule: below ``GREEDY_BELOW`` the arg-max is taken."""
        return self.temperature is not None and self.temperature < GREEDY_BELOW

    def resolved(self, default_temperature: float) -> Sampling:
        """These settings with the task's temperature where none was given, validated."""
        if self.temperature is None:
            return replace(self, temperature=default_temperature).validate()
        return self.validate()

    def validate(self) -> Sampling:
        if self.temperature is None:
            return replace(self, temperature=TEXT_TEMPERATURE).validate()
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise bad_value("temperature", f"must be a number >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k < 0:
            raise bad_value("top_k", f"must be 0 (off) or positive, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise bad_value("top_p", f"must be in (0, 1], got {self.top_p}")
        check_seed(self.seed)
        return self

    def generator(self, device: str | torch.device = "cpu") -> torch.Generator:
        g = torch.Generator(device=device)
        if self.seed is None:
            g.seed()
        else:
            g.manual_seed(self.seed)
        return g


def filter_logits(logits: Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """(B, V) logits → (B, V) logits with filtered entries set to -inf, in HF's order."""
    if temperature < GREEDY_BELOW:  # greedy: keep only the arg-max
        keep = logits == logits.max(dim=-1, keepdim=True).values
        return logits.masked_fill(~keep, -math.inf)
    logits = logits / temperature
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the mass before it already reaches top_p (the first token always stays)
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def draw(logits: Tensor, sampling: Sampling, u: Tensor) -> Tensor:
    """One token per row from (B, V) logits (-inf = forbidden), by inverse CDF on the row's uniform
    ``u`` (B,); greedy decoding takes the arg-max and ignores ``u``.

    Without top-k/top-p this is a few passes over (B, V): max, exp, cumsum, a binary search.
    """
    logits = logits.float()
    if sampling.greedy:
        return logits.argmax(-1)
    # Shift first so that the best token sits at 0: a tiny temperature then cannot overflow to inf.
    z = logits - logits.max(-1, keepdim=True).values
    if sampling.top_k or sampling.top_p < 1.0:
        z = filter_logits(z, sampling.temperature, sampling.top_k, sampling.top_p)
    else:
        z = z.div_(sampling.temperature)
    cdf = z.exp().cumsum_(-1)
    x = (u.to(device=cdf.device, dtype=cdf.dtype).clamp(min=1e-7) * cdf[:, -1]).unsqueeze(-1)
    tok = torch.searchsorted(cdf, x).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)
    bad = ~torch.isfinite(z.gather(1, tok[:, None]).squeeze(-1))  # float edge cases: stay allowed
    bad |= ~torch.isfinite(logits.gather(1, tok[:, None]).squeeze(-1))
    if bool(bad.any()):
        tok = torch.where(bad, logits.argmax(-1), tok)
    return tok


class Rule:
    """One constraint: ``rule(context, logits) → logits`` with forbidden tokens at -inf or
    preferences added. A *soft* rule (the default) gives way, row by row, where it would leave a
    row with no token at all, so the rules before it in the list take precedence and a draw is
    never impossible; a hard rule (``soft = False``) always applies. Rules never edit ``logits``
    in place: ``constrain`` keeps the tensor it passed for the fallback."""

    soft: bool = True

    def __call__(self, context: Any, logits: Tensor) -> Tensor:
        raise NotImplementedError


def unless_empty(before: Tensor, after: Tensor) -> Tensor:
    """``after``, except in rows where it leaves no token at all (there: ``before``)."""
    alive = torch.isfinite(after.max(-1).values)
    return after if bool(alive.all()) else torch.where(alive[:, None], after, before)


def constrain(rules: Sequence[Rule], context: Any, logits: Tensor) -> Tensor:
    """Apply ``rules`` in order to (B, V) ``logits``; the first rules win where soft ones clash."""
    for rule in rules:
        edited = rule(context, logits)
        logits = unless_empty(logits, edited) if rule.soft else edited
    return logits


def uniforms(generator: torch.Generator, n: int) -> Tensor:
    """``n`` uniform numbers for one draw of ``n`` rows."""
    return torch.rand(n, generator=generator, dtype=torch.float64)


def ban(logits: Tensor, ids: list[int]) -> Tensor:
    """Forbid the tokens ``ids`` in every row of (B, V) logits (in place)."""
    if ids:
        logits[:, ids] = -math.inf
    return logits


def banned_ids(vocab_size: int) -> list[int]:
    """Tokens that never appear inside generated text."""
    return [t for t in (PAD, BOS, UNK) if t < vocab_size]


def end_ban(prefix_ids: list[int], step: int) -> list[int]:
    """``<eos>`` is forbidden before the first token of an empty sequence: text has at least one."""
    return [EOS] if step == 0 and not prefix_ids else []


def advance(out: list[list[int]], done: Tensor, nxt: Tensor) -> Tensor:
    """Append each unfinished row's token to ``out`` (``<eos>`` ends the row) and return the new
    ``done`` mask. Finished rows ignore what is drawn for them."""
    for i in (~done).nonzero().flatten().tolist():
        t = int(nxt[i])
        if t != EOS:
            out[i].append(t)
    return done | (nxt.cpu() == EOS)


class Stepper:
    """Feeds tokens to a language model one step at a time and returns next-token log-probs."""

    def __init__(self, ck: Checkpoint, batch: int, category: Tensor | None = None,
                 style: Tensor | None = None) -> None:
        if ck.config.task != "lm":
            raise PoetgenError(f"{ck.path} is a classifier, not a language model")
        self.model = ck.model
        self.device = next(self.model.parameters()).device
        self.category = category.to(self.device) if category is not None else None
        if ck.config.num_categories and self.category is None:
            self.category = torch.zeros(batch, dtype=torch.long, device=self.device)
        self.style = style.to(self.device) if style is not None else None  # None: any
        self.state = None
        self.batch = batch

    @torch.no_grad()
    def feed(self, tokens: Tensor) -> Tensor:
        """tokens (B,) or (B, T) → log-probs (B, V) for the token after the last one fed."""
        if tokens.dim() == 1:
            tokens = tokens[:, None]
        tokens = tokens.to(self.device)
        # A long input (a mood of thousands of characters) is fed in windows that carry the state:
        # memory stays bounded by the window, not by the input's length.
        for start in range(0, tokens.shape[1], FEED_WINDOW):
            h, self.state = self.model.features(tokens[:, start : start + FEED_WINDOW], self.category, self.state,
                                                self.style)
        return self.model.log_probs(h[:, -1])

    def subset(self, index: Tensor) -> Stepper:
        """A stepper for the rows ``index`` only, continuing from their current state."""
        index = index.to(self.device)
        sub = object.__new__(Stepper)
        sub.model, sub.device, sub.batch = self.model, self.device, len(index)
        sub.category = self.category.index_select(0, index) if self.category is not None else None
        sub.style = self.style.index_select(0, index) if self.style is not None else None
        sub.state = _map_state(self.state, lambda s: s.index_select(1, index))
        return sub

    def update(self, index: Tensor, sub: Stepper) -> None:
        """Take the rows ``index`` of the state from ``sub`` (a ``subset`` that was fed further)."""
        index = index.to(self.device)
        if self.state is None:
            return
        if isinstance(self.state, tuple):
            self.state = tuple(s.index_copy(1, index, t) for s, t in zip(self.state, sub.state, strict=True))
        else:
            self.state = self.state.index_copy(1, index, sub.state)


def _map_state(state, fn):
    """Apply ``fn`` to a recurrent state: a tensor (RNN, GRU), an (h, c) pair (LSTM) or None."""
    if state is None:
        return None
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


@torch.no_grad()
def generate(
    ck: Checkpoint, n: int, *, prefix: str = "", category: int | None = None, max_new_tokens: int = 30,
    sampling: Sampling | None = None,
) -> list[str]:
    """Free-running sampling of ``n`` sequences in one batch, each stopping at ``<eos>``."""
    sampling = (sampling or Sampling()).resolved(TEXT_TEMPERATURE)
    g = sampling.generator()
    cats = torch.full((n,), category, dtype=torch.long) if category is not None else None
    stepper = Stepper(ck, n, cats)
    prefix_ids = ck.tokenizer.encode(prefix)
    log_probs = stepper.feed(torch.tensor([[BOS, *prefix_ids]] * n))
    out: list[list[int]] = [[] for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool)
    for step in range(max_new_tokens):
        ban(log_probs, banned_ids(log_probs.shape[-1]) + end_ban(prefix_ids, step))
        nxt = draw(log_probs, sampling, uniforms(g, n))
        done = advance(out, done, nxt)
        if bool(done.all()):
            break
        log_probs = stepper.feed(nxt)
    return [prefix + ck.tokenizer.decode(ids) for ids in out]
