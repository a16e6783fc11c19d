"""A fluency judge independent of the poem model: an interpolated Kneser–Ney character n-gram.

Fitted on verse the poem model never trains on (the benchmark uses the Tang 古体 poems, which lie
outside the four regulated forms), it says how ordinary a poem's character sequences are: the
perplexity it gives generated poems against the perplexity it gives real ones of the same form.
It shares nothing with the model being judged (tokens, vocabulary, weights), so reranking a
model's candidates by that model's own score cannot flatter it here.

P(w | ctx) = max(c(ctx w) − D, 0) / c(ctx ·) + D · N₁₊(ctx ·) / c(ctx ·) · P(w | ctx minus its
first character), with raw counts at the top order and continuation counts (how many different
characters precede the n-gram) below it; the bottom is uniform over the characters seen plus one
for any unseen character (Chen & Goodman 1999, interpolated KN with one discount per order).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

BOS, EOS = "\x02", "\x03"  # never in verse: sequence edges


class FluencyJudge:
    """``FluencyJudge(texts).perplexity(poems)``: per-character perplexity, end marker included."""

    def __init__(self, texts: Iterable[str], order: int = 3, discount: float = 0.75) -> None:
        if order < 1 or not 0 < discount < 1:
            raise ValueError("order must be >= 1 and discount in (0, 1)")
        self.order, self.discount = order, discount
        top: Counter[str] = Counter()
        for text in texts:
            padded = BOS * (order - 1) + text + EOS
            for i in range(order - 1, len(padded)):
                top[padded[i - order + 1 : i + 1]] += 1
        if not top:
            raise ValueError("the judge needs some text to learn from")
        # counts[n]: n-grams of length n + 1 (raw at the top, continuation counts below)
        counts = [Counter() for _ in range(order)]
        counts[-1] = top
        for n in range(order - 2, -1, -1):
            for gram in counts[n + 1]:
                counts[n][gram[1:]] += 1
        self.counts = counts
        self.totals: list[dict[str, int]] = []
        self.types: list[dict[str, int]] = []
        for table in counts:
            total: dict[str, int] = defaultdict(int)
            types: dict[str, int] = defaultdict(int)
            for gram, c in table.items():
                total[gram[:-1]] += c
                types[gram[:-1]] += 1
            self.totals.append(dict(total))
            self.types.append(dict(types))
        self.vocab = len(counts[0]) + 1  # characters seen (EOS among them) and one for the unseen

    def prob(self, context: str, char: str) -> float:
        """P(char | the last ``order - 1`` characters of ``context``)."""
        p = 1.0 / self.vocab
        for n in range(self.order):
            ctx = context[len(context) - n :] if n else ""
            total = self.totals[n].get(ctx)
            if not total:
                continue
            c = self.counts[n].get(ctx + char, 0)
            p = max(c - self.discount, 0) / total + self.discount * self.types[n][ctx] / total * p
        return p

    def nll(self, text: str) -> tuple[float, int]:
        """Summed negative log-probability (nats) of ``text`` and its end, and the token count."""
        padded = BOS * (self.order - 1) + text + EOS
        total = 0.0
        for i in range(self.order - 1, len(padded)):
            total -= math.log(self.prob(padded[i - self.order + 1 : i], padded[i]))
        return total, len(padded) - self.order + 1

    def perplexity(self, texts: Iterable[str]) -> float:
        """exp(mean NLL per token) over all ``texts`` together."""
        total, count = 0.0, 0
        for text in texts:
            nll, n = self.nll(text)
            total, count = total + nll, count + n
        if not count:
            raise ValueError("no text to judge")
        return math.exp(total / count)
