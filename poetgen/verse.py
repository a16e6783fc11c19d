"""Verse text rules, in one place: the marks that end lines, how text is split into lines and which
of the four regulated shapes a poem has. Torch-free, and below the ``poems`` package because the
corpus registry (which labels Tang poems by shape) and scoring read them as much as the checker
and the writer do; the forms' full templates (rhyme, 平仄, 对仗) are ``poems/forms.py``."""

from __future__ import annotations

import re

from poetgen.errors import PoetgenError

WIDTH_NAME = {5: "五", 7: "七"}
# The regulated forms by shape, name → (lines, width): the categories a Tang corpus labels its poems
# with, and the shapes of the regulated entries of ``poems.forms.TABLE``.
FORMS: dict[str, tuple[int, int]] = {"五绝": (4, 5), "七绝": (4, 7), "五律": (8, 5), "七律": (8, 7)}
OTHER = "other"  # the category of verse in none of the four forms

COMMA, STOP = "，", "。"
# ASCII marks typed or found in the archive, read as their full-width forms.
ASCII_MARKS = str.maketrans({",": "，", ".": "。", "?": "？", "!": "！", ";": "；", ":": "："})
LINE_END = "，。？！；"  # marks that end a line in cleaned corpus text
LINE_BREAKS = "，。？！；、,.?!;"  # marks that end a line in text a user gives (and newlines)
# Odd lines (1st, 3rd, ...) end in a comma, even lines close a couplet with a full stop; a question
# or exclamation mark may stand for either, and a semicolon for the full stop, as in anthologies.
ODD_LINE_MARKS = "，？！"
EVEN_LINE_MARKS = "。？！；"


def is_cjk(ch: str) -> bool:
    """A CJK ideograph (basic block, extension A, compatibility, extensions B and later, 〇)."""
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3FFFF or o == 0x3007)


TYPED_MARKS = "，。？！；、："  # accepted in text a user types (after mapping ASCII marks to full width)


def verse_chars(text: str, what: str) -> str:
    """``text`` as a user typed it for a poem (a prefix, a mood): full-width marks and no spaces,
    refused (naming ``what``) if it holds anything but Chinese characters and marks."""
    text = text.translate(ASCII_MARKS)
    text = "".join(ch for ch in text if ch == "\n" or not ch.isspace())
    bad = list(dict.fromkeys(ch for ch in text if not (ch == "\n" or ch in TYPED_MARKS or is_cjk(ch))))
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        raise PoetgenError(f"{what} may hold only Chinese characters and ，。？！； punctuation, not {shown}")
    return text


def clean_marks(text: str) -> str:
    """Marks as the training text writes them: full width, no spaces, ：and 、 read as ，."""
    text = text.translate(ASCII_MARKS).replace(" ", "").replace("\u3000", "")
    return text.replace("：", COMMA).replace("、", COMMA)


def segments(text: str) -> list[tuple[str, str]]:
    """(line, the mark that ends it) pairs; mark "" for a line ended by a newline or the text end.

    Whitespace inside a line is dropped; a mark with no line before it gives ("", mark).
    """
    out = []
    current: list[str] = []
    for ch in text + "\n":
        if ch in LINE_BREAKS or ch == "\n":
            line = "".join(current)
            mark = "" if ch == "\n" else ch
            if line or mark:
                out.append((line, mark))
            current = []
        elif not ch.isspace():
            current.append(ch)
    return out


_BREAK = re.compile(f"[{re.escape(LINE_BREAKS)}\n]")
_SPACE = re.compile(r"[^\S\n]+")


def split_lines(text: str) -> list[str]:
    """Poem text → its non-empty lines, split at ，。？！；、 (and ASCII ,.?!;) and at newlines."""
    return [line for line in _BREAK.split(_SPACE.sub("", text)) if line]


def detect_form(lines: list[str]) -> str:
    """五绝 七绝 五律 七律 when the line count and lengths fit one, else ``OTHER``."""
    for name, (count, width) in FORMS.items():
        if len(lines) == count and all(len(line) == width for line in lines):
            return name
    return OTHER


def poem_form(text: str) -> str:
    return detect_form(split_lines(text))


def nearest_form(width: int, lines: int) -> str:
    """The regulated form closest to ``lines`` lines of ``width`` (5 or 7): 绝句 up to four lines."""
    return WIDTH_NAME[width] + ("绝" if lines <= 4 else "律")
