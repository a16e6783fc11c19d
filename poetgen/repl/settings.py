"""The shell's settings: `set NAME VALUE` fills in options of the commands it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from poetgen.corpora import SCRIPTS
from poetgen.errors import PoetgenError, unknown
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
    "mood": Setting(_mood, "text fed to the poem model first to set the mood", ()),
    "style": Setting(_style, "poet to write as (`write --style list` lists the model's poets)", ("any",)),
    "candidates": Setting(_number(int, 1, 64, "a count from 1 to 64"),
                          "candidates per poem; the most fluent is kept (1 = off)"),
    "repeats": Setting(_switch, "allow repeated characters and phrases", ("on", "off")),
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




def shown(settings: Settings, key: str) -> str:
    value = getattr(settings, key)
    if value is None:
        return "none (random)" if key == "seed" else "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "temp" and value == 0:
        return "0 (greedy)"
    return repr(value) if key == "mood" else str(value)
