"""The `poetgen` command: parse options, call the library, render the result. No logic lives here.

One module per group of commands (``train``, ``poems``, ``names``, ``lab``) on the shared app of
``base``; importing them registers their commands, listed by `poetgen --help` in ``ORDER``.
"""

import sys

from poetgen.cli import lab, names, poems, train
from poetgen.cli.base import DEBUG, GuardedOutput, app, fail
from poetgen.errors import PoetgenError

__all__ = ["app", "lab", "main", "names", "poems", "train"]

ORDER = ("train", "write", "check", "evaluate", "score", "names", "classify", "lab", "compare", "report", "plot",
         "repl")
app.registered_commands.sort(key=lambda info: ORDER.index(info.callback.__name__))


def main() -> None:
    """The console script: ``app`` with standard output checked before and after, and the
    interactive shell for ``poetgen`` alone and ``poetgen repl`` (``base.start_shell``)."""

    def shell() -> int:  # imported when asked for: a command line that names a command needs no shell
        from poetgen.repl import run_repl

        return run_repl()

    if sys.stdout is None:  # `poetgen write 青山 >&-`: whatever is written would be lost
        fail("standard output is closed: nothing could be written", 1)
        sys.exit(1)
    guarded = GuardedOutput(sys.stdout)
    sys.stdout = guarded
    code: int | str | None = 0
    try:
        app(obj=shell)
    except SystemExit as e:
        code = e.code
    except BrokenPipeError:  # the reader left while help was written (`poetgen --help | head -c1`)
        pass
    except PoetgenError as e:  # standard output failed outside a command (`poetgen --help > /dev/full`)
        if DEBUG["on"]:
            raise
        fail(str(e), e.code)
        code = e.code
    if code == 0:
        try:
            guarded.flush()
        except BrokenPipeError:
            pass
        except PoetgenError as e:
            fail(str(e), e.code)
            code = e.code
    if guarded.reader_left:  # `| head`: the reader had what it wanted; a quiet success (README)
        code = 0
    sys.exit(code)
