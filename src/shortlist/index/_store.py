"""Atomic, pickle-free artifact files: `.npy` arrays, FAISS files and a JSON manifest with checksums."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.index.errors import IndexFileError

META_FILE = "index.json"
FORMAT_VERSION = 1


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _temp_beside(target: Path, suffix: str) -> Iterator[Path]:
    """A temporary path in the target's directory, so that `os.replace` is an atomic rename."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(target: Path, writer: Callable[[Path], object]) -> str:
    """Write `target` via `writer(tmp_path)` then rename into place; return its sha256."""
    with _temp_beside(target, target.suffix) as tmp:
        writer(tmp)
        digest = sha256(tmp)
    return digest


def write_array(target: Path, array: np.ndarray) -> str:
    def writer(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return write_file(target, writer)


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Written last: the manifest is what makes the other files a valid index."""
    text = json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2, sort_keys=True)
    write_file(directory / META_FILE, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META_FILE
    if not path.is_file():
        raise IndexFileError(
            f"{directory}: no {META_FILE} found; this is not a saved VectorIndex. "
            f"Fix: pass the directory given to VectorIndex.save()."
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"{path}: unreadable manifest ({exc}). Fix: save the index again.") from exc
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or version != FORMAT_VERSION:
        raise IndexFileError(
            f"{path}: unsupported index format {version!r} "
            f"(this version reads {FORMAT_VERSION}). Fix: rebuild and save the index with this version."
        )
    return meta


def verified(directory: Path, name: str, checksums: dict[str, str]) -> Path:
    """Path of `name` inside `directory` after checking it exists and matches its recorded sha256."""
    path = directory / name
    expected = checksums.get(name)
    if expected is None or not path.is_file():
        raise IndexFileError(f"{path}: file is missing from the saved index. Fix: save the index again.")
    if sha256(path) != expected:
        raise IndexFileError(
            f"{path}: checksum mismatch (file changed or was partly written after saving). "
            f"Fix: save the index again; do not edit files inside a saved index."
        )
    return path


def read_array(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"{path}: not a readable .npy array ({exc}). Fix: save the index again.") from exc
