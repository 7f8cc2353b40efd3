"""Dense retrieval: documents and queries embedded by one encoder, searched in a vector store.

Stores: ``"numpy"`` (exact) and ``"faiss"`` (FAISS Flat, exact) through the project's
:class:`~shortlist.index.VectorIndex`; ``"chroma"`` through :class:`ChromaStore`. Vectors are
L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal, Protocol, Self, get_args

import numpy as np

from shortlist.errors import ConfigError, NotFittedError
from shortlist.index import VectorIndex
from shortlist.index.vector_index import normalize_rows
from shortlist.retrieval.content.encoders import Encoder
from shortlist.search.chroma import ChromaStore

logger = logging.getLogger(__name__)

StoreKind = Literal["numpy", "faiss", "chroma"]
STORES: tuple[str, ...] = get_args(StoreKind)


class VectorStore(Protocol):
    """What dense retrieval needs from a store: top-k by inner product over positions 0..n-1."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, path: Path) -> None: ...


def check_store(kind: str) -> StoreKind:
    if kind not in STORES:
        raise ConfigError(f"unknown vector store {kind!r}. Fix: use one of {', '.join(STORES)}.")
    return kind  # type: ignore[return-value]


def build_store(kind: str, vectors: np.ndarray) -> VectorStore:
    """A store of ``kind`` over ``vectors`` (row i = position i)."""
    kind = check_store(kind)
    if kind == "chroma":
        return ChromaStore().build(vectors)
    return VectorIndex(backend="numpy" if kind == "numpy" else "flat", metric="ip").build(vectors)


def load_store(kind: str, path: Path, vectors: np.ndarray) -> VectorStore:
    """A store saved by :func:`build_store`'s ``save`` at ``path``."""
    kind = check_store(kind)
    if kind == "chroma":
        return ChromaStore.load(path, vectors)
    return VectorIndex.load(path)


def encode_texts(encoder: Encoder, texts: list[str], memo: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """L2-normalised (n × d) float32 vectors; each distinct text is encoded once (and once per
    ``memo``, shared across calls); empty texts get zero rows."""
    memo = {} if memo is None else memo
    todo = sorted({t for t in texts if t and t not in memo})
    if todo:
        start = time.perf_counter()
        vectors = normalize_rows(np.asarray(encoder.encode(todo), dtype=np.float32))
        memo.update(zip(todo, vectors, strict=True))
        logger.info("encoded %d texts with %s in %.1fs", len(todo), encoder.name, time.perf_counter() - start)
    dim = next(iter(memo.values())).shape[0] if memo else encoder.dim
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        if text:
            out[row] = memo[text]
    return out


class DenseRetriever:
    """Item vectors in a store; queries encoded by the same encoder."""

    def __init__(self, encoder: Encoder, *, store: str = "numpy") -> None:
        self.encoder = encoder
        self.store = check_store(store)
        self.vectors_: np.ndarray | None = None
        self._store: VectorStore | None = None

    def fit(self, documents: list[str], *, memo: dict[str, np.ndarray] | None = None) -> Self:
        """Embed ``documents`` (position = document id) and build the store."""
        if not documents:
            raise ConfigError("dense retrieval needs at least one document")
        self.vectors_ = encode_texts(self.encoder, documents, memo)
        self._store = build_store(self.store, self.vectors_)
        return self

    def attach(self, vectors: np.ndarray, store: VectorStore) -> Self:
        """Use already built ``vectors`` and ``store`` (a loaded index)."""
        self.vectors_, self._store = np.ascontiguousarray(vectors, dtype=np.float32), store
        return self

    def _fitted(self) -> tuple[np.ndarray, VectorStore]:
        if self.vectors_ is None or self._store is None:
            raise NotFittedError("DenseRetriever")
        return self.vectors_, self._store

    def encode(self, queries: list[str]) -> np.ndarray:
        return encode_texts(self.encoder, queries)

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` positions and cosine scores; a zero (empty) query gets no results (-1 / -inf)."""
        vectors, store = self._fitted()
        pos, scores = store.search(query_vectors, min(k, len(vectors)))
        if pos.shape[1] < k:
            pad = k - pos.shape[1]
            pos = np.pad(pos, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        empty = ~query_vectors.any(axis=1)
        pos[empty], scores[empty] = -1, -np.inf
        return pos, scores

    def pair_scores(self, query_vectors: np.ndarray, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Cosine of query ``rows[i]`` with document ``positions[i]``, for every i."""
        vectors, _ = self._fitted()
        return np.einsum("ij,ij->i", query_vectors[rows], vectors[positions]).astype(np.float32)

    def save_store(self, path: Path) -> None:
        self._fitted()[1].save(path)
