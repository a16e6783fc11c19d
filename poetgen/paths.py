"""Where poetgen finds data, caches and the files that ship with it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside ``path`` to write into; renamed onto ``path`` when the block ends.

    Readers see the old file or the whole new one, never half of it. The temporary name is unique
    (DDP ranks and two terminals may write at once). Whatever stops the block (an error, Ctrl-C)
    removes the temporary file and is re-raised; OSError from here is the caller's to word.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
