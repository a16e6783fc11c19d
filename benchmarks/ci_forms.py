"""How often real Song ci keep their tune's template: the rates a generated ci has to reach.

How to run (from the repository root, with the corpora at ../shared/corpora)::

    python benchmarks/ci_forms.py --data-dir ../shared/corpora

Every ci of the held-out ``--split`` (test by default; the templates are learned from the training
split, ``tools/build_tunes.py``) whose tune has at least ``--min-poems`` (50) ci in the whole corpus
is checked as its tune (``check_poem(text, tune=...)``, the checker ``poetgen check --form TUNE``
runs). Per tune:

* structure: share of its ci whose line lengths are an attested variant's (the "form" rule);
* punctuation: share whose marks after each line are the variant's;
* rhyme: share of the rhyme lines, over all its ci, that rhyme with their set in the tone the
  variant wants (lines whose end the tables do not know are not counted);
* fixed tones: share of the positions the variant fixes to 平 or 仄 that hold (characters of sure
  tone only).

The last row pools every ci counted. The held-out splits are small (2% each): a tune with few ci
there has a rate of few poems; ``--split val`` gives a second sample.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from poetgen.corpora import OTHER, load_corpus
from poetgen.poems.check import check_poem


def _rates(checks: list[dict]) -> tuple[int, float, float, float, float]:
    """(ci, structure, punctuation, rhyme, fixed tones) of one tune's checks."""
    rhymes = [r["ok"] for c in checks for r in c["ci"]["rhymes"] if r["ok"] is not None]
    fixed = [f["ok"] for c in checks for f in c["ci"]["fixed"] if f["ok"] is not None]
    def share(values: list[bool]) -> float:
        return sum(values) / len(values) if values else float("nan")

    rules = [c["rules"] for c in checks]
    return (len(checks), share([r["form"] for r in rules]), share([r["punctuation"] for r in rules]),
            share(rhymes), share(fixed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", help="the data folder (default $POETGEN_DATA)")
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--min-poems", type=int, default=50, help="tunes with at least this many ci in the corpus")
    args = parser.parse_args()
    corpus = load_corpus("songci", args.data_dir)
    counts = Counter(s.category for s in corpus.samples if s.category != OTHER)
    checks: dict[str, list[dict]] = defaultdict(list)
    for sample in corpus.split(args.split):
        if counts.get(sample.category, 0) >= args.min_poems:
            checks[sample.category].append(check_poem(sample.text, tune=sample.category).to_dict())
    print(f"{args.split} split, tunes with ≥ {args.min_poems} ci: {len(checks)} of "
          f"{sum(n >= args.min_poems for n in counts.values())} have ci there")
    print(f"{'tune':<8}{'ci':>5}{'structure':>11}{'punct':>8}{'rhyme':>8}{'fixed':>8}")
    rows = sorted(checks.items(), key=lambda kv: -counts[kv[0]])
    for name, found in [*rows, ("all", [c for _, cs in rows for c in cs])]:
        n, structure, punct, rhyme, fixed = _rates(found)
        print(f"{name:<8}{n:>5}{structure:>11.2f}{punct:>8.2f}{rhyme:>8.2f}{fixed:>8.2f}")


if __name__ == "__main__":
    main()
