"""Where poetgen finds data, caches and the files that ship with it."""

from __future__ import annotations

import os
from pathlib import Path

from poetgen.errors import PoetgenError

PACKAGE = Path(__file__).resolve().parent


def data_dir(explicit: Path | str | None = None) -> Path:
    """The raw-data folder: ``--data-dir``, then ``$POETGEN_DATA``, then ``~/.cache/poetgen``.

    Its layout mirrors the chinese-poetry and PyTorch-tutorial archives:
    ``chinese-poetry/quantangshi/*.json``, ``chinese-poetry/songci/*.json``, ``names/*.txt``.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise PoetgenError(f"data folder {path} does not exist")
        return path
    env = os.environ.get("POETGEN_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise PoetgenError(f"POETGEN_DATA points to {path}, which does not exist")
        return path
    return cache_dir()


def cache_dir() -> Path:
    """Per-user folder for downloads, prepared corpora and REPL history (``$POETGEN_CACHE``)."""
    env = os.environ.get("POETGEN_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "poetgen"
    return base


def bundled(name: str) -> Path:
    """A folder shipped with the package (``corpora`` manifests, ``checkpoints``).

    In a wheel they live inside the package; in a source checkout, beside it.
    """
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name
