"""Write benchmarks/data/surnames-oos.tsv: real surnames of each language that the names corpus
does not hold, for an out-of-sample check of the classifier.

The candidates are common surnames of each language written down by hand (the project's own
list, from general knowledge of each country's frequent surnames; Slavic feminine forms, Irish-
language forms and accented / unaccented spellings included, since real surnames take them and
the corpus mostly lacks them). A candidate is kept only when no corpus file holds it (case-
insensitive, NFC) and no other language of the list claims it. Usage:

    python tools/build_oos_surnames.py benchmarks/data/surnames-candidates.txt ../shared/corpora/names \
        > benchmarks/data/surnames-oos.tsv

The candidates file holds one line per language, ``language<TAB>space-separated names`` (``#``
lines are comments; Irish ``Ó``/``Ní``/``Mac`` prefixes stay attached to the next word).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

PER_LANGUAGE = 12  # names kept per language (fewer where fewer candidates are new)
WORD = re.compile(r"(?:(?:Ó|Ní|Nic|Mac) )?\S+")


def key(name: str) -> str:
    return unicodedata.normalize("NFC", name).lower()


def main(candidates: str, names_dir: str) -> None:
    table = dict(line.split("\t", 1) for line in Path(candidates).read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#"))
    known = {key(line) for f in Path(names_dir).glob("*.txt")
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}
    claims: dict[str, set[str]] = {}
    for language, text in table.items():
        for name in WORD.findall(text):
            claims.setdefault(key(name), set()).add(language)
    print("name\tlanguage")
    for language, text in table.items():
        kept = [n for n in dict.fromkeys(WORD.findall(text)) if key(n) not in known and len(claims[key(n)]) == 1]
        for name in kept[:PER_LANGUAGE]:
            print(f"{unicodedata.normalize('NFC', name)}\t{language}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
