"""Download public datasets (the MovieLens zips) into a cache folder.

The archive is streamed to a temporary file beside the cache (same filesystem), its SHA-256 is
checked against the registry, every member path is checked before anything is extracted (no
absolute paths, no ``..``, no links, bounded size), and the extracted folder is renamed into
place atomically — a failed or interrupted download never leaves a half-written dataset.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from shortlist import __version__
from shortlist.data.loaders.registry import get_spec
from shortlist.errors import DownloadError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: Refuse downloads or extracted archives larger than this (the MovieLens zips are < 10 MB).
DEFAULT_MAX_BYTES = 2 << 30


def download_dataset(
    name: str,
    *,
    cache_dir: Path | str,
    timeout: float = 60.0,
    force: bool = False,
    url: str | None = None,
) -> Path:
    """Download and extract dataset ``name`` into ``cache_dir/<folder name>``; returns that folder.

    ``url`` overrides the registry's URL (a mirror); the registry's checksum still applies.
    An existing folder is kept unless ``force``.
    """
    spec = get_spec(name)
    source = url or spec.url
    if source is None:
        raise DownloadError(f"dataset {name!r} has no download URL. Fix: {spec.how_to_get()}.")
    return download_archive(
        source,
        dest=Path(cache_dir) / spec.dir_names[0],
        sha256=spec.sha256,
        archive_root=spec.archive_root,
        timeout=timeout,
        force=force,
    )


def download_archive(
    url: str,
    *,
    dest: Path | str,
    sha256: str | None,
    archive_root: str | None = None,
    timeout: float = 60.0,
    force: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download the zip at ``url``, verify ``sha256`` and extract it (``archive_root`` inside it) to ``dest``.

    ``sha256=None`` downloads unverified, with a logged warning that shows the digest to pin.
    """
    dest = Path(dest)
    if dest.exists() and not force:
        logger.info("%s already exists; not downloading it again (pass force=True to refresh)", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-download-", dir=dest.parent))
    try:
        archive = work / "archive.zip"
        digest = _fetch(url, archive, timeout=timeout, max_bytes=max_bytes)
        _verify(url, digest, sha256)
        extracted = work / "extracted"
        _extract_zip(archive, extracted, url=url, max_bytes=max_bytes)
        _move_into_place(_root(extracted, archive_root), dest, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("downloaded %s to %s", url, dest)
    return dest


def _fetch(url: str, target: Path, *, timeout: float, max_bytes: int) -> str:
    """Stream ``url`` to ``target``; returns the SHA-256 hex digest of the bytes."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http(s) URLs are downloaded. Fix: pass an http:// or https:// URL.")
    request = urllib.request.Request(url, headers={"User-Agent": f"shortlist/{__version__}"})
    digest = hashlib.sha256()
    size = 0
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, target.open("wb") as out:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{url}: larger than {max_bytes:,} bytes; refusing to download it.")
                digest.update(chunk)
                out.write(chunk)
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason}. Fix: check the URL, or try again later."
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"{url}: download failed ({reason}). Fix: check the network connection, or download and "
            f"extract the zip yourself and pass its folder with --data-dir."
        ) from exc
    return digest.hexdigest()


def _verify(url: str, digest: str, expected: str | None) -> None:
    if expected is None:
        logger.warning("no SHA-256 is pinned for %s, so the download is NOT verified (got %s)", url, digest)
        return
    if digest.lower() != expected.lower():
        raise DownloadError(
            f"{url}: SHA-256 mismatch (expected {expected}, got {digest}); the download was deleted. "
            f"Fix: retry; if it persists the file changed upstream or was tampered with — do not use it."
        )


def _extract_zip(archive: Path, target: Path, *, url: str, max_bytes: int) -> None:
    """Extract after checking every member: no absolute paths, ``..``, drive letters or links."""
    target.mkdir()
    base = target.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            total = 0
            for info in members:
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                unsafe = (
                    info.filename.startswith(("/", "\\"))
                    or ".." in parts
                    or (parts and ":" in parts[0])
                    or stat.S_ISLNK(info.external_attr >> 16)
                    or not (base / Path(*parts)).resolve().is_relative_to(base)
                )
                if unsafe:
                    raise DownloadError(
                        f"{url}: archive member {info.filename!r} would be written outside the target "
                        f"folder; nothing was extracted. Fix: use the official archive."
                    )
                total += info.file_size
                if total > max_bytes:
                    raise DownloadError(f"{url}: archive expands beyond {max_bytes:,} bytes; refusing it.")
            zf.extractall(target, members)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{url}: not a valid zip archive ({exc}). Fix: retry the download.") from exc


def _root(extracted: Path, archive_root: str | None) -> Path:
    """The folder to install: ``archive_root`` inside the archive, else its single top folder."""
    if archive_root and (extracted / archive_root).is_dir():
        return extracted / archive_root
    entries = list(extracted.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return extracted


def _move_into_place(src: Path, dest: Path, work: Path) -> None:
    if dest.exists():  # force=True: swap the old copy out, then the new one in
        os.replace(dest, work / "previous")
    try:
        os.replace(src, dest)
    except OSError as exc:
        if dest.is_dir():  # another process finished first; its copy is as good as ours
            logger.info("%s appeared while downloading; keeping it", dest)
            return
        raise DownloadError(f"cannot move the download into {dest}: {exc}") from exc
