"""Content-embedding candidates: items whose text is close to the text of a user's recent items."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.index import Backend, VectorIndex
from shortlist.index.vector_index import normalize_rows
from shortlist.retrieval.base import State, TopKRetrieval, check_k, csr_from_arrays, csr_to_arrays, require_fitted, seen_rows
from shortlist.retrieval.content.cache import EmbeddingCache
from shortlist.retrieval.content.embed import encode_items
from shortlist.retrieval.content.encoders import Encoder, resolve_encoder
from shortlist.retrieval.content.neighbors import neighbor_graph, neighbor_topk
from shortlist.retrieval.content.profile import default_half_life_days, history_weights, profile_weights
from shortlist.retrieval.content.text import DEFAULT_MAX_CHARS
from shortlist.retrieval.topk import PaddedRows, product_row_topk, row_entries, rows_of

Aggregate = Literal["neighbors", "mean"]


@runtime_checkable
class UsesItemCatalogue(Protocol):
    """A source that needs the item catalogue: the pipeline calls ``with_items`` before ``fit``."""

    def with_items(self, items: Items | None, *, item_vectors: np.ndarray | None = None,
                   encoder_name: str = "precomputed") -> Self: ...

    def catalogue_vectors(self, n_items: int) -> tuple[np.ndarray, str]: ...


class ContentSource(TopKRetrieval):
    """Candidates from item text embeddings, compared by cosine similarity.

    Give it the catalogue with :meth:`with_items` (or precomputed ``item_vectors``) before
    :meth:`fit`. A user's history is their last ``n_recent`` interactions, weighted by
    ``exp(-ln2 · age / half_life_days)`` from their latest one (``"auto"``: 1/8 of the time span;
    ``None``: equal weights). ``aggregate="mean"`` retrieves the items nearest to the weighted mean
    vector (the user embedding); ``"neighbors"`` scores ``sum_i w_i · max(0, cos(i, j))^sharpen``
    over each history item's ``n_neighbors`` nearest items, which keeps users' separate interests.
    Items without text have zero vectors: never retrieved, no weight in a profile; users with no
    text-bearing item get nothing. ``encoder``: an :class:`Encoder`, ``"auto"`` (the bundled
    sentence-transformer if the ``text`` extra is installed, else TF-IDF + SVD of ``tfidf_dim``),
    ``"tfidf"``, ``"minilm"`` or a local model path; ``cache_dir`` enables the embedding cache.
    """

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
        self._items: Items | None = None
        self._given_vectors: np.ndarray | None = None
        self._given_name = "precomputed"
        self._given_graph: sp.csr_matrix | None = None
        self._encoded: tuple[int, np.ndarray, str] | None = None  # reused across fits on one catalogue
        self.item_vectors_: np.ndarray | None = None
        self.weights_: sp.csr_matrix | None = None
        self.seen_: sp.csr_matrix | None = None
        self.graph_: sp.csr_matrix | None = None
        self._padded: PaddedRows | None = None  # graph_'s row table for one-row products (warm())
        self.index_: VectorIndex | None = None
        self.half_life_days_: float | None = None
        self.encoder_name_: str | None = None

    def with_items(self, items: Items | None, *, item_vectors: np.ndarray | None = None,
                   encoder_name: str = "precomputed", graph: sp.csr_matrix | None = None) -> Self:
        """Set the catalogue to embed (and/or precomputed ``item_vectors``, rows by internal item id,
        recorded as made by ``encoder_name``). ``graph``: the neighbour graph :meth:`fit` built
        before from the same ``item_vectors`` and settings (:meth:`graph_key`), reused instead of
        searched again — it depends on the catalogue only."""
        if item_vectors is not None:
            item_vectors = np.asarray(item_vectors, dtype=np.float32)
            if item_vectors.ndim != 2 or not item_vectors.shape[0]:
                raise ConfigError(f"item_vectors must be a non-empty 2-D array, got {item_vectors.shape}")
        if graph is not None and (item_vectors is None or graph.shape != (len(item_vectors), len(item_vectors))):
            raise ConfigError("a precomputed neighbour graph needs the item_vectors it was built from "
                              f"(square, one row per item); got graph {graph.shape}")
        self._items, self._given_vectors, self._encoded = items, item_vectors, None
        self._given_name, self._given_graph = encoder_name, graph
        return self

    def graph_key(self) -> str | None:
        """What the neighbour graph depends on besides the item vectors (None: no graph is built)."""
        if self.aggregate != "neighbors":
            return None
        return f"graph:{self.n_neighbors}:{self.sharpen!r}:{self.backend}"

    def catalogue_vectors(self, n_items: int) -> tuple[np.ndarray, str]:
        """The catalogue's (``n_items`` × d) L2-normalised item vectors and the encoder's name, as
        :meth:`fit` uses them (encoded once per catalogue; zero rows for items without text)."""
        return self._item_vectors(n_items)

    def _item_vectors(self, n_items: int) -> tuple[np.ndarray, str]:
        if self._given_vectors is not None:
            v = normalize_rows(self._given_vectors[:n_items])
            if v.shape[0] < n_items:
                v = np.vstack([v, np.zeros((n_items - v.shape[0], v.shape[1]), np.float32)])
            return v, self._given_name
        if self._items is None:
            raise ConfigError("ContentSource needs the item catalogue: call .with_items(dataset.items) before fit()")
        if self._encoded is None or self._encoded[0] != n_items:
            encoder = resolve_encoder(self.encoder, dim=self.tfidf_dim, seed=self.seed)
            cache = EmbeddingCache(self.cache_dir) if self.cache_dir is not None else None
            v = encode_items(self._items, n_items, encoder, max_chars=self.max_chars, cache=cache)
            self._encoded = (n_items, v, encoder.name)
        return self._encoded[1], self._encoded[2]

    def fit(self, history: Interactions, *, rng: np.random.Generator | None = None) -> Self:
        """Embed the catalogue (once per catalogue; deterministic, so ``rng`` is unused) and profile users."""
        if self._items is not None and self._items.ids is not history.items:
            _check_same_items(self._items, history)
        vectors, encoder_name = self._item_vectors(history.n_items)
        hl = default_half_life_days(history) if self.half_life_days == "auto" else self.half_life_days
        weights = profile_weights(history, n_recent=self.n_recent, half_life_days=hl)
        given = self._given_graph  # it matches the given vectors; fit pads or cuts them to history.n_items
        graph = given if given is not None and given.shape[0] == len(vectors) else None
        self._set(vectors, weights, history.to_csr(binary=True), graph)
        self.half_life_days_, self.encoder_name_ = hl, encoder_name
        return self

    def _set(self, vectors: np.ndarray, weights: sp.csr_matrix, seen: sp.csr_matrix,
             graph: sp.csr_matrix | None) -> None:
        self.item_vectors_, self.weights_, self.seen_, self.graph_ = vectors, weights, seen, graph
        self._padded = None
        has = np.flatnonzero(np.any(vectors != 0, axis=1))
        index = VectorIndex(backend=self.backend, metric="cosine").build(vectors[has], ids=has) if has.size else None
        self.index_ = index if self.aggregate == "mean" else None
        if self.aggregate == "neighbors" and graph is None:
            n = vectors.shape[0]
            self.graph_ = sp.csr_matrix((n, n), dtype=np.float32) if index is None else neighbor_graph(
                vectors, index, n_neighbors=self.n_neighbors, sharpen=self.sharpen)

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
        users = np.asarray(users, dtype=np.int64)
        if users.size == 1 and self.aggregate == "neighbors":  # a request: the rows' arrays
            assert self.graph_ is not None
            u = int(users.reshape(-1)[0])
            idx, w = row_entries(self.weights_, u)
            return product_row_topk(idx, w, self.graph_, k, padded=self._padded,
                                    exclude=row_entries(self.seen_, u)[0] if exclude_seen else None)
        exclude = seen_rows(self.seen_, users, exclude_seen)
        return self._search(rows_of(self.weights_, users), exclude, k)

    def warm(self) -> Self:
        """Build the neighbour graph's :class:`PaddedRows` for one-row requests (the same items
        and scores, tested); a no-op for the ``mean`` aggregate."""
        require_fitted(self, "weights_")
        if self.aggregate == "neighbors" and self.graph_ is not None:
            self._padded = PaddedRows.of(self.graph_)
        return self

    def topk_for_history(self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None,
                         exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for an ad-hoc history (user id -1), weighted like a fitted user's history.

        Without ``timestamps`` the items are taken as chronological and weighted equally.
        """
        check_k(k)
        require_fitted(self, "item_vectors_")
        assert self.item_vectors_ is not None
        weights, seen = history_weights(items, self.item_vectors_.shape[0], timestamps=timestamps,
                                        n_recent=self.n_recent, half_life_days=self.half_life_days_)
        if self.aggregate == "neighbors":
            assert self.graph_ is not None
            return product_row_topk(weights.indices, weights.data, self.graph_, k, padded=self._padded,
                                    exclude=seen.indices if exclude_seen else None)
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
