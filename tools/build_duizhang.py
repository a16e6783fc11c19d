"""Build ``poetgen/tables/duizhang.safetensors``: how well two characters face each other in a
parallel couplet (对仗), learned from the corpus's own 律诗 middle couplets.

Rules it uses, written down:
* Pairs: in the training split of the Tang 五律 and 七律 (simplified script), the 颔联 (lines 3–4)
  and the 颈联 (lines 5–6); each position j gives the pair (line a[j], line b[j]), counted in both
  orders (facing is symmetric). Pairs of one character with itself are left out (a fault, not a
  pairing).
* The pairs themselves: every pair seen, with its count, and each character's count over all
  pairs; ``duizhang.py`` reads them as a smoothed pointwise mutual information (which pairs the
  poets actually set facing each other: 风/月, 山/水, 白/青).
* Classes: positive PMI over characters seen in at least ``--min-count`` pairs, the context
  distribution smoothed by the power 0.75 (as in word2vec-style PMI), factored by a truncated SVD
  of rank ``--rank``; a character's vector is U·√S. Characters that face the same partners
  (numbers, colours, directions, plants ...) get close vectors, so a pair never seen still scores
  by its classes. Stored in fp16, zero for characters below ``--min-count``.

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


def build(counts: Counter[tuple[str, str]], min_count: int, rank: int) -> tuple[list[str], dict[str, torch.Tensor]]:
    single: Counter[str] = Counter()
    for (x, _), c in counts.items():
        single[x] += c
    chars = sorted(single)
    index = {ch: i for i, ch in enumerate(chars)}
    classed = [index[ch] for ch in chars if single[ch] >= min_count]
    n = len(chars)
    m = torch.zeros(n, n, dtype=torch.float64)
    for (x, y), c in counts.items():
        m[index[x], index[y]] += c
    sub = m[classed][:, classed]
    total = sub.sum()
    row = sub.sum(1) / total
    ctx = sub.sum(0) ** 0.75
    ctx = ctx / ctx.sum()
    pmi = torch.log((sub / total).clamp(min=1e-300) / (row[:, None] * ctx[None, :]))
    ppmi = torch.where(sub > 0, pmi.clamp(min=0), torch.zeros_like(pmi)).float()
    torch.manual_seed(0)
    u, s, _ = torch.svd_lowrank(ppmi, q=rank, niter=6)
    vectors = torch.zeros(n, rank)
    vectors[classed] = u * s.sqrt()
    upper = [(index[x], index[y], c) for (x, y), c in counts.items() if index[x] < index[y]]
    return chars, {
        "vectors": vectors.half(),
        "pairs": torch.tensor([(i, j) for i, j, _ in upper], dtype=torch.int16),
        "pair_counts": torch.tensor([c for _, _, c in upper], dtype=torch.int16),
        "char_counts": torch.tensor([single[ch] for ch in chars], dtype=torch.int32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--rank", type=int, default=96)
    args = parser.parse_args()
    corpus = load_corpus("tang", args.data_dir, forms=["五律", "七律"])
    texts = [s.text for s in corpus.samples if s.split == "train"]
    chars, tensors = build(pairs(texts), args.min_count, args.rank)
    meta = {"chars": "".join(chars), "source": f"chinese-poetry 全唐诗 {corpus.fingerprint}, training split",
            "poems": str(len(texts)), "rank": str(args.rank), "min_count": str(args.min_count)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT), metadata={"duizhang": json.dumps(meta)})
    print(f"{OUT}: {len(chars)} characters, {len(tensors['pairs'])} pairs, rank {args.rank}, "
          f"{OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
