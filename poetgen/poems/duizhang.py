"""对仗: how well the characters of two lines face each other, position by position.

The table (``tables/duizhang.safetensors``, built by ``tools/build_duizhang.py`` from the Tang
律诗 middle couplets of the training split) gives each character a vector; two characters that
face the same partners in real couplets (numbers, colours, directions, seasons, plants ...) have
close vectors. A pair's score is the cosine of its vectors (0 for a character the table lacks),
a character facing itself scores ``SAME``, and a couplet's score is the mean over its positions.
Measured on the test split (BENCHMARKS.md): real middle couplets score above mismatched ones
(the second line taken from another poem's middle couplet) with AUC 0.82, and above the same
poems' first and last couplets with AUC 0.77.
"""

from __future__ import annotations

import functools
import json

import torch
from safetensors import safe_open
from torch import Tensor

from poetgen.paths import PACKAGE
from poetgen.poems.forms import Form
from poetgen.poems.slot import OPEN, Slot, without
from poetgen.sample import Rule

TABLE_PATH = PACKAGE / "tables" / "duizhang.safetensors"
SAME = -1.0  # a character facing itself: the fault 对仗 rules out
WEIGHT = 2.0  # nats per unit of facing score added while a parallel couplet's second line is drawn
# A couplet whose score reaches this is called parallel: the 90th percentile of mismatched
# couplets on the test split, which 51% of real Tang middle couplets reach, and 17% of their first
# and last couplets (BENCHMARKS.md).
PARALLEL = 0.137


class PairTable:
    def __init__(self, chars: str, vectors: Tensor) -> None:
        self.index = {ch: i for i, ch in enumerate(chars)}
        self.vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-6)

    def pair(self, a: str, b: str) -> float:
        if a == b:
            return SAME
        i, j = self.index.get(a), self.index.get(b)
        return 0.0 if i is None or j is None else float(self.vectors[i] @ self.vectors[j])

    def couplet(self, first: str, second: str) -> float:
        """Mean facing score of two lines of one length (0 for empty lines)."""
        scores = [self.pair(a, b) for a, b in zip(first, second, strict=False)]
        return sum(scores) / len(scores) if scores else 0.0

    def aligned(self, tokens: list[str]) -> Tensor:
        """(V, d) unit vectors for a vocabulary's tokens, zeros where the table lacks one."""
        out = torch.zeros(len(tokens), self.vectors.shape[1])
        for t, token in enumerate(tokens):
            i = self.index.get(token)
            if i is not None:
                out[t] = self.vectors[i]
        return out


@functools.cache
def pair_table() -> PairTable:
    with safe_open(str(TABLE_PATH), "pt") as f:
        meta = json.loads(f.metadata()["duizhang"])
        return PairTable(meta["chars"], f.get_tensor("vectors").float())


class Parallel(Rule):
    """In the couplets the form wants parallel (律诗: 颔联 and 颈联), each character of the second
    line answers the one it faces: never the same character, and ``weight`` × the facing score
    added to every candidate (the model still decides; the table only leans)."""

    def __init__(self, tokens: list[str], form: Form, weight: float = WEIGHT) -> None:
        self.facing = {second: first for first, second in form.parallel}
        self.vectors = pair_table().aligned(tokens)
        self.weight = weight

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        first = self.facing.get(slot.line)
        if first is None or slot.mark:
            return logits
        facing = slot.chars[:, first, slot.pos]
        vectors = self.vectors.to(logits.device)
        lean = (vectors[facing.clamp(min=0)] @ vectors.T) * (facing != OPEN)[:, None]
        return without(logits + self.weight * lean, facing)
