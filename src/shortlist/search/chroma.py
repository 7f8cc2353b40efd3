"""ChromaDB as an optional persistent vector store (extra ``shortlist[chroma]``).

Used strictly as an embedded library: an in-process ``EphemeralClient`` while building and a
``PersistentClient`` on disk once saved, anonymous telemetry off, vectors computed by shortlist
(``embedding_function=None``). Its HTTP server is never started (it has had remote-code-execution
holes); nothing here opens a port.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from pathlib import Path
from typing import Any, Self

import numpy as np

from shortlist.errors import ConfigError, DependencyMissingError, ModelLoadError, NotFittedError

logger = logging.getLogger(__name__)

COLLECTION = "shortlist-items"
_EF = 256  # HNSW beam: Chroma's default (100) can miss exact neighbours on clustered vectors


def import_chroma() -> Any:
    """The ``chromadb`` module, or a clear error naming the extra."""
    try:
        return importlib.import_module("chromadb")
    except ImportError as exc:
        raise DependencyMissingError("chromadb", "chroma", "the ChromaDB vector store") from exc


def chroma_available() -> bool:
    try:
        import_chroma()
    except DependencyMissingError:
        return False
    return True


def _settings(chromadb: Any) -> Any:
    return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)


class ChromaStore:
    """Top-k inner-product search in a Chroma collection; rows are positions ``0..n-1``.

    Scores are inner products (Chroma's ``ip`` distance is ``1 - ip``); results are ordered by
    score, ties by position, padded with -1 / -inf like :class:`~shortlist.index.VectorIndex`.
    """

    def __init__(self, *, ef_search: int = _EF) -> None:
        if ef_search < 1:
            raise ConfigError(f"ef_search must be positive, got {ef_search}")
        self.ef_search = ef_search
        self._collection: Any = None
        self.n_items_ = 0

    def _create(self, client: Any, name: str) -> Any:
        config = {"hnsw": {"space": "ip", "ef_search": self.ef_search, "ef_construction": self.ef_search}}
        return client.create_collection(name, embedding_function=None, configuration=config)

    def _add(self, collection: Any, vectors: np.ndarray, client: Any) -> None:
        step = int(client.get_max_batch_size())
        for start in range(0, len(vectors), step):
            block = vectors[start:start + step]
            collection.add(ids=[str(i) for i in range(start, start + len(block))], embeddings=block)

    def build(self, vectors: np.ndarray) -> Self:
        """Index ``vectors`` (n × d float32) in a new in-memory collection."""
        chromadb = import_chroma()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ConfigError(f"the Chroma store needs a non-empty (n × d) matrix, got shape {x.shape}")
        client = chromadb.EphemeralClient(settings=_settings(chromadb))
        self._collection = self._create(client, f"{COLLECTION}-{uuid.uuid4().hex[:12]}")
        self._add(self._collection, x, client)
        self.n_items_ = x.shape[0]
        self._vectors = x
        return self

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` positions (int64) and inner-product scores (float32) per query row."""
        if self._collection is None:
            raise NotFittedError("ChromaStore")
        q = np.ascontiguousarray(queries, dtype=np.float32)
        m = min(k, self.n_items_)
        pos = np.full((len(q), k), -1, dtype=np.int64)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        if len(q) == 0:
            return pos, scores
        res = self._collection.query(query_embeddings=q, n_results=m, include=["distances"])
        for row, (ids, dists) in enumerate(zip(res["ids"], res["distances"], strict=True)):
            p = np.asarray(ids, dtype=np.int64)
            s = (1.0 - np.asarray(dists, dtype=np.float64)).astype(np.float32)
            order = np.lexsort((p, -s))
            pos[row, : p.size], scores[row, : p.size] = p[order], s[order]
        return pos, scores

    def save(self, path: Path) -> None:
        """Write the collection to a new persistent Chroma folder ``path``."""
        chromadb = import_chroma()
        if self._collection is None:
            raise NotFittedError("ChromaStore")
        client = chromadb.PersistentClient(path=str(path), settings=_settings(chromadb))
        collection = self._create(client, COLLECTION)
        self._add(collection, self._vectors, client)

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, *, ef_search: int = _EF) -> ChromaStore:
        """Open a folder written by :meth:`save`; ``vectors`` are the same rows (kept for a re-save)."""
        chromadb = import_chroma()
        store = cls(ef_search=ef_search)
        client = chromadb.PersistentClient(path=str(path), settings=_settings(chromadb))
        # without embedding_function=None Chroma attaches its default model (an ONNX download on first use)
        store._collection = client.get_collection(COLLECTION, embedding_function=None)
        store.n_items_ = int(store._collection.count())
        if store.n_items_ != len(vectors):
            raise ModelLoadError(f"{path}: the Chroma collection has {store.n_items_} items but the index "
                              f"{len(vectors)}; rebuild the index")
        store._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return store
