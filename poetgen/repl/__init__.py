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

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from poetgen import __version__, paths
from poetgen.corpora import SCRIPTS
from poetgen.defaults import TOP_K, TOP_P
from poetgen.errors import PoetgenError, closest
from poetgen.poems import tunes
from poetgen.poems.prosody import SCHEMES
from poetgen.repl.commands import ALIASES, CLI_COMMANDS, COMMANDS, Quit, Usage, long_options
from poetgen.repl.models import KIND_NAMES, KINDS, Models
from poetgen.repl.settings import SETTINGS, Settings, shown
from poetgen.verse import FORMS

__all__ = ["COMMANDS", "Models", "Repl", "run_repl"]

PROMPT = "poetgen> "


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
        forms = ("auto", *FORMS, "list", *tunes.tunes())  # the 词 tunes too: write --form 水调歌头
        values = {"--form": forms, "--script": SCRIPTS, "--rhyme-scheme": SCHEMES, "--scheme": SCHEMES}
        for name in CLI_COMMANDS:
            words[name] = {flag: dict.fromkeys(values.get(flag, ())) or None for flag in long_options(name)}
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
        top_k = TOP_K if s.top_k is None else s.top_k
        top_p = TOP_P if s.top_p is None else s.top_p
        knobs = f"temp {shown(s, 'temp')} · top-k {top_k or 'off'} · top-p {top_p:g} · form {s.form or 'auto'}"
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
    if input is None and sys.stdin is None:  # `poetgen <&-`: no command will ever come
        (console or Console(stderr=True, highlight=False)).print(
            "[bold red]error:[/] stdin is closed: the shell has no commands to read (pipe commands in, or run it "
            "in a terminal)", soft_wrap=True)
        return 2
    models = Models({"poems": poems, "ci": None, "names": names, "classify": classifier})
    terminal = input is not None or (sys.stdin.isatty() and sys.stdout.isatty())
    out = console or Console(highlight=False)
    err = out if terminal or console is not None else Console(stderr=True, highlight=False)
    repl = Repl(models, out, err, terminal)
    if terminal:
        return repl.run_terminal(Path(history_file) if history_file else None, input, output)
    return repl.run_lines(sys.stdin)
