"""Reading the user's text into a plan: the form, each line's fixed characters (a prefix or an
acrostic's heads), the mark ending each line and the conditioning category. Errors here are the
user's: a prefix that cannot fit the form, characters the model never saw."""

from __future__ import annotations

from dataclasses import dataclass, replace

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import SCRIPTS, to_script
from poetgen.errors import PoetgenError, bad_value, unknown
from poetgen.poems.forms import Form, verse_name
from poetgen.poems.masks import VocabMasks
from poetgen.verse import ASCII_MARKS, COMMA, FORMS, OTHER, STOP, TYPED_MARKS, WIDTH_NAME, nearest_form, verse_chars

AUTO = "auto"
MAX_HEADS = 64  # acrostic lines
MARKS = TYPED_MARKS
ODD_KEEP, EVEN_KEEP = "，？！", "。？！"  # marks kept as typed at the end of lines 1, 3.. / 2, 4..


def model_script(ck: Checkpoint) -> str | None:
    script = (ck.meta.get("corpus") or {}).get("script")
    return script if script in SCRIPTS else None


def normalise(text: str, what: str, ck: Checkpoint, vocab: VocabMasks, *, drop_unknown: bool = False) -> str:
    """Full-width marks, no spaces, the model's script; a PoetgenError for anything unwritable."""
    text = verse_chars(text, what)
    script = model_script(ck)
    if script is not None:
        text = to_script(text, script)
    missing = [ch for ch in dict.fromkeys(text) if ch != "\n" and ch not in MARKS and ch not in vocab.char_id]
    if missing and drop_unknown:
        return "".join(ch for ch in text if ch not in missing)
    if missing:
        hints = []
        for ch in missing:
            variants = {to_script(ch, s) for s in SCRIPTS} - {ch}
            hints += [f"'{v}' for '{ch}'" for v in sorted(variants) if v in vocab.char_id]
        shown = ", ".join(f"'{ch}'" for ch in missing[:8])
        hint = f" (try {', '.join(hints)})" if hints else ""
        raise PoetgenError(f"the model never saw {shown} in {what}{hint}")
    return text


@dataclass
class Plan:
    form: str
    width: int
    given: list[str]  # characters fixed in each line (prefix text or the acrostic head)
    marks: list[str]  # the mark ending each line
    category: int | None
    style: int = 0  # the poet (index into ck.styles; 0 = any, and for models without styles)


def _line_mark(index: int, typed: str | None, last: bool) -> str:
    """The mark ending line ``index`` (0-based): what the user typed if it fits, else ，/。."""
    if last:
        return typed if typed and typed in "？！" else STOP
    keep = ODD_KEEP if index % 2 == 0 else EVEN_KEEP
    if typed and typed in keep:
        return typed
    return COMMA if index % 2 == 0 else STOP


def _category(ck: Checkpoint, form: str, lines: int, width: int) -> int | None:
    """Index of the conditioning category: the form itself, else the closest one the model knows."""
    if not ck.config.num_categories or not ck.categories:
        return None
    cats = ck.categories
    wanted = [form, OTHER, nearest_form(width, lines)]
    for c in wanted:
        if c in cats:
            return cats.index(c)
    return 0


FREE_FORMS = {"五古": 5, "七古": 7}  # acrostics of any length: line width only


def check_form(form: str) -> None:
    if form != AUTO and form not in FORMS:
        raise unknown("form", form, [*FORMS, AUTO])


def plan_prefix(ck: Checkpoint, vocab: VocabMasks, prefix: str, form: str) -> Plan:
    """Split a prefix into lines and pick the form; errors for prefixes that cannot fit it.

    ``auto`` takes the line length from the prefix's first finished line (5 or 7), else 7, and
    writes a 绝句 unless the prefix already has more than four lines. An unfinished last run of
    characters longer than a line is wrapped; a finished line must have exactly the line length.
    """
    check_form(form)
    text = normalise(prefix, "the prefix", ck, vocab)
    done: list[tuple[str, str]] = []  # (line, typed mark)
    current = ""
    for ch in text:
        if ch in MARKS or ch == "\n":
            if not current:
                if ch == "\n":  # blank lines, or a line break after a mark
                    continue
                raise PoetgenError(f"the prefix has a '{ch}' with no characters before it")
            done.append((current, ch))
            current = ""
        else:
            current += ch
    if form == AUTO:
        width = len(done[0][0]) if done else 7
        if width not in WIDTH_NAME:
            raise PoetgenError(f"the prefix's first line has {width} characters; poems have lines of 5 or 7")
    else:
        width = FORMS[form][1]
    while len(current) > width:  # wrap a long unfinished run
        done.append((current[:width], ""))
        current = current[width:]
    if form == AUTO:
        count = len(done) + (1 if current else 0)
        form = nearest_form(width, count)
    n_lines = FORMS[form][0]
    for i, (line, _) in enumerate(done):
        if len(line) != width:
            raise PoetgenError(f"line {i + 1} of the prefix has {len(line)} characters, but a {form} line has {width}")
    count = len(done) + (1 if current else 0)
    if count > n_lines:
        raise PoetgenError(f"the prefix is longer than a {form} ({n_lines} lines of {width} characters)")
    given = [line for line, _ in done] + ([current] if current else [])
    given += [""] * (n_lines - len(given))
    typed = [mark for _, mark in done] + [None] * (n_lines - len(done))
    marks = [_line_mark(i, typed[i], i == n_lines - 1) for i in range(n_lines)]
    return Plan(form, width, given, marks, _category(ck, form, n_lines, width))


def plan_acrostic(ck: Checkpoint, vocab: VocabMasks, heads: str, form: str) -> Plan:
    """One line per head character; 4 heads make a 绝句, 8 a 律诗, other counts a 古体 (五古/七古).

    The line length comes from ``form`` (五.. → 5, 七.. → 7, auto → 7). An explicit regulated
    ``form`` must have one line per head: its shape is a promise, never quietly changed. 五古 and
    七古 take any number of heads, four and eight included, and stay 古体.
    """
    if form not in FREE_FORMS:
        check_form(form)
    stripped = "".join(ch for ch in heads if not ch.isspace())
    if not stripped:
        raise PoetgenError("give the head characters of the acrostic (藏头诗), e.g. 春夏秋冬")
    marks = [ch for ch in dict.fromkeys(stripped.translate(ASCII_MARKS)) if ch in MARKS]
    if marks:
        shown = ", ".join(f"'{ch}'" for ch in marks)
        raise PoetgenError(f"acrostic heads must be Chinese characters: {shown} cannot start a line")
    text = normalise(stripped, "the acrostic heads", ck, vocab)
    if len(text) > MAX_HEADS:
        raise PoetgenError(f"an acrostic has at most {MAX_HEADS} head characters, got {len(text)}")
    width = FORMS[form][1] if form in FORMS else FREE_FORMS.get(form, 7)
    n = len(text)
    if form in FORMS and FORMS[form][0] != n:
        fits = [f for f, (lines, w) in FORMS.items() if lines == n and w == width]
        hint = f"; {n} heads fit {fits[0]}" if fits else f"; {n} heads fit {verse_name(width, n)}"
        raise bad_value("form", f"{form} has {FORMS[form][0]} lines, one per head, but {n} heads were given"
                        f" ({text}){hint}")
    # 五古/七古 asked for is kept even where the heads would make a 绝句 or 律诗: the user chose
    # verse free of the 平仄 pattern, and the label must say what was written.
    name = form if form in FREE_FORMS else verse_name(width, n)
    marks_out = [_line_mark(i, None, i == n - 1) for i in range(n)]
    return Plan(name, width, list(text), marks_out, _category(ck, name, n, width))


MAX_KEYWORD = 2  # characters in a theme keyword


def plan_theme(ck: Checkpoint, vocab: VocabMasks, plan: Plan, keywords: list[str], form: Form) -> Plan:
    """``plan`` with every theme keyword fixed in a line of its own, right after what the line
    already holds (a prefix, an acrostic head), spread over the poem in the order given. ``form`` is
    the plan's form (a tune's lines differ in length: each line's own width bounds its room).

    Never at a line's last character (the rhyme and the oblique endings stay the decoder's), and,
    in regulated verse, only where the keyword's sure tones fit the 平仄 pattern the poem's other
    fixed characters set: the lines are chosen so that they do. A keyword already in the prefix
    is present as it is.
    """
    words = _keywords(ck, vocab, keywords)
    needed = [w for w in words if w not in "".join(plan.given)]
    lines = len(plan.given)
    room = [i for i in range(lines) if len(plan.given[i]) + MAX_KEYWORD <= form.widths[i] - 1]
    if len(needed) > len(room):
        held = " with this prefix" if any(plan.given) else ""
        raise bad_value("theme", f"has {len(words)} keywords, but a {plan.form}{held} has room for "
                        f"{len(room)} (one per line)")
    chosen = _placement(vocab, form, plan.given, room, needed)
    if chosen is None:
        raise bad_value("theme", f"keywords {' '.join(needed)} cannot all keep the 平仄 pattern of a {plan.form} "
                        "with these fixed characters; drop one, or pick another form")
    given = list(plan.given)
    for line, word in zip(chosen, needed, strict=True):
        given[line] += word
    return replace(plan, given=given)


def _bases(vocab: VocabMasks, form: Form, line: int, start: int, text: str) -> set[int] | None:
    """The pattern bases that ``text`` written from ``start`` in ``line`` implies: empty for none,
    one, or None when its characters disagree among themselves."""
    bases = set()
    for pos, ch in enumerate(text, start):
        key, tone = form.key(line, pos), int(vocab.tone[vocab.char_id[ch]])
        if key is not None and tone >= 0:
            bases.add(tone ^ key)
    return bases if len(bases) <= 1 else None


def _placement(vocab: VocabMasks, form: Form, given: list[str], room: list[int], words: list[str]) -> list[int] | None:
    """Lines for ``words``, in the order given, as evenly spread as the tone pattern allows.

    Dynamic programming over (keyword, line, pattern base so far): at most keywords × lines² × 3
    steps, so forty acrostic heads with six keywords cost nothing (trying every ordering did)."""
    if not words:
        return []
    lines = len(given)
    ideal = [round(j * lines / len(words)) for j in range(len(words))]
    start: set[int] | None = set()
    for line, text in enumerate(given if form.tones else []):
        found = _bases(vocab, form, line, 0, text)
        start = None if found is None or start is None else start | found
    if start is None or len(start) > 1:
        return None
    # best[(line, base)] = (cost, lines chosen so far), base -1 while nothing fixes it
    best: dict[tuple[int, int], tuple[int, list[int]]] = {(-1, next(iter(start), -1)): (0, [])}
    for j, word in enumerate(words):
        step: dict[tuple[int, int], tuple[int, list[int]]] = {}
        for (last, base), (cost, chosen) in best.items():
            for line in room:
                if line <= last:
                    continue
                implied = _bases(vocab, form, line, len(given[line]), word) if form.tones else set()
                if implied is None or (base >= 0 and implied - {base}):
                    continue
                new_base = next(iter(implied), base)
                key = (line, new_base)
                total = cost + abs(line - ideal[j])
                if key not in step or total < step[key][0]:
                    step[key] = (total, [*chosen, line])
        best = step
    return min(best.values())[1] if best else None


def _keywords(ck: Checkpoint, vocab: VocabMasks, keywords: list[str]) -> list[str]:
    words = []
    for raw in keywords:
        word = "".join(ch for ch in normalise(raw, f"theme keyword '{raw}'", ck, vocab) if ch not in MARKS)
        if not 1 <= len(word) <= MAX_KEYWORD:
            raise bad_value("theme", f"keywords are one or two characters, got '{raw}'")
        if len(set(word)) < len(word):
            raise bad_value("theme", f"keyword '{raw}' repeats a character, which a line cannot")
        words.append(word)
    if not words:
        raise bad_value("theme", "needs at least one keyword, e.g. 秋,月")
    return list(dict.fromkeys(words))


def plan_tune(ck: Checkpoint, vocab: VocabMasks, prefix: str, form: Form) -> Plan:
    """A 词 of ``form`` (a tune's variant) continuing ``prefix``: its characters fill the tune's
    lines in order (marks typed in it are dropped: the tune places its own), and the model is
    conditioned on the tune when it knows it."""
    text = "".join(ch for ch in normalise(prefix, "the prefix", ck, vocab) if ch not in MARKS and ch != "\n")
    total = sum(form.widths)
    if len(text) > total:
        raise PoetgenError(f"the prefix has {len(text)} characters, but a {form.tune} (variant {form.variant}) "
                           f"has {total}")
    given, start = [], 0
    for width in form.widths:
        given.append(text[start : start + width])
        start += width
    cats = ck.categories if ck.config.num_categories else []
    known = form.tune if form.tune in cats else OTHER if OTHER in cats else None
    category = cats.index(known) if known else 0 if cats else None
    return Plan(form.tune, form.width, given, list(form.marks), category)
