"""Errors users see: one line, an exit code, never a traceback (unless --debug)."""

from __future__ import annotations


class PoetgenError(Exception):
    """A problem with the user's input or environment, reported as one line.

    ``code`` is the process exit code: 2 for usage errors (bad option values, unknown names,
    files that are not what they claim to be), 1 for runtime failures (disk full, NaN loss).
    ``param``: the library parameter a bad-value message starts with (see ``bad_value``), so that
    a front end can name it as its user typed it (``top_p`` → ``--top-p``).
    """

    def __init__(self, message: str, code: int = 2, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param

    def named(self, spelling: dict[str, str]) -> str:
        """The message with its parameter spelled as a front end spells it."""
        message = str(self)
        if self.param and self.param in spelling and message.startswith(self.param):
            return spelling[self.param] + message[len(self.param):]
        return message


def bad_value(param: str, problem: str) -> PoetgenError:
    """``top_p must be in (0, 1], got 2``: a usage error about one parameter."""
    return PoetgenError(f"{param} {problem}", param=param)


def closest(word: str, choices: list[str]) -> str | None:
    """The choice most similar to ``word`` (for "did you mean ...?" hints), or None."""
    import difflib

    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def unknown(kind: str, word: str, choices: list[str]) -> PoetgenError:
    """`unknown corpus 'tnag' (did you mean 'tang'?); choose from: ...`"""
    hint = closest(word, choices)
    suggestion = f" (did you mean '{hint}'?)" if hint else ""
    return PoetgenError(f"unknown {kind} '{word}'{suggestion}; choose from: {', '.join(choices)}")
