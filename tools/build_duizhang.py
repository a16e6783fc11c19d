"""Build ``poetgen/tables/duizhang.safetensors``: how well two characters face each other in a
parallel couplet (对仗), learned from the corpus's own 律诗 middle couplets.

Rules it uses, written down:
* Pairs: in the training split of the Tang 五律 and 七律 (simplified script), the 颔联 (lines 3–4)
  and the 颈联 (lines 5–6); each position j gives the pair (line a[j], line b[j]), counted in both
  orders (facing is symmetric). Pairs of one character with itself are left out (a fault, not a
  pairing).
* Score: positive pointwise mutual information, PPMI(x, y) = max(0, log P(x, y) / (P(x) P(y))),
  over characters seen in at least ``--min-count`` pairs, with the context distribution smoothed
  by the power 0.75 (as in word2vec-style PMI) so that rare partners do not dominate.
* Smoothing across characters: the PPMI matrix is factored by a truncated SVD of rank ``--rank``;
  a character's vector is U·√S, and score(x, y) = vector(x) · vector(y). Characters that face
  the same partners (numbers, colours, directions, plants ...) get close vectors, so a pair never
  seen still scores by its classes. Stored in fp16 with the characters in the metadata.

Run from the repository root: ``python tools/build_duizhang.py --data-dir ../shared/corpora``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import torch
from safetensors.torch import save_file

from poetgen.corpora import load_corpus
from poetgen.paths import PACKAGE
from poetgen.verse import split_lines

OUT = PACKAGE / "tables" / "duizhang.safetensors"
MIDDLE = ((2, 3), (4, 5))


def pairs(texts: list[str]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for text in texts:
        lines = split_lines(text)
        for a, b in MIDDLE:
            for x, y in zip(lines[a], lines[b], strict=True):
                if x != y:
                    counts[x, y] += 1
                    counts[y, x] += 1
    return counts


def build(counts: Counter[tuple[str, str]], min_count: int, rank: int) -> tuple[list[str], torch.Tensor]:
    single: Counter[str] = Counter()
    for (x, _), c in counts.items():
        single[x] += c
    chars = sorted(ch for ch, c in single.items() if c >= min_count)
    index = {ch: i for i, ch in enumerate(chars)}
    n = len(chars)
    m = torch.zeros(n, n, dtype=torch.float64)
    for (x, y), c in counts.items():
        if x in index and y in index:
            m[index[x], index[y]] += c
    total = m.sum()
    row = m.sum(1) / total
    ctx = m.sum(0) ** 0.75
    ctx = ctx / ctx.sum()
    pmi = torch.log((m / total).clamp(min=1e-300) / (row[:, None] * ctx[None, :]))
    ppmi = torch.where(m > 0, pmi.clamp(min=0), torch.zeros_like(pmi)).float()
    torch.manual_seed(0)
    u, s, _ = torch.svd_lowrank(ppmi, q=rank, niter=6)
    return chars, u * s.sqrt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--rank", type=int, default=96)
    args = parser.parse_args()
    corpus = load_corpus("tang", args.data_dir, forms=["五律", "七律"])
    texts = [s.text for s in corpus.samples if s.split == "train"]
    chars, vectors = build(pairs(texts), args.min_count, args.rank)
    meta = {"chars": "".join(chars), "source": f"chinese-poetry 全唐诗 {corpus.fingerprint}, training split",
            "poems": str(len(texts)), "rank": str(args.rank), "min_count": str(args.min_count)}
    save_file({"vectors": vectors.half().contiguous()}, str(OUT), metadata={"duizhang": json.dumps(meta)})
    print(f"{OUT}: {len(chars)} characters, rank {args.rank}, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
