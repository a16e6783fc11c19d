"""The rules a Tang reader checks first, in generated poems against real ones, in one run.

How to run (from the repository root, with the corpora at ../shared/corpora)::

    python benchmarks/reader_rules.py --data-dir ../shared/corpora --samples 40

For each form, ``--samples`` test-split Tang poems are taken at random (seed 0) and one poem is
written per real one, starting with its first two characters (``write_poems`` at its defaults,
seed = the poem's index). Both sets are measured by ``poetgen.poems.check``, so the generator and
the real poems face the same checker:

* first line off the rhyme: line 1 ends on a sure 平 character outside the poem's group and its
  neighbours (share of poems whose even lines rhyme in a 平 group);
* repeats: extra repeated characters per poem (a reduplication such as 悠悠 not counted);
* 三平尾 per line, 孤平 per level-ending line;
* formula (printed last, over all forms): the share of poems holding the most common phrase of
  four characters (不知何处 …), generated poems against as many test-split Tang poems;
* seasons clash: share of poems with two clashing seasons (``poems.seasons.clashes``: 春 and 秋,
  莺 and 秋, 菊 and 春 …);
* 律诗 middle couplets: share called parallel (``duizhang.PARALLEL``) and characters facing
  themselves per couplet.

The real rates are over every test-split poem of the form; the parallelism measure's own quality
is printed first: AUC of real middle couplets against mismatched ones (the second line taken from
another poem's middle couplet, seed 0) and against the same poems' first and last couplets.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from poetgen.checkpoint import load_for
from poetgen.corpora import load_corpus
from poetgen.errors import PoetgenError
from poetgen.poems.check import check_poem, extra_repeats, lone_level, three_level_tail
from poetgen.poems.duizhang import PARALLEL, pair_table
from poetgen.poems.forms import TABLE
from poetgen.poems.seasons import clashes
from poetgen.poems.write import write_poems
from poetgen.sample import Sampling
from poetgen.verse import split_lines

MIDDLE, OUTER = ((2, 3), (4, 5)), ((0, 1), (6, 7))


def auc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counted half (Mann–Whitney)."""
    ranked = sorted([(v, 1) for v in positive] + [(v, 0) for v in negative])
    ranks: dict[float, list[int]] = {}
    for i, (v, _) in enumerate(ranked, 1):
        ranks.setdefault(v, []).append(i)
    total = sum(sum(ranks[v]) / len(ranks[v]) for v, label in ranked if label)
    return (total - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative))


def rates(texts: list[str], form: str) -> dict[str, float]:
    checks = [check_poem(t) for t in texts]
    rhymed = [c for c in checks if c.rules["level_rhyme"]]
    lines = [m for c in checks for m in c.tones]
    level_lines = [m for c in checks for i, m in enumerate(c.tones) if i in TABLE[form].rhyme]
    out = {
        "first line off": sum(not c.rules["first_line"] for c in rhymed) / max(len(rhymed), 1),
        "repeats/poem": sum(extra_repeats(c.lines) for c in checks) / len(checks),
        "三平尾/line": sum(three_level_tail(m) for m in lines) / len(lines),
        "孤平/line": sum(lone_level(m) for m in level_lines) / max(len(level_lines), 1),
        "seasons clash": sum(clashes(t) for t in texts) / len(texts),
    }
    couplets = [c for check in checks for c in check.couplets]
    if couplets:
        out["parallel"] = sum(c["parallel"] for c in couplets) / len(couplets)
        out["same/couplet"] = sum(c["same_characters"] for c in couplets) / len(couplets)
    return out


def formula(texts: list[str]) -> str:
    """The four-character phrase most poems of ``texts`` hold, and their share."""
    held = Counter(p for t in texts for p in {line[i : i + 4] for line in split_lines(t) for i in range(len(line) - 3)})
    phrase, n = held.most_common(1)[0]
    return f"{phrase} {n / len(texts):.3f}"


def parallel_quality(test: list[list[str]]) -> None:
    pairs = pair_table()
    rng = random.Random(0)
    lushi = [lines for lines in test if len(lines) == 8]
    middle = [(lines[a], lines[b]) for lines in lushi for a, b in MIDDLE]
    outer = [(lines[a], lines[b]) for lines in lushi for a, b in OUTER]
    mismatched = []
    for first, _ in middle:
        other = rng.choice(middle)
        while len(other[1]) != len(first):
            other = rng.choice(middle)
        mismatched.append((first, other[1]))
    score = [pairs.couplet(a, b) for a, b in middle]
    print(f"对仗 measure on {len(middle)} test-split middle couplets: AUC vs mismatched "
          f"{auc(score, [pairs.couplet(a, b) for a, b in mismatched]):.3f}, vs first/last couplets "
          f"{auc(score, [pairs.couplet(a, b) for a, b in outer]):.3f}; threshold {PARALLEL}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--checkpoint", default=None, help="checkpoint file or run folder (default: the shipped model)")
    parser.add_argument("--samples", type=int, default=40, help="generated poems per form")
    args = parser.parse_args()
    ck = load_for("poems", args.checkpoint)
    corpus = load_corpus("tang", args.data_dir)
    test = {form: [s.text for s in corpus.samples if s.split == "test" and s.category == form] for form in TABLE}
    parallel_quality([split_lines(t) for texts in test.values() for t in texts])
    rng = random.Random(0)
    everything: list[str] = []
    for form, real in test.items():
        chosen = rng.sample(real, min(args.samples, len(real)))
        start, written = time.perf_counter(), []
        for i, text in enumerate(chosen):
            try:
                written.append(write_poems(ck, text[:2], form=form, sampling=Sampling(seed=i))[0].text)
            except PoetgenError:  # an opening the model never saw: skipped
                continue
        everything += written
        seconds = (time.perf_counter() - start) / max(len(written), 1)
        mine, theirs = rates(written, form), rates(real, form)
        shown = " · ".join(f"{k} {mine[k]:.3f} (Tang {theirs[k]:.3f})" for k in mine)
        print(f"{form} n={len(written)} ({len(real)} real), {seconds:.2f} s/poem: {shown}")
    tang = random.Random(1).sample([t for texts in test.values() for t in texts], len(everything))
    print("formula: " + " · ".join(f"{who} {formula(texts)}" for who, texts in (("generated", everything),
                                                                             ("Tang", tang))))


if __name__ == "__main__":
    main()
