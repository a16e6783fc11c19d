"""`poetgen write`, `check`, `eval` and `score`: poems written, checked and judged, text scored."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.markup import escape

import poetgen.cli.base as base
from poetgen.cli.base import (
    SESSION,
    CheckpointOpt,
    DataDir,
    Json,
    app,
    busy,
    emit_json,
    given_only,
    handled,
    load_model,
    present,
    sampling_of,
    show,
)
from poetgen.cli.options import (
    FORM,
    AllowCopies,
    AllowRepeats,
    Candidates,
    CheckScheme,
    Form,
    Greedy,
    PoemCount,
    PoemTemp,
    Rhyme,
    RhymeScheme,
    Seed,
    TopK,
    TopP,
    Variant,
)
from poetgen.defaults import RHYME_SCHEME
from poetgen.errors import PoetgenError

# ---------------------------------------------------------------------------------------------
# poems


@app.command()
@handled
def write(
    prefix: Annotated[str, typer.Argument(help="Opening characters (or acrostic heads with --acrostic).")] = "",
    acrostic: Annotated[bool, typer.Option("--acrostic", help="One head character per line (藏头诗).",
                                           rich_help_panel=FORM)] = False,
    form: Form = None,
    variant: Variant = None,
    theme: Annotated[str | None, typer.Option(help="Keywords every poem holds, one per line: 秋,月,思乡 (1–2 "
                                              "characters each).", rich_help_panel=FORM)] = None,
    style: Annotated[str | None, typer.Option(help="Write as this poet (李白, 杜甫 …); 'list' lists the model's "
                                              "poets.", rich_help_panel=FORM)] = None,
    mood: Annotated[str | None, typer.Option(help="Text fed to the model first to set the mood (not printed).",
                                             rich_help_panel=FORM)] = None,
    rhyme: Rhyme = None,
    rhyme_scheme: RhymeScheme = None,
    allow_repeats: AllowRepeats = False,
    allow_copies: AllowCopies = False,
    num: PoemCount = None,
    candidates: Candidates = None,
    temp: PoemTemp = None,
    top_k: TopK = None,
    top_p: TopP = None,
    seed: Seed = None,
    greedy: Greedy = False,
    script: Annotated[str | None, typer.Option(help="Output script: simplified or traditional (default: the "
                                               "model's own).")] = None,
    checkpoint: CheckpointOpt = None,
    as_json: Json = False,
) -> None:
    """Write a poem that continues PREFIX — [bold]poetgen write 青山 --temp 0.8[/]."""
    from poetgen.poems import tunes
    from poetgen.poems.write import style_list, write_poems
    from poetgen.render import poem_panel, poem_plain, styles_plain, styles_table, tunes_plain, tunes_table

    if form is not None and form.strip().lower() == "list":
        show(tunes.listing(), as_json, tunes_table, tunes_plain)
        return
    sampling = sampling_of(temp, top_k, top_p, seed, greedy)
    ck = load_model("ci" if form is not None and tunes.is_tune(form) else "poems", checkpoint)
    if style is not None and style.strip().lower() == "list":
        if not ck.styles:
            raise PoetgenError(f"{ck.path.name} is not conditioned on poets: it has no styles to list")
        show(style_list(ck), as_json, styles_table, styles_plain)
        return
    options = given_only({"form": form, "variant": variant, "n": num, "rhyme": rhyme, "rhyme_scheme": rhyme_scheme,
                          "mood": mood, "script": script, "candidates": candidates, "style": style,
                          "theme": [w for w in theme.replace("，", ",").split(",") if w.strip()] if theme is not None
                          else None})
    with busy(f"writing {num} poems…") if num and num > 1 else contextlib.nullcontext():
        poems = write_poems(ck, prefix, acrostic=acrostic, sampling=sampling, allow_repeats=allow_repeats,
                            allow_copies=allow_copies, **options)
    SESSION["last_poem"] = poems[-1].text
    if as_json:
        emit_json([p.to_dict() for p in poems])
        return
    for poem in poems:
        shown = poem.to_dict()
        present(poem_panel(shown), lambda shown=shown: poem_plain(shown))


@app.command()
@handled
def check(
    poem: Annotated[str, typer.Argument(help="The poem, lines ending in ，。？！；")],
    scheme: CheckScheme = None,
    form: Annotated[str | None, typer.Option(help="Check a ci as this tune (词牌); by default a ci's tune is "
                                             "found from its structure.")] = None,
    as_json: Json = False,
) -> None:
    """Form, per-character 平/仄, rhyme group and which rules a poem (shi or ci) keeps."""
    from poetgen.poems.check import check_poem
    from poetgen.render import check_plain, check_table

    if not poem.strip():
        raise PoetgenError("the poem is empty")
    result = check_poem(poem, RHYME_SCHEME if scheme is None else scheme, form).to_dict()
    show(result, as_json, check_table, check_plain)


@app.command("eval")
@handled
def evaluate(
    checkpoint: CheckpointOpt = None,
    samples: Annotated[int, typer.Option(help="Poems per form.")] = 200,
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Json = False,
) -> None:
    """Evaluate a model: poems (form, rhyme, copies, perplexity) or a names classifier / generator."""
    from poetgen.config import check_seed
    from poetgen.errors import bad_value

    check_seed(seed)
    if not 1 <= samples <= 100_000:  # for every kind of model (a classifier's ignores it), before the slow load
        raise bad_value("samples", f"must be between 1 and 100000, got {samples}")
    ck = load_model(None, checkpoint)
    if ck.kind == "poems":
        from poetgen.poems.evaluate import evaluate_poems

        result = evaluate_poems(ck, samples=samples, seed=seed, data_dir=data_dir)
    elif ck.kind == "classify":
        from poetgen.names.evaluate import evaluate_classifier

        result = evaluate_classifier(ck, data_dir)
    else:
        from poetgen.names.evaluate import evaluate_generator

        result = evaluate_generator(ck, None, data_dir)
    if as_json:
        emit_json(result)
        return
    _render_eval(result)


def _render_eval(result: dict) -> None:
    from poetgen.render import confusion_table, key_values

    flat = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
    base.out.print(key_values(flat, title="evaluation"))
    for key, value in result.items():
        if isinstance(value, dict) and all(isinstance(v, int | float | str) for v in value.values()):
            base.out.print(key_values(value, title=key))
    if "confusion" in result and "labels" in result:
        base.out.print(confusion_table(result["labels"], result["confusion"]))




@app.command()
@handled
def score(
    source: Annotated[str, typer.Argument(help="A UTF-8 text file, one text per line, or '-' for stdin.")],
    checkpoint: CheckpointOpt = None,
    category: Annotated[str | None, typer.Option(help="Condition on this form / language (default: detected "
                                                 "from the text, else a mixture of all).")] = None,
    style: Annotated[str | None, typer.Option(help="Condition on this poet (a styled poem model; default any).")]
    = None,
    as_json: Json = False,
) -> None:
    """Per-character NLL (nats), perplexity and bits per character of each line, and in total."""
    from poetgen.paths import input_file
    from poetgen.render import key_values
    from poetgen.score import read_lines, score_lines, summarize

    if not source.strip():
        raise PoetgenError("give a text file to score, or '-' to read standard input")
    path = input_file(source) if source != "-" else None  # before the slow model load
    ck = load_model(None, checkpoint)
    lines = read_lines(path) if path else read_lines(base.stdin_bytes(), "stdin")
    scores = list(score_lines(ck, lines, category=category, style=style))
    summary = summarize(scores)
    if not summary["chars"]:
        raise PoetgenError(f"nothing to score: all {summary['oov']} characters are outside the model's vocabulary "
                           f"({summary['unknown'][:20]})")
    if as_json:
        emit_json([*(s.to_dict() for s in scores), {"summary": summary}])
        return
    from rich.table import Table

    table = Table(box=None)
    for col in ("line", "nll/char", "ppl", "chars", "oov", "text"):
        table.add_column(col, justify="right" if col != "text" else "left")
    for s in scores[:200]:  # the totals cover every line; the table shows the first 200
        per = f"{s.nll_per_char:.3f}" if s.nll_per_char is not None else "-"
        ppl = f"{s.perplexity:.1f}" if s.perplexity is not None else "-"
        table.add_row(str(s.line), per, ppl, str(s.chars), str(s.oov), escape(s.text[:40]))
    base.out.print(table)
    if summary["oov"]:
        base.err.print(f"[yellow]{summary['oov']} characters outside the vocabulary were not scored:[/] "
                  f"{escape(summary['unknown'][:80])}", soft_wrap=True)
    base.out.print(key_values({k: v for k, v in summary.items() if k != "unknown" and v is not None}, title="total"))
