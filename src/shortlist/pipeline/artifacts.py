"""Model directories: atomic writes, a JSON manifest with versions and checksums, verified loads.

Arrays are ``.npy`` (loaded with ``allow_pickle=False``), tables Parquet, models in their own text
formats. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shortlist import __version__
from shortlist.errors import ModelLoadError, OutputPathError

MANIFEST = "manifest.json"
FORMAT = "shortlist-model"
FORMAT_VERSION = 1
_LIBRARIES = ("numpy", "scipy", "polars", "pyarrow", "lightgbm", "implicit", "faiss-cpu", "torch",
              "sentence-transformers", "scikit-learn")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model may depend on."""
    out = {}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_model_target(target: Path | str) -> Path:
    """``target`` resolved, if a model may be written there: a new path, an empty folder, or an
    existing shortlist model (which a new one replaces). Anything else is refused before any work,
    since replacing it would delete what shortlist did not create."""
    path = Path(target).expanduser().resolve()
    fix = "pass a new folder name (e.g. --out models/my-model)"
    if path == Path.cwd().resolve() or path in Path.cwd().resolve().parents:
        raise OutputPathError(f"--out {target}: the model folder cannot be the working directory or one "
                              f"above it; {fix}")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"--out {target}: a file of that name exists and a model is a folder; {fix}, "
                              f"or move the file away yourself")
    if path.is_dir() and any(path.iterdir()) and not _is_model(path):
        raise OutputPathError(f"--out {target}: the folder exists and is not a shortlist model (it has no "
                              f"{MANIFEST} of format {FORMAT!r}), so replacing it would delete its files; {fix}")
    return path


def _is_model(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def atomic_directory(target: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``target`` in one rename.

    ``target`` must pass :func:`check_model_target`. On error the temporary directory is removed
    and ``target`` is left as it was.
    """
    with staged_directory(check_model_target(target)) as tmp:
        yield tmp


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """A temporary sibling folder that replaces ``target`` in one rename once the block succeeds
    (the caller has checked that ``target`` may be replaced); on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_manifest(directory: Path, *, kind: str, config: Mapping[str, Any], extra: Mapping[str, Any]) -> dict:
    """Checksum every file in ``directory`` and write the manifest (call last)."""
    files = {
        str(p.relative_to(directory)): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "shortlist_version": __version__,
        "libraries": library_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": dict(config),
        **dict(extra),
        "files": files,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False))
    return manifest


def read_manifest(directory: Path, *, verify: bool = True) -> dict:
    """Read and (by default) verify a model directory's manifest and file checksums."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelLoadError(f"{directory}: no {MANIFEST}; this is not a shortlist model directory "
                             f"(create one with `shortlist fit ... --out {directory}`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path}: corrupt manifest ({e}); re-run `shortlist fit`") from e
    if manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not a shortlist model manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: model format {manifest['format_version']} is newer than this "
                             f"shortlist ({__version__}) supports; upgrade shortlist")
    if verify:
        verify_files(directory, manifest)
    return manifest


def verify_files(directory: Path, manifest: Mapping[str, Any], *, skip: str | None = None,
                 what: str = "model", fix: str = "re-run `shortlist fit`") -> None:
    """Check every file the manifest lists (but those under the folder ``skip``) against its
    SHA-256: a missing or changed file is a :class:`ModelLoadError` naming it and ``fix``."""
    for rel, digest in manifest.get("files", {}).items():
        if skip is not None and rel.startswith(f"{skip}/"):
            continue
        f = directory / rel
        if not f.is_file():
            raise ModelLoadError(f"{directory}: file {rel!r} listed in the manifest is missing")
        if sha256_file(f) != digest:
            raise ModelLoadError(f"{directory}: checksum mismatch for {rel!r}; the {what} is corrupt "
                                 f"or was modified — {fix}")


def save_arrays(directory: Path, arrays: Mapping[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(directory / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)


class SharedArrays:
    """Arrays a model's sources load once: every source saves its own copy of, say, the
    seen-items matrix, so files of equal content (by the digests the manifest lists, already
    verified at load) share one array, read-only so that no source can change another's."""

    def __init__(self, digests: Mapping[Path, str]) -> None:
        self.digests, self.arrays = dict(digests), dict[str, np.ndarray]()

    @classmethod
    def of_manifest(cls, directory: Path, manifest: Mapping[str, Any]) -> SharedArrays:
        return cls({directory / rel: digest for rel, digest in manifest.get("files", {}).items()})

    def load(self, path: Path) -> np.ndarray:
        digest = self.digests.get(path) or sha256_file(path)  # a file the manifest does not list: hashed
        if digest not in self.arrays:
            self.arrays[digest] = np.load(path, allow_pickle=False)
            self.arrays[digest].flags.writeable = False
        return self.arrays[digest]


def load_arrays(directory: Path, shared: SharedArrays | None = None) -> dict[str, np.ndarray]:
    """The ``.npy`` arrays of a folder by name; through ``shared`` where a model's sources share them."""
    paths = sorted(Path(directory).glob("*.npy"))
    if shared is None:
        return {p.stem: np.load(p, allow_pickle=False) for p in paths}
    return {p.stem: shared.load(p) for p in paths}


def save_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2))


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_ids(path: Path, ids: pl.Series) -> None:
    pl.DataFrame({"id": ids}).write_parquet(path)


def load_ids(path: Path) -> pl.Series:
    return pl.read_parquet(path).get_column("id")
