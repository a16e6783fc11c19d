"""`poetgen names` and `poetgen classify`: surnames invented and recognised."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

import poetgen.cli.base as base
from poetgen.cli.base import (
    CheckpointOpt,
    Json,
    app,
    busy,
    finite,
    handled,
    load_model,
    path_value,
    sampling_of,
    show,
)
from poetgen.cli.options import Greedy, Guidance, NameCount, NameTemp, Novel, Rerank, Seed, TopK, TopP
from poetgen.defaults import CLASSIFY_TOP
from poetgen.errors import PoetgenError

# ---------------------------------------------------------------------------------------------
# names


@app.command()
@handled
def names(
    language: Annotated[str | None, typer.Argument(help="The language, as --lang.", show_default=False)] = None,
    lang: Annotated[str | None, typer.Option("--lang", "-l", help="Language (case-insensitive, prefix ok) or 'all' "
                                             "(the default).", show_default=False)] = None,
    num: NameCount = None,
    start: Annotated[str, typer.Option(help="Force the first letters.")] = "",
    novel: Novel = False,
    temp: NameTemp = None,
    top_k: TopK = None,
    top_p: TopP = None,
    seed: Seed = None,
    greedy: Greedy = False,
    guidance: Guidance = None,
    rerank: Rerank = None,
    checkpoint: CheckpointOpt = None,
    as_json: Json = False,
) -> None:
    """Names that sound like a language — [bold]poetgen names Russian -n 10[/] (or --lang Russian)."""
    from poetgen.names.generate import generate_all, generate_names
    from poetgen.names.languages import resolve_language
    from poetgen.render import names_by_language, names_by_language_plain, names_columns, names_plain

    sampling = sampling_of(temp, top_k, top_p, seed, greedy)
    ck = load_model("names", checkpoint)
    if language is not None and lang is not None and len({"all" if word.strip().lower() == "all" else
                                                          resolve_language(ck, word) for word in (language, lang)}) > 1:
        raise PoetgenError(f"give the language once: '{language}' as an argument or '{lang}' with --lang, not both")
    lang = next((word for word in (language, lang) if word is not None), "all")  # `--lang ""` is no language
    options = {"start": start, "sampling": sampling, "novel": novel, "guidance": guidance, "rerank": rerank}
    if lang.lower() == "all":
        with busy("drawing names…"):
            table = generate_all(ck, num, **options)
        show(table, as_json, names_by_language, names_by_language_plain)
        return
    language = resolve_language(ck, lang)
    with busy("drawing names…"):
        result = generate_names(ck, language, num, **options)
    if not result:  # nothing asked for was found: not a success
        why = (" (greedy decoding draws one name per language and start" +
               (", and it is in the training data" if novel else "") + ")" if sampling.greedy else "")
        raise PoetgenError(f"no {'new ' if novel else ''}{language} names found{why}", code=1)
    if num is not None and len(result) < num:
        base.err.print(f"[yellow]only {len(result)} distinct names found[/]")
    show(result, as_json, lambda names: names_columns(names, title=language), names_plain)


@app.command()
@handled
def classify(
    names_: Annotated[list[str] | None, typer.Argument(metavar="NAMES", help="Surnames, or '-' to read stdin.")]
    = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", parser=path_value,
                                              help="Read names from a file, one per line.")] = None,
    top: Annotated[int | None, typer.Option(help=f"How many languages to show per name (default {CLASSIFY_TOP}; 1 in "
                                            "the TSV that --file and '-' stream).", show_default=False)] = None,
    checkpoint: CheckpointOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON: one document, or with "
                                          "--file or '-' JSON Lines (one object per name, as it is read).")]
    = False,
) -> None:
    """Which language is a surname from? — [bold]poetgen classify Dovesky Jackson Hou[/].

    With --file or '-', names are streamed in bounded memory: one TSV row per line (name, then each
    language and its probability, then sure/unsure), or with --json one JSON object per line.
    """
    from poetgen.names.classify import classify as classify_names
    from poetgen.render import classify_plain, classify_table

    if top is not None and top < 1:
        raise PoetgenError(f"--top must be at least 1, got {top}")
    source = _name_source(names_ or [], file)
    ck = load_model("classify", checkpoint)
    streaming = file is not None or names_ == ["-"]
    shown = top if top is not None else 1 if streaming and not as_json else CLASSIFY_TOP
    predictions = classify_names(ck, source, top=min(shown, len(ck.categories)), lines=streaming)
    if as_json and streaming:  # JSON Lines: one result per input line, in bounded memory
        for p in predictions:
            sys.stdout.write(json.dumps(finite(p.to_dict()), ensure_ascii=False) + "\n")
        return
    if streaming:
        for p in predictions:
            pairs = "\t".join(f"{language}\t{prob:.4f}" for language, prob in p.top)
            verdict = "unsure" if p.unsure else "sure"  # last, so scripts reading three columns still work
            sys.stdout.write(f"{p.name}\t{pairs}\t{verdict}\n")
        return
    results = [p.to_dict() for p in predictions]
    show(results, as_json, classify_table, classify_plain)  # the renderer shows names as plain text, never as markup


def _name_source(args: list[str], file: Path | None) -> Iterator[str]:
    """The names to classify, one per line of a file or stdin (read strictly as UTF-8, alike), or
    the arguments."""
    from poetgen.paths import input_file
    from poetgen.score import read_lines

    if file is not None and args:
        raise PoetgenError("give names as arguments or with --file, not both")
    if file is not None:
        return (line.rstrip("\r\n") for line in read_lines(input_file(file)))
    if args == ["-"]:
        return (line.rstrip("\r\n") for line in read_lines(base.stdin_bytes(), "stdin"))
    if not args:
        raise PoetgenError("give at least one name (or '-' to read names from stdin)")
    return iter(args)
