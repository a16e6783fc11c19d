"""The 词林正韵 (戈载, 1821): the rhyme book of the Song ci, 19 部 made of 平水韵 groups.

Each of 部 1–14 joins the 平 groups of one rhyme with their 上 and 去 groups (a ci may rhyme 平
with 上去 of its 部 where the tune allows, as 西江月 does); 部 15–19 are the 入声, which rhymes only
with 入声. The groups of each 部 are ``BU`` below, after the 词林正韵's own list; the 平水韵 readings
come from ``prosody`` (``poetgen/tables/pingshui.tsv``), so a character keeps all its readings.

Ten 平水韵 groups are split between two 部 by character — 灰 賄 隊 泰 (第三部 / 第五部), 佳 蟹 卦
(第五部 / 第十部) and 元 阮 願 (第六部 / 第七部) — and their characters are looked up in
``poetgen/tables/cilin.tsv``, which ``tools/build_cilin.py`` derives from the vowel each half kept
(灰 回 梅 → 三, 开 来 台 → 五; 佳 涯 娃 → 十, 街 鞋 → 五; 魂 门 → 六, 元 言 → 七). Torch-free.
"""

from __future__ import annotations

import functools

from poetgen.paths import PACKAGE
from poetgen.poems.prosody import table

CILIN_TSV = PACKAGE / "tables" / "cilin.tsv"

# Tone classes of the 词林正韵: a 部 of 1–14 has 平 and 上去 readings, one of 15–19 入 ones.
PING, SHANGQU, RU = "平", "上去", "入"

NUMERALS = "一二三四五六七八九十"

# The 平水韵 groups of each 部, by rhyme name (the last character of the group's name: 上平聲一東 → 東);
# the split groups are listed in both of their 部.
BU: dict[int, str] = {
    1: "東冬董腫送宋",
    2: "江陽講養絳漾",
    3: "支微齊灰紙尾薺賄寘未霽泰隊",
    4: "魚虞語麌御遇",
    5: "佳灰蟹賄泰卦隊",
    6: "真文元軫吻阮震問願",
    7: "元寒刪先阮旱潸銑願翰諫霰",
    8: "蕭肴豪篠巧皓嘯效號",
    9: "歌哿箇",
    10: "佳麻蟹馬卦禡",
    11: "庚青蒸梗迥敬徑",
    12: "尤有宥",
    13: "侵寢沁",
    14: "覃鹽咸感琰豏勘豔陷",
    15: "屋沃",
    16: "覺藥",
    17: "質陌錫職緝",
    18: "物月曷黠屑葉",
    19: "合洽",
}
SPLIT_GROUPS = "灰賄隊泰佳蟹卦元阮願"
_WHOLE = {rhyme: bu for bu, rhymes in BU.items() for rhyme in rhymes if rhyme not in SPLIT_GROUPS}


def bu_name(bu: int) -> str:
    """第一部 … 第十九部."""
    tens, ones = divmod(bu, 10)
    return "第" + ("十" if tens else "") + (NUMERALS[ones - 1] if ones else "") + "部"


def tone_class(group: str) -> str:
    """平, 上去 or 入 of a 平水韵 group name (上平聲一東, 去聲一送, 入聲一屋)."""
    if "平" in group[:3]:
        return PING
    return RU if group.startswith("入") else SHANGQU


@functools.cache
def _split() -> dict[tuple[str, str], tuple[int, ...]]:
    """(char, 平水韵 group) → its 部 (one, or two when undecided), for the split groups."""
    out = {}
    for line in CILIN_TSV.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            ch, group, bus = line.split("\t")
            out[ch, group] = tuple(int(b) for b in bus.split(","))
    return out


@functools.cache
def readings(ch: str) -> frozenset[tuple[str, int]]:
    """Every (tone class, 部) reading of ``ch``: empty when the 平水韵 table does not know it."""
    out = set()
    for group in table("pingshui").groups(ch):
        bus = _split().get((ch, group)) or (_WHOLE[group[-1]],)
        out.update((tone_class(group), bu) for bu in bus)
    return frozenset(out)


def bus(ch: str, tone: str | None = None) -> set[int]:
    """The 部 of ``ch`` (in tone class ``tone`` only, when given)."""
    return {bu for t, bu in readings(ch) if tone is None or t == tone}


@functools.cache
def _members() -> dict[tuple[int, str], frozenset[str]]:
    out: dict[tuple[int, str], set[str]] = {}
    rhymes = table("pingshui")
    for group in rhymes.group_names():
        for ch in rhymes.members(group):
            for tone, bu in readings(ch):
                out.setdefault((bu, tone), set()).add(ch)
    return {key: frozenset(chars) for key, chars in out.items()}


def members(bu: int, tone: str) -> frozenset[str]:
    """The characters (both scripts) with a reading in ``bu`` and tone class ``tone`` (平, 上去, 入):
    what a writer may end a rhyme line on. Empty for a 部 that has no such tone (入 of 第一部)."""
    return _members().get((bu, tone), frozenset())


def bus_wide(ch: str, tone: str | None = None) -> set[int]:
    """``bus``, with a character of a split group in both halves' 部: the Song poets often rhymed the
    平水韵 group whole (晏殊's 浣溪沙 rhymes 杯 台 回 来 徊, of 第三部 and 第五部), so the checker
    accepts that; a writer should keep to ``bus``."""
    out = bus(ch, tone)
    for group in table("pingshui").groups(ch):
        if group[-1] in SPLIT_GROUPS and (tone is None or tone_class(group) == tone):
            out |= {bu for bu, rhymes in BU.items() if group[-1] in rhymes}
    return out


def tone_classes(ch: str) -> set[str]:
    """Subset of {平, 上去, 入}: the tone classes ``ch`` is read in."""
    return {t for t, _ in readings(ch)}
