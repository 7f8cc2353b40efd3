"""An on-disk embedding cache keyed by (encoder name, SHA-256 of the text).

Layout: ``<directory>/<encoder slug>/part-<id>.npy`` (float32 rows) next to ``part-<id>.json``
(``{"encoder", "dim", "keys"}``, one key per row). Parts are only ever added, each file written
to a temporary name and moved into place with ``os.replace``; the JSON is written last, so a
part without its JSON (a crash mid-write) is ignored. Concurrent writers add different parts and
never lose or corrupt each other's rows. Parts are merged once there are more than ``max_parts``.
Nothing is unpickled: arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shortlist.retrieval.content.encoders import Encoder, text_key

logger = logging.getLogger(__name__)


class EmbeddingCache:
    """Vectors of texts already encoded, per encoder; ``hits``/``misses`` count lookups."""

    def __init__(self, directory: str | Path, *, max_parts: int = 16) -> None:
        self.directory = Path(directory).expanduser()
        self.max_parts = max_parts
        self.hits = 0
        self.misses = 0

    def _folder(self, encoder: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder)[-60:].strip("._") or "encoder"
        return self.directory / f"{slug}-{hashlib.sha256(encoder.encode()).hexdigest()[:12]}"

    def _parts(self, folder: Path, encoder: str) -> list[tuple[Path, list[str], np.ndarray]]:
        parts = []
        for meta_path in sorted(folder.glob("part-*.json")):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                vectors = np.load(meta_path.with_suffix(".npy"), allow_pickle=False)
            except (OSError, ValueError) as exc:  # removed by a concurrent merge, or damaged
                logger.debug("embedding cache: skipping %s (%s)", meta_path, exc)
                continue
            keys = meta.get("keys", [])
            if meta.get("encoder") != encoder or vectors.ndim != 2 or vectors.shape[0] != len(keys):
                logger.warning("embedding cache: ignoring inconsistent part %s", meta_path)
                continue
            parts.append((meta_path, list(keys), vectors.astype(np.float32, copy=False)))
        return parts

    def get(self, encoder: str, keys: list[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached vectors for ``keys`` (rows of a ``len(keys) × d`` array) and a found-mask.

        The array is ``None`` when nothing is cached for this encoder.
        """
        found = np.zeros(len(keys), dtype=bool)
        parts = self._parts(self._folder(encoder), encoder)
        if not parts:
            self.misses += len(keys)
            return None, found
        dims = {v.shape[1] for _, _, v in parts}
        if len(dims) > 1:
            logger.warning("embedding cache: parts of %s disagree on the dimension; ignored", encoder)
            self.misses += len(keys)
            return None, found
        index: dict[str, tuple[int, int]] = {}
        for p, (_, part_keys, _) in enumerate(parts):
            for r, key in enumerate(part_keys):
                index.setdefault(key, (p, r))
        loc = np.array([index.get(key, (-1, -1)) for key in keys], dtype=np.int64).reshape(-1, 2)
        found = loc[:, 0] >= 0
        out = np.zeros((len(keys), dims.pop()), dtype=np.float32)
        for p, (_, _, vectors) in enumerate(parts):
            sel = np.flatnonzero(loc[:, 0] == p)
            out[sel] = vectors[loc[sel, 1]]
        self.hits += int(found.sum())
        self.misses += int((~found).sum())
        if len(parts) > self.max_parts:
            self._merge(encoder, parts)
        return out, found

    def put(self, encoder: str, keys: list[str], vectors: np.ndarray) -> Path | None:
        """Store ``vectors`` (one row per key) as a new part; returns its path (without suffix)."""
        if not keys:
            return None
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"put: {len(keys)} keys but vectors of shape {vectors.shape}")
        folder = self._folder(encoder)
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"part-{hashlib.sha256(''.join(keys).encode()).hexdigest()[:16]}-{os.getpid()}"
        _atomic_write(part.with_suffix(".npy"), lambda f: np.save(f, vectors, allow_pickle=False))
        meta = json.dumps({"encoder": encoder, "dim": int(vectors.shape[1]), "keys": keys}).encode("utf-8")
        _atomic_write(part.with_suffix(".json"), lambda f: f.write(meta))
        return part

    def _merge(self, encoder: str, parts: list[tuple[Path, list[str], np.ndarray]]) -> None:
        """Rewrite many small parts as one; old parts are removed only after the merged one exists."""
        keys, rows, seen = [], [], set()
        for _, part_keys, vectors in parts:
            for r, key in enumerate(part_keys):
                if key not in seen:
                    seen.add(key)
                    keys.append(key)
                    rows.append(vectors[r])
        merged = self.put(encoder, keys, np.stack(rows))
        for meta_path, _, _ in parts:
            if meta_path.with_suffix("") == merged:
                continue
            for path in (meta_path, meta_path.with_suffix(".npy")):
                with contextlib.suppress(OSError):
                    path.unlink()


class CachedEncoder:
    """An :class:`Encoder` that looks texts up in an :class:`EmbeddingCache` and encodes only misses.

    Duplicate texts are encoded once.
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.encoder = encoder
        self.cache = cache

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self.encoder.encode([])
        keys = [text_key(t) for t in texts]
        unique: dict[str, int] = {}
        for i, key in enumerate(keys):
            unique.setdefault(key, i)
        ukeys = list(unique)
        name = self.encoder.name
        cached, found = self.cache.get(name, ukeys)
        todo = np.flatnonzero(~found)
        if todo.size:
            fresh = self.encoder.encode([texts[unique[ukeys[j]]] for j in todo])
            if cached is None or cached.shape[1] != fresh.shape[1]:
                if cached is not None:  # same name, other dimension: a stale cache; encode all
                    logger.warning("embedding cache for %s has another dimension; re-encoding", name)
                    todo = np.arange(len(ukeys))
                    fresh = self.encoder.encode([texts[unique[k]] for k in ukeys])
                cached = np.zeros((len(ukeys), fresh.shape[1]), dtype=np.float32)
            cached[todo] = fresh
            self.cache.put(name, [ukeys[j] for j in todo], fresh)
        assert cached is not None
        row = {k: r for r, k in enumerate(ukeys)}
        return cached[np.fromiter((row[k] for k in keys), dtype=np.int64, count=len(keys))]


def _atomic_write(path: Path, write: Callable[..., object]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
