"""download_corpus against a local HTTP server serving archives built at test time.

Every failure must leave the data folder without anything that looks like a corpus, so most
tests end by listing the files left behind.
"""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poetgen import download
from poetgen.download import corpus_names, download_corpus, manifest, verify_corpus
from poetgen.errors import PoetgenError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"

TINY = {"data/names/Tiny.txt": b"Ada\nBo\n", "data/names/Small.txt": "Zoë\nÅse\n".encode()}


# ---------------------------------------------------------------------------------------------
# A local server and archives


class Server:
    """Serves ``routes[path] = (body, content_length)`` on 127.0.0.1; other paths are 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                if self.path not in routes:
                    self.send_error(404, "Not Found")
                    return
                body, length = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, body: bytes, length: int | None = None) -> str:
        self.routes[path] = (body, len(body) if length is None else length)
        return self.base + path


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tgz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names_manifest(members: dict[str, bytes] = TINY, url: str = "") -> dict[str, Any]:
    """A manifest in the bundled schema that puts ``data/names/X.txt`` at ``names/X.txt``."""
    files = {
        "names/" + member.rsplit("/", 1)[1]: {"member": member, "size": len(data), "sha256": sha(data)}
        for member, data in members.items()
    }
    return {"root": "names", "source": {"url": url, "sha256": None}, "files": files}


def leftovers(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden temp files included)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# Success


def test_zip_download_extracts_listed_members(server: Server, tmp_path: Path) -> None:
    archive = make_zip({**TINY, "data/eng-fra.txt": b"not wanted\n"})
    url = server.serve("/data.zip", archive)
    data_dir = tmp_path / "data"

    root = download_corpus(
        "names", data_dir, url=url, sha256=sha(archive), progress=False, manifest_override=names_manifest()
    )

    assert root == data_dir / "names"
    assert (root / "Tiny.txt").read_bytes() == TINY["data/names/Tiny.txt"]
    assert (root / "Small.txt").read_text(encoding="utf-8") == "Zoë\nÅse\n"
    assert leftovers(data_dir) == ["names/Small.txt", "names/Tiny.txt"]  # no eng-fra, no temp files
    assert verify_corpus("names", data_dir, manifest_override=names_manifest()) == []


def test_tgz_download_with_manifest_url_and_progress_bar(server: Server, tmp_path: Path) -> None:
    members = {"package/dist/songci/ci.song.0.json": '[{"rhythmic": "浣溪沙"}]'.encode()}
    archive = make_tgz({**members, "package/README.md": b"# other\n"})
    url = server.serve("/chinese-poetry.tgz", archive)
    override = {
        "root": "chinese-poetry/songci",
        "source": {"url": url, "sha256": sha(archive)},  # the manifest's own hash applies
        "files": {
            "chinese-poetry/songci/ci.song.0.json": {
                "member": "package/dist/songci/ci.song.0.json",
                "size": len(members["package/dist/songci/ci.song.0.json"]),
                "sha256": sha(members["package/dist/songci/ci.song.0.json"]),
            }
        },
    }

    root = download_corpus("songci", tmp_path, progress=True, manifest_override=override)

    assert "浣溪沙" in (root / "ci.song.0.json").read_text(encoding="utf-8")
    assert leftovers(tmp_path) == ["chinese-poetry/songci/ci.song.0.json"]


def test_download_replaces_a_damaged_file(server: Server, tmp_path: Path) -> None:
    url = server.serve("/data.zip", make_zip(TINY))
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "Tiny.txt").write_text("garbage")
    assert verify_corpus("names", tmp_path, manifest_override=names_manifest()) == [
        "names/Tiny.txt differs from the released file (SHA-256 mismatch)",
        "missing names/Small.txt",
    ]

    download_corpus("names", tmp_path, url=url, progress=False, manifest_override=names_manifest())

    assert verify_corpus("names", tmp_path, manifest_override=names_manifest()) == []


# ---------------------------------------------------------------------------------------------
# Failures leave nothing behind


def fails(data_dir: Path, **kwargs: Any) -> PoetgenError:
    kwargs.setdefault("manifest_override", names_manifest())
    with pytest.raises(PoetgenError) as caught:
        download_corpus("names", data_dir, progress=False, **kwargs)
    assert "\n" not in str(caught.value)
    return caught.value


def test_bad_archive_checksum(server: Server, tmp_path: Path) -> None:
    url = server.serve("/data.zip", make_zip(TINY))
    err = fails(tmp_path, url=url, sha256="0" * 64)
    assert err.code == 1
    assert "SHA-256" in str(err)
    assert leftovers(tmp_path) == []


def test_member_that_differs_from_manifest(server: Server, tmp_path: Path) -> None:
    url = server.serve("/data.zip", make_zip({**TINY, "data/names/Tiny.txt": b"Eve\n"}))
    err = fails(tmp_path, url=url)
    assert err.code == 1
    assert "names/Tiny.txt" in str(err)
    assert leftovers(tmp_path) == []


def test_content_length_longer_than_body(server: Server, tmp_path: Path) -> None:
    archive = make_zip(TINY)
    url = server.serve("/data.zip", archive[:100], length=len(archive))
    err = fails(tmp_path, url=url)
    assert err.code == 1
    assert "cut off" in str(err)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("maker", [make_zip, make_tgz])
def test_cut_archive(server: Server, tmp_path: Path, maker: Any) -> None:
    archive = maker(TINY)
    url = server.serve("/archive", archive[: len(archive) // 2])  # honest length, broken archive
    err = fails(tmp_path, url=url)
    assert err.code == 1
    assert "damaged" in str(err)
    assert leftovers(tmp_path) == []


def test_archive_lacking_a_member(server: Server, tmp_path: Path) -> None:
    url = server.serve("/data.zip", make_zip({"data/names/Tiny.txt": TINY["data/names/Tiny.txt"]}))
    err = fails(tmp_path, url=url)
    assert "lacks data/names/Small.txt" in str(err)
    assert leftovers(tmp_path) == []


def test_http_404(server: Server, tmp_path: Path) -> None:
    err = fails(tmp_path, url=server.base + "/nowhere.zip")
    assert err.code == 1
    assert "HTTP 404" in str(err)
    assert leftovers(tmp_path) == []


def test_unreachable_host(server: Server, tmp_path: Path) -> None:
    closed = server.base
    server.httpd.shutdown()
    server.httpd.server_close()  # nothing listens on that port any more
    err = fails(tmp_path, url=closed + "/data.zip")
    assert err.code == 1
    assert "cannot reach" in str(err)
    assert leftovers(tmp_path) == []


def test_disk_error_while_extracting(server: Server, tmp_path: Path, monkeypatch: Any) -> None:
    url = server.serve("/data.zip", make_zip(TINY))

    def disk_full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download, "_write_checked", disk_full)
    err = fails(tmp_path, url=url)
    assert err.code == 1
    assert "No space left" in str(err)
    assert leftovers(tmp_path) == []


def test_failed_rename_takes_back_moved_files(server: Server, tmp_path: Path, monkeypatch: Any) -> None:
    url = server.serve("/data.zip", make_zip(TINY))
    real_replace = download.os.replace
    calls = []

    def second_fails(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(download.os, "replace", second_fails)
    err = fails(tmp_path, url=url)
    assert err.code == 1
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Hostile archives and manifests


def test_unlisted_traversal_member_is_never_written(server: Server, tmp_path: Path) -> None:
    archive = make_zip({**TINY, "../../escape.txt": b"pwned\n", "/etc/evil": b"pwned\n"})
    url = server.serve("/data.zip", archive)
    data_dir = tmp_path / "deep" / "data"
    download_corpus("names", data_dir, url=url, progress=False, manifest_override=names_manifest())
    assert leftovers(tmp_path) == ["deep/data/names/Small.txt", "deep/data/names/Tiny.txt"]


@pytest.mark.parametrize("member", ["../escape.txt", "/etc/passwd", "data/../../escape.txt", "C:/x.txt"])
def test_traversal_member_in_manifest_is_refused(server: Server, tmp_path: Path, member: str) -> None:
    payload = b"pwned\n"
    url = server.serve("/data.zip", make_zip({member: payload}))
    override = names_manifest({member: payload})
    err = fails(tmp_path / "data", url=url, manifest_override=override)
    assert err.code == 2
    assert "not a safe relative path" in str(err)
    assert leftovers(tmp_path) == []


def test_traversal_destination_is_refused(server: Server, tmp_path: Path) -> None:
    url = server.serve("/data.zip", make_zip(TINY))
    override = names_manifest()
    override["files"]["../outside.txt"] = override["files"].pop("names/Tiny.txt")
    err = fails(tmp_path / "data", url=url, manifest_override=override)
    assert err.code == 2
    assert "../outside.txt" in str(err)
    assert leftovers(tmp_path) == []


def test_symlink_member_is_refused(server: Server, tmp_path: Path) -> None:
    archive = make_tgz(
        {"data/names/Small.txt": TINY["data/names/Small.txt"]}, {"data/names/Tiny.txt": "/etc/passwd"}
    )
    url = server.serve("/data.tgz", archive)
    err = fails(tmp_path, url=url)
    assert "not a regular file" in str(err)
    assert leftovers(tmp_path) == []


def test_unknown_corpus_name(tmp_path: Path) -> None:
    with pytest.raises(PoetgenError) as caught:
        download_corpus("tnag", tmp_path, progress=False)
    assert caught.value.code == 2
    assert "did you mean 'tang'" in str(caught.value)
    with pytest.raises(PoetgenError):
        verify_corpus("nmaes", tmp_path)
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# The bundled manifests


def test_bundled_manifests_are_well_formed() -> None:
    assert corpus_names() == ["names", "songci", "tang"]
    tang, songci, names = manifest("tang"), manifest("songci"), manifest("names")
    assert tang["source"] == songci["source"]  # one archive serves both
    assert tang["source"]["url"].startswith("https://registry.npmjs.org/chinese-poetry/")
    assert len(tang["source"]["sha256"]) == 64
    assert names["source"]["url"] == "https://download.pytorch.org/tutorial/data.zip"
    assert sum(p.startswith("chinese-poetry/quantangshi/poet.tang.") for p in tang["files"]) == 58
    assert len(names["files"]) == 18
    assert all(p.startswith(tang["root"] + "/") or p == "chinese-poetry/LICENSE" for p in tang["files"])


def test_verify_reports_missing_and_damaged_files(tmp_path: Path) -> None:
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "Arabic.txt").write_text("Khoury\n")
    problems = verify_corpus("names", tmp_path)
    assert len(problems) == 18
    assert any(p.startswith("names/Arabic.txt has 7 bytes") for p in problems)
    assert "missing names/Russian.txt" in problems


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared corpora beside the project")
@pytest.mark.parametrize("name", ["tang", "songci", "names"])
def test_manifests_match_the_released_corpora(name: str) -> None:
    """The per-file hashes are the real guard on downloads, so check them against released data."""
    assert verify_corpus(name, SHARED) == []
    # and every released file of the corpus is listed (none forgotten)
    root = SHARED / manifest(name)["root"]
    released = {p.relative_to(SHARED).as_posix() for p in root.iterdir() if p.is_file()}
    assert released <= set(manifest(name)["files"])
