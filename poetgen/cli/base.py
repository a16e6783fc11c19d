"""What every `poetgen` command shares: the Typer app, the consoles, one-line errors, the option
types of sampling and checkpoints, and the hooks that let the interactive shell run the same
commands (``embedded``).

Errors from the library (:class:`PoetgenError`) become one red line on stderr and an exit code
(2 usage, 1 runtime); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from poetgen import __version__
from poetgen.errors import PoetgenError

# click's base exception (typer vendors click in recent versions, so find it through typer)
CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(TyperGroup):
    """Usage errors found while parsing (unknown option, missing argument, a value that is not a
    number) are reported like every other error: one line on stderr, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        sanitize_width()
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except CLICK_ERROR as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `poetgen corpus`: help was asked for, in effect
                ctx = getattr(e, "ctx", None)
                if ctx is not None:
                    out.print(ctx.get_help(), markup=False, highlight=False)
                sys.exit(e.exit_code)
            ctx = getattr(e, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err.print(f"[bold red]error:[/] {escape(one_line(e.format_message()))}{escape(hint)}", soft_wrap=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            err.print("[bold red]error:[/] aborted", soft_wrap=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    name="poetgen",
    help="Train recurrent language models and write Tang poems and names with them.",
    rich_markup_mode="rich",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="List, inspect, prepare and download corpora.", rich_markup_mode="rich",
                         no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

# The widths poetgen renders for: narrower, every table and panel would be cut to nothing (COLUMNS=1
# printed only a border); wider, a centred poem is mostly spaces (COLUMNS=99999999 wrote 700 MB).
MIN_COLUMNS, MAX_COLUMNS = 20, 1000


def sane_columns() -> str | None:
    """The width to render for: ``$COLUMNS``, else the terminal's, clamped to MIN..MAX_COLUMNS; None
    where neither says (not a number, 0, no terminal: Rich then takes 80)."""
    value = os.environ.get("COLUMNS", "").strip()
    if not value:
        try:
            value = str(os.get_terminal_size(sys.__stdout__.fileno()).columns) if sys.__stdout__ else ""
        except (OSError, ValueError):
            value = ""
    if not value.isdigit() or int(value) == 0:
        return None
    return str(min(max(int(value), MIN_COLUMNS), MAX_COLUMNS))


def sanitize_width() -> None:
    """Make ``$COLUMNS`` sane for every console, ours and the help's (typer reads os.environ)."""
    columns, given = sane_columns(), os.environ.get("COLUMNS")
    if columns is None:
        os.environ.pop("COLUMNS", None)
    elif columns != given and (given is not None or int(columns) in (MIN_COLUMNS, MAX_COLUMNS)):
        os.environ["COLUMNS"] = columns  # a terminal of its own width is left for Rich to ask
    lines = os.environ.get("LINES")
    if lines is not None and not (lines.isdigit() and int(lines) > 0):
        os.environ.pop("LINES")


class _SaneEnviron(Mapping[str, str]):
    """``os.environ`` as Rich reads it, live, with COLUMNS clamped (``sane_columns``) and a LINES of
    0 left out: Rich would take a width of nothing and print nothing at all, success or error."""

    def __getitem__(self, key: str) -> str:
        if key == "COLUMNS":
            columns = sane_columns()
            if columns is None:
                raise KeyError(key)
            return columns
        value = os.environ[key]
        if key == "LINES" and not (value.isdigit() and int(value) > 0):
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (key for key in {*os.environ, "COLUMNS"} if key in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True


out = Console(highlight=False, _environ=_SaneEnviron())
err = Console(stderr=True, highlight=False, _environ=_SaneEnviron())
DEBUG = {"on": False}
# Set while the interactive shell runs a command through this module (see ``embedded``): its
# model loader, and the last poem written (for its bare `check`).
SESSION: dict[str, Any] = {"load": None, "last_poem": ""}


@contextlib.contextmanager
def embedded(out_console: Console, err_console: Console, load: Callable[[str], Any]) -> Iterator[None]:
    """Run commands for another front end (the REPL): its consoles, and its models when a command
    names no ``--checkpoint``."""
    global out, err
    saved = out, err, SESSION["load"]
    out, err, SESSION["load"] = out_console, err_console, load
    try:
        yield
    finally:
        out, err, SESSION["load"] = saved


def busy(what: str) -> contextlib.AbstractContextManager:
    """A spinner with ``what`` while a long call runs, on a terminal only (scripts get results only)."""
    return out.status(what) if out.is_terminal else contextlib.nullcontext()


def load_model(kind: str, checkpoint: Path | None) -> Any:
    """The checkpoint a command runs on: ``--checkpoint`` (any kind where ``kind`` is None), else
    the front end's model of ``kind`` (poems where None), else the bundled one."""
    from poetgen.checkpoint import load_checkpoint, load_for

    if checkpoint is not None:
        return load_for(kind, checkpoint) if kind else load_checkpoint(checkpoint)
    if SESSION["load"] is not None:
        return SESSION["load"](kind or "poems")
    return load_for(kind or "poems", None)

F = TypeVar("F", bound=Callable[..., Any])

MODEL = "Model"
OPTIM = "Optimisation"
DATA = "Data"


def path_value(value: Any) -> Path:
    """Parse a path option: an empty string (an unset shell variable, say) is an error, not '.'."""
    if isinstance(value, Path):
        return value
    if not str(value).strip():
        raise typer.BadParameter("the path is empty")
    return Path(value)


DataDir = Annotated[Path | None, typer.Option("--data-dir", parser=path_value,
                                              help="Raw-data folder (else $POETGEN_DATA, else ~/.cache/poetgen).",
                                              rich_help_panel=DATA)]
CorpusScript = Annotated[str, typer.Option(help="simplified or traditional (poems).")]
CheckpointOpt = Annotated[Path | None, typer.Option("--checkpoint", "-c", parser=path_value,
                                                    help="A checkpoint file or run folder "
                                                    "(default: the model shipped with poetgen).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Threads = Annotated[int | None, typer.Option("--threads", help="Torch CPU threads for training (default: "
                                            "$POETGEN_THREADS, else half the cores this process may use, 1 to 4).")]


MAX_MESSAGE = 400  # characters; a 10k-character argument echoed back helps nobody


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """Newlines folded into spaces and the middle of an over-long message cut out."""
    message = re.sub(r"\s*\n\s*", " ", message.strip())
    if len(message) > limit:
        head, tail = limit * 2 // 3, limit // 3
        message = f"{message[:head]} … {message[-tail:]}"
    return message


def fail(message: str, code: int = 2) -> typer.Exit:
    # escape(): a message may quote user input such as "[/]", which Rich would read as markup
    err.print(f"[bold red]error:[/] {escape(one_line(message))}", soft_wrap=True)
    return typer.Exit(code)


# An OSError on a path the user typed is a usage error (2); anything else (I/O error, disk full,
# permission denied) is a runtime failure (1).
_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP}


def os_error_message(e: OSError) -> str:
    where = f" {e.filename}" if e.filename else ""
    return f"cannot access{where}: {e.strerror or e}"


def _has_surrogates(value: Any) -> bool:
    """Command-line bytes that are not UTF-8 reach Python as lone surrogates (PEP 383)."""
    if isinstance(value, str):
        return re.search("[\ud800-\udfff]", value) is not None
    if isinstance(value, list | tuple):
        return any(_has_surrogates(v) for v in value)
    return False


def _not_utf8(name: str, value: Any) -> PoetgenError:
    """An argument that reached Python undecoded: not UTF-8, or UTF-8 under a locale that is not
    (``LC_ALL=POSIX PYTHONUTF8=0``), which decodes every byte above 127 as undecodable."""
    what = "--out path" if name == "out_dir" else name.rstrip("_").replace("_", " ")
    text = value if isinstance(value, str) else next(v for v in value if _has_surrogates(v))
    try:
        os.fsencode(str(text)).decode("utf-8")
        utf8_locale = sys.getfilesystemencoding().lower().replace("-", "") == "utf8"
    except UnicodeDecodeError:
        utf8_locale = True  # the bytes themselves are not UTF-8: the locale is not to blame
    if utf8_locale:
        return PoetgenError(f"the {what} given is not valid UTF-8 text")
    return PoetgenError(f"the {what} given is UTF-8 text, but the locale's encoding is "
                        f"{sys.getfilesystemencoding()}: use a UTF-8 locale (LANG=C.UTF-8) or set PYTHONUTF8=1")


def handled(fn: F) -> F:
    """Turn library errors into one line + exit code; keep tracebacks for --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # Paths poetgen reads may be any bytes; those it writes (--out) are UTF-8: safetensors, the
            # plots and the reports' links take no other.
            bad = [name for name, value in kwargs.items()
                   if _has_surrogates(str(value) if name == "out_dir" and value is not None else value)]
            if bad:
                value = kwargs[bad[0]]
                raise _not_utf8(bad[0], str(value) if bad[0] == "out_dir" else value)
            return fn(*args, **kwargs)
        except PoetgenError as e:
            if DEBUG["on"]:
                raise
            raise fail(e.named(FLAGS), e.code) from None
        except KeyboardInterrupt:
            if DEBUG["on"]:
                raise
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except OSError as e:  # a path the user typed, or the environment (disk full, I/O error)
            if DEBUG["on"] or e.errno == errno.EPIPE:  # `poetgen classify - | head`: typer exits quietly
                raise
            raise fail(os_error_message(e), 2 if e.errno in _PATH_ERRNOS else 1) from None
        except Exception as e:  # a bug or an environment failure: still one line
            if DEBUG["on"]:
                raise
            raise fail(f"{type(e).__name__}: {e} (run with --debug for the traceback)", 1) from None

    return wrapper  # type: ignore[return-value]


class GuardedOutput:
    """Standard output that reports its failures: a full disk (``> /dev/full``) or an I/O error
    becomes one line naming standard output and exit 1, never a success with the output lost.
    A closed pipe (``| head``) stops the command quietly, and ``main`` exits 0: the reader had
    what it wanted."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed = False
        self.reader_left = False  # the pipe's reader closed it (`| head -c1`)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)

    def flush(self) -> None:
        if not self.failed and not self.reader_left:
            self._guard(self._stream.flush)

    def _guard(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except OSError as e:
            # What is still buffered would fail again as Python exits, with a traceback-like
            # "Exception ignored" message: send it nowhere instead.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            if e.errno == errno.EPIPE:
                self.reader_left = True
                raise  # stops the command; typer then exits, and main() makes that a quiet 0
            self.failed = True
            raise PoetgenError(f"cannot write standard output: {e.strerror or e}", code=1) from None


def stdin_bytes() -> Any:
    """Standard input as bytes, to be decoded as strictly as a file is; None when it is closed."""
    return sys.stdin.buffer if sys.stdin is not None else None


def emit_json(data: Any) -> None:
    """JSON as plain text, whatever the terminal's width: never wrapped, cropped or coloured."""
    out.print(json.dumps(finite(data), ensure_ascii=False, indent=2, allow_nan=False), markup=False,
              highlight=False, emoji=False, soft_wrap=True, crop=False)


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinite number as None: JSON has no NaN (a bare ``NaN`` is not
    JSON), and null says "no number" to any reader."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def show(data: Any, as_json: bool, render: Callable[[Any], Any], plain: Callable[[Any], str] | None = None) -> None:
    """``--json``: the data as JSON; otherwise the Rich rendering of it (``plain`` lines instead
    where the terminal is too narrow for the rendering)."""
    emit_json(data) if as_json else present(render(data), (lambda: plain(data)) if plain else None)


def present(renderable: Any, plain: Callable[[], str] | None = None) -> None:
    """Print a Rich renderable; where it cannot fit the terminal (a table cut to "…" cells, a poem
    panel one column wide), print ``plain()`` lines instead, which the terminal may wrap."""
    from rich.measure import Measurement

    if plain is not None:
        needed = Measurement.get(out, out.options.update_width(10_000), renderable).minimum
        if needed > out.width:
            out.print(plain(), markup=False, highlight=False, emoji=False, soft_wrap=True, crop=False)
            return
    out.print(renderable)


# How this front end spells the library's parameters in its messages (``top_p must…`` → ``--top-p must…``).
FLAGS = {"temperature": "--temp", "top_k": "--top-k", "top_p": "--top-p", "seed": "--seed", "n": "--num",
         "candidates": "--candidates", "form": "--form", "theme": "--theme", "style": "--style",
         "start": "--start", "guidance": "--guidance", "rerank": "--rerank", "embed": "--embed",
         "hidden": "--hidden", "layers": "--layers", "dropout": "--dropout", "generative": "--generative",
         "ngram": "--ngram", "bidirectional": "--bidirectional", "adaptive": "--adaptive", "tie": "--tie",
         "cell": "--cell", "model": "--model", "samples": "--samples", "variant": "--variant",
         "acrostic": "--acrostic", "rhyme_scheme": "--rhyme-scheme"}


def sampling_of(temp: float | None, top_k: int | None, top_p: float | None, seed: int | None, greedy: bool = False):
    """The sampling options as the library takes them: only what was given (``--greedy`` is
    temperature 0); every option left out keeps the library's default for the task."""
    from poetgen.sample import Sampling

    given = {"temperature": 0.0 if greedy else temp, "top_k": top_k, "top_p": top_p, "seed": seed}
    return Sampling(**given_only(given))


def given_only(options: dict[str, Any]) -> dict[str, Any]:
    """The options a user gave (None: left out, so the library's default holds)."""
    return {k: v for k, v in options.items() if v is not None}


def _version(value: bool) -> None:
    if value:
        out.print(f"poetgen {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Train recurrent language models and write Tang poems and names with them.

    Run [bold]poetgen[/] with no command for the interactive shell.
    """
    DEBUG["on"] = debug
    if ctx.invoked_subcommand is None:
        raise typer.Exit(start_shell(ctx))




@app.command()
def repl(ctx: typer.Context) -> None:
    """The interactive shell (the same as running poetgen with no command)."""
    raise typer.Exit(start_shell(ctx))


def start_shell(ctx: typer.Context) -> int:
    """Run the interactive shell and return its exit code. The shell runs these very commands, so
    it imports this module and not the other way round: the console script (``poetgen.repl.console.main``)
    hands it to the app as the context's ``obj``."""
    shell = ctx.find_root().obj
    if shell is None:
        raise fail("no interactive shell here: it starts from the poetgen command itself", 1)
    return shell()
