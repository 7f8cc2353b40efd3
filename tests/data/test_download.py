"""The downloader, against a local http.server on 127.0.0.1 only — never the network."""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from shortlist.data.download import download_archive, download_dataset
from shortlist.data.loaders import load_movielens
from shortlist.errors import DownloadError, UnknownDatasetError

U_DATA = b"1\t10\t5\t881250949\n2\t10\t3\t881250950\n"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _publish(root: Path, name: str, data: bytes) -> str:
    (root / name).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_verify_extract_and_load(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    sha = _publish(root, "ml-100k.zip", _zip({"ml-100k/u.data": U_DATA, "ml-100k/README": b"hi"}))
    cache = tmp_path / "cache"
    dest = download_archive(f"{base}/ml-100k.zip", dest=cache / "ml-100k", sha256=sha, archive_root="ml-100k")
    assert dest == cache / "ml-100k"
    assert sorted(p.name for p in dest.iterdir()) == ["README", "u.data"]
    assert _leftovers(cache) == ["ml-100k"]  # temp files are gone
    assert len(load_movielens(dest).interactions) == 2


def test_checksum_mismatch_leaves_nothing(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    sha = _publish(root, "a.zip", _zip({"ml-100k/u.data": U_DATA}))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=rf"a\.zip: SHA-256 mismatch \(expected 0{{64}}, got {sha}\)"):
        download_archive(f"{base}/a.zip", dest=cache / "ml-100k", sha256="0" * 64)
    assert _leftovers(cache) == []


def test_http_404(served: tuple[Path, str], tmp_path: Path) -> None:
    _, base = served
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=r"missing\.zip: HTTP 404"):
        download_archive(f"{base}/missing.zip", dest=cache / "x", sha256=None)
    assert _leftovers(cache) == []


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt", "C:/evil.txt"])
def test_path_traversal_is_refused(served: tuple[Path, str], tmp_path: Path, member: str) -> None:
    root, base = served
    sha = _publish(root, "bad.zip", _zip({"ok/u.data": U_DATA, member: b"pwned"}))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="would be written outside the target folder"):
        download_archive(f"{base}/bad.zip", dest=cache / "x", sha256=sha)
    assert _leftovers(cache) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_symlink_member_is_refused(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("ok/link")
        link.external_attr = (0o120777 << 16) & 0xFFFF0000
        zf.writestr(link, "/etc/passwd")
    sha = _publish(root, "link.zip", buf.getvalue())
    with pytest.raises(DownloadError, match="'ok/link' would be written outside"):
        download_archive(f"{base}/link.zip", dest=tmp_path / "cache" / "x", sha256=sha)


def test_unpinned_checksum_warns(
    served: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, base = served
    sha = _publish(root, "b.zip", _zip({"b/u.data": U_DATA}))
    with caplog.at_level(logging.WARNING, logger="shortlist.data.download"):
        dest = download_archive(f"{base}/b.zip", dest=tmp_path / "cache" / "b", sha256=None)
    assert (dest / "u.data").read_bytes() == U_DATA  # single top folder is unwrapped
    assert any("NOT verified" in r.message and sha in r.message for r in caplog.records)


def test_existing_folder_is_kept_unless_forced(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    dest = tmp_path / "cache" / "ml-100k"
    dest.mkdir(parents=True)
    (dest / "old.txt").write_text("old")
    # no request is made: the URL 404s, and that would raise
    assert download_archive(f"{base}/none.zip", dest=dest, sha256=None) == dest
    sha = _publish(root, "new.zip", _zip({"ml-100k/u.data": U_DATA}))
    download_archive(f"{base}/new.zip", dest=dest, sha256=sha, force=True)
    assert sorted(p.name for p in dest.iterdir()) == ["u.data"]
    assert _leftovers(tmp_path / "cache") == ["ml-100k"]


def test_not_a_zip(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    sha = _publish(root, "c.zip", b"<html>not a zip</html>")
    with pytest.raises(DownloadError, match="not a valid zip archive"):
        download_archive(f"{base}/c.zip", dest=tmp_path / "cache" / "c", sha256=sha)
    assert _leftovers(tmp_path / "cache") == []


def test_size_limit(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    sha = _publish(root, "big.zip", _zip({"d/u.data": U_DATA * 100}))
    with pytest.raises(DownloadError, match="larger than 100 bytes"):
        download_archive(f"{base}/big.zip", dest=tmp_path / "cache" / "d", sha256=sha, max_bytes=100)


def test_only_http_urls(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="only http"):
        download_archive(f"file://{tmp_path}/x.zip", dest=tmp_path / "cache" / "x", sha256=None)


def test_download_dataset_uses_the_registry_checksum(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    _publish(root, "ml-100k.zip", _zip({"ml-100k/u.data": U_DATA}))  # not the official bytes
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download_dataset("ml-100k", cache_dir=tmp_path / "cache", url=f"{base}/ml-100k.zip")
    assert _leftovers(tmp_path / "cache") == []


def test_download_dataset_without_url_or_unknown(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"'online-retail' has no download URL"):
        download_dataset("online-retail", cache_dir=tmp_path)
    with pytest.raises(UnknownDatasetError, match="Did you mean 'ml-1m'"):
        download_dataset("ml-1mm", cache_dir=tmp_path)
