"""The ``poetgen`` console script. It lives above both front ends: it runs the CLI's app and
hands it the shell (``poetgen`` alone, ``poetgen repl``), so that the CLI never imports the shell."""

import sys

from poetgen.cli import app
from poetgen.cli.base import DEBUG, GuardedOutput, fail
from poetgen.errors import PoetgenError


def main() -> None:
    """The console script: ``app`` with standard output checked before and after, and the
    interactive shell for ``poetgen`` alone and ``poetgen repl`` (``cli.base.start_shell``)."""

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
