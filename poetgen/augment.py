"""Spelling variants a language's surnames really have, to widen a classifier's training names.

The corpus writes most surnames one way; people write them in others. Each rule below turns a
training name into a form the same language uses:

* Slavic feminine forms: Russian -ov/-ev/-in → -ova/-eva/-ina, -sky/-skiy → -skaya; Polish
  -ski/-cki/-dzki → -ska/-cka/-dzka; Czech -ý → -á and a consonant ending → -ová (Novák → Nováková).
* Diacritics dropped (Dvořák → Dvorak, Müller → Muller) and German umlauts spelt out
  (Müller → Mueller, Groß → Gross), as names are typed on keyboards, passports and in English text.

Variants go to the training split only, and never one that is a name of the validation or test
split (whatever its language), so the held-out figures stay leak-free. A language gains at most
``MAX_SHARE`` of its own training names (an even spread over its names, by a fixed hash): Russian
alone has 7,474, and doubling it with feminine forms pulled other languages' names towards Russian
(benchmarks/names.py).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable

from poetgen.corpora import Sample

GERMAN_SPELLING = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
RUSSIAN_FEMININE = (("skiy", "skaya"), ("sky", "skaya"), ("ov", "ova"), ("ev", "eva"), ("in", "ina"))
POLISH_FEMININE = (("dzki", "dzka"), ("cki", "cka"), ("ski", "ska"))
CZECH_VOWELS = set("aeiouyáéíóúůýě")
MAX_SHARE = 0.25  # variants added per language, as a share of its training names


def ascii_folded(name: str) -> str:
    """The name without diacritics (ł → l and ø → o too, which Unicode does not decompose)."""
    name = name.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("Ø", "O").replace("ß", "ss")
    return "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))


def feminine(name: str, language: str) -> str | None:
    """The feminine form of a Russian, Polish or Czech surname, if it has one."""
    if language == "Russian":
        return next((name[: -len(a)] + b for a, b in RUSSIAN_FEMININE if name.endswith(a)), None)
    if language == "Polish":
        return next((name[: -len(a)] + b for a, b in POLISH_FEMININE if name.endswith(a)), None)
    if language == "Czech":
        if name.endswith("ý"):
            return name[:-1] + "á"
        if name[-1:].isalpha() and name[-1].lower() not in CZECH_VOWELS:
            return name + "ová"
    return None


def variants(name: str, language: str) -> list[str]:
    """Other spellings of ``name`` in ``language`` (not ``name`` itself), in a fixed order."""
    out = []
    female = feminine(name, language)
    if female:
        out += [female, ascii_folded(female)]
    if language == "German":
        out.append("".join(GERMAN_SPELLING.get(ch, ch) for ch in name))
    out.append(ascii_folded(name))
    return [v for v in dict.fromkeys(out) if v and v != name]


def augmented(train: list[Sample], held_out: Iterable[str]) -> list[Sample]:
    """``train`` followed by variants of its names that are neither training names of that language
    already nor names of the held-out splits, at most ``MAX_SHARE`` of each language's names."""
    blocked = set(held_out)
    have = {(s.text, s.category) for s in train}
    room = {language: int(MAX_SHARE * n) for language, n in Counter(s.category for s in train).items()}
    extra: dict[tuple[str, str], None] = {}
    for s in sorted(train, key=lambda s: _spread(s.text)):
        for v in variants(s.text, s.category):
            if room[s.category] > 0 and v not in blocked and (v, s.category) not in have | extra.keys():
                extra[v, s.category] = None
                room[s.category] -= 1
    return [*train, *(Sample(text, category, "train") for text, category in extra)]


def _spread(text: str) -> bytes:
    """A fixed pseudo-random order of names (not the alphabet's), so that a capped language's
    variants come from all over its list."""
    return hashlib.blake2b(text.encode(), digest_size=8).digest()
