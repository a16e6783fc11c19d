"""Build ``poetgen/tables/rhyme-use.tsv``: in which 平水韵 groups Tang poets rhymed the characters
that have a level (平) reading in two groups or more.

The table lists 行 under 阳 and 庚, 平 under 庚 and 先, 才 under 灰 and 咸. A reader hears a
character's common reading: 平 closing a 先 rhyme, or 才 closing a 咸 one, is off the rhyme to the
ear although the table allows it. So the writer rhymes such a character only in the groups where
the Tang poets did (``poems/masks.py``, at least ``MIN_SHARE`` of its uses; ``rhyme_level``).

Counted over the Tang training split, regulated forms: each poem whose rhyme group the checker
finds (``check_poem``) counts one use of (character, group) for every even line ending on such a
character, and for line 1 when it ends on one. Characters with no use are left out (the writer
does not rhyme on them). Both scripts are written, as in ``pingshui.tsv``. Usage (not run in CI)::

    python tools/build_rhyme_use.py --data-dir ../shared/corpora
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from poetgen.corpora import load_corpus, to_script
from poetgen.poems.check import check_poem
from poetgen.poems.forms import TABLE
from poetgen.poems.prosody import table

OUT = Path(__file__).resolve().parent.parent / "poetgen" / "tables" / "rhyme-use.tsv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    rhymes = table("pingshui")
    uses: Counter[tuple[str, str]] = Counter()
    poems = [s.text for s in load_corpus("tang", args.data_dir).samples if s.split == "train" and s.category in TABLE]
    for text in poems:
        check = check_poem(text)
        group = check.rhyme_group
        if group is None:
            continue
        lines = check.lines
        for i in [0, *range(1, len(lines), 2)]:
            ch = lines[i][-1] if lines[i] else ""
            if len(rhymes.level_groups(ch)) >= 2 and group in rhymes.level_groups(ch):
                uses[ch, group] += 1
    rows = set()
    for (ch, group), n in uses.items():
        for variant in {ch, to_script(ch, "traditional")}:
            if group in rhymes.level_groups(variant):
                rows.add(f"{variant}\t{group}\t{n}")
    header = ("# Where Tang poets rhymed the characters read 平 in two 平水韵 groups or more\n"
              "# (built by tools/build_rhyme_use.py): uses in the regulated poems of the Tang training split\n"
              f"# ({len(poems)} poems).\n"
              "# Columns: char, 平水韵 group, uses.\n")
    OUT.write_text(header + "\n".join(sorted(rows)) + "\n", encoding="utf-8")
    print(f"{len(rows)} rows → {OUT}")


if __name__ == "__main__":
    main()
