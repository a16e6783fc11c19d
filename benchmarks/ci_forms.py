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

With ``--generate N`` the ci model (``--checkpoint``, default the shipped ``songci.safetensors``)
writes N ci of every such tune at the library's defaults (variant 1; seeds 0..N-1; the prefix is the
first two characters of one of the tune's held-out ci when it has one, else none) and the same
measures are printed for them beside the real ones, with the share of their lines copied verbatim
from the training ci, the seconds per ci, and the model's held-out perplexity on the split.
"""

from __future__ import annotations

import argparse
import time
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
    parser.add_argument("--generate", type=int, default=0, help="ci the model writes per tune (0: real ci only)")
    parser.add_argument("--checkpoint", default=None, help="ci checkpoint or run folder (default: the shipped one)")
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
    if args.generate:
        tunes = sorted((t for t, n in counts.items() if n >= args.min_poems), key=lambda t: -counts[t])
        _generated(args, corpus, tunes)


def _generated(args: argparse.Namespace, corpus, tunes: list[str]) -> None:
    from poetgen.checkpoint import load_for
    from poetgen.errors import PoetgenError
    from poetgen.poems.evaluate import heldout_perplexity
    from poetgen.poems.write import write_poems
    from poetgen.sample import Sampling

    ck = load_for("ci", args.checkpoint)
    held_out = corpus.split(args.split)
    print(f"ci model {ck.path.name}: held-out perplexity {heldout_perplexity(ck, held_out):.1f} per token "
          f"({args.split} split, {len(held_out)} ci)")
    openings = {s.category: s.text[:2] for s in held_out}
    checks: dict[str, list[dict]] = defaultdict(list)
    lines = copied = 0
    start = time.perf_counter()
    for tune in tunes:
        for seed in range(args.generate):
            try:
                poem = write_poems(ck, openings.get(tune, ""), form=tune, sampling=Sampling(seed=seed))[0]
            except PoetgenError as error:  # a tune without a template (too few training ci)
                print(f"{tune}: {error}")
                break
            checks[tune].append(poem.check)
            lines += len(poem.lines)
            copied += sum(ck.has_seen(line) for line in poem.lines)
    seconds = (time.perf_counter() - start) / max(sum(len(c) for c in checks.values()), 1)
    print(f"generated, {args.generate} per tune: {seconds:.2f} s per ci; lines copied from the training ci "
          f"{copied}/{lines} ({copied / max(lines, 1):.1%})")
    print(f"{'tune':<8}{'ci':>5}{'structure':>11}{'punct':>8}{'rhyme':>8}{'fixed':>8}")
    for name, found in [*checks.items(), ("all", [c for cs in checks.values() for c in cs])]:
        n, structure, punct, rhyme, fixed = _rates(found)
        print(f"{name:<8}{n:>5}{structure:>11.2f}{punct:>8.2f}{rhyme:>8.2f}{fixed:>8.2f}")


if __name__ == "__main__":
    main()
