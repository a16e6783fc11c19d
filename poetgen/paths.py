"""Where poetgen finds data, caches and the files that ship with it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
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
        return _folder(Path(explicit).expanduser(), f"data folder {explicit}")
    env = os.environ.get("POETGEN_DATA")
    if env:
        return _folder(Path(env).expanduser(), f"POETGEN_DATA points to {env}, which")
    return cache_dir()


def _folder(path: Path, what: str) -> Path:
    """``path`` if it is a folder; else "``what`` does not exist" / "... is a file, not a folder"."""
    if path.is_dir():
        return path
    if path.exists():
        raise PoetgenError(f"{what} is a file, not a folder")
    raise PoetgenError(f"{what} does not exist")


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


@contextlib.contextmanager
def atomic_paths(targets: list[Path], suffix: str = ".tmp") -> Iterator[list[Path]]:
    """Temporary files beside each of ``targets``, renamed onto them together when the block ends
    (in order), or all removed when it fails: files that belong together change together."""
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(_temporary(path, suffix)) for path in targets]
        yield temps
        for tmp, path in zip(temps, targets, strict=True):
            os.chmod(tmp, 0o644)  # mkstemp makes files private; these are meant to be read by others
            os.replace(tmp, path)


@contextlib.contextmanager
def _temporary(path: Path, suffix: str) -> Iterator[Path]:
    """A unique temporary file beside ``path``, removed when the block ends unless renamed away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def fresh_folders(*folders: Path, whole: bool = False) -> Iterator[None]:
    """When the block fails, remove those of ``folders`` (with any parents) that it created, so that
    a failed command leaves no empty folder behind; ``whole``: with whatever the block wrote into
    them (a half-made report). Folders that were there before are left alone."""
    created: set[Path] = set()
    for folder in folders:
        probe = Path(folder).expanduser().absolute()
        while not probe.exists() and not probe.is_symlink():
            created.add(probe)
            probe = probe.parent
    try:
        yield
    except BaseException:
        for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):  # the deepest first
            with contextlib.suppress(OSError):
                shutil.rmtree(folder) if whole else folder.rmdir()
        raise


def input_file(path: Path | str) -> Path:
    """``path`` if it can be read as a text file: refused with what it is when it is missing or a
    folder. Devices and pipes (``/dev/null``, ``<(command)``) are read like files."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise PoetgenError(f"{path} is a folder, not a text file")
    if not path.exists():
        raise PoetgenError(f"{path} does not exist")
    return path


def read_text(path: Path) -> str:
    """A UTF-8 text file's contents. A file that is not UTF-8 (or holds NUL bytes) is bad input
    (exit 2, naming the byte); a file that cannot be read is an environment failure (exit 1)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PoetgenError(f"{path} is not UTF-8 text (byte {e.start}): is it a binary file?") from None
    except IsADirectoryError:
        raise PoetgenError(f"{path} is a folder, not a text file") from None
    except OSError as e:
        raise PoetgenError(f"cannot read {path}: {e.strerror or e}", code=1) from None
    if "\x00" in text:
        raise PoetgenError(f"{path} holds NUL bytes: it looks like a binary file, not text")
    return text


def check_writable(folder: Path, name: str = "--out") -> None:
    """Refuse ``folder`` (named ``name`` in the message) if it could not be created or written,
    without creating anything: a run whose options turn out to be bad leaves no empty folder.
    The nearest existing ancestor must be a folder we may write (``os.access`` also says no on a
    read-only file system, where even root cannot write)."""
    path = Path(folder).expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.is_symlink():  # a dangling link (or a loop): mkdir would say "File exists"
            what = ("a symbolic link loop" if _loops(probe) else
                    f"a symbolic link to {os.readlink(probe)}, which does not exist")
            raise PoetgenError(f"cannot write to {name} {folder}: {probe} is {what}")
        probe = probe.parent
    if not probe.is_dir():
        raise PoetgenError(f"cannot write to {name} {folder}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(probe) else "permission denied"
        raise PoetgenError(f"cannot write to {name} {folder}: {reason}")


def _loops(path: Path) -> bool:
    try:
        path.stat()
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
