"""A blind reading of generated poems against Tang poems: build the sets a reader sees, then score
what the reader answered against the key the reader never saw.

How to run (from the repository root, with the corpora at ../shared/corpora)::

    python benchmarks/blind_reading.py make --data-dir ../shared/corpora --out /tmp/blind --per-form 6
    # give /tmp/blind/paired.txt (or split-1.txt and split-2.txt, one reader each) to a reader with
    # the questions in /tmp/blind/questions.txt; keep /tmp/blind/key.json away from the reader
    python benchmarks/blind_reading.py score /tmp/blind/key.json paired /tmp/blind/answers-paired.txt

``make`` takes ``--per-form`` test-split Tang poems of each regulated form at random (``--seed``)
and writes one poem per real one at the library's defaults, opening with its first two characters
(seed = ``--seed`` + its index; ``--candidates`` and ``--temperature`` override the defaults, to
compare settings on the same openings). With ``--tunes 浣溪沙,鹧鸪天,…`` it takes test-split Song ci of
those tunes instead and the ci model writes each as a ci of the real one's tune. Two protocols:

* paired: all real and generated poems in one shuffled list. Poems sharing an opening come in
  pairs, so a reader can compare within a pair: recognition near 100% says little there.
* split: two lists, each holding, for every opening, either the real poem or the generated one
  (never both), half of each; one reader per list.

``score`` reads lines ``id | fluency | coherence | meaning | duizhang34 | duizhang56 | verdict |
confidence | note`` and prints, for real and generated poems apart, the mean scores, how many were
recognised and the reader's 对仗 verdicts on the 律诗 middle couplets.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

QUESTIONS = """You are a careful reader of classical Chinese verse (近体诗, or 词 to a tune). Below are short
poems, numbered. Some are genuine Tang poems, some were written by a computer program; the mix is
unknown to you and need not be half and half. Do not use any tools: judge from the texts alone.
For each poem give fluency, coherence and meaning (1-5), for 8-line poems the 颔联 and 颈联 each
"full", "partial" or "none" (parallel position by position), "-" for 4-line poems, a verdict
("human" or "machine") with a confidence 0.5-1.0, and a short note, one line per poem:
id | fluency | coherence | meaning | duizhang34 | duizhang56 | verdict | confidence | note
"""


def make(args: argparse.Namespace) -> None:
    from poetgen.checkpoint import load_for
    from poetgen.corpora import load_corpus
    from poetgen.defaults import POEM_CANDIDATES
    from poetgen.errors import PoetgenError
    from poetgen.poems.forms import TABLE
    from poetgen.poems.write import write_poems
    from poetgen.sample import Sampling

    tunes = [t for t in (args.tunes or "").split(",") if t]
    ck = load_for("ci" if tunes else "poems", args.checkpoint)
    corpus = load_corpus("songci" if tunes else "tang", args.data_dir)
    rng = random.Random(args.seed)
    pairs = []
    for form in tunes or TABLE:
        real = [s.text for s in corpus.samples if s.split == "test" and s.category == form]
        kept = 0
        for i, text in enumerate(rng.sample(real, min(len(real), 2 * args.per_form))):
            if kept == args.per_form:
                break
            try:
                poem = write_poems(ck, text[:2], form=form, candidates=args.candidates or POEM_CANDIDATES,
                                   sampling=Sampling(seed=args.seed + i, temperature=args.temperature))[0]
            except PoetgenError:  # an opening the model never saw
                continue
            pairs.append({"form": form, "tang": text, "gen": poem.text})
            kept += 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key: dict[str, dict[str, str]] = {}
    paired = [(who, p[who]) for p in pairs for who in ("tang", "gen")]
    key["paired"] = _write_list(out / "paired.txt", paired, rng)
    halves: list[list[tuple[str, str]]] = [[], []]
    for i, p in enumerate(pairs):
        first = "gen" if i % 2 == 0 else "tang"
        second = "tang" if first == "gen" else "gen"
        halves[0].append((first, p[first]))
        halves[1].append((second, p[second]))
    for n, half in enumerate(halves, 1):
        key[f"split-{n}"] = _write_list(out / f"split-{n}.txt", half, rng)
    (out / "key.json").write_text(json.dumps({"key": key, "pairs": pairs}, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    questions = QUESTIONS.replace("genuine Tang poems", "genuine Song ci") if tunes else QUESTIONS
    (out / "questions.txt").write_text(questions, encoding="utf-8")
    print(f"{len(pairs)} openings; lists and key in {out}")


def _write_list(path: Path, items: list[tuple[str, str]], rng: random.Random) -> dict[str, str]:
    """Shuffle ``items`` (who wrote it, text) into a numbered list; returns the key (number → who)."""
    items = list(items)
    rng.shuffle(items)
    path.write_text("".join(f"{i}. {text}\n" for i, (_, text) in enumerate(items, 1)), encoding="utf-8")
    return {str(i): who for i, (who, _) in enumerate(items, 1)}


def score(args: argparse.Namespace) -> None:
    key = json.loads(Path(args.key).read_text(encoding="utf-8"))["key"][args.list]
    rows: dict[str, list[tuple[list[float], list[str], str]]] = {"tang": [], "gen": []}
    for line in Path(args.answers).read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.split("|")]
        verdicts = [i for i, p in enumerate(parts) if p in ("human", "machine")]
        if len(parts) < 6 or parts[0] not in key or not verdicts:
            continue
        # readers sometimes write one "-" for a quatrain's two 对仗 columns: the verdict anchors the rest
        verdict = verdicts[0]
        rows[key[parts[0]]].append(([float(p) for p in parts[1:4]], parts[4:verdict], parts[verdict]))
    for who, answers in rows.items():
        if not answers:
            continue
        mean = {name: statistics.mean(a[0][i] for a in answers) for i, name in
                enumerate(("fluency", "coherence", "meaning"))}
        recognised = sum((a[2] == "machine") == (who == "gen") for a in answers)
        couplets = [c for a in answers for c in a[1] if c in ("full", "partial", "none")]
        print(f"{who}: n={len(answers)} " + " ".join(f"{k} {v:.2f}" for k, v in mean.items())
              + f" recognised {recognised}/{len(answers)} 对仗 full {couplets.count('full')}/{len(couplets)}"
              f" partial {couplets.count('partial')} none {couplets.count('none')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="write the lists a reader sees and the key")
    m.add_argument("--data-dir", default=None)
    m.add_argument("--checkpoint", default=None, help="checkpoint file or run folder (default: the shipped model)")
    m.add_argument("--out", required=True)
    m.add_argument("--per-form", type=int, default=6)
    m.add_argument("--seed", type=int, default=200)
    m.add_argument("--candidates", type=int, default=None, help="lines drawn per line (default: the library's)")
    m.add_argument("--temperature", type=float, default=None, help="(default: the library's)")
    m.add_argument("--tunes", default=None, help="comma-separated 词 tunes: Song ci and the ci model instead")
    m.set_defaults(run=make)
    s = sub.add_parser("score", help="score a reader's answers against the key")
    s.add_argument("key")
    s.add_argument("list", help="paired, split-1 or split-2")
    s.add_argument("answers")
    s.set_defaults(run=score)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
