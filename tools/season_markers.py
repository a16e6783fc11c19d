"""Print the season table behind ``poetgen/poems/seasons.py``: how often Tang poems name two
seasons, and the characters and two-character words that stand with 春 or with 秋.

Over the Tang training split, in poems naming exactly one of 春夏秋冬, each character's (or
word's) share of poems per season is divided by how often that season is named; one seen in at
least ``--min-poems`` such poems (``--min-word-poems`` for words) whose spring-to-autumn ratio
passes ``--share`` is a marker. Usage (not run in CI)::

    python tools/season_markers.py --data-dir ../shared/corpora
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from poetgen.corpora import load_corpus
from poetgen.poems.seasons import SEASONS
from poetgen.verse import is_cjk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--min-poems", type=int, default=100)
    parser.add_argument("--min-word-poems", type=int, default=60)
    parser.add_argument("--share", type=float, default=0.85)
    args = parser.parse_args()
    poems = [s.text for s in load_corpus("tang", args.data_dir).samples if s.split == "train"]
    named: Counter[str] = Counter()
    beside: defaultdict[str, Counter[str]] = defaultdict(Counter)
    two = 0
    for text in poems:
        seasons = {ch for ch in text if ch in SEASONS}
        two += len(seasons) >= 2
        if len(seasons) != 1:
            continue
        (season,) = seasons
        named[season] += 1
        words = {text[i : i + 2] for i in range(len(text) - 1)}
        for item in (set(text) | words):
            if all(is_cjk(ch) and ch not in SEASONS for ch in item):
                beside[item][season] += 1
    print(f"{len(poems)} training poems; {two / len(poems):.1%} name two seasons or more; named alone: "
          + ", ".join(f"{s} {named[s]}" for s in SEASONS))
    for side, season, other in (("spring", "春", "秋"), ("autumn", "秋", "春")):
        marks = []
        for item, counts in beside.items():
            if sum(counts.values()) < (args.min_poems if len(item) == 1 else args.min_word_poems):
                continue
            here, there = counts[season] / named[season], counts[other] / named[other]
            if here / (here + there) >= args.share:
                marks.append((-len(item), here / (here + there), item))
        print(side, " ".join(f"{item} {share:.2f}" for _, share, item in sorted(marks, reverse=True)))


if __name__ == "__main__":
    main()
