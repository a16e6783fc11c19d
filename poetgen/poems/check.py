"""The checker of Tang regulated verse: form, punctuation, rhyme, the 平仄 pattern, and the rules
a reader checks first (首句, repeated characters, 三平尾, 孤平), with the 对仗 of the couplets the
form wants parallel. Forms come from the table of ``forms.py``; tones and rhymes from ``prosody``."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field

from poetgen.errors import PoetgenError
from poetgen.poems.cicheck import check_ci, marked_as_shi, read_as
from poetgen.poems.duizhang import PARALLEL, pair_table
from poetgen.poems.forms import TABLE, Form
from poetgen.poems.prosody import LEVEL, OBLIQUE, RhymeTable, table
from poetgen.verse import EVEN_LINE_MARKS, ODD_LINE_MARKS, detect_form, segments, split_lines

# 1-based positions whose tones must alternate (二四六分明) and obey 对/粘 between lines.
KEY_POSITIONS = (2, 4, 6)

@dataclass
class PoemCheck:
    """What ``check_poem`` found.

    ``tones`` has one mark per character: "平", "仄", "?" (both readings) or "" (unknown).
    ``rhyme_chars`` are the last characters of the even lines, preceded by line 1's when it
    rhymes with them. ``rhyme_group`` is the group they share: a level-tone one if there is
    one, else the shared oblique (仄) group, else None. ``rules`` maps each rule to whether the
    poem keeps it: "form", "punctuation", "rhyme" (even lines share a group, any tone),
    "level_rhyme" (they share a 平 group), "tone_pattern" (二四六分明, 对 and 粘), "first_line"
    (首句: a line 1 ending on a sure 平 character rhymes, a neighbouring group allowed),
    "repeats" (no more repeated characters than the form's budget, a reduplication such as 悠悠
    not counted), "three_level_tail" (no line ends on three sure 平, 三平尾) and "lone_level" (no
    孤平 in a line ending on 平). The last four bind the regulated forms only. ``couplets`` holds,
    for the couplets a form wants parallel (律诗: 颔联, 颈联), the 对仗 score of each
    (``duizhang.py``), whether it reaches ``duizhang.PARALLEL`` and how many characters face
    themselves: a measure, not a rule (half the real Tang middle couplets reach it).

    A 词 (ci) is read as its tune's variant (``cicheck.py``): ``form`` is the tune, ``scheme``
    "cilin", ``rhyme_chars`` the ends of its rhyme lines, ``rhyme_group`` the 部 of the rhyme it
    ends on, and the rules are "form", "punctuation", "rhyme" and "tone_pattern" (the tune's fixed
    positions); ``ci`` holds the tune, the variant and the verdict of each rhyme line and each
    fixed position (empty, and left out of ``to_dict``, for shi).
    """

    text: str
    lines: list[str]
    form: str
    tones: list[list[str]]
    rhyme_chars: list[str]
    rhyme_group: str | None
    rules: dict[str, bool]
    scheme: str = "pingshui"
    couplets: list[dict] = field(default_factory=list)
    ci: dict = field(default_factory=dict)

    def passed(self) -> bool:
        """True when every rule holds."""
        return all(self.rules.values())

    def to_dict(self) -> dict:
        """A JSON-ready dict (``passed`` included)."""
        shown = asdict(self)
        if not self.ci:
            del shown["ci"]
        return {**shown, "passed": self.passed()}


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


def _first_line_ok(rhymes: RhymeTable, lines: list[str], group: str | None) -> bool:
    """首句: a first line ending on a sure 平 character rhymes with the poem (邻韵 allowed)."""
    if not group or LEVEL not in group or not lines or not lines[0] or rhymes.tones(lines[0][-1]) != {LEVEL}:
        return True
    return bool(rhymes.level_groups(lines[0][-1]) & rhymes.near(group))


def extra_repeats(lines: list[str]) -> int:
    """Characters used more than once in a poem, counted once per extra use; the second character
    of a reduplication (悠悠) is not a use."""
    counts = Counter(ch for line in lines for i, ch in enumerate(line) if not (i and line[i - 1] == ch))
    return sum(n - 1 for n in counts.values())


def three_level_tail(marks: list[str]) -> bool:
    """三平尾: the line's last three characters are all surely 平."""
    return len(marks) >= 3 and all(m == LEVEL for m in marks[-3:])


def lone_level(marks: list[str]) -> bool:
    """孤平: a line ending on a sure 平 in whose 五言 span before the rhyme (the whole line of a 五言,
    the last five characters of a 七言) one lone character may be 平, between sure 仄s (or at the
    span's start), and not next to the rhyme: 仄平仄仄平."""
    if len(marks) < 5 or marks[-1] != LEVEL:
        return False
    span = marks[-5:-1]
    level = [m != OBLIQUE for m in span]
    if sum(level) != 1:
        return sum(level) == 0
    p = level.index(True)
    return p < 3 and (p == 0 or span[p - 1] == OBLIQUE) and span[p + 1] == OBLIQUE


def _couplets(form: Form | None, lines: list[str]) -> list[dict]:
    if form is None:
        return []
    pairs = pair_table()
    out = []
    for a, b in form.parallel:
        score = pairs.couplet(lines[a], lines[b])
        same = sum(x == y for x, y in zip(lines[a], lines[b], strict=True))
        out.append({"lines": [a + 1, b + 1], "score": round(score, 3), "parallel": score >= PARALLEL,
                    "same_characters": same})
    return out


def check_poem(text: str, scheme: str = "pingshui", tune: str | None = None) -> PoemCheck:
    """Check form, punctuation, rhyme, tone pattern and the reader's rules of one poem under ``scheme``;
    a ci (text of a tune's structure, or of ``tune`` when named) against its tune's template."""
    ci = _ci(text, scheme, tune)
    if ci is not None:
        return ci
    rhymes = table(scheme)
    lines = split_lines(text)
    name = detect_form(lines)
    form = TABLE.get(name)
    marks = [[rhymes.tone_mark(ch) for ch in line] for line in lines]
    chars, group, rhymed, level = _rhyme(rhymes, lines)
    regulated = form is not None
    rules = {
        "form": regulated,
        "punctuation": _punctuation_ok(text),
        "rhyme": rhymed,
        "level_rhyme": level,
        "tone_pattern": bool(lines) and _tone_pattern_ok(marks),
        "first_line": not regulated or _first_line_ok(rhymes, lines, group),
        "repeats": not regulated or extra_repeats(lines) <= form.repeats,
        "three_level_tail": not regulated or not any(three_level_tail(m) for m in marks),
        "lone_level": not regulated or not any(lone_level(m) for i, m in enumerate(marks) if i in form.rhyme),
    }
    return PoemCheck(text, lines, name, marks, chars, group, rules, scheme, _couplets(form, lines))


def _ci(text: str, scheme: str, tune: str | None) -> PoemCheck | None:
    """The check of ``text`` as a ci, when ``tune`` names one or (unless it is shaped and marked as a
    regulated form) its structure is a tune's; else None."""
    if tune is not None and tune in TABLE:
        raise PoetgenError(f"{tune} is a shi form, which check finds from the text; --form names a tune (词牌)")
    if tune is not None and scheme != "pingshui":
        raise PoetgenError(f"a ci rhymes in the 词林正韵, which is read through the 平水韵: --scheme {scheme} applies "
                           "to shi only")
    parts = segments(text)
    if scheme != "pingshui" or (tune is None and detect_form(split_lines(text)) in TABLE and marked_as_shi(parts)):
        return None
    form = read_as(parts, tune)
    if form is None:
        return None
    found = check_ci(form, parts)
    rhymes = table("pingshui")
    chars = [r["char"] for r in found.rhymes if r["char"]]
    return PoemCheck(text, found.lines, form.tune, [[rhymes.tone_mark(ch) for ch in line] for line in found.lines],
                     chars, found.group, found.rules, "cilin", ci=found.details())


def rhyme_rate(poems: list[str], scheme: str = "pingshui", rule: str = "rhyme") -> float:
    """Share of ``poems`` that keep ``rule`` (0.0 for no poems).

    Real Tang poems keep "level_rhyme" (under pingshui) about 76% (五绝), 94% (七绝),
    89% (五律), 93% (七律) of the time, and "rhyme" (any tone) 90%, 97%, 94%, 94%.
    """
    if not poems:
        return 0.0
    return sum(check_poem(poem, scheme).rules[rule] for poem in poems) / len(poems)
