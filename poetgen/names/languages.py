"""Languages and spelling: which language a user means, how a typed name is read, and which kind
of checkpoint a names call needs."""

from __future__ import annotations

from poetgen.checkpoint import Checkpoint
from poetgen.errors import PoetgenError, unknown

NAME_PUNCTUATION = frozenset("-' ")  # the non-letters a generated name may contain


def resolve_language(ck: Checkpoint, text: str) -> str:
    """The model's language for ``text``: case-insensitive, any unique prefix (``rus`` → Russian)."""
    languages = list(ck.categories)
    if not languages:
        raise PoetgenError(f"{ck.path} is not conditioned on a language")
    key = text.strip().lower()
    if not key:
        raise PoetgenError(f"give a language; choose from: {', '.join(languages)}")
    exact = [lang for lang in languages if lang.lower() == key]
    if exact:
        return exact[0]
    matches = [lang for lang in languages if lang.lower().startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise PoetgenError(f"language '{text}' is ambiguous: it could be {', '.join(matches)}")
    raise unknown("language", text, languages)


def canonical_case(name: str) -> str:
    """``hou`` → ``Hou``, ``DOVESKY`` → ``Dovesky``, ``o'brien`` → ``O'Brien``; mixed case stays."""
    if name.islower() or name.isupper():
        return name.title()
    return name


def is_name_token(token: str) -> bool:
    return any(ch.isalpha() for ch in token) or token in NAME_PUNCTUATION


def require(ck: Checkpoint, kind: str) -> None:
    if ck.kind != kind:
        wanted = {"names": "a names language model", "classify": "a names classifier"}[kind]
        raise PoetgenError(f"{ck.path} is not {wanted} (it is a {ck.kind} model)")
