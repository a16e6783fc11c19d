"""The shell's models: loaded on first use, kept for the session."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from poetgen.errors import PoetgenError

KINDS = ("poems", "ci", "names", "classify")
KIND_NAMES = {"poems": "poem", "ci": "词", "names": "names", "classify": "names classifier"}
# Completion for `names LANGUAGE` before the names model is loaded (loading it just to complete a
# word would break "models load on first use"): the 18 languages of the PyTorch tutorial's data.
DEFAULT_LANGUAGES = ("Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish",
                     "Italian", "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish",
                     "Vietnamese")


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
