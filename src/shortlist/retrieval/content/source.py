"""Content-embedding candidates: items whose text is close to the text of a user's recent items."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.index import Backend, VectorIndex
from shortlist.index.vector_index import normalize_rows
from shortlist.retrieval.base import State, check_k, csr_from_arrays, csr_to_arrays, require_fitted, seen_rows
from shortlist.retrieval.content.cache import EmbeddingCache
from shortlist.retrieval.content.embed import encode_items
from shortlist.retrieval.content.encoders import Encoder, resolve_encoder
from shortlist.retrieval.content.neighbors import neighbor_graph, neighbor_topk
from shortlist.retrieval.content.profile import default_half_life_days, history_weights, profile_weights
from shortlist.retrieval.content.text import DEFAULT_MAX_CHARS
from shortlist.retrieval.topk import rows_of

Aggregate = Literal["neighbors", "mean"]


@dataclass(frozen=True)
class ItemText:
    """A catalogue's text as L2-normalised item vectors (rows by internal item id, zero rows for
    items without text), the encoder's name, and the neighbour graph built from them: work that
    depends on the catalogue alone, so a model computes it once and hands it to every fit."""

    vectors: np.ndarray
    encoder_name: str = "precomputed"
    graph: sp.csr_matrix | None = None


class ContentSource:
    """Candidates from item text embeddings, compared by cosine similarity.

    ``fit`` takes the catalogue (``items``), or the vectors of :meth:`use_catalogue` (a model encodes its
    catalogue once, with :meth:`prepare_catalogue`, for every fit). A user's history is their last
    ``n_recent`` interactions, weighted by ``exp(-ln2 · age / half_life_days)`` from their latest one
    (``"auto"``: 1/8 of the time span; ``None``: equal weights). ``aggregate="mean"`` retrieves the items
    nearest to the weighted mean vector (the user embedding); ``"neighbors"`` scores ``sum_i w_i · max(0,
    cos(i, j))^sharpen`` over each history item's ``n_neighbors`` nearest items, which keeps users'
    separate interests. Items without text have zero vectors: never retrieved, no weight in a profile;
    users with no text-bearing item get nothing. ``encoder``: an :class:`Encoder`, ``"auto"`` (the bundled
    sentence-transformer if the ``text`` extra is installed, else TF-IDF + SVD of ``tfidf_dim``),
    ``"tfidf"``, ``"minilm"`` or a local model path; ``cache_dir`` enables the embedding cache.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("weights_", "seen_")

    metric = "cosine"

    def __init__(
        self,
        *,
        encoder: Encoder | str = "auto",
        cache_dir: str | Path | None = None,
        aggregate: Aggregate = "neighbors",
        n_neighbors: int = 50,
        sharpen: float = 3.0,
        n_recent: int | None = 50,
        half_life_days: float | Literal["auto"] | None = "auto",
        max_chars: int = DEFAULT_MAX_CHARS,
        tfidf_dim: int = 128,
        seed: int = 0,
        backend: Backend = "auto",
        name: str = "content",
    ) -> None:
        if aggregate not in ("neighbors", "mean"):
            raise ConfigError(f"aggregate must be 'neighbors' or 'mean', got {aggregate!r}")
        for label, v in (("n_recent", n_recent), ("n_neighbors", n_neighbors), ("max_chars", max_chars)):
            if v is not None and (not isinstance(v, int | np.integer) or v < 1):
                raise ConfigError(f"{label} must be a positive integer, got {v!r}")
        if isinstance(half_life_days, int | float) and half_life_days <= 0:
            raise ConfigError(f"half_life_days must be positive, 'auto' or None, got {half_life_days}")
        if sharpen <= 0:
            raise ConfigError(f"sharpen must be positive, got {sharpen}")
        self.encoder = encoder
        self.cache_dir = cache_dir
        self.aggregate = aggregate
        self.n_neighbors = n_neighbors
        self.sharpen = sharpen
        self.n_recent = n_recent
        self.half_life_days = half_life_days
        self.max_chars = max_chars
        self.tfidf_dim = tfidf_dim
        self.seed = seed
        self.backend = backend
        self.name = name
        self._text: ItemText | None = None  # the catalogue's vectors, when given (use_catalogue)
        self.item_vectors_: np.ndarray | None = None
        self.weights_: sp.csr_matrix | None = None
        self.seen_: sp.csr_matrix | None = None
        self.graph_: sp.csr_matrix | None = None
        self.index_: VectorIndex | None = None
        self.half_life_days_: float | None = None
        self.encoder_name_: str | None = None

    def prepare_catalogue(self, items: Items | None, n_items: int) -> ItemText:
        """Encode the catalogue (fitting the encoder if it learns) and, for the ``neighbors``
        aggregate, build the item neighbour graph: everything :meth:`fit` needs from the catalogue."""
        if items is None:
            raise ConfigError("ContentSource needs the item catalogue (fit(..., items=dataset.items)) or "
                              "precomputed vectors (use_catalogue(ItemText(vectors)))")
        encoder = resolve_encoder(self.encoder, dim=self.tfidf_dim, seed=self.seed)
        cache = EmbeddingCache(self.cache_dir) if self.cache_dir is not None else None
        vectors = encode_items(items, n_items, encoder, max_chars=self.max_chars, cache=cache)
        return self._with_graph(ItemText(vectors, encoder.name))

    def use_catalogue(self, text: ItemText) -> Self:
        """Fit with these item vectors (and their graph, when built with this source's settings)
        instead of encoding the catalogue again."""
        vectors = np.asarray(text.vectors, dtype=np.float32)
        if vectors.ndim != 2 or not vectors.shape[0]:
            raise ConfigError(f"item vectors must be a non-empty 2-D array, got {vectors.shape}")
        if text.graph is not None and text.graph.shape != (len(vectors), len(vectors)):
            raise ConfigError("a precomputed neighbour graph needs the item vectors it was built from "
                              f"(square, one row per item); got graph {text.graph.shape}")
        self._text = replace(text, vectors=vectors)
        return self

    def _with_graph(self, text: ItemText) -> ItemText:
        if self.aggregate != "neighbors" or text.graph is not None:
            return text
        vectors = text.vectors
        has = np.flatnonzero(np.any(vectors != 0, axis=1))
        n = len(vectors)
        if not has.size:
            return replace(text, graph=sp.csr_matrix((n, n), dtype=np.float32))
        index = VectorIndex(backend=self.backend, metric="cosine").build(vectors[has], ids=has)
        return replace(text, graph=neighbor_graph(vectors, index, n_neighbors=self.n_neighbors, sharpen=self.sharpen))

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        """Profile users over the catalogue's vectors (given by :meth:`use_catalogue`, else encoded
        from ``items``; deterministic, so ``rng`` is unused)."""
        if items is not None and items.ids is not history.items:
            _check_same_items(items, history)
        text = self._text if self._text is not None else self.prepare_catalogue(items, history.n_items)
        text = self._with_graph(_fit_rows(text, history.n_items))
        hl = default_half_life_days(history) if self.half_life_days == "auto" else self.half_life_days
        weights = profile_weights(history, n_recent=self.n_recent, half_life_days=hl)
        self._set(text.vectors, weights, history.to_csr(binary=True), text.graph)
        self.half_life_days_, self.encoder_name_ = hl, text.encoder_name
        return self

    def _set(self, vectors: np.ndarray, weights: sp.csr_matrix, seen: sp.csr_matrix,
             graph: sp.csr_matrix | None) -> None:
        self.item_vectors_, self.weights_, self.seen_, self.graph_ = vectors, weights, seen, graph
        has = np.flatnonzero(np.any(vectors != 0, axis=1))
        index = VectorIndex(backend=self.backend, metric="cosine").build(vectors[has], ids=has) if has.size else None
        self.index_ = index if self.aggregate == "mean" else None

    # --- embeddings ----------------------------------------------------------------------------
    def item_embeddings(self) -> np.ndarray:
        """(n_items × d) L2-normalised item text vectors (zero rows: items without text)."""
        require_fitted(self, "item_vectors_")
        assert self.item_vectors_ is not None
        return self.item_vectors_

    def user_embeddings(self, users: np.ndarray) -> np.ndarray:
        """(len(users) × d) L2-normalised weighted-mean profiles; zeros for unknown users."""
        require_fitted(self, "weights_")
        assert self.weights_ is not None
        return self._profiles(rows_of(self.weights_, np.asarray(users, dtype=np.int64)))

    def _profiles(self, weights: sp.csr_matrix) -> np.ndarray:
        assert self.item_vectors_ is not None
        return normalize_rows(np.asarray(weights @ self.item_vectors_, dtype=np.float32))

    # --- retrieval -----------------------------------------------------------------------------
    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "weights_")
        assert self.weights_ is not None and self.seen_ is not None
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        exclude = seen_rows(self.seen_, users, exclude_seen)
        return self._search(rows_of(self.weights_, users), exclude, k)

    def topk_for_history(self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None,
                         exclude_seen: bool = True, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for an ad-hoc history (user id -1), weighted like a fitted user's history.

        Without ``timestamps`` the items are taken as chronological and weighted equally.
        """
        check_k(k)
        require_fitted(self, "item_vectors_")
        assert self.item_vectors_ is not None
        weights, seen = history_weights(items, self.item_vectors_.shape[0], timestamps=timestamps,
                                        n_recent=self.n_recent, half_life_days=self.half_life_days_)
        return self._search(weights, seen if exclude_seen else None, k)

    def _search(self, weights: sp.csr_matrix, exclude: sp.csr_matrix | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = weights.shape[0]
        if self.aggregate == "neighbors":
            assert self.graph_ is not None
            return neighbor_topk(weights, self.graph_, k, exclude=exclude)
        items = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), -np.inf, np.float32)
        queries = self._profiles(weights)
        active = np.flatnonzero(np.any(queries != 0, axis=1))
        if self.index_ is None or not active.size:
            return items, scores
        excl = None if exclude is None else sp.csr_matrix(exclude[active])
        ids, vals = self.index_.search(queries[active], k, exclude=excl)
        width = min(k, ids.shape[1])
        items[active, :width], scores[active, :width] = ids[:, :width], vals[:, :width]
        return items, scores

    # --- persistence ---------------------------------------------------------------------------
    def get_state(self) -> State:
        require_fitted(self, "weights_")
        assert self.item_vectors_ is not None and self.weights_ is not None and self.seen_ is not None
        params: dict[str, Any] = {
            "encoder": self.encoder if isinstance(self.encoder, str) else self.encoder.name,
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            **{p: getattr(self, p) for p in ("aggregate", "n_neighbors", "sharpen", "n_recent", "half_life_days",
                                             "max_chars", "tfidf_dim", "seed", "backend", "name",
                                             "half_life_days_", "encoder_name_")},
        }
        arrays = {"item_vectors": self.item_vectors_, **csr_to_arrays("weights", self.weights_),
                  **csr_to_arrays("seen", self.seen_)}
        if self.graph_ is not None:
            arrays.update(csr_to_arrays("graph", self.graph_))
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        """Rebuild from saved state; retrieval needs only the saved arrays, never the encoder."""
        hyper = ("encoder", "cache_dir", "aggregate", "n_neighbors", "sharpen", "n_recent", "half_life_days",
                 "max_chars", "tfidf_dim", "seed", "backend", "name")
        obj = cls(**{p: params[p] for p in hyper})
        graph = csr_from_arrays("graph", arrays) if "graph_shape" in arrays else None
        obj._set(np.asarray(arrays["item_vectors"], dtype=np.float32), csr_from_arrays("weights", arrays),
                 csr_from_arrays("seen", arrays), graph)
        obj.half_life_days_, obj.encoder_name_ = params["half_life_days_"], params["encoder_name_"]
        return obj


def _check_same_items(items: Items, history: Interactions) -> None:
    """The catalogue must index items like the history does (one may extend the other)."""
    n = min(len(items.ids), history.n_items)
    if not items.ids.ids.head(n).equals(history.items.ids.head(n)):
        raise ConfigError(
            "ContentSource: the catalogue's item ids do not match the history's; build both from one "
            "Dataset (Items.from_frame(df, interactions.items))"
        )


def _fit_rows(text: ItemText, n_items: int) -> ItemText:
    """``text`` with one vector row per item of the history (cut, or padded with zero rows); a graph
    of another size is dropped (it is rebuilt)."""
    v = normalize_rows(text.vectors[:n_items])
    if v.shape[0] < n_items:
        v = np.vstack([v, np.zeros((n_items - v.shape[0], v.shape[1]), np.float32)])
    graph = text.graph if text.graph is not None and text.graph.shape[0] == n_items else None
    return ItemText(v, text.encoder_name, graph)
