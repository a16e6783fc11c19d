"""Build ``poetgen/tables/tunes.json``: the templates of the 词牌, learned from the Song ci.

Reads the TRAINING split of the ``songci`` corpus (``poetgen.corpora``; 失调名 left out) and, for
every tune with at least ``MIN_POEMS`` (20) training poems, writes what its poems agree on. The
rules:

* **Structure.** A poem's structure is its lines (the text between ，and 。) and their lengths. A
  *variant* is one sequence of line lengths and the tone of its closing rhyme (the sure 平水韵
  tone of the last character, 平 or 仄: 柳梢青 has a 平韵体 and a 入声 one; a poem whose last
  character is of unsure tone goes with its structure's more common tone); its mark after each
  line (，or 。) is the one most of its poems put there (they agree 97–100%). Kept: the variants
  holding ≥ 10% of the tune's poems, and up to the top five with ≥ 5 poems and ≥ 2%; the most
  common one always.
* **Rhyme.** Line ends are read in the 词林正韵 (``poetgen.poems.cilin``). Two line ends *agree* in a
  poem when they share a 部; two lines of a variant rhyme together when their ends agree in ≥ 50%
  of the variant's poems where both are known, and in at least 4 (unrelated lines agree 5–15% of
  the time, rhyming ones 80–100%; the 4 keeps chance out of small variants). The lines linked
  this way, as connected groups of two or more, are the variant's *rhyme sets*: one 部 per set in
  a poem (菩萨蛮 has four, it changes rhyme every couplet).
* **Rhyme tone.** A rhyme line's tone is 平 or 仄, whichever most of its ends read surely (in the
  平水韵, which keeps 入声: a polyphonic character counts only when all its readings agree); the
  仄 lines of a rhyme set are 入 when most of their sure-仄 ends are 入声 (one 部 a set: 入声 rhymes
  only with 入声).
* **Repeats.** A variant's budget of repeated characters is its poems' mean (``check.extra_repeats``,
  rounded down), as the Tang forms' budgets are the Tang rate.
* **Fixed tones.** A position (line, character) is fixed 平 or 仄 when ≥ 80% of the variant's
  characters of sure tone there agree, with at least 5 of them; it is free ("."), otherwise.

The file holds ``min_poems``; ``tunes``: per tune its training poems and variants, each with
``lines`` (lengths), ``marks``, ``poems``, ``share``, ``rhymes`` (the sets, 0-based lines),
``rhyme_tones`` (one mark a line: 平 仄 入, "." for none), ``fixed`` (one string a line: 平 仄 or
".") and ``repeats``; ``too_few``: the other tunes with their training poems, so that asking for
one says why it has no template. ``poetgen/poems/tunes.py`` reads it.

Usage (not run in CI; it reads the corpus)::

    python tools/build_tunes.py --data-dir ../shared/corpora
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

from poetgen.corpora import OTHER, load_corpus
from poetgen.poems import cilin
from poetgen.poems.check import extra_repeats
from poetgen.poems.prosody import LEVEL, OBLIQUE, table

OUT = Path(__file__).resolve().parent.parent / "poetgen" / "tables" / "tunes.json"
MIN_POEMS = 20  # training poems a tune needs to get a template
# Variants kept: those with ≥ 10% of the tune's poems, and the top 5 with ≥ 5 poems and ≥ 2%.
MIN_SHARE, TOP, TOP_MIN, TOP_SHARE = 0.10, 5, 5, 0.02
RHYME_AGREE, RHYME_MIN = 0.5, 4  # two line ends rhyme when they share a 部 in half the poems, and in ≥ 4
FIXED, FIXED_MIN = 0.8, 5  # a position is fixed when this share of ≥ FIXED_MIN sure tones agree
LINE = re.compile(r"([^，。]+)([，。])")

Poem = list[tuple[str, str]]  # (line, the mark after it)


def lines_of(text: str) -> Poem:
    return LINE.findall(text)


def by_closing_tone(poems: list[Poem]) -> list[list[Poem]]:
    """Poems of one structure split by the sure tone of their last character (平韵体 and 仄韵体 of a
    tune); a poem whose last character is of unsure tone goes with the more common tone."""
    split: dict[str | None, list[Poem]] = defaultdict(list)
    for poem in poems:
        split[sure_tone(poem[-1][0][-1])].append(poem)
    unsure = split.pop(None, [])
    if not split:
        return [unsure]
    groups = sorted(split.values(), key=len, reverse=True)
    groups[0] += unsure
    return groups


def variants(poems: list[Poem]) -> list[list[Poem]]:
    """The kept variants' poems, the most common first."""
    groups: dict[tuple[int, ...], list[Poem]] = defaultdict(list)
    for poem in poems:
        groups[tuple(len(line) for line, _ in poem)].append(poem)
    ranked = sorted((tone for group in groups.values() for tone in by_closing_tone(group)), key=len, reverse=True)
    return [group for rank, group in enumerate(ranked)
            if rank == 0 or len(group) >= MIN_SHARE * len(poems)
            or (rank < TOP and len(group) >= max(TOP_MIN, TOP_SHARE * len(poems)))]


def rhyme_sets(poems: list[Poem]) -> list[list[int]]:
    """Lines whose ends share a 部 in most poems, as connected groups of two or more."""
    ends = [[cilin.bus(line[-1]) for line, _ in poem] for poem in poems]
    n = len(ends[0])
    linked: dict[int, set[int]] = defaultdict(set)
    for i, j in combinations(range(n), 2):
        known = [bool(e[i] & e[j]) for e in ends if e[i] and e[j]]
        if sum(known) >= max(RHYME_AGREE * len(known), RHYME_MIN):
            linked[i].add(j)
            linked[j].add(i)
    sets, seen = [], set()
    for start in sorted(linked):
        if start not in seen:
            group, todo = set(), [start]
            while todo:
                i = todo.pop()
                if i not in group:
                    group.add(i)
                    todo += linked[i]
            seen |= group
            sets.append(sorted(group))
    return sets


def sure_tone(ch: str) -> str | None:
    """平 or 仄 when every 平水韵 reading of ``ch`` agrees, else None."""
    mark = table("pingshui").tone_mark(ch)
    return mark if mark in (LEVEL, OBLIQUE) else None


def rhyme_tones(poems: list[Poem], group: list[int]) -> dict[int, str]:
    """平, 仄 or 入 of each line of a rhyme set: what most sure ends of the line are; the set's 仄
    lines are 入 together, when most of their sure-仄 ends are 入声 (a set keeps one 部)."""
    def ends(line: int) -> list[str]:
        return [poem[line][0][-1] for poem in poems]

    tones = {}
    for line in group:
        count = Counter(t for t in map(sure_tone, ends(line)) if t)
        tones[line] = LEVEL if count[LEVEL] >= count[OBLIQUE] else OBLIQUE
    oblique = [ch for line in group if tones[line] == OBLIQUE for ch in ends(line) if sure_tone(ch) == OBLIQUE]
    if sum(cilin.tone_classes(ch) == {cilin.RU} for ch in oblique) > len(oblique) / 2:
        tones = {line: cilin.RU if tone == OBLIQUE else tone for line, tone in tones.items()}
    return tones


def fixed_tones(poems: list[Poem]) -> list[str]:
    """Per line, one mark per character: 平 or 仄 where it is fixed, "." where it is free."""
    out = []
    for i, (line, _) in enumerate(poems[0]):
        marks = ""
        for pos in range(len(line)):
            tones = Counter(t for t in (sure_tone(poem[i][0][pos]) for poem in poems) if t)
            tone, count = tones.most_common(1)[0] if tones else (".", 0)
            total = sum(tones.values())
            marks += tone if total >= FIXED_MIN and count >= FIXED * total else "."
        out.append(marks)
    return out


def template(poems: list[Poem], tune_poems: int) -> dict:
    """One variant: its lines, marks, share, rhyme sets with their tones and the fixed tones."""
    marks = "".join(Counter(poem[i][1] for poem in poems).most_common(1)[0][0] for i in range(len(poems[0])))
    sets = rhyme_sets(poems)
    tones = {line: tone for group in sets for line, tone in rhyme_tones(poems, group).items()}
    repeats = sum(extra_repeats([line for line, _ in poem]) for poem in poems) // len(poems)
    return {"lines": [len(line) for line, _ in poems[0]], "marks": marks, "poems": len(poems),
            "share": round(len(poems) / tune_poems, 3), "rhymes": sets,
            "rhyme_tones": "".join(tones.get(i, ".") for i in range(len(marks))),
            "fixed": fixed_tones(poems), "repeats": repeats}


def build(data_dir: str | None) -> dict:
    by_tune: dict[str, list[Poem]] = defaultdict(list)
    for sample in load_corpus("songci", data_dir).split("train"):
        poem = lines_of(sample.text)
        if sample.category != OTHER and poem and "".join(a + b for a, b in poem) == sample.text:
            by_tune[sample.category].append(poem)
    tunes = {}
    for name, poems in sorted(by_tune.items(), key=lambda item: -len(item[1])):
        if len(poems) >= MIN_POEMS:
            tunes[name] = {"poems": len(poems), "variants": [template(v, len(poems)) for v in variants(poems)]}
    few = {name: len(poems) for name, poems in by_tune.items() if len(poems) < MIN_POEMS}
    return {"min_poems": MIN_POEMS, "tunes": tunes, "too_few": dict(sorted(few.items(), key=lambda kv: -kv[1]))}


def dump(data: dict) -> str:
    """Compact JSON with one tune a line, so that a rebuild's diff shows which tunes changed."""
    def compact(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    tunes = ",\n".join(f"{compact(name)}:{compact(tune)}" for name, tune in data["tunes"].items())
    return (f'{{"min_poems":{data["min_poems"]},\n"tunes":{{\n{tunes}}},\n'
            f'"too_few":{compact(data["too_few"])}}}\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", help="the data folder (default $POETGEN_DATA)")
    args = parser.parse_args()
    data = build(args.data_dir)
    text = dump(data)
    OUT.write_text(text, encoding="utf-8")
    print(f"{len(data['tunes'])} tunes, {len(data['too_few'])} with too few poems → {OUT} ({len(text):,} chars)")


if __name__ == "__main__":
    main()
