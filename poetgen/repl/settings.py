"""The shell's settings: `set NAME VALUE` fills in options of the commands it runs.

A setting is the CLI option it fills in (``SETTING_OPTIONS``), so its meaning and its default are
that option's help (``repl.commands.setting_help``); what is declared here is only how ``set``
reads a typed value, within the library's own bounds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from poetgen.corpora import SCRIPTS
from poetgen.defaults import MAX_CANDIDATES, MAX_POEMS
from poetgen.errors import PoetgenError, unknown
from poetgen.poems import tunes
from poetgen.poems.prosody import SCHEMES
from poetgen.verse import FORMS, verse_chars


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
    style: str | None = None
    candidates: int | None = None
    repeats: bool | None = None
    copies: bool | None = None
    novel: bool | None = None


# Which option of which CLI command a setting fills in (click's parameter names).
SETTING_OPTIONS: dict[str, dict[str, str]] = {
    "write": {"temp": "temp", "top_k": "top_k", "top_p": "top_p", "seed": "seed", "form": "form",
              "script": "script", "rhyme": "rhyme", "scheme": "rhyme_scheme", "n": "num", "mood": "mood",
              "style": "style", "candidates": "candidates", "repeats": "allow_repeats", "copies": "allow_copies"},
    "names": {"temp": "temp", "top_k": "top_k", "top_p": "top_p", "seed": "seed", "novel": "novel"},
    "check": {"scheme": "scheme"},
}
# The CLI commands the shell runs, and the kind of model each runs on by default.

def _number(kind: type, low: float, high: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise PoetgenError(f"expected {what}, got '{text}'") from None
        if not (math.isfinite(value) and low <= value <= high):
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
    from poetgen.config import MAX_SEED

    if text.lower() in ("none", "off", "random"):
        return None
    return _number(int, 0, MAX_SEED, "a whole number ≥ 0, or 'none' for a random seed")(text)


def _mood(text: str) -> str:
    """Checked now, as `write --mood` would check it: a bad mood must not break every later write."""
    verse_chars(text, "the mood")
    return text


def _style(text: str) -> str | None:
    """A poet's name, checked against the model when a poem is written; 'any' clears it."""
    name = text.strip()
    if not name:
        raise PoetgenError("expected a poet's name, or 'any'")
    return None if name.lower() == "any" else name


@dataclass
class Setting:
    parse: Callable[[str], Any]
    values: tuple[str, ...] = ()  # offered by tab completion
    words: str = ""  # what `set` reads beyond the option's own values ('none' for a random seed …)


SWITCH = ("on", "off")
SETTINGS: dict[str, Setting] = {
    "temp": Setting(_number(float, 0, math.inf, "a temperature ≥ 0")),
    "top_k": Setting(_number(int, 0, math.inf, "a whole number ≥ 0")),
    "top_p": Setting(_number(float, 1e-9, 1, "a number in (0, 1]")),
    "seed": Setting(_seed, ("none",), "'none': a random seed"),
    "form": Setting(_choice("auto", *FORMS, *tunes.tunes()), ("auto", *FORMS, *tunes.tunes())),  # shi or 词 tune
    "script": Setting(_choice(*SCRIPTS), SCRIPTS),
    "rhyme": Setting(_switch, SWITCH, "on or off"),
    "scheme": Setting(_choice(*SCHEMES), SCHEMES),
    "n": Setting(_number(int, 1, MAX_POEMS, f"a count from 1 to {MAX_POEMS}")),
    "mood": Setting(_mood),
    "style": Setting(_style, ("any",), "'any': no poet in particular"),
    "candidates": Setting(_number(int, 1, MAX_CANDIDATES, f"a count from 1 to {MAX_CANDIDATES}")),
    "repeats": Setting(_switch, SWITCH, "on or off"),
    "copies": Setting(_switch, SWITCH, "on or off"),
    "novel": Setting(_switch, SWITCH, "on or off"),
}
SETTING_ALIASES = {"temperature": "temp", "topk": "top_k", "topp": "top_p", "num": "n", "count": "n",
                   "rhyme_scheme": "scheme", "allow_repeats": "repeats", "allow_copies": "copies"}


def setting_name(text: str) -> str:
    key = text.lower().replace("-", "_")
    key = SETTING_ALIASES.get(key, key)
    if key not in SETTINGS:
        raise unknown("setting", text, list(SETTINGS))
    return key




def shown(settings: Settings, key: str) -> str:
    value = getattr(settings, key)
    if value is None:
        return "none (random)" if key == "seed" else "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "temp" and value == 0:
        return "0 (greedy)"
    return repr(value) if key == "mood" else str(value)
