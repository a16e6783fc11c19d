"""The 词牌 (ci tunes) as forms: the templates ``tools/build_tunes.py`` learned from the training
split of the Song ci (``poetgen/tables/tunes.json``; its docstring has the rules). A tune has one or
more variants (又一体), each a ``Form`` whose ``tune`` fields say its lines, marks, rhyme sets and
fixed tones; the writer and the checker read them. Tunes with fewer training poems than the
table's threshold (20) have no template and are refused, saying so. Torch-free."""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass

from poetgen.errors import PoetgenError, bad_value
from poetgen.paths import PACKAGE
from poetgen.poems.cilin import RU
from poetgen.poems.forms import Form
from poetgen.poems.prosody import OBLIQUE

TUNES_JSON = PACKAGE / "tables" / "tunes.json"
FUZZY = 0.8  # how alike (difflib ratio of line lengths) a text must be to a variant to be read as it


@dataclass(frozen=True)
class Tune:
    name: str
    poems: int  # training poems
    variants: tuple[Form, ...]  # the most common first

    def closest(self, widths: tuple[int, ...], marks: str = "", closing: str = "") -> Form:
        """The variant a text of lines ``widths`` ending in ``marks`` and closing on a character of
        tone ``closing`` (平, 仄 or "" unsure) is: the one of those lengths (and closing tone, and
        marks), else the most alike, the most poems first."""
        return max(self.variants, key=lambda f: (f.widths == widths, closes(f, closing), marks_fit(f.marks, marks),
                                                 _alike(f, widths), f.poems))

    def variant(self, number: int) -> Form:
        """Variant ``number`` (1 the most common); a bad number is a one-line error."""
        if not 1 <= number <= len(self.variants):
            raise bad_value("variant", f"of {self.name} must be between 1 and {len(self.variants)}, got {number}")
        return self.variants[number - 1]


def _form(name: str, number: int, entry: dict) -> Form:
    return Form(name, tuple(entry["lines"]), rhyme=(), first_line=False, repeats=entry["repeats"], tune=name,
                variant=number, poems=entry["poems"], share=entry["share"], marks=entry["marks"],
                rhyme_sets=tuple(tuple(s) for s in entry["rhymes"]), rhyme_tones=entry["rhyme_tones"],
                fixed=tuple(entry["fixed"]))


@functools.cache
def _table() -> tuple[dict[str, Tune], dict[str, int], int]:
    """(tunes, poem counts of the tunes with too few poems, the threshold)."""
    data = json.loads(TUNES_JSON.read_text(encoding="utf-8"))
    tunes = {name: Tune(name, entry["poems"], tuple(_form(name, i, v) for i, v in enumerate(entry["variants"], 1)))
             for name, entry in data["tunes"].items()}
    return tunes, data["too_few"], data["min_poems"]


def tunes() -> dict[str, Tune]:
    """Every tune with a template, the most poems first."""
    return _table()[0]


def _known(name: str) -> str | None:
    """``name`` as the table spells it (the corpus is simplified: 鷓鴣天 is 鹧鸪天), None if no tune of
    the Song ci (with a template or not) is called so."""
    tunes, few, _ = _table()
    if name not in tunes and name not in few:
        from poetgen.corpora import to_script

        name = to_script(name, "simplified")
    return name if name in tunes or name in few else None


def is_tune(name: str) -> bool:
    """Does ``name`` name a tune the Song ci know (with a template or not), in either script?"""
    return _known(name) is not None


def nearest(name: str, n: int = 5) -> list[str]:
    """The tunes with templates whose names are most like ``name`` (an unknown or mistyped one)."""
    names = list(tunes())
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.3)
    # A shared character is a better hint than none: 水调 → 水调歌头, 水龙吟.
    return close or [t for t in names if set(t) & set(name)][:n]


def tune(name: str) -> Tune:
    """The tune called ``name`` (in either script: 鷓鴣天 is 鹧鸪天); a tune with too few poems, or an
    unknown one, is a one-line error."""
    table, few, threshold = _table()
    name = _known(name) or name
    if name in table:
        return table[name]
    if name in few:
        raise PoetgenError(f"tune {name} has too few poems to learn a template from: {few[name]} in the training "
                           f"ci, {threshold} needed")
    hint = nearest(name)
    raise PoetgenError(f"unknown tune '{name}'" + (f"; nearest: {', '.join(hint)}" if hint else "")
                       + " (write --form list lists the tunes)")


def form(name: str, variant: int = 1) -> Form:
    """Variant ``variant`` of tune ``name`` as a Form."""
    return tune(name).variant(variant)


def listing() -> list[dict]:
    """Each tune: its poems, and each variant's lines and characters (for ``write --form list``)."""
    return [{"tune": t.name, "poems": t.poems,
             "variants": [{"variant": f.variant, "share": f.share, "lines": f.lines, "chars": sum(f.widths)}
                          for f in t.variants]}
            for t in tunes().values()]


def marks_fit(want: str, marks: str) -> bool:
    """Do a text's line marks fit a variant's? "?" in ``marks`` (a ？ or ！, or no mark) fits either."""
    return len(want) == len(marks) and all(m in (w, "?") for w, m in zip(want, marks, strict=True))


def closes(form: Form, tone: str) -> bool:
    """Does ``form`` close on a rhyme of ``tone`` (平 or 仄, 入 being 仄)? False for an unsure ""."""
    last = form.rhyme_tones[-1:]
    return bool(tone) and (last == tone or (tone == OBLIQUE and last == RU))


def _alike(form: Form, widths: tuple[int, ...]) -> float:
    return difflib.SequenceMatcher(None, form.widths, widths, autojunk=False).ratio()


def match(widths: tuple[int, ...], marks: str, closing: str = "") -> Form | None:
    """The variant of any tune a text of lines ``widths`` ending in ``marks`` and closing on tone
    ``closing`` is, else None: one of those lengths (and, among those, closing tone and marks), the
    most poems first; for lines of one length (as shi have) its marks too (浣溪沙 is six lines of
    seven, 。。。，。。); else, for lines of several lengths, the most alike by ``FUZZY``."""
    forms = [f for t in tunes().values() for f in t.variants]
    uniform = len(set(widths)) < 2
    exact = [f for f in forms if f.widths == widths and (marks_fit(f.marks, marks) or not uniform)]
    if exact:
        return max(exact, key=lambda f: (closes(f, closing), marks_fit(f.marks, marks), f.poems))
    if uniform:
        return None
    # The bound from the line counts alone leaves out every variant far from the text at once.
    near = [f for f in forms if difflib.SequenceMatcher(None, f.widths, widths).real_quick_ratio() >= FUZZY]
    best = max(near, key=lambda f: (_alike(f, widths), closes(f, closing), f.poems), default=None)
    return best if best is not None and _alike(best, widths) >= FUZZY else None
