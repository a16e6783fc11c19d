"""The shell's command table: the CLI's commands (run through ``poetgen.cli`` with the settings
as defaults) and the shell's own (`set`, `show`, `load`, `models`, `help`, `quit`). The table also
gives the help text and the tab-completion entries."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from poetgen.errors import PoetgenError, unknown
from poetgen.repl.models import KIND_NAMES, KINDS, Models
from poetgen.repl.settings import SETTING_OPTIONS, SETTINGS, Settings, setting_name, shown

if TYPE_CHECKING:
    from poetgen.checkpoint import Checkpoint


class Shell(Protocol):
    """What a command sees of the shell (``poetgen.repl.Repl``), declared here so that the command
    table does not import the shell that runs it (the two would import each other)."""

    settings: Settings
    models: Models
    out: Console
    err: Console
    last_poem: str

    def model(self, kind: str) -> Checkpoint: ...

    def resolve(self, name: str) -> str: ...

CLI_COMMANDS = {"write": "poems", "names": "names", "classify": "classify", "check": None, "score": "poems"}


@dataclass
class Command:
    name: str
    handler: Callable[[Shell, str], int | None]  # the exit code (None: 0)
    usage: str
    summary: str
    details: str = ""


COMMANDS: dict[str, Command] = {}
ALIASES = {"exit": "quit", "?": "help"}


def command(usage: str, summary: str, details: str = "") -> Callable:
    def register(fn: Callable[[Shell, str], None]) -> Callable[[Shell, str], None]:
        name = usage.split()[0]
        COMMANDS[name] = Command(name, fn, usage, summary, details)
        return fn

    return register


class Usage(PoetgenError):
    """A command typed with the wrong arguments (exit code 2 in scripts)."""


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError as e:  # an unclosed quote
        raise Usage(f"cannot read the arguments: {e}") from None


def _cli_command(name: str):
    """The click command behind ``poetgen NAME``."""
    import typer

    # the module that defines the app; importing it runs poetgen.cli, which registers every command
    from poetgen.cli.base import app

    group = typer.main.get_command(app)
    return group.get_command(None, name)  # type: ignore[arg-type]


def long_options(name: str) -> list[str]:
    """The long options of ``poetgen NAME`` (``--form``, ``--temp`` …), for completion and help."""
    return [opt for param in _cli_command(name).params for opt in param.opts if opt.startswith("--")]


def setting_help(key: str) -> str:
    """What setting ``key`` means, in the help of the CLI options it fills in (which states the
    library's defaults), one line per distinct text, then the words only ``set`` reads."""
    texts: dict[str, list[str]] = {}
    for name, options in SETTING_OPTIONS.items():
        if key in options:
            param = next(p for p in _cli_command(name).params if p.name == options[key])
            texts.setdefault(getattr(param, "help", None) or "", []).append(name)
    lines = [text if len(texts) == 1 else f"{', '.join(names)}: {text}" for text, names in texts.items()]
    words = SETTINGS[key].words
    return " · ".join([*lines, f"set: {words}"] if words else lines)


def run_cli(repl: Shell, name: str, words: list[str]) -> int:
    """Run ``poetgen NAME WORDS`` in this session: the settings as defaults, the session's models
    in place of the bundled ones, output on the session's consoles. Returns the exit code."""
    import typer

    import poetgen.cli.base as cli

    defaults = {option: getattr(repl.settings, key) for key, option in SETTING_OPTIONS.get(name, {}).items()
                if getattr(repl.settings, key) is not None}
    kind = CLI_COMMANDS[name]
    if kind is not None:
        repl.model(kind)  # load (or report a missing model) before parsing, as the old shell did
    with cli.embedded(repl.out, repl.err, repl.model):
        try:
            code = _cli_command(name).main(words, prog_name=name, standalone_mode=False, default_map=defaults)
        except cli.CLICK_ERROR as e:  # parsing: an unknown option, a value that is not a number
            raise Usage(cli.one_line(e.format_message())) from None
        except typer.Exit as e:
            code = e.exit_code
    if cli.SESSION["last_poem"]:
        repl.last_poem = cli.SESSION["last_poem"]
    return code if isinstance(code, int) else 0


def _runs(name: str, *, before: tuple[str, ...] = (), example: str = "") -> Callable[[Shell, str], int]:
    """A handler that runs ``poetgen NAME BEFORE… WORDS…``; with ``example``, WORDS may not be empty."""

    def handler(repl: Shell, args: str) -> int:
        words = _words(args)
        if example and not words:
            usage = next(c.usage for c in COMMANDS.values() if c.handler is handler)
            raise Usage(f"usage: {usage} — for example: {example}")
        return run_cli(repl, name, [*before, *words])

    return handler


command("write [PREFIX] [OPTIONS]", "write a poem that continues PREFIX (the options of `poetgen write`)",
        "Settings fill in what the line does not give: temp, top_k, top_p, seed, form, script, rhyme,\n"
        "scheme, n, mood, repeats, copies.  Examples: write 青山 · write 明月 -n 3 --form 五律 · write --temp 0.5",
        )(_runs("write"))
command("acrostic HEADS [OPTIONS]", "write an acrostic (藏头诗): `write HEADS --acrostic`",
        "The same options and settings as write.  Example: acrostic 春夏秋冬 --form 五绝",
        )(_runs("write", before=("--acrostic",), example="acrostic 春夏秋冬"))
command("names [LANGUAGE] [OPTIONS]", "names that sound like LANGUAGE ('all', the default: a few per language)",
        "LANGUAGE is case-insensitive and may be a prefix (rus → Russian); options as `poetgen names`.\n"
        "Uses temp, top_k, top_p, seed, novel.  Examples: names Russian -n 5 · names jap --start Ta · names",
        )(_runs("names"))
command("classify NAME... [OPTIONS]", "which language is each surname from (top 3)",
        "Example: classify Dovesky Jackson Hou · classify Hou --top 5",
        )(_runs("classify", example="classify Dovesky Jackson Hou"))


@command("check [POEM] [OPTIONS]", "form, 平仄, rhyme group and rules of a poem (default: the last one written)",
         "Uses the scheme setting.  Example: check 床前明月光，疑是地上霜。举头望明月，低头思故乡。")
def cmd_check(repl: Shell, args: str) -> int:
    words = _words(args)
    if not [w for w in words if not w.startswith("-")]:
        if not repl.last_poem:
            raise Usage("usage: check POEM — or write a poem first and type check")
        words = [repl.last_poem, *words]
    return run_cli(repl, "check", words)


command("score FILE [OPTIONS]", "per-character NLL and perplexity of each line of FILE under the poem model",
        )(_runs("score"))


@command("set NAME VALUE", "change a setting, or `set NAME default` (show settings lists them)",
         "Examples: set temp 0.7 · set top_k 8 · set top_p 0.9 · set seed 3 · set form 五律 · "
         "set script traditional · set rhyme off · set temp default")
def cmd_set(repl: Shell, args: str) -> None:
    words = args.split(maxsplit=1)
    if not words:
        show_settings(repl)
        return
    key = setting_name(words[0])
    if len(words) == 1:
        raise Usage(f"usage: set {key} VALUE — {setting_help(key)} · now {shown(repl.settings, key)}")
    raw = words[1].strip()
    value = None if raw.lower() == "default" else SETTINGS[key].parse(raw)
    setattr(repl.settings, key, value)
    repl.out.print(f"{key} = {escape(shown(repl.settings, key))}", style="dim")


def show_settings(repl: Shell) -> None:
    table = Table(title="settings", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_column(style="dim")
    for f in fields(Settings):
        table.add_row(f.name, escape(shown(repl.settings, f.name)), escape(setting_help(f.name)))
    repl.out.print(table)


@command("show settings|models", "show the current settings, or the models")
def cmd_show(repl: Shell, args: str) -> None:
    what = args.strip().lower() or "settings"
    if what == "settings":
        show_settings(repl)
    elif what == "models":
        cmd_models(repl, "")
    else:
        raise unknown("thing to show", what, ["settings", "models"])


@command("load PATH", "load a checkpoint file or run folder; its kind (poems, names, classify) is detected")
def cmd_load(repl: Shell, args: str) -> None:
    path = args.strip()
    if not path:
        raise Usage("usage: load PATH — a .safetensors checkpoint or a run folder")
    ck = repl.models.add(path)
    c = ck.config
    extra = f", {len(ck.categories)} categories" if ck.categories else ""
    repl.out.print(f"[green]loaded[/] {KIND_NAMES[ck.kind]} model {escape(str(ck.path))} "
                   f"({c.model} {c.layers}×{c.hidden}, vocabulary {c.vocab_size}{extra})")


@command("models", "which models are loaded, and from where")
def cmd_models(repl: Shell, args: str) -> None:
    from poetgen.checkpoint import bundled_checkpoint

    table = Table(box=None, pad_edge=False)
    for col in ("kind", "state", "source"):
        table.add_column(col, style="bold" if col == "kind" else None)
    for kind in KINDS:
        if kind in repl.models.loaded:
            ck = repl.models.loaded[kind]
            c = ck.config
            state, source = f"[green]loaded[/] ({c.model} {c.layers}×{c.hidden})", str(ck.path)
        elif repl.models.sources.get(kind) is not None:
            state, source = "loads on first use", str(repl.models.sources[kind])
        else:
            try:
                state, source = "loads on first use", f"bundled: {bundled_checkpoint(kind)}"
            except PoetgenError:
                state, source = "[red]missing[/]", "none bundled: `load PATH`"
        table.add_row(kind, state, escape(source))
    repl.out.print(table)


@command("help [COMMAND]", "list the commands, or explain one")
def cmd_help(repl: Shell, args: str) -> None:
    name = args.strip().lower()
    if name:
        cmd = COMMANDS[repl.resolve(name)]
        repl.out.print(f"[bold]{escape(cmd.usage)}[/] — {escape(cmd.summary)}")
        if cmd.details:
            repl.out.print(escape(cmd.details), style="dim")
        cli_name = "write" if cmd.name == "acrostic" else cmd.name
        if cli_name in CLI_COMMANDS:
            repl.out.print("options: " + " ".join(long_options(cli_name)), style="dim")
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for cmd in COMMANDS.values():
        table.add_row(escape(cmd.usage), escape(cmd.summary))
    repl.out.print(table)
    repl.out.print("Tab completes commands, settings and languages · Ctrl-C cancels · Ctrl-D quits", style="dim")


class Quit(Exception):
    pass


@command("quit", "leave (also: exit, Ctrl-D)")
def cmd_quit(repl: Shell, args: str) -> None:
    raise Quit
