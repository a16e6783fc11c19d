"""The `poetgen` command: parse options, call the library, render the result. No logic lives here.

One module per group of commands (``train``, ``poems``, ``names``, ``lab``) on the shared app of
``base``; importing them registers their commands, listed by `poetgen --help` in ``ORDER``.
"""

from poetgen.cli import lab, names, poems, train
from poetgen.cli.base import app

__all__ = ["app", "lab", "names", "poems", "train"]

ORDER = ("train", "write", "check", "evaluate", "score", "names", "classify", "lab", "compare", "report", "plot",
         "repl")
app.registered_commands.sort(key=lambda info: ORDER.index(info.callback.__name__))
