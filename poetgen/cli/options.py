"""The options of the commands that sample (``write``, ``names``) and of ``check``, declared once.

Each is a flag and a help text that states the library's own default, read from
``poetgen.defaults`` (never written here), and each defaults to None: a value left out is not
passed, so the library's default is the one used. The shell runs these very commands with its
settings as their defaults (``repl/settings.SETTING_OPTIONS``) and shows these help texts for
its settings, so the CLI and the shell speak one grammar with one set of defaults.
"""

from __future__ import annotations

from typing import Annotated

import typer

from poetgen.defaults import (
    MAX_CANDIDATES,
    NAME_GUIDANCE,
    NAME_RERANK,
    NAME_TEMPERATURE,
    NAMES_PER_CALL,
    NAMES_PER_LANGUAGE,
    POEM_CANDIDATES,
    POEM_TEMPERATURE,
    POEMS_PER_CALL,
    RHYME_SCHEME,
    TOP_K,
    TOP_P,
)
from poetgen.verse import FORMS

SAMPLING = "Sampling"
FORM = "Form and rhyme"


def _temperature(default: float) -> typer.models.OptionInfo:
    return typer.Option("--temp", "--temperature", help=f"Sampling temperature (0 = greedy; default {default:g}).",
                        rich_help_panel=SAMPLING)


PoemTemp = Annotated[float | None, _temperature(POEM_TEMPERATURE)]
NameTemp = Annotated[float | None, _temperature(NAME_TEMPERATURE)]
TopK = Annotated[int | None, typer.Option("--top-k", help=f"Keep the k most likely tokens (0 = off; default {TOP_K}).",
                                          rich_help_panel=SAMPLING)]
TopP = Annotated[float | None, typer.Option("--top-p", help=f"Nucleus sampling mass in (0, 1] (1 = off; default "
                                            f"{TOP_P:g}).", rich_help_panel=SAMPLING)]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed: the same seed gives the same output "
                                          "(default: a random one).", rich_help_panel=SAMPLING)]
Greedy = Annotated[bool, typer.Option("--greedy", help="Always take the most likely token (ignores --temp).",
                                      rich_help_panel=SAMPLING)]

# write
Candidates = Annotated[int | None, typer.Option(
    help=f"Write K candidates per poem and keep the one the model finds most fluent (1 to {MAX_CANDIDATES}; "
         f"default {POEM_CANDIDATES}; 1 = off).", rich_help_panel=FORM)]
PoemCount = Annotated[int | None, typer.Option("--num", "-n", help="How many poems (sampled as one batch; default "
                                               f"{POEMS_PER_CALL}).")]
Form = Annotated[str | None, typer.Option(help=f"{', '.join(FORMS)} or auto (the default); acrostics of any length "
                                          "also 五古 or 七古; or a 词 tune (水调歌头 …; 'list' lists them).",
                                          rich_help_panel=FORM)]
Variant = Annotated[int | None, typer.Option(help="A 词 tune's variant (又一体), 1 the most common (the default); "
                                             "write --form list shows them.", rich_help_panel=FORM)]
Rhyme = Annotated[bool | None, typer.Option("--rhyme/--no-rhyme", help="Force a 平 rhyme on the even lines "
                                            "(the default).", rich_help_panel=FORM)]
SCHEME_HELP = f"pingshui (平水韵) or xinyun (中华新韵); default {RHYME_SCHEME}."
RhymeScheme = Annotated[str | None, typer.Option(help=SCHEME_HELP, rich_help_panel=FORM)]
CheckScheme = Annotated[str | None, typer.Option("--scheme", help=SCHEME_HELP)]
AllowRepeats = Annotated[bool, typer.Option("--allow-repeats", help="Allow repeats: a character twice in a line or "
                                            "thrice in a poem, a two-character phrase twice.", rich_help_panel=FORM)]
AllowCopies = Annotated[bool, typer.Option("--allow-copies", help="Allow lines copied from the corpus.",
                                           rich_help_panel=FORM)]

# names
NameCount = Annotated[int | None, typer.Option("--num", "-n", help=f"How many names (default {NAMES_PER_CALL}; "
                                               f"{NAMES_PER_LANGUAGE} per language with --lang all).")]
Guidance = Annotated[float | None, typer.Option(
    help=f"Push each letter towards the language (0 = plain sampling; default {NAME_GUIDANCE:g}).")]
Rerank = Annotated[float | None, typer.Option(
    help=f"Prefer whole names that read as the language (0 = off; default {NAME_RERANK:g}).")]
Novel = Annotated[bool, typer.Option("--novel", help="Only names not in the training data.")]
