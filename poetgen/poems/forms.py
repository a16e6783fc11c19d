"""The forms a poem can take, as data: one table that the writer (which rules bind, where) and the
checker (what to check) both read. A form is its shape (characters per line), where the rhyme
falls, whether the 平仄 pattern binds, which couplets must be parallel (对仗) and how many repeated
characters a poem may carry. Torch-free.

The four regulated forms are entries of ``TABLE``; acrostics of other lengths are 古体 (``free``),
built on demand. The 词牌 are ``Form`` entries too, built by ``tunes.py`` from the templates
learned from the Song ci; their lines, marks, rhyme sets and fixed tones are the fields below
``repeats``.
"""

from __future__ import annotations

from dataclasses import dataclass

from poetgen.verse import FORMS, WIDTH_NAME


@dataclass(frozen=True)
class Form:
    name: str
    widths: tuple[int, ...]  # characters of each line
    rhyme: tuple[int, ...]  # 0-based lines whose last character rhymes in one level (平) group
    oblique_ends: tuple[int, ...] = ()  # lines that end on a 仄 character (the odd lines after the first)
    first_line: bool = True  # 首句: line 1 may rhyme, and must when it ends on a 平 character
    parallel: tuple[tuple[int, int], ...] = ()  # couplets (line, line) that answer position by position
    # The 平仄 pattern, one string per line, one mark per character, relative to the poem's base
    # (the tone of line 1's 2nd character, fixed by the first character of sure tone): "0" the
    # base's tone, "1" the other, "." free. Empty when no pattern binds.
    pattern: tuple[str, ...] = ()
    # Extra repeated characters a poem may have (a reduplication such as 悠悠 is not a repeat). The
    # Tang poems of the form average 0.41 (五绝) 0.58 (七绝) 0.50 (五律) 0.97 (七律) (BENCHMARKS.md):
    # the budget keeps generated poems at or below that.
    repeats: int = 0
    # A 词 (ci) tune, as ``tunes.py`` reads it from the templates learned from the Song ci; the
    # defaults are a shi form's, whose rhyme and 平仄 are the fields above (a tune leaves ``rhyme``,
    # ``oblique_ends``, ``pattern`` and ``parallel`` empty and ``first_line`` False).
    tune: str = ""  # the 词牌 ("" for shi)
    variant: int = 0  # the tune's variant, 1 its most common one
    poems: int = 0  # training poems of this variant
    share: float = 0.0  # its share of the tune's training poems
    marks: str = ""  # the mark after each line, ，or 。 ("" for shi: ，。 alternate)
    # Lines (0-based) whose last characters rhyme together, one 词林正韵 部 a set (菩萨蛮 has four).
    rhyme_sets: tuple[tuple[int, ...], ...] = ()
    # Per line, the tone of its rhyme: 平, 仄 (most of the tune's poems rhyme there in 上声 or 去声)
    # or 入 (most in 入声); "." for a line that does not rhyme. The checker takes 上去 or 入 for
    # either of the last two, a set's one 部 keeping 入声 with 入声; a writer should follow them.
    rhyme_tones: str = ""
    # Per line, one mark per character: 平 or 仄 where the tune fixes it (absolute, not relative to
    # a base as ``pattern`` is), "." where it is free.
    fixed: tuple[str, ...] = ()

    def key(self, line: int, pos: int) -> int | None:
        """The pattern's mark at ``line``, ``pos`` (0-based): 0 or 1 relative to the base, None if free."""
        if not self.pattern or pos >= len(self.pattern[line]) or self.pattern[line][pos] == ".":
            return None
        return int(self.pattern[line][pos])

    @property
    def tones(self) -> bool:
        """Does a 平仄 pattern bind (二四六分明, 对 and 粘)?"""
        return bool(self.pattern)

    @property
    def lines(self) -> int:
        return len(self.widths)

    @property
    def width(self) -> int:
        """The line length of a form whose lines all have one (every shi form)."""
        return max(self.widths)

    @property
    def shape(self) -> tuple[int, int]:
        return self.lines, self.width


def _key(line: int, pos: int) -> str:
    """At the 2nd, 4th and 6th character of a line: keys alternate within a line (二四六分明), a
    couplet's lines are opposite (对) and a couplet's first line repeats the line before it (粘)."""
    if pos % 2 == 0 or pos > 5:
        return "."
    return str((pos // 2) % 2 ^ ((line + 1) // 2) % 2)


def _regulated(name: str, lines: int, width: int, repeats: int) -> Form:
    parallel = ((2, 3), (4, 5)) if lines == 8 else ()  # 律诗: the 颔联 and the 颈联
    pattern = tuple("".join(_key(line, pos) for pos in range(width)) for line in range(lines))
    return Form(name, (width,) * lines, rhyme=tuple(range(1, lines, 2)), oblique_ends=tuple(range(2, lines - 1, 2)),
                parallel=parallel, pattern=pattern, repeats=repeats)


TABLE: dict[str, Form] = {  # the shapes are verse.FORMS, which the corpus and scoring read too
    "五绝": _regulated("五绝", *FORMS["五绝"], 0),
    "七绝": _regulated("七绝", *FORMS["七绝"], 0),
    "五律": _regulated("五律", *FORMS["五律"], 0),
    "七律": _regulated("七律", *FORMS["七律"], 1),
}


def verse_name(width: int, lines: int) -> str:
    """What verse of this shape is called: 绝 for four lines, 律 for eight, 古 (古体) otherwise."""
    return WIDTH_NAME[width] + {4: "绝", 8: "律"}.get(lines, "古")


def ancient_name(width: int) -> str:
    """五古 or 七古: 古体 verse of lines of ``width``, whatever their number."""
    return WIDTH_NAME[width] + "古"


def ancient(width: int, lines: int) -> Form:
    """古体 of ``lines`` lines, four and eight included: even lines rhyme, no 平仄 pattern binds."""
    return Form(ancient_name(width), (width,) * lines, rhyme=tuple(range(1, lines, 2)),
                oblique_ends=tuple(range(2, lines - 1, 2)), repeats=lines // 4)


def free(width: int, lines: int) -> Form:
    """The form an acrostic of ``lines`` heads takes when none was asked for: the regulated one of
    its shape (4 heads a 绝句, 8 a 律诗), else 古体 (5 or 9 heads)."""
    return TABLE.get(verse_name(width, lines)) or ancient(width, lines)


def form_of(name: str, width: int, lines: int) -> Form:
    """The table's entry for ``name``; 古体 when ``name`` says 古 (a four-line 五古 asked for is
    no 五绝: it keeps no 平仄 pattern); else the form of this shape."""
    form = TABLE.get(name)
    if form is not None and form.shape == (lines, width):
        return form
    if width in WIDTH_NAME and name == ancient_name(width):
        return ancient(width, lines)
    return free(width, lines)
