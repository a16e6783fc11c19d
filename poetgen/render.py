"""Rich renderables shared by the CLI and the REPL. Input: plain dicts/lists from the library."""

from __future__ import annotations

from rich import box
from rich.align import Align
from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

RULE_NAMES = {"form": "form", "punctuation": "punctuation", "rhyme": "rhyme",
              "level_rhyme": "平 rhyme", "tone_pattern": "平仄 pattern", "first_line": "首句 rhyme",
              "repeats": "repeats", "three_level_tail": "no 三平尾", "lone_level": "no 孤平"}


def mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def group_name(check: dict) -> str | None:
    """The rhyme group as the table names it (traditional: 下平聲二蕭), in simplified script when
    the poem is written in simplified characters (下平声二萧)."""
    group = check.get("rhyme_group")
    if not group:
        return None
    from poetgen.corpora import to_script

    text = "".join(check.get("lines", []))
    traditional = to_script(text, "simplified") != text  # a script-neutral poem reads as simplified
    return group if traditional else to_script(group, "simplified")


def verdict(check: dict) -> Text:
    """One line: `七绝 · form ✓ · rhyme ✓ (下平七陽) · 平仄 ✗`."""
    parts = [check.get("form", "?")]
    for key, label in RULE_NAMES.items():
        if key in check.get("rules", {}):
            parts.append(f"{label} {mark(check['rules'][key])}")
    if check.get("rhyme_group"):
        parts.append(f"group {group_name(check)}")
    return Text.from_markup(" · ".join(parts), style="dim")


def _verses(text: str) -> list[str]:
    verses, line = [], ""
    for ch in text:
        line += ch
        if ch in "，。？！；":
            verses.append(line)
            line = ""
    return [*verses, line] if line else verses


# The checker's rules that bind regulated verse only (it passes a five-line poem on them unjudged).
REGULATED_ONLY = ("form", "first_line", "repeats", "three_level_tail", "lone_level")


def _shown_check(poem: dict) -> dict:
    check = poem.get("check") or {}
    if check and poem.get("form", "").endswith("古"):
        # 古体 is written free of the regulated forms on purpose (an acrostic of 2, 3, 5... heads, or
        # --form 五古 with 4): the checker judges a four-line one as a 五绝, which it was never meant to be.
        rules = {k: v for k, v in check["rules"].items() if k not in REGULATED_ONLY}
        check = {**check, "form": poem["form"], "rules": rules}
    return check


def poem_plain(poem: dict) -> str:
    """A poem as plain lines, one verse each, then the verdict: for terminals too narrow for a panel."""
    check = _shown_check(poem)
    return "\n".join([*_verses(poem["text"]), *([verdict(check).plain] if check else [])])


def poem_panel(poem: dict, title: str | None = None) -> Group:
    """A poem in a panel, one couplet per row, the checker's verdict centred beneath.

    The verdict is not the panel's subtitle: a 五绝 panel is narrower than the verdict and
    Rich would cut it.
    """
    verses = _verses(poem["text"])
    # Two verse lines per row: the way regulated verse is printed (one couplet per row).
    rows = ["".join(verses[i : i + 2]) for i in range(0, len(verses), 2)]
    body = Text("\n".join(rows), justify="center", style="bold")
    heading = title or " · ".join(part for part in (poem.get("form"), poem.get("style")) if part)
    panel = Panel(body, title=Text(heading), expand=False, padding=(1, 4), box=box.ROUNDED)  # a label, not markup
    check = _shown_check(poem)
    return Group(Align.center(panel), Align.center(verdict(check))) if check else Group(Align.center(panel))


def check_table(check: dict) -> Group:
    """Per-character 平/仄 (? = ambiguous, blank = not in the table) and the rules."""
    chars = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    width = max((len(line) for line in check["lines"]), default=0)
    for _ in range(width + 1):
        chars.add_column(justify="center")
    colours = {"平": "cyan", "仄": "magenta", "?": "yellow", "": "dim"}
    ci = check.get("ci")
    rhyme_positions = {r["line"] - 1 for r in ci["rhymes"]} if ci else set(range(1, len(check["lines"]), 2))
    for i, (line, tones) in enumerate(zip(check["lines"], check["tones"], strict=False)):
        last = "bold underline" if i in rhyme_positions else ""
        chars.add_row(f"{i + 1}", *[f"[{last}]{ch}[/]" if last and j == len(line) - 1 else ch
                                    for j, ch in enumerate(line)])
        chars.add_row("", *[f"[{colours.get(t, 'dim')}]{t or '·'}[/]" for t in tones])
    rules = Table(box=box.SIMPLE_HEAD)
    rules.add_column("rule")
    rules.add_column("")
    for key, ok in check["rules"].items():
        rules.add_row(RULE_NAMES.get(key, key), mark(ok))
    for couplet in check.get("couplets", []):
        rules.add_row(_couplet_name(couplet), mark(couplet["parallel"]))
    for label, ok in ci_rows(check):
        rules.add_row(escape(label), "[dim]·[/]" if ok is None else mark(ok))
    facts = Text.from_markup(
        f"form [bold]{escape(check['form'])}[/]{escape(ci_facts(check))} · rhyme chars "
        f"[bold]{''.join(check['rhyme_chars']) or '-'}[/] · group [bold]{group_name(check) or '-'}[/] · "
        f"scheme {check.get('scheme', '')}"
    )
    note = no_tones_note(check)
    return Group(facts, chars, rules, *([Text(note, style="yellow")] if note else []))


def no_tones_note(check: dict) -> str:
    """What a ✓ of a tone rule means where no character's tone is known (``check hello``): nothing
    broke the rule because there was nothing to judge."""
    if any(t for tones in check.get("tones", []) for t in tones):
        return ""
    return "no character here has a known tone: the tone rules had nothing to judge"


def ci_facts(check: dict) -> str:
    """` (variant 1 of 2, 97% of 744 poems: 7。7。7。7，7。7。)` after a ci's tune; "" for shi."""
    ci = check.get("ci")
    if not ci:
        return ""
    return (f" (variant {ci['variant']} of {ci['variants']}, {ci['share']:.0%} of the tune's poems: "
            f"{ci['structure']})")


def ci_rows(check: dict) -> list[tuple[str, bool | None]]:
    """A ci's verdicts beside the rules: each rhyme line, then the fixed tones held and each broken one
    (None: not judged, the character's reading unknown or unsure)."""
    ci = check.get("ci")
    if not ci:
        return []
    rows: list[tuple[str, bool | None]] = [
        (f"rhyme line {r['line']} {r['char'] or '-'} ({r['want']})", r["ok"]) for r in ci["rhymes"]]
    judged = [f for f in ci["fixed"] if f["ok"] is not None]
    rows.append((f"fixed 平仄 held {sum(f['ok'] for f in judged)}/{len(judged)}", all(f["ok"] for f in judged)))
    rows += [(f"line {f['line']} char {f['pos']} {f['char']} is {f['got']}, the tune wants {f['want']}", False)
             for f in judged if not f["ok"]]
    return rows


def check_plain(check: dict) -> str:
    """The checker's findings as plain lines (narrow terminals): each line with its tones, then the rules."""
    rows = [f"form {check['form']}{ci_facts(check)} · rhyme chars {''.join(check['rhyme_chars']) or '-'} · "
            f"group {group_name(check) or '-'} · scheme {check.get('scheme', '')}"]
    for i, (line, tones) in enumerate(zip(check["lines"], check["tones"], strict=False)):
        rows.append(f"{i + 1} {line} {''.join(t or '·' for t in tones)}")
    rows += [f"{RULE_NAMES.get(key, key)} {'✓' if ok else '✗'}" for key, ok in check["rules"].items()]
    rows += [f"{_couplet_name(c)} {'✓' if c['parallel'] else '✗'}" for c in check.get("couplets", [])]
    rows += [f"{label} {'·' if ok is None else '✓' if ok else '✗'}" for label, ok in ci_rows(check)]
    return "\n".join([*rows, *([no_tones_note(check)] if no_tones_note(check) else [])])


def _couplet_name(couplet: dict) -> str:
    """`对仗 3–4 (0.52)`: a couplet's parallelism score, a measure beside the rules."""
    a, b = couplet["lines"]
    return f"对仗 {a}–{b} ({couplet['score']:.2f})"


class _Measured:
    """A renderable with the narrowest width it fits in, which Rich cannot measure for Columns (it
    says: all of it): a terminal narrower than that gets plain lines instead (``present``)."""

    def __init__(self, renderable: RenderableType, minimum: int) -> None:
        self.renderable, self.minimum = renderable, minimum

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.renderable

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(self.minimum, options.max_width), options.max_width)


def names_columns(names: list[str], title: str | None = None) -> RenderableType:
    cols = Columns([Text(n) for n in names], equal=True, expand=False, padding=(0, 3))
    widest = max((cell_len(n) for n in names), default=0)
    if not title:
        return _Measured(cols, widest)
    return _Measured(Panel(cols, title=Text(title), expand=False), max(widest + 4, cell_len(title) + 6))


def names_plain(names: list[str]) -> str:
    """One name a line (narrow terminals)."""
    return "\n".join(names)


def names_by_language_plain(table: dict[str, list[str]]) -> str:
    """``Russian: Ivanov, Petrov`` (narrow terminals)."""
    return "\n".join(f"{language}: {', '.join(names)}" for language, names in table.items())


def names_by_language(table: dict[str, list[str]]) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    t.add_column("language", style="bold")
    t.add_column("names")
    for language, names in table.items():
        t.add_row(Text(language), Text(", ".join(names)))  # labels and names are text, never markup
    return t


def bar(p: float, width: int = 20) -> str:
    full = round(p * width)
    return "█" * full + "░" * (width - full)


def classify_table(predictions: list[dict]) -> Table:
    t = Table(box=box.SIMPLE_HEAD)
    t.add_column("name", style="bold")
    t.add_column("language")
    t.add_column("probability", justify="right")
    t.add_column("")
    for pred in predictions:
        # An unsure answer (best language below even odds) says so under the name, beside the runner-up.
        labels = [Text(pred["name"]), Text("unsure", style="yellow") if pred.get("unsure") else ""]
        for rank, (language, p) in enumerate(pred["top"]):
            label = labels[rank] if rank < len(labels) else ""
            t.add_row(label, Text(language), f"{p:.1%}",
                      f"[{'yellow' if pred.get('unsure') else 'green'}]{bar(p)}[/]")
        if pred.get("unknown_chars"):
            t.add_row("", Text(f"unknown letters: {' '.join(pred['unknown_chars'])}", style="yellow"), "", "")
        t.add_section()
    return t


def classify_plain(predictions: list[dict]) -> str:
    """One line per name (narrow terminals): ``Hou: unsure · Greek 41.0% · Chinese 20.1%``."""
    rows = []
    for pred in predictions:
        parts = (["unsure"] if pred.get("unsure") else []) + [f"{lang} {p:.1%}" for lang, p in pred["top"]]
        if pred.get("unknown_chars"):
            parts.append(f"unknown letters: {' '.join(pred['unknown_chars'])}")
        rows.append(f"{pred['name']}: " + " · ".join(parts))
    return "\n".join(rows)


def confusion_table(labels: list[str], matrix: list[list[int]]) -> Table:
    """Rows: true language; columns: predicted. Cells shaded by the row-normalised count."""
    t = Table(title="confusion matrix (rows: true, columns: predicted)", box=box.SIMPLE, pad_edge=False)
    t.add_column("", style="bold")
    for label in labels:
        t.add_column(Text(label[:3]), justify="right")
    for label, row in zip(labels, matrix, strict=False):
        total = max(sum(row), 1)
        cells = []
        for j, n in enumerate(row):
            share = n / total
            shade = int(232 + min(23, share * 23))
            style = f"on color({shade})" + (" bold green" if j == labels.index(label) else "")
            cells.append(f"[{style}]{n}[/]" if n else "[dim]·[/]")
        t.add_row(Text(label), *cells)
    return t


def styles_table(rows: list[dict]) -> Table:
    """The poets a model writes as (``write --style NAME``), with their training poems."""
    table = Table(title="styles (write --style NAME)", box=box.SIMPLE)
    table.add_column("style")
    table.add_column("training poems", justify="right")
    for row in rows:
        table.add_row(Text(row["style"]), f"{row['poems']:,}")
    return table


def styles_plain(rows: list[dict]) -> str:
    return "\n".join(f"{row['style']}\t{row['poems']}" for row in rows)


def tunes_table(rows: list[dict]) -> Table:
    """The 词 tunes ``write --form TUNE`` writes (``tunes.listing``): poems, and each variant's lines."""
    table = Table(title="词 tunes (write --form TUNE [--variant N])", box=box.SIMPLE)
    for name, justify in (("tune", "left"), ("training ci", "right"), ("variants: lines/characters (share)", "left")):
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(Text(row["tune"]), f"{row['poems']:,}", _variants(row))
    return table


def _variants(row: dict) -> str:
    return "  ".join(f"{v['variant']}: {v['lines']}/{v['chars']} ({v['share']:.0%})" for v in row["variants"])


def tunes_plain(rows: list[dict]) -> str:
    return "\n".join(f"{row['tune']}\t{row['poems']}\t{_variants(row)}" for row in rows)


def key_values(data: dict, title: str | None = None) -> Table:
    t = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAD, show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    for key, value in data.items():
        t.add_row(Text(str(key)), Text(f"{value:.4g}" if isinstance(value, float) else str(value)))
    return t


def corpus_info_tables(info: dict) -> Group:
    from poetgen.corpora import serves

    head = key_values({k: info[k] for k in ("corpus", "fingerprint", "script", "samples", "distinct_chars", "tokens")
                       if info.get(k) is not None}, title=f"corpus {info['corpus']}")
    splits = key_values(info["splits"], title="split")
    cats = Table(title="per language" if serves(info["corpus"]) == "names" else "per form", box=box.SIMPLE_HEAD)
    cats.add_column("category")
    cats.add_column("samples", justify="right")
    for k, v in info["categories"].items():
        cats.add_row(Text(k), str(v))
    hist = Table(title="length (characters)", box=box.SIMPLE_HEAD)
    hist.add_column("length")
    hist.add_column("samples", justify="right")
    hist.add_column("")
    top = max(info["length_histogram"].values(), default=1)
    for k, v in info["length_histogram"].items():
        hist.add_row(k, str(v), "[cyan]" + "█" * max(1, round(30 * v / top)) + "[/]")
    return Group(Columns([head, splits]), Columns([cats, hist]))
