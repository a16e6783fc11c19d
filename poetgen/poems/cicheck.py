"""What the checker finds in a 词 (ci): which tune and variant its structure is (``tunes.py``),
whether its lines end in the variant's marks, whether each rhyme line rhymes in the 词林正韵 with
the others of its set and in the tone the tune wants (平, or 仄: 上去 or 入; a split 平水韵 group,
灰 say, counts whole: ``cilin.bus_wide``), and whether each position the tune fixes to 平 or 仄
holds. ``check.check_poem`` turns this into its usual report. Torch-free.

A line the text lacks, or one of another length than the variant's, is left out of the rhyme and
tone judgements (the lines are aligned by their lengths, as difflib aligns sequences); so is a
character the tables do not know or whose tone is not sure: a rule never fails for want of a
reading, as in the shi checker.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass

from poetgen.poems import cilin, tunes
from poetgen.poems.forms import Form
from poetgen.poems.prosody import LEVEL, OBLIQUE, table

# The tone classes a rhyme line may read in, by the variant's rhyme tone. A 仄 rhyme may be 上去 or
# 入 whatever the template says (a third of 念奴娇 and 谒金门 rhyme in 上去, most in 入): the set's one
# 部 keeps 入声 with 入声. The template's 入 says what most poems of the tune chose.
RHYME_CLASSES = {LEVEL: (cilin.PING,), OBLIQUE: (cilin.SHANGQU, cilin.RU), cilin.RU: (cilin.SHANGQU, cilin.RU)}
# A text's marks as the variants write them: ？！ and a missing mark ("?") fit either.
MARKS = {"，": "，", "、": "，", "。": "。", "；": "。"}


@dataclass
class CiCheck:
    form: Form  # the variant the text is read as
    lines: list[str]
    marks: str  # the text's marks, as ``MARKS`` maps them
    rhymes: list[dict]  # per rhyme line of the variant: line, char, want, ok
    sets: list[dict]  # per rhyme set: its lines and the 部 they rhyme in
    fixed: list[dict]  # per fixed position: line, pos, char, want, got, ok

    @property
    def rules(self) -> dict[str, bool]:
        """form (an attested variant's line lengths), punctuation (its marks), rhyme, tone_pattern."""
        return {"form": tuple(map(len, self.lines)) == self.form.widths,
                "punctuation": tunes.marks_fit(self.form.marks, self.marks),
                "rhyme": all(r["ok"] is not False for r in self.rhymes),
                "tone_pattern": all(f["ok"] is not False for f in self.fixed)}

    @property
    def group(self) -> str | None:
        """The 部 of the rhyme set holding the variant's last rhyme line (the one a ci ends on)."""
        return max(self.sets, key=lambda s: max(s["lines"]))["bu"] if self.sets else None

    def details(self) -> dict:
        f = self.form
        return {"tune": f.tune, "variant": f.variant, "variants": len(tunes.tune(f.tune).variants),
                "poems": f.poems, "share": f.share,
                "structure": "".join(f"{w}{m}" for w, m in zip(f.widths, f.marks, strict=True)),
                "sets": self.sets, "rhymes": self.rhymes, "fixed": self.fixed}


def aligned(form: Form, lines: list[str]) -> dict[int, int]:
    """Variant line → text line, for the lines that match in order and length."""
    widths = [len(line) for line in lines]
    blocks = difflib.SequenceMatcher(None, form.widths, widths, autojunk=False).get_matching_blocks()
    return {a + k: b + k for a, b, size in blocks for k in range(size)}


def _rhyme_set(form: Form, group: tuple[int, ...], ends: dict[int, str]) -> tuple[str | None, list[dict]]:
    """The 部 most of the set's ends rhyme in (in the tone each line wants), and each line's verdict."""
    want = {line: RHYME_CLASSES[form.rhyme_tones[line]] for line in group}

    def bus(line: int, wide: bool = False) -> set[int]:
        read = cilin.bus_wide if wide else cilin.bus
        return {bu for tone in want[line] for bu in read(ends[line], tone)}

    votes = Counter(bu for line in group if line in ends for bu in bus(line))
    bu = min(votes, key=lambda b: (-votes[b], b)) if votes else None
    rows = []
    for line in group:
        ch = ends.get(line)
        ok = None if ch is None or not cilin.readings(ch) else bu in bus(line, wide=True)
        rows.append({"line": line + 1, "char": ch, "want": form.rhyme_tones[line], "ok": ok})
    return (cilin.bu_name(bu) if bu else None), rows


def _fixed(form: Form, lines: list[str], pairs: dict[int, int]) -> list[dict]:
    rhymes = table("pingshui")
    out = []
    for line, text_line in sorted(pairs.items()):
        for pos, want in enumerate(form.fixed[line]):
            if want != ".":
                ch = lines[text_line][pos]
                got = rhymes.tone_mark(ch)
                out.append({"line": line + 1, "pos": pos + 1, "char": ch, "want": want, "got": got,
                            "ok": got == want if got in (LEVEL, OBLIQUE) else None})
    return out


def _lines(parts: list[tuple[str, str]]) -> tuple[list[str], str]:
    """The lines of ``parts`` ((line, mark) pairs, as ``verse.segments`` gives them) and their marks."""
    return [line for line, _ in parts if line], "".join(MARKS.get(mark, "?") for line, mark in parts if line)


def marked_as_shi(parts: list[tuple[str, str]]) -> bool:
    """Are the odd lines (1st, 3rd …) of ``parts`` left open with ，, as in a shi? 玉楼春 has the
    shape of a 七律 but closes its first line with 。 (it rhymes there, on 仄)."""
    _, marks = _lines(parts)
    return all(mark != "。" for mark in marks[0::2])


def check_ci(form: Form, parts: list[tuple[str, str]]) -> CiCheck:
    """Judge the text of ``parts`` as ``form``."""
    lines, marks = _lines(parts)
    pairs = aligned(form, lines)
    ends = {line: lines[text_line][-1] for line, text_line in pairs.items()}
    sets, rhymes = [], []
    for group in form.rhyme_sets:
        bu, rows = _rhyme_set(form, group, ends)
        sets.append({"lines": [line + 1 for line in group], "bu": bu})
        rhymes += rows
    rhymes.sort(key=lambda r: r["line"])
    return CiCheck(form, lines, marks, rhymes, sets, _fixed(form, lines, pairs))


def read_as(parts: list[tuple[str, str]], tune: str | None) -> Form | None:
    """The variant to judge a text as: of ``tune`` when one is named (the closest), else the one its
    structure matches, if any (``tunes.match``)."""
    lines, marks = _lines(parts)
    widths = tuple(len(line) for line in lines)
    closing = table("pingshui").tone_mark(lines[-1][-1]) if lines else ""
    closing = closing if closing in (LEVEL, OBLIQUE) else ""
    if tune is not None:
        return tunes.tune(tune).closest(widths, marks, closing)
    return tunes.match(widths, marks, closing) if lines else None
