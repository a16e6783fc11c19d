"""Decoding: temperature → top-k → top-p filtering, seeded draws, and a step-by-step driver for a
trained language model that keeps the recurrent state between steps.

Names follow Hugging Face ``generate``: ``temperature``, ``top_k`` (0 = off), ``top_p`` (1.0 = off).
``temperature=0`` means greedy decoding (the CLI spells it ``--greedy``). All randomness comes from
a local ``torch.Generator`` seeded by the caller, so the same seed gives the same text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.errors import PoetgenError
from poetgen.vocab import BOS, EOS, PAD, UNK

# Below this temperature sampling is greedy in all but name, and dividing by it would overflow
# float32 logits to inf (NaN after softmax): such temperatures are decoded greedily.
GREEDY_BELOW = 1e-3


@dataclass
class Sampling:
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def validate(self) -> Sampling:
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise PoetgenError(f"--temp must be a positive number, got {self.temperature}")
        if self.top_k < 0:
            raise PoetgenError(f"--top-k must be 0 (off) or positive, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise PoetgenError(f"--top-p must be in (0, 1], got {self.top_p}")
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


def draw(logits: Tensor, sampling: Sampling, generator: torch.Generator) -> Tensor:
    """Sample one token id per row from (B, V) logits (already masked by constraints)."""
    filtered = filter_logits(logits.float(), sampling.temperature, sampling.top_k, sampling.top_p)
    if sampling.temperature < GREEDY_BELOW:
        return filtered.argmax(dim=-1)
    probs = torch.softmax(filtered, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class Stepper:
    """Feeds tokens to a language model one step at a time and returns next-token log-probs."""

    def __init__(self, ck: Checkpoint, batch: int, category: Tensor | None = None) -> None:
        if ck.config.task != "lm":
            raise PoetgenError(f"{ck.path} is a classifier, not a language model")
        self.model = ck.model
        self.device = next(self.model.parameters()).device
        self.category = category.to(self.device) if category is not None else None
        if ck.config.num_categories and self.category is None:
            self.category = torch.zeros(batch, dtype=torch.long, device=self.device)
        self.state = None
        self.batch = batch

    @torch.no_grad()
    def feed(self, tokens: Tensor) -> Tensor:
        """tokens (B,) or (B, T) → log-probs (B, V) for the token after the last one fed."""
        if tokens.dim() == 1:
            tokens = tokens[:, None]
        h, self.state = self.model.features(tokens.to(self.device), self.category, self.state)
        return self.model.log_probs(h[:, -1])

    def reorder(self, index: Tensor) -> None:
        """Keep only the rows in ``index`` (for dropping finished or rejected rows)."""
        index = index.to(self.device)
        if isinstance(self.state, tuple):
            self.state = tuple(s.index_select(1, index) for s in self.state)
        elif self.state is not None:
            self.state = self.state.index_select(1, index)
        if self.category is not None:
            self.category = self.category.index_select(0, index)
        self.batch = len(index)


def banned_ids(vocab_size: int) -> list[int]:
    """Tokens that never appear inside generated text."""
    return [t for t in (PAD, BOS, UNK) if t < vocab_size]


@torch.no_grad()
def generate(
    ck: Checkpoint, n: int, *, prefix: str = "", category: int | None = None, max_new_tokens: int = 30,
    sampling: Sampling | None = None,
) -> list[str]:
    """Free-running sampling of ``n`` sequences in one batch, each stopping at ``<eos>``."""
    sampling = (sampling or Sampling()).validate()
    g = sampling.generator()
    cats = torch.full((n,), category, dtype=torch.long) if category is not None else None
    stepper = Stepper(ck, n, cats)
    start = [BOS, *ck.tokenizer.encode(prefix)]
    log_probs = stepper.feed(torch.tensor([start] * n))
    out: list[list[int]] = [[] for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(max_new_tokens):
        log_probs[:, banned_ids(log_probs.shape[-1])] = -math.inf
        if not out[0]:  # an empty continuation is allowed only when a prefix was given
            log_probs[:, EOS] = -math.inf if not prefix else log_probs[:, EOS]
        nxt = draw(log_probs.cpu(), sampling, g)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                if t == EOS:
                    done[i] = True
                else:
                    out[i].append(t)
        if bool(done.all()):
            break
        log_probs = stepper.feed(nxt)
    return [prefix + ck.tokenizer.decode(ids) for ids in out]
