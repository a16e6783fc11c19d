"""The interactive shell: ``poetgen`` with no command (or ``poetgen repl``).

A loop that reads one command a line. It speaks the CLI's grammar: ``write 青山 --form 五律 --temp
0.9``, ``names Russian -n 5``, ``classify Hou``, ``check``, ``score FILE`` run the very commands of
``poetgen.cli`` (parsed by the same options, mapped onto the library by the same code, rendered by the
same functions), with the values of ``set`` as their defaults and the shell's models in place of
``--checkpoint``. The shell's own commands (``set``, ``show``, ``load``, ``models``, ``help``,
``quit``) are short handlers in the command table below, which also gives the help text and the
tab-completion entries.

* On a terminal it uses prompt_toolkit: line editing, history in ``paths.cache_dir() / "history"``,
  suggestions from history, tab completion, and a bottom toolbar with the models and settings.
* With stdin or stdout not a terminal (``printf 'write 青山\\n' | poetgen``) it reads plain lines,
  prints no prompt and no escape codes, sends errors to stderr, and exits 0 when every command
  succeeded, else with the exit code of the first failure (2 usage, 1 runtime, 130 interrupted).
* Models load lazily, on the first command that needs them, and stay loaded.
* Ctrl-C cancels the running command (even mid-generation) and returns to the prompt; Ctrl-D,
  ``quit`` or ``exit`` leave with 0. Errors are one line; the session always survives.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from poetgen import __version__, paths
from poetgen.corpora import SCRIPTS
from poetgen.errors import PoetgenError, closest, unknown
from poetgen.poems.prosody import SCHEMES
from poetgen.poems.text import FORMS

KINDS = ("poems", "names", "classify")
KIND_NAMES = {"poems": "poem", "names": "names", "classify": "names classifier"}
# Completion for `names LANGUAGE` before the names model is loaded (loading it just to complete a
# word would break "models load on first use"): the 18 languages of the PyTorch tutorial's data.
DEFAULT_LANGUAGES = ("Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish",
                     "Italian", "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish",
                     "Vietnamese")
PROMPT = "poetgen> "


# ---------------------------------------------------------------------------------------------
# Settings: `set NAME VALUE`, `show settings`


@dataclass
class Settings:
    """What ``set`` changed; None everywhere else, so the command's (the library's) default holds."""

    temp: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    form: str | None = None
    script: str | None = None
    rhyme: bool | None = None
    scheme: str | None = None
    n: int | None = None
    mood: str | None = None
    repeats: bool | None = None
    copies: bool | None = None
    novel: bool | None = None


# Which option of which CLI command a setting fills in (click's parameter names).
SETTING_OPTIONS: dict[str, dict[str, str]] = {
    "write": {"temp": "temp", "top_k": "top_k", "top_p": "top_p", "seed": "seed", "form": "form",
              "script": "script", "rhyme": "rhyme", "scheme": "rhyme_scheme", "n": "num", "mood": "mood",
              "repeats": "allow_repeats", "copies": "allow_copies"},
    "names": {"temp": "temp", "top_k": "top_k", "top_p": "top_p", "seed": "seed", "novel": "novel"},
    "check": {"scheme": "scheme"},
}
# The CLI commands the shell runs, and the kind of model each runs on by default.
CLI_COMMANDS = {"write": "poems", "names": "names", "classify": "classify", "check": None, "score": "poems"}


def _number(kind: type, low: float, high: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise PoetgenError(f"expected {what}, got '{text}'") from None
        if not low <= value <= high:
            raise PoetgenError(f"expected {what}, got {text}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text in choices:
            return text
        raise unknown("value", text, list(choices))

    return parse


def _switch(text: str) -> bool:
    words = {"on": True, "yes": True, "true": True, "1": True, "off": False, "no": False, "false": False, "0": False}
    if text.lower() in words:
        return words[text.lower()]
    raise PoetgenError(f"expected on or off, got '{text}'")


def _seed(text: str) -> int | None:
    from poetgen.sample import MAX_SEED

    if text.lower() in ("none", "off", "random"):
        return None
    return _number(int, 0, MAX_SEED, "a whole number ≥ 0, or 'none' for a random seed")(text)


@dataclass
class Setting:
    parse: Callable[[str], Any]
    help: str
    values: tuple[str, ...] = ()  # offered by tab completion


SETTINGS: dict[str, Setting] = {
    "temp": Setting(_number(float, 0, 100, "a temperature ≥ 0"), "sampling temperature (0 = greedy)"),
    "top_k": Setting(_number(int, 0, 10**6, "a whole number ≥ 0"), "keep the k most likely tokens (0 = off)"),
    "top_p": Setting(_number(float, 1e-9, 1, "a number in (0, 1]"), "nucleus sampling mass (1 = off)"),
    "seed": Setting(_seed, "random seed: the same seed gives the same output ('none' = random)", ("none",)),
    "form": Setting(_choice("auto", *FORMS), "poem form", ("auto", *FORMS)),
    "script": Setting(_choice(*SCRIPTS), "output script of poems (default: as the model was trained)", SCRIPTS),
    "rhyme": Setting(_switch, "force a 平 rhyme on the even lines", ("on", "off")),
    "scheme": Setting(_choice(*SCHEMES), "rhyme scheme for writing and check", SCHEMES),
    "n": Setting(_number(int, 1, 1000, "a count from 1 to 1000"), "poems per write / acrostic"),
    "mood": Setting(str, "text fed to the poem model first to set the mood", ()),
    "repeats": Setting(_switch, "allow a character twice in a line", ("on", "off")),
    "copies": Setting(_switch, "allow lines copied from the training poems", ("on", "off")),
    "novel": Setting(_switch, "only names not in the training data", ("on", "off")),
}
SETTING_ALIASES = {"temperature": "temp", "topk": "top_k", "topp": "top_p", "num": "n", "count": "n",
                   "rhyme_scheme": "scheme", "allow_repeats": "repeats", "allow_copies": "copies"}


def setting_name(text: str) -> str:
    key = text.lower().replace("-", "_")
    key = SETTING_ALIASES.get(key, key)
    if key not in SETTINGS:
        raise unknown("setting", text, list(SETTINGS))
    return key


# ---------------------------------------------------------------------------------------------
# Models: loaded on first use, kept for the session


class Models:
    def __init__(self, sources: dict[str, Path | str | None]) -> None:
        self.sources = {kind: Path(p) if p is not None else None for kind, p in sources.items()}
        self.loaded: dict[str, Any] = {}  # kind -> Checkpoint
        self.missing: set[str] = set()  # kinds whose loading failed (shown in the toolbar)

    def get(self, kind: str):
        """The checkpoint for ``kind``: loaded now if it is the first use, else the one in memory."""
        if kind not in self.loaded:
            from poetgen.checkpoint import bundled_checkpoint, load_for

            source = self.sources.get(kind)
            self.missing.add(kind)  # until it loads
            if source is None:
                try:
                    bundled_checkpoint(kind)
                except PoetgenError:
                    raise PoetgenError(f"no {KIND_NAMES[kind]} model: none is bundled and none loaded; "
                                       "`load PATH` a checkpoint (train one with `poetgen train`)", code=1) from None
            self.loaded[kind] = load_for(kind, source)
            self.missing.discard(kind)
        return self.loaded[kind]

    def add(self, path: str):
        """Load a checkpoint of any kind; it replaces the model of its kind."""
        from poetgen.checkpoint import load_checkpoint

        ck = load_checkpoint(path)
        self.loaded[ck.kind] = ck
        self.sources[ck.kind] = ck.path
        self.missing.discard(ck.kind)
        return ck

    def source_label(self, kind: str) -> str:
        source = self.loaded[kind].path if kind in self.loaded else self.sources.get(kind)
        if source is None:
            return "bundled"
        return source.parent.name if source.stem in ("best", "last") else source.stem

    def languages(self) -> Iterable[str]:
        return self.loaded["names"].categories if "names" in self.loaded else DEFAULT_LANGUAGES


# ---------------------------------------------------------------------------------------------
# The command table


@dataclass
class Command:
    name: str
    handler: Callable[[Repl, str], int | None]  # the exit code (None: 0)
    usage: str
    summary: str
    details: str = ""


COMMANDS: dict[str, Command] = {}
ALIASES = {"exit": "quit", "?": "help"}


def command(usage: str, summary: str, details: str = "") -> Callable:
    def register(fn: Callable[[Repl, str], None]) -> Callable[[Repl, str], None]:
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

    from poetgen.cli import app

    group = typer.main.get_command(app)
    return group.get_command(None, name)  # type: ignore[arg-type]


def _long_options(name: str) -> list[str]:
    """The long options of ``poetgen NAME`` (``--form``, ``--temp`` …), for completion and help."""
    return [opt for param in _cli_command(name).params for opt in param.opts if opt.startswith("--")]


def run_cli(repl: Repl, name: str, words: list[str]) -> int:
    """Run ``poetgen NAME WORDS`` in this session: the settings as defaults, the session's models
    in place of the bundled ones, output on the session's consoles. Returns the exit code."""
    import typer

    from poetgen.cli import base as cli

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


def _runs(name: str, *, before: tuple[str, ...] = (), example: str = "") -> Callable[[Repl, str], int]:
    """A handler that runs ``poetgen NAME BEFORE… WORDS…``; with ``example``, WORDS may not be empty."""

    def handler(repl: Repl, args: str) -> int:
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
def cmd_check(repl: Repl, args: str) -> int:
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
def cmd_set(repl: Repl, args: str) -> None:
    words = args.split(maxsplit=1)
    if not words:
        show_settings(repl)
        return
    key = setting_name(words[0])
    if len(words) == 1:
        raise Usage(f"usage: set {key} VALUE — {SETTINGS[key].help}; now {_shown(repl.settings, key)}")
    raw = words[1].strip()
    value = None if raw.lower() == "default" else SETTINGS[key].parse(raw)
    setattr(repl.settings, key, value)
    repl.out.print(f"{key} = {escape(_shown(repl.settings, key))}", style="dim")


def _shown(settings: Settings, key: str) -> str:
    value = getattr(settings, key)
    if value is None:
        return "none (random)" if key == "seed" else "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "temp" and value == 0:
        return "0 (greedy)"
    return repr(value) if key == "mood" else str(value)


def show_settings(repl: Repl) -> None:
    table = Table(title="settings", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_column(style="dim")
    for f in fields(Settings):
        table.add_row(f.name, escape(_shown(repl.settings, f.name)), SETTINGS[f.name].help)
    repl.out.print(table)


@command("show settings|models", "show the current settings, or the models")
def cmd_show(repl: Repl, args: str) -> None:
    what = args.strip().lower() or "settings"
    if what == "settings":
        show_settings(repl)
    elif what == "models":
        cmd_models(repl, "")
    else:
        raise unknown("thing to show", what, ["settings", "models"])


@command("load PATH", "load a checkpoint file or run folder; its kind (poems, names, classify) is detected")
def cmd_load(repl: Repl, args: str) -> None:
    path = args.strip()
    if not path:
        raise Usage("usage: load PATH — a .safetensors checkpoint or a run folder")
    ck = repl.models.add(path)
    c = ck.config
    extra = f", {len(ck.categories)} categories" if ck.categories else ""
    repl.out.print(f"[green]loaded[/] {KIND_NAMES[ck.kind]} model {escape(str(ck.path))} "
                   f"({c.model} {c.layers}×{c.hidden}, vocabulary {c.vocab_size}{extra})")


@command("models", "which models are loaded, and from where")
def cmd_models(repl: Repl, args: str) -> None:
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
def cmd_help(repl: Repl, args: str) -> None:
    name = args.strip().lower()
    if name:
        cmd = COMMANDS[repl.resolve(name)]
        repl.out.print(f"[bold]{escape(cmd.usage)}[/] — {escape(cmd.summary)}")
        if cmd.details:
            repl.out.print(escape(cmd.details), style="dim")
        cli_name = "write" if cmd.name == "acrostic" else cmd.name
        if cli_name in CLI_COMMANDS:
            repl.out.print("options: " + " ".join(_long_options(cli_name)), style="dim")
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
def cmd_quit(repl: Repl, args: str) -> None:
    raise Quit


# ---------------------------------------------------------------------------------------------
# The loop


class Repl:
    def __init__(self, models: Models, out: Console, err: Console, terminal: bool = False) -> None:
        self.models = models
        self.terminal = terminal  # say so when a model loads (scripts get only the results)
        self.settings = Settings()
        self.out = out
        self.err = err
        self.last_poem = ""

    def model(self, kind: str):
        """The checkpoint for ``kind``, loaded on first use."""
        if self.terminal and kind not in self.models.loaded:
            self.out.print(f"loading the {KIND_NAMES[kind]} model…", style="dim")
        return self.models.get(kind)

    def resolve(self, name: str) -> str:
        name = ALIASES.get(name, name)
        if name in COMMANDS:
            return name
        hint = closest(name, [*COMMANDS, *ALIASES])
        suggestion = f" (did you mean '{ALIASES.get(hint, hint)}'?)" if hint else ""
        raise Usage(f"unknown command '{name}'{suggestion}; type help for the list")

    def execute(self, line: str) -> int:
        """Run one command line; return its exit code (0 ok, 2 usage, 1 runtime, 130 interrupted).

        Raises :class:`Quit` for quit/exit. Never raises anything else.
        """
        line = line.strip()
        if not line or line.startswith("#"):
            return 0
        name, _, args = line.partition(" ")
        try:
            return COMMANDS[self.resolve(name.lower())].handler(self, args.strip()) or 0
        except Quit:
            raise
        except KeyboardInterrupt:
            self.err.print("[yellow]interrupted[/]")
            return 130
        except PoetgenError as e:
            self.err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            return e.code
        except Exception as e:  # a bug or an environment failure: one line, and the session goes on
            first = (str(e).strip().splitlines() or [""])[0]
            self.err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(first)}", soft_wrap=True)
            return 1

    # -- terminal mode ---------------------------------------------------------------------

    def completer(self):
        from prompt_toolkit.completion import NestedCompleter, PathCompleter

        words: dict[str, Any] = {name: None for name in COMMANDS}
        words["exit"] = None
        values = {"--form": ("auto", *FORMS), "--script": SCRIPTS, "--rhyme-scheme": SCHEMES, "--scheme": SCHEMES}
        for name in CLI_COMMANDS:
            words[name] = {flag: dict.fromkeys(values.get(flag, ())) or None for flag in _long_options(name)}
        words["acrostic"] = words["write"]
        words["names"].update(dict.fromkeys([*self.models.languages(), "all"]))
        words["set"] = {key: ({v: None for v in s.values} or None) for key, s in SETTINGS.items()}
        words["show"] = {"settings": None, "models": None}
        words["help"] = {name: None for name in COMMANDS}
        words["load"] = PathCompleter(expanduser=True)
        return NestedCompleter.from_nested_dict(words)

    def toolbar(self) -> list[tuple[str, str]]:
        models = []
        for kind in KINDS:
            mark = "✓" if kind in self.models.loaded else "✗" if kind in self.models.missing else "·"
            models.append(f"{kind} {self.models.source_label(kind)} {mark}")
        s = self.settings
        knobs = (f"temp {_shown(s, 'temp')} · top-k {s.top_k or 'off'} · top-p {1.0 if s.top_p is None else s.top_p:g}"
                 f" · form {s.form or 'auto'}")
        return [("class:bottom-toolbar", f" {' · '.join(models)} │ {knobs} ")]

    def run_terminal(self, history_file: Path | None, input: Any = None, output: Any = None) -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.completion import DynamicCompleter

        session: PromptSession[str] = PromptSession(
            history=_history(history_file), auto_suggest=AutoSuggestFromHistory(),
            completer=DynamicCompleter(self.completer), complete_while_typing=False,
            bottom_toolbar=self.toolbar, input=input, output=output,
        )
        self.out.print(f"[bold]poetgen {__version__}[/] · type [bold]help[/] for commands · "
                       "Tab completes · Ctrl-C cancels · Ctrl-D quits", highlight=False)
        while True:
            try:
                self.execute(session.prompt(PROMPT))
            except KeyboardInterrupt:  # Ctrl-C at the prompt (or between commands): ask again
                continue
            except (EOFError, Quit):  # Ctrl-D, quit, exit
                return 0

    # -- script mode -----------------------------------------------------------------------

    def run_lines(self, lines: Iterable[str]) -> int:
        status = 0
        try:
            for line in lines:
                try:
                    code = self.execute(line)
                except Quit:
                    break
                status = status or code
        except KeyboardInterrupt:  # Ctrl-C while waiting for input
            return 130
        return status


def _history(path: Path | None):
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    path = Path(path) if path is not None else paths.cache_dir() / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return FileHistory(str(path))
    except OSError:  # a read-only home: keep history for this session only
        return InMemoryHistory()


def run_repl(
    poems: Path | str | None = None,
    names: Path | str | None = None,
    classifier: Path | str | None = None,
    history_file: Path | str | None = None,
    input: Any = None,
    output: Any = None,
    console: Console | None = None,
) -> int:
    """Run the shell until quit/Ctrl-D (or the end of piped input); return the exit code.

    ``poems``/``names``/``classifier``: checkpoint files or run folders (None: the bundled models).
    ``input``/``output``: prompt_toolkit Input/Output (tests pass ``create_pipe_input()`` and
    ``DummyOutput()``); giving ``input`` forces terminal mode. ``console``: where Rich output (and,
    in terminal mode, errors) goes. Without ``input``, terminal mode is used when stdin and stdout
    are both terminals, else script mode reads sys.stdin line by line.
    """
    models = Models({"poems": poems, "names": names, "classify": classifier})
    terminal = input is not None or (sys.stdin.isatty() and sys.stdout.isatty())
    out = console or Console(highlight=False)
    err = out if terminal or console is not None else Console(stderr=True, highlight=False)
    repl = Repl(models, out, err, terminal)
    if terminal:
        return repl.run_terminal(Path(history_file) if history_file else None, input, output)
    return repl.run_lines(sys.stdin)
