"""对仗: how well the characters of two lines face each other, position by position.

The table (``tables/duizhang.safetensors``, built by ``tools/build_duizhang.py`` from the Tang
律诗 middle couplets of the training split) holds every pair of characters the poets set facing
each other, with its count, and a class vector per character. A pair's score is

    max(FLOOR, log((count + SMOOTH) · N / ((n_a + 1) (n_b + 1)))) + CLASS_WEIGHT · cos(a, b)

a smoothed pointwise mutual information (how much likelier the poets made this pair than chance:
风/月, 山/水, 白/青) plus the cosine of the class vectors (numbers face numbers, colours colours,
so a pair never seen still scores by its classes). A character facing itself scores ``SAME``, a
character the table lacks 0, and a couplet's score is the mean over its positions. Measured on
the test split (BENCHMARKS.md): real middle couplets score above mismatched ones (the second line
taken from another poem's middle couplet) with AUC 0.95, and above the same poems' first and last
couplets with AUC 0.87; by ``PARALLEL``, 88% of real middle couplets are parallel. The constants
were chosen on the validation split.
"""

from __future__ import annotations

import functools
import json
import math

import torch
from safetensors import safe_open
from torch import Tensor

from poetgen.paths import PACKAGE
from poetgen.poems.forms import Form
from poetgen.poems.slot import OPEN, Slot, without
from poetgen.sample import Rule

TABLE_PATH = PACKAGE / "tables" / "duizhang.safetensors"
SMOOTH = 0.1  # added to a pair's count, so that a pair never seen is unlikely, not impossible
FLOOR = -3.0  # the lowest mutual information a pair scores
CLASS_WEIGHT = 5.0  # weight of the class cosine beside the mutual information
SAME = FLOOR - CLASS_WEIGHT  # a character facing itself, the fault 对仗 rules out: below any pair
LEAN = 0.2  # nats per unit of facing score added while a parallel couplet's second line is drawn
# A couplet whose score reaches this is called parallel: the 90th percentile of mismatched
# couplets on the validation split (BENCHMARKS.md).
PARALLEL = 1.065


class PairTable:
    def __init__(self, chars: str, tensors: dict[str, Tensor]) -> None:
        self.chars = chars
        self.index = {ch: i for i, ch in enumerate(chars)}
        vectors = tensors["vectors"].float()
        self.vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-6)
        self.log_count = torch.log(tensors["char_counts"].float() + 1)
        self.log_total = math.log(float(tensors["char_counts"].sum()))
        self.pairs = tensors["pairs"].long()
        self.pair_counts = tensors["pair_counts"].float()
        self.count = {(int(i), int(j)): float(c) for (i, j), c in zip(self.pairs.tolist(), self.pair_counts.tolist(),
                                                                     strict=True)}

    def pair(self, a: str, b: str) -> float:
        if a == b:
            return SAME
        i, j = self.index.get(a), self.index.get(b)
        if i is None or j is None:
            return 0.0
        seen = self.count.get((min(i, j), max(i, j)), 0.0)
        pmi = math.log(seen + SMOOTH) + self.log_total - float(self.log_count[i] + self.log_count[j])
        return max(FLOOR, pmi) + CLASS_WEIGHT * float(self.vectors[i] @ self.vectors[j])

    def couplet(self, first: str, second: str) -> float:
        """Mean facing score of two lines of one length (0 for empty lines)."""
        scores = [self.pair(a, b) for a, b in zip(first, second, strict=False)]
        return sum(scores) / len(scores) if scores else 0.0


class Facing:
    """The table over a model's vocabulary: ``rows(ids)`` gives, for each facing token, every
    token's score against it (0 where either is a token the table lacks)."""

    def __init__(self, table: PairTable, tokens: list[str]) -> None:
        to_table = torch.tensor([table.index.get(t, -1) for t in tokens])
        self.known = to_table >= 0
        where = to_table.clamp(min=0)
        self.vectors = torch.where(self.known[:, None], table.vectors[where], 0.0)
        self.log_count = torch.where(self.known, table.log_count[where], 0.0)
        self.log_total = table.log_total
        to_model = torch.full((len(table.chars),), -1, dtype=torch.long)
        to_model[to_table[self.known]] = torch.arange(len(tokens))[self.known]
        i, j = to_model[table.pairs[:, 0]], to_model[table.pairs[:, 1]]
        keep = (i >= 0) & (j >= 0)
        i, j, c = i[keep], j[keep], table.pair_counts[keep]
        # log((count + SMOOTH) / SMOOTH): 0 for a pair never seen, so the rows can stay sparse
        values = torch.log1p(c / SMOOTH)
        self.seen = torch.sparse_coo_tensor(torch.stack([torch.cat([i, j]), torch.cat([j, i])]),
                                            torch.cat([values, values]), (len(tokens), len(tokens)),
                                            check_invariants=True).coalesce()

    def rows(self, ids: Tensor) -> Tensor:
        """(b, V) scores of every token facing each of ``ids`` (b,) (OPEN rows: 0)."""
        device = ids.device
        facing = ids.clamp(min=0).cpu()
        seen = self.seen.index_select(0, facing).to_dense()
        pmi = (seen + math.log(SMOOTH) + self.log_total - self.log_count[facing][:, None]
               - self.log_count[None, :]).clamp(min=FLOOR)
        score = pmi + CLASS_WEIGHT * (self.vectors[facing] @ self.vectors.T)
        known = self.known[facing][:, None] & self.known[None, :] & (ids != OPEN).cpu()[:, None]
        return torch.where(known, score, 0.0).to(device)


@functools.cache
def pair_table() -> PairTable:
    with safe_open(str(TABLE_PATH), "pt") as f:
        meta = json.loads(f.metadata()["duizhang"])
        return PairTable(meta["chars"], {k: f.get_tensor(k) for k in f.keys()})


class Parallel(Rule):
    """In the couplets the form wants parallel (律诗: 颔联 and 颈联), each character of the second
    line answers the one it faces: never the same character, and ``weight`` × the facing score
    added to every candidate (the model still decides; the table only leans)."""

    def __init__(self, tokens: list[str], form: Form, weight: float = LEAN) -> None:
        self.facing = {second: first for first, second in form.parallel}
        self.table = Facing(pair_table(), tokens)
        self.weight = weight

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        first = self.facing.get(slot.line)
        if first is None or slot.mark:
            return logits
        facing = slot.chars[:, first, slot.pos]
        return without(logits + self.weight * self.table.rows(facing), facing)
