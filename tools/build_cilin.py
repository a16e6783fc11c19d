"""Build ``poetgen/tables/cilin.tsv``: the 词林正韵 部 of every character of the 平水韵 groups that
the 词林正韵 splits between two 部 (``poetgen/poems/cilin.py`` says which groups those are and maps
every other group whole).

The split follows the vowel each half kept, read from the character's modern Mandarin final
(``pypinyin``, its most common reading):

* 灰 賄 隊 泰 — finals ai, uai go to 第五部; ei, uei to 第三部 (开 来 台 → 五, 灰 回 梅 → 三);
* 佳 蟹 卦 — finals a, ia, ua go to 第十部 (with 麻); the rest, ai uai ie …, to 第五部
  (佳 涯 娃 卦 话 → 十, 街 鞋 怪 → 五);
* 元 阮 願 — finals an, ian, uan, van go to 第七部 (with 寒 刪 先); en, in, uen, vn to 第六部 (with
  真 文): 元 言 园 → 七, 魂 门 村 → 六.

A character whose final fits neither half is written with both 部 (the checker then accepts either).
The table lists both scripts, as ``pingshui.tsv`` does. Usage (not run in CI)::

    python tools/build_cilin.py
"""

from __future__ import annotations

from pathlib import Path

from pypinyin import Style, pinyin

from poetgen.poems.cilin import SPLIT_GROUPS
from poetgen.poems.prosody import table

OUT = Path(__file__).resolve().parent.parent / "poetgen" / "tables" / "cilin.tsv"
# Each split group: the first 部 and the finals that send a character there, then the second 部 and
# its finals (None: every other final, as 第五部 takes what the 第十部 half of 佳 蟹 卦 does not).
HALVES: dict[str, tuple[int, frozenset[str], int, frozenset[str] | None]] = {
    **dict.fromkeys("灰賄隊泰", (5, frozenset({"ai", "uai"}), 3, frozenset({"ei", "uei"}))),
    **dict.fromkeys("佳蟹卦", (10, frozenset({"a", "ia", "ua"}), 5, None)),
    **dict.fromkeys("元阮願", (7, frozenset({"an", "ian", "uan", "van"}), 6, frozenset({"en", "in", "uen", "vn"}))),
}


def bu_of(ch: str, rhyme: str) -> str:
    """'7', '6' or '6,7' (undecided) for ``ch`` in the split group whose rhyme name is ``rhyme``."""
    first, first_finals, second, second_finals = HALVES[rhyme]
    readings = pinyin(ch, style=Style.FINALS, strict=True, errors="ignore")
    final = readings[0][0] if readings and readings[0] else ""
    if final in first_finals:
        return str(first)
    if second_finals is None or final in second_finals:
        return str(second)
    return f"{min(first, second)},{max(first, second)}"


def main() -> None:
    rhymes = table("pingshui")
    rows = []
    for group in rhymes.group_names():
        if group[-1] in SPLIT_GROUPS:
            rows += [f"{ch}\t{group}\t{bu_of(ch, group[-1])}" for ch in sorted(rhymes.members(group))]
    header = ("# 词林正韵 部 of the characters of the 平水韵 groups the 词林正韵 splits (灰 佳 元, 賄 蟹 阮, "
              "泰 卦 隊 願).\n# Built by tools/build_cilin.py from poetgen/tables/pingshui.tsv and modern finals "
              "(pypinyin).\n# Columns: char, 平水韵 group, 部 (two when the final fits neither half).\n")
    OUT.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows)} rows → {OUT}")


if __name__ == "__main__":
    main()
