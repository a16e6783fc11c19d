"""The interactive shell: ``poetgen`` with no command (or ``poetgen repl``).

A loop that reads one command a line, calls the library and renders the result with Rich. Like
``cli.py`` it holds no generation logic: every command is a short handler in the command table
below, which also provides the help text and the tab-completion entries.

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
from poetgen.prosody import FORMS, SCHEMES

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
    temp: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    form: str = "auto"
    script: str = "model"  # "model": whatever script the model was trained on
    rhyme: bool = True
    scheme: str = "pingshui"
    n: int = 1
    mood: str = ""
    repeats: bool = False
    copies: bool = False
    novel: bool = False

    def sampling(self):
        from poetgen.sample import Sampling

        return Sampling(self.temp, self.top_k, self.top_p, self.seed).validate()


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
    if text.lower() in ("none", "off", "random"):
        return None
    return _number(int, 0, 2**63 - 1, "a whole number ≥ 0, or 'none' for a random seed")(text)


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
    "script": Setting(_choice("model", *SCRIPTS), "output script of poems ('model' = as trained)",
                      ("model", *SCRIPTS)),
    "rhyme": Setting(_switch, "force a 平 rhyme on the even lines", ("on", "off")),
    "scheme": Setting(_choice(*SCHEMES), "rhyme scheme for writing and check", SCHEMES),
    "n": Setting(_number(int, 1, 1000, "a count from 1 to 1000"), "poems per write / acrostic"),
    "mood": Setting(str, "text fed to the poem model first to set the mood ('' to clear)", ("''",)),
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
    handler: Callable[[Repl, str], None]
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


def _count(text: str) -> int:
    return _number(int, 1, 1000, "a count from 1 to 1000")(text)


def _prefix_and_count(repl: Repl, args: str, name: str) -> tuple[str, int]:
    words = args.split()
    n = repl.settings.n
    if words and words[-1].isdigit():
        n = _count(words.pop())
    if len(words) > 1:
        raise Usage(f"usage: {COMMANDS[name].usage} (one word of characters, no spaces)")
    return (words[0] if words else ""), n


def _write(repl: Repl, prefix: str, n: int, acrostic: bool) -> None:
    from poetgen.poems import write_poems
    from poetgen.render import poem_panel

    s = repl.settings
    sampling = s.sampling()
    ck = repl.model("poems")
    poems = write_poems(ck, prefix, form=s.form, acrostic=acrostic, n=n, sampling=sampling, rhyme=s.rhyme,
                        rhyme_scheme=s.scheme, allow_repeats=s.repeats, allow_copies=s.copies, mood=s.mood,
                        script=None if s.script == "model" else s.script)
    for poem in poems:
        data = poem.to_dict()
        repl.last_poem = data["text"]
        repl.out.print(poem_panel(data))


@command("write [PREFIX] [N]", "write a poem that continues PREFIX",
         "Uses the settings temp, top_k, top_p, seed, form, script, rhyme, scheme, mood, repeats, copies;\n"
         "N poems (default: the n setting) are sampled as one batch.  Examples: write 青山 · write 明月 3 · write")
def cmd_write(repl: Repl, args: str) -> None:
    prefix, n = _prefix_and_count(repl, args, "write")
    _write(repl, prefix, n, acrostic=False)


@command("acrostic HEADS [N]", "write an acrostic (藏头诗): one head character per line",
         "The same settings as write.  Example: acrostic 春夏秋冬")
def cmd_acrostic(repl: Repl, args: str) -> None:
    heads, n = _prefix_and_count(repl, args, "acrostic")
    if not heads:
        raise Usage(f"usage: {COMMANDS['acrostic'].usage} — for example: acrostic 春夏秋冬")
    _write(repl, heads, n, acrostic=True)


@command("names LANGUAGE [N] [START]", "names that sound like LANGUAGE ('all': a few per language)",
         "LANGUAGE is case-insensitive and may be a prefix (rus → Russian).  START forces the first letters.\n"
         "Uses temp, top_k, top_p, seed, novel.  Examples: names Russian 5 · names jap 3 Ta · names all")
def cmd_names(repl: Repl, args: str) -> None:
    from poetgen.names import generate_all, generate_names, resolve_language
    from poetgen.render import names_by_language, names_columns

    words = args.split()
    if not words:
        raise Usage(f"usage: {COMMANDS['names'].usage} — for example: names Russian 5")
    if len(words) > 3 or (len(words) == 3 and not words[1].isdigit()):
        raise Usage(f"usage: {COMMANDS['names'].usage}")
    n = _count(words[1]) if len(words) > 1 and words[1].isdigit() else None
    start = words[-1] if len(words) > 1 and not words[-1].isdigit() else ""
    sampling = repl.settings.sampling()
    ck = repl.model("names")
    if words[0].lower() == "all":
        table = generate_all(ck, n or 3, start=start, sampling=sampling, novel=repl.settings.novel)
        repl.out.print(names_by_language(table))
        return
    language = resolve_language(ck, words[0])
    n = n or 10
    result = generate_names(ck, language, n, start=start, sampling=sampling, novel=repl.settings.novel)
    repl.out.print(names_columns(result, title=language))
    if len(result) < n:
        repl.out.print(f"[yellow]only {len(result)} distinct names found[/]")


@command("classify NAME...", "which language is each surname from (top 3)",
         "Example: classify Dovesky Jackson Hou")
def cmd_classify(repl: Repl, args: str) -> None:
    from poetgen.names import classify
    from poetgen.render import classify_table

    names = args.split()
    if not names:
        raise Usage(f"usage: {COMMANDS['classify'].usage} — for example: classify Dovesky Jackson Hou")
    ck = repl.model("classify")
    repl.out.print(classify_table([p.to_dict() for p in classify(ck, names, top=3)]))


@command("check [POEM]", "form, 平仄, rhyme group and rules of a poem (default: the last one written)",
         "Uses the scheme setting.  Example: check 床前明月光，疑是地上霜。举头望明月，低头思故乡。")
def cmd_check(repl: Repl, args: str) -> None:
    from poetgen.prosody import check_poem
    from poetgen.render import check_table

    text = "".join(args.split()) or repl.last_poem
    if not text:
        raise Usage("usage: check POEM — or write a poem first and type check")
    repl.out.print(check_table(check_poem(text, repl.settings.scheme).to_dict()))


@command("set NAME VALUE", "change a setting (show settings lists them)",
         "Examples: set temp 0.7 · set top_k 8 · set top_p 0.9 · set seed 3 · set form 五律 · "
         "set script traditional · set rhyme off")
def cmd_set(repl: Repl, args: str) -> None:
    words = args.split(maxsplit=1)
    if not words:
        show_settings(repl)
        return
    key = setting_name(words[0])
    if len(words) == 1:
        raise Usage(f"usage: set {key} VALUE — {SETTINGS[key].help}; now {_shown(repl.settings, key)}")
    raw = words[1].strip()
    value = "" if key == "mood" and raw in ("''", '""') else SETTINGS[key].parse(raw)
    setattr(repl.settings, key, value)
    repl.out.print(f"{key} = {escape(_shown(repl.settings, key))}", style="dim")


def _shown(settings: Settings, key: str) -> str:
    value = getattr(settings, key)
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none (random)"
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
            COMMANDS[self.resolve(name.lower())].handler(self, args.strip())
            return 0
        except Quit:
            raise
        except KeyboardInterrupt:
            self.err.print("[yellow]cancelled[/]")
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
        words["names"] = {lang: None for lang in [*self.models.languages(), "all"]}
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
        knobs = f"temp {_shown(s, 'temp')} · top-k {s.top_k or 'off'} · top-p {s.top_p:g} · form {s.form}"
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
