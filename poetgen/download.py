"""Download a corpus, check it against its manifest, and put it into the data folder.

A manifest (``corpora/<name>.json``, schema in ``corpora/README.md``) names a source archive
(``corpora/sources.json``) and every file the corpus consists of: its path in the data folder, the
archive member it comes from, its size and its SHA-256.

``download_corpus`` never leaves a half-finished corpus behind. The archive goes to a hidden temp
file inside the data folder (same file system, so the final renames are atomic), the listed members
are extracted into a hidden staging folder and checked there, and only then renamed into place. Any
failure removes the temp file, the staging folder and whatever was already renamed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from poetgen import paths
from poetgen.corpora import CORPORA
from poetgen.errors import PoetgenError, unknown

CHUNK = 1 << 16
TIMEOUT_S = 30  # per socket operation, not for the whole download
SOURCES_FILE = "sources.json"

# ---------------------------------------------------------------------------------------------
# Manifests


def corpus_names() -> list[str]:
    """Names of the corpora poetgen knows (``corpora.CORPORA``), each with its manifest."""
    return sorted(CORPORA)


def manifest(name: str) -> dict[str, Any]:
    """The manifest of corpus ``name`` with its ``source`` resolved to a dict (url, sha256, ...)."""
    choices = corpus_names()
    if name not in choices:
        raise unknown("corpus", name, choices)
    data = _read_json(paths.bundled("corpora") / f"{name}.json")
    return _resolved(name, data)


def _resolved(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked, with a ``source`` given by id replaced by its entry in sources.json."""
    _check_manifest(name, data)
    source = data.get("source")
    if isinstance(source, str):
        sources = _read_json(paths.bundled("corpora") / SOURCES_FILE)
        if source not in sources:
            raise PoetgenError(f"corpus manifest '{name}' names unknown source '{source}'")
        data = {**data, "source": {"id": source, **sources[source]}}
    return data


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PoetgenError(f"cannot read corpus manifest {path}: {err}", 1) from err


def _check_manifest(name: str, data: dict[str, Any]) -> None:
    """Refuse manifests whose paths could escape the data folder or that lack a field we need."""
    if not isinstance(data.get("files"), dict) or not data["files"]:
        raise PoetgenError(f"corpus manifest '{name}' lists no files")
    for dest, entry in data["files"].items():
        if not isinstance(entry, dict):
            raise PoetgenError(f"corpus manifest '{name}': {dest} must map to an object")
        _safe_relative(dest, f"corpus manifest '{name}': destination")
        _safe_relative(entry.get("member", ""), f"corpus manifest '{name}': archive member")
        if not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            raise PoetgenError(f"corpus manifest '{name}': {dest} needs a size and a sha256")
    members = [entry["member"] for entry in data["files"].values()]
    if len(set(members)) != len(members):
        raise PoetgenError(f"corpus manifest '{name}' lists an archive member twice")
    if "root" in data:
        _safe_relative(data["root"], f"corpus manifest '{name}': root")


def _safe_relative(path: str, what: str) -> None:
    """A relative POSIX path that stays inside its folder, or a PoetgenError naming it."""
    pure = PurePosixPath(path)
    parts = pure.parts
    # a backslash or drive letter ("C:") would be a separator or an absolute path on Windows
    if not parts or "\\" in path or pure.is_absolute() or ".." in parts or ":" in parts[0]:
        raise PoetgenError(f"{what} '{path}' is not a safe relative path; refusing it")


# ---------------------------------------------------------------------------------------------
# Verification


def verify_corpus(name: str, data_dir: Path, *, manifest_override: dict[str, Any] | None = None) -> list[str]:
    """Problems with corpus ``name`` in ``data_dir``: missing files and files that differ.

    An empty list means every file the manifest lists is present with the right size and hash.
    """
    data = _manifest_or_override(name, manifest_override)
    problems = []
    for dest, entry in data["files"].items():
        path = Path(data_dir) / dest
        if not path.is_file():
            problems.append(f"missing {dest}")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{dest} has {path.stat().st_size} bytes, expected {entry['size']}")
        elif _sha256_file(path) != entry["sha256"]:
            problems.append(f"{dest} differs from the released file (SHA-256 mismatch)")
    return problems


def _manifest_or_override(name: str, override: dict[str, Any] | None) -> dict[str, Any]:
    return manifest(name) if override is None else _resolved(name, override)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Download


def download_corpus(
    name: str,
    data_dir: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    manifest_override: dict[str, Any] | None = None,
) -> Path:
    """Download corpus ``name`` into ``data_dir`` and return the corpus folder (its ``root``).

    ``url`` replaces the manifest's archive address (a mirror); ``sha256`` is the archive hash to
    insist on. Without ``sha256`` the manifest's archive hash applies only to the manifest's own
    URL, since a mirror may repackage; the per-file hashes are checked either way.
    ``manifest_override`` replaces the bundled manifest (tests, new corpora); its ``source`` is a
    dict like a ``sources.json`` entry, or the id of one.
    """
    data = _manifest_or_override(name, manifest_override)
    source = data.get("source") or {}
    archive_url = url or source.get("url")
    if not archive_url:
        raise PoetgenError(f"corpus '{name}' has no download URL; pass one")
    expected = sha256 or (source.get("sha256") if archive_url == source.get("url") else None)

    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PoetgenError(f"cannot create data folder {data_dir}: {err.strerror or err}", 1) from err

    with _temp_file(data_dir, f".{name}-", ".download") as archive:
        actual = _fetch(archive_url, archive, label=name, progress=progress)
        if expected and actual != expected.lower():
            raise PoetgenError(
                f"archive from {archive_url} failed its SHA-256 check "
                f"(got {actual[:12]}…, expected {expected[:12]}…); nothing was installed",
                1,
            )
        with _temp_folder(data_dir, f".{name}-", ".staging") as staging:
            _extract(archive, data["files"], staging)
            _install(staging, list(data["files"]), data_dir)
    return data_dir / data.get("root", ".")


@contextmanager
def _temp_file(folder: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """A hidden temp file in ``folder``, removed afterwards whatever happens."""
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as err:
        raise PoetgenError(f"cannot write to data folder {folder}: {err.strerror or err}", 1) from err
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@contextmanager
def _temp_folder(folder: Path, prefix: str, suffix: str) -> Iterator[Path]:
    try:
        name = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as err:
        raise PoetgenError(f"cannot write to data folder {folder}: {err.strerror or err}", 1) from err
    try:
        yield Path(name)
    finally:
        shutil.rmtree(name, ignore_errors=True)


def _fetch(url: str, dest: Path, *, label: str, progress: bool) -> str:
    """Stream ``url`` into ``dest``; return the SHA-256 of what arrived."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received, digest = _stream(response, dest, total, label, progress)
    except urllib.error.HTTPError as err:
        raise PoetgenError(f"download of {url} failed: HTTP {err.code} {err.reason}", 1) from err
    except urllib.error.URLError as err:
        raise PoetgenError(f"cannot reach {url}: {err.reason}", 1) from err
    except http.client.IncompleteRead as err:
        raise PoetgenError(f"download of {url} was cut off after {len(err.partial)} bytes", 1) from err
    except (http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise PoetgenError(f"download of {url} failed: {err or type(err).__name__}", 1) from err
    except ValueError as err:  # `not a url`: urllib has no scheme to open it with
        raise PoetgenError(f"'{url}' is not a URL poetgen can download from ({err})") from None
    except OSError as err:  # writing the temp file: disk full, permissions
        raise PoetgenError(f"cannot save download in {dest.parent}: {err.strerror or err}", 1) from err
    # urllib returns a short body without complaint when the server closes early
    if total is not None and received != total:
        raise PoetgenError(f"download of {url} was cut off: got {received} of {total} bytes", 1)
    return digest


def _stream(
    response: IO[bytes], dest: Path, total: int | None, label: str, progress: bool
) -> tuple[int, str]:
    digest = hashlib.sha256()
    received = 0
    with dest.open("wb") as out, _progress_bar(label, total, progress) as advance:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            advance(len(chunk))
    return received, digest.hexdigest()


@contextmanager
def _progress_bar(label: str, total: int | None, enabled: bool) -> Iterator[Any]:
    """Yield ``advance(n_bytes)``; a Rich bar on stderr (bytes, speed, time left) when enabled."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda n: bar.advance(task, n)


# ---------------------------------------------------------------------------------------------
# Extraction


def _extract(archive: Path, files: dict[str, dict[str, Any]], staging: Path) -> None:
    """Copy the listed members of ``archive`` into ``staging`` under their destination paths.

    Member names in the archive are never used as file-system paths: only the manifest's
    destinations are, and those were checked to stay inside the data folder.
    """
    wanted = {entry["member"]: dest for dest, entry in files.items()}
    found: set[str] = set()
    try:
        for member, read in _members(archive, set(wanted)):
            dest = wanted[member]
            with read() as src:
                _write_checked(src, staging / dest, dest, files[dest])
            found.add(member)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise PoetgenError(f"the downloaded archive is damaged or truncated ({err})", 1) from err
    except OSError as err:
        raise PoetgenError(f"cannot extract into {staging.parent}: {err.strerror or err}", 1) from err
    missing = sorted(set(wanted) - found)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise PoetgenError(f"the downloaded archive lacks {missing[0]}{more}", 1)


def _members(archive: Path, wanted: set[str]) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, open)`` for each wanted regular-file member, in archive order.

    Sniffs the format from the first bytes rather than trusting the URL's extension.
    """
    with archive.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"PK":
        yield from _zip_members(archive, wanted)
    else:
        yield from _tar_members(archive, wanted)


def _zip_members(archive: Path, wanted: set[str]) -> Iterator[tuple[str, Any]]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.filename not in wanted:
                continue
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                raise PoetgenError(f"archive member {info.filename} is not a regular file; refusing it", 1)
            yield info.filename, lambda info=info: zf.open(info)


def _tar_members(archive: Path, wanted: set[str]) -> Iterator[tuple[str, Any]]:
    # iterate in order (no random access) so a .tgz is decompressed once
    with tarfile.open(archive, "r:*", encoding="utf-8") as tf:
        for info in tf:
            if info.name not in wanted:
                continue
            # a link or device could point outside the data folder
            if not info.isfile():
                raise PoetgenError(f"archive member {info.name} is not a regular file; refusing it", 1)
            yield info.name, lambda info=info: tf.extractfile(info)


def _write_checked(src: IO[bytes], path: Path, dest: str, entry: dict[str, Any]) -> None:
    """Copy ``src`` to ``path``, reading at most one byte more than expected, and check its hash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        while size <= entry["size"] and (chunk := src.read(CHUNK)):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise PoetgenError(f"{dest} in the downloaded archive differs from the manifest (size or SHA-256)", 1)


def _install(staging: Path, dests: list[str], data_dir: Path) -> None:
    """Rename each checked file into place; on failure take back the ones already moved."""
    moved: list[Path] = []
    try:
        for dest in dests:
            target = data_dir / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / dest, target)
            moved.append(target)
    except BaseException as err:
        # a partial set would look like a smaller corpus to a loader that globs the folder
        for target in moved:
            target.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise PoetgenError(f"cannot move files into {data_dir}: {err.strerror or err}", 1) from err
        raise
