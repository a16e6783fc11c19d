"""Build ``poetgen/tables/stock-phrases.json``: the phrases each shipped poem model over-uses
(``poetgen/poems/stock.py`` says what the table is for and how the sampler reads it).

For the Tang model (``--kind poems``): ``--per-form`` validation-split Tang poems of each regulated
form (seed 0) give their first two characters as the prefix of one poem each, written at the
library's defaults with the stock rule off; for the Song ci model (``--kind ci``): ``--per-tune``
validation-split ci of each tune with a template, written to the tune. In each line, every
phrase of 3 and 4 characters is counted once per poem, and so in the training poems of the same
corpus. A phrase in at least ``stock.MIN_POEMS`` of the written poems whose share of poems is at
least ``stock.MIN_RATIO`` times its share among the training poems (count + 0.5) is kept with that
ratio. The entry replaces the model's earlier one. Usage (not run in CI; minutes per model)::

    python tools/build_stock_phrases.py --data-dir ../shared/corpora --kind poems
    python tools/build_stock_phrases.py --data-dir ../shared/corpora --kind ci
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter

from poetgen.checkpoint import Checkpoint, load_for
from poetgen.corpora import load_corpus
from poetgen.errors import PoetgenError
from poetgen.poems import stock, tunes
from poetgen.poems.forms import TABLE
from poetgen.poems.write import write_poems
from poetgen.sample import Sampling
from poetgen.verse import segments

LENGTHS = (3, 4)


def phrases(text: str) -> set[str]:
    return {line[i : i + n] for line, _ in segments(text) for n in LENGTHS for i in range(len(line) - n + 1)}


def written(ck: Checkpoint, kind: str, corpus_samples: list, per: int) -> list[str]:
    groups = sorted(tunes.tunes()) if kind == "ci" else list(TABLE)
    rng = random.Random(0)
    out = []
    for group in groups:
        pool = [s.text for s in corpus_samples if s.split == "val" and s.category == group]
        for i, text in enumerate(rng.sample(pool, min(per, len(pool)))):
            try:
                out.append(write_poems(ck, text[:2], form=group, sampling=Sampling(seed=i), stock=False)[0].text)
            except PoetgenError:  # an opening the model never saw
                continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--kind", choices=("poems", "ci"), required=True)
    parser.add_argument("--per-form", type=int, default=100, help="poems per regulated form (--kind poems)")
    parser.add_argument("--per-tune", type=int, default=3, help="ci per tune (--kind ci)")
    args = parser.parse_args()
    corpus = load_corpus("songci" if args.kind == "ci" else "tang", args.data_dir)
    groups = set(tunes.tunes()) if args.kind == "ci" else set(TABLE)
    train = [s.text for s in corpus.samples if s.split == "train" and s.category in groups]
    ck = load_for(args.kind, None)
    mine = written(ck, args.kind, corpus.samples, args.per_tune if args.kind == "ci" else args.per_form)
    ours: Counter[str] = Counter(p for text in mine for p in phrases(text))
    theirs: Counter[str] = Counter(p for text in train for p in phrases(text) if p in ours)
    kept = {}
    for phrase, n in ours.items():
        ratio = (n / len(mine)) / ((theirs[phrase] + 0.5) / len(train))
        if n >= stock.MIN_POEMS and ratio >= stock.MIN_RATIO:
            kept[phrase] = {"poems": n, "training_poems": theirs[phrase], "ratio": round(ratio, 1)}
    table = json.loads(stock.TABLE_PATH.read_text(encoding="utf-8")) if stock.TABLE_PATH.exists() else {}
    table = {key: entry for key, entry in table.items() if entry.get("checkpoint") != ck.path.name}
    table[stock.model_key(ck)] = {"checkpoint": ck.path.name, "poems": len(mine), "training_poems": len(train),
                                  "phrases": dict(sorted(kept.items(), key=lambda kv: -kv[1]["ratio"]))}
    stock.TABLE_PATH.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{ck.path.name}: {len(kept)} stock phrases from {len(mine)} poems → {stock.TABLE_PATH}")


if __name__ == "__main__":
    main()
