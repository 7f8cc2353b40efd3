"""ALS: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via the ``implicit`` library.

Scores are inner products of user and item factors. Confidence per (user, item) is built here from
the summed interaction weight (the log's strengths: :mod:`shortlist.data.events`) and handed to
``implicit`` as ``C``; ``implicit``'s own ``alpha`` stays 1.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.retrieval.als_solve import fold_in, train_als
from shortlist.retrieval.base import State, check_k, csr_from_arrays, csr_to_arrays, require_fitted
from shortlist.retrieval.topk import row_block, row_lengths, rows_of, topk_dense
from shortlist.schema import ITEM, USER, WEIGHT

Confidence = Literal["bm25", "log", "linear"]
_CHUNK_CELLS = 1 << 24  # scores per retrieval chunk (64 MB of float32)


def interaction_strength(history: Interactions, *, event_weights: bool) -> sp.csr_matrix:
    """Summed weight (strength) per (user, item); each row counts 1 when not ``event_weights``."""
    f = history.frame
    c = pl.col(WEIGHT).cast(pl.Float64).sum() if event_weights else pl.len().cast(pl.Float64)
    pairs = f.group_by(USER, ITEM).agg(c.alias("c")).filter(pl.col("c") > 0)
    m = sp.csr_matrix(
        (pairs.get_column("c").to_numpy().astype(np.float32),
         (pairs.get_column(USER).to_numpy(), pairs.get_column(ITEM).to_numpy())),
        shape=(history.n_users, history.n_items),
    )
    m.sort_indices()
    return m


def bm25_values(counts: sp.csr_matrix, *, idf: np.ndarray, avg_len: float, k1: float = 100.0,
                b: float = 0.8) -> np.ndarray:
    """BM25 of each stored (user, item) count: items are 'terms', users are 'documents'."""
    lengths = np.diff(counts.indptr)
    norm = (1.0 - b) + b * lengths / max(avg_len, 1e-12)
    tf = counts.data.astype(np.float64)
    return tf * (k1 + 1.0) / (k1 * np.repeat(norm, lengths) + tf) * idf[counts.indices]


class ALS:
    """Implicit ALS candidates: top inner products ``u · v``, seen items excluded.

    ``confidence``: ``"log"`` is ``1 + alpha·log1p(c / eps)``, ``"linear"`` is ``1 + alpha·c``,
    ``"bm25"`` is ``1 + alpha·bm25(c)``, where ``c`` is the summed strength of the pair's rows
    (``event_weights=False``: its number of rows). Users
    without history at fit time get no candidates; :meth:`retrieve_for_history` folds a new history
    in by an exact least-squares solve. Uses the GPU when ``implicit`` was built with CUDA.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("user_factors_", "seen_", "counts_")

    metric = "ip"

    def __init__(
        self,
        *,
        factors: int = 128,
        regularization: float = 30.0,
        alpha: float = 10.0,
        iterations: int = 15,
        confidence: Confidence = "log",
        eps: float = 1.0,
        event_weights: bool = True,
        num_threads: int = 0,
        use_gpu: bool | None = None,
        name: str = "als",
    ) -> None:
        if confidence not in ("bm25", "log", "linear"):
            raise ConfigError(f"confidence must be 'bm25', 'log' or 'linear', got {confidence!r}")
        for label, v in (("factors", factors), ("iterations", iterations)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{label} must be a positive integer, got {v!r}")
        for label, x in (("regularization", regularization), ("alpha", alpha), ("eps", eps)):
            if not x > 0:
                raise ConfigError(f"{label} must be positive, got {x!r}")
        if num_threads < 0:
            raise ConfigError(f"num_threads must be >= 0 (0 = all cores), got {num_threads}")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.confidence = confidence
        self.eps = eps
        self.event_weights = event_weights
        self.num_threads = num_threads
        self.use_gpu = use_gpu
        self.name = name
        self.user_factors_: np.ndarray | None = None
        self.item_factors_: np.ndarray | None = None
        self.seen_: sp.csr_matrix | None = None
        self.counts_: sp.csr_matrix | None = None
        self.active_items_: np.ndarray | None = None
        self._items64: np.ndarray | None = None
        self._gram_: np.ndarray | None = None
        self.idf_: np.ndarray | None = None
        self.avg_len_: float = 0.0

    # -- fitting ---------------------------------------------------------------------------
    def _confidence(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        if self.confidence == "linear":
            v = counts.data.astype(np.float64)
        elif self.confidence == "log":
            v = np.log1p(counts.data / self.eps)
        else:
            assert self.idf_ is not None
            v = bm25_values(counts, idf=self.idf_, avg_len=self.avg_len_)
        return sp.csr_matrix(((1.0 + self.alpha * v).astype(np.float32), counts.indices, counts.indptr),
                             shape=counts.shape)

    def fit(self, history: Interactions, *, items: Items | None = None, rng: np.random.Generator | None = None,
            init: tuple[np.ndarray, np.ndarray] | None = None) -> Self:
        """``init``: (user, item) factors shaped for ``history`` to start from, solved exactly: a warm start."""
        counts = interaction_strength(history, event_weights=self.event_weights)
        df = np.diff(counts.tocsc().indptr)
        self.idf_ = np.log(max(counts.shape[0], 1)) - np.log1p(df)
        self.avg_len_ = float(np.diff(counts.indptr).mean()) if counts.shape[0] else 0.0
        conf = self._confidence(counts)
        seed = int((rng if rng is not None else np.random.default_rng(0)).integers(2**31 - 1))
        user_factors, item_factors = train_als(conf, factors=self.factors, regularization=self.regularization,
                                            iterations=self.iterations, seed=seed, num_threads=self.num_threads,
                                            use_gpu=self.use_gpu, init=init)
        self._set(user_factors, item_factors, counts)
        return self

    def _set(self, users: np.ndarray, items: np.ndarray, counts: sp.csr_matrix) -> None:
        # Users and items without interactions keep zero vectors, so they never score.
        active_u = np.diff(counts.indptr) > 0
        active_i = np.diff(counts.tocsc().indptr) > 0
        self.user_factors_ = np.where(active_u[:, None], users, 0).astype(np.float32)
        self.item_factors_ = np.where(active_i[:, None], items, 0).astype(np.float32)
        self.seen_ = sp.csr_matrix((np.ones(counts.nnz, np.float32), counts.indices, counts.indptr),
                                   shape=counts.shape)
        self.counts_ = counts
        self.active_items_ = active_i
        self._items64 = self.item_factors_.astype(np.float64)
        self._gram_ = None

    # -- retrieval -------------------------------------------------------------------------
    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "user_factors_")
        assert self.seen_ is not None
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        seen = rows_of(self.seen_, users) if exclude_seen else None
        return self._search(self.user_embeddings(users), row_lengths(self.seen_, users) > 0, seen, k)

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fold an ad-hoc history into a user vector (user id -1); each occurrence counts its
        ``weights`` entry (its strength; default 1), as a fitted user's rows do.

        ``timestamps`` is accepted for the common source interface and ignored (ALS has no recency).
        """
        check_k(k)
        require_fitted(self, "item_factors_")
        assert self.item_factors_ is not None
        n_items = self.item_factors_.shape[0]
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        known = (items >= 0) & (items < n_items)
        w = np.ones(len(items)) if weights is None or not self.event_weights else np.asarray(weights, np.float64)
        uniq, inv = np.unique(items[known], return_inverse=True)
        counts = np.bincount(inv, weights=w.reshape(-1)[known], minlength=len(uniq))
        row = sp.csr_matrix((counts.astype(np.float32), uniq, np.array([0, len(uniq)])), shape=(1, n_items))
        row.eliminate_zeros()
        assert self._items64 is not None
        vec = fold_in(self._confidence(row), self._items64, self.regularization, gram=self._gram())
        return self._search(vec, np.array([row.nnz > 0]), row if exclude_seen else None, k)

    def _gram(self) -> np.ndarray:
        """``YᵀY + λI`` in float64, computed once per fitted model (fold-in reuses it)."""
        if self._gram_ is None:
            assert self._items64 is not None
            self._gram_ = self._items64.T @ self._items64 + self.regularization * np.eye(self._items64.shape[1])
        return self._gram_

    def _search(self, vecs: np.ndarray, has_history: np.ndarray, seen: sp.csr_matrix | None,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each vector's top-``k`` active items (none for a row without history), ``seen``'s rows excluded."""
        assert self.item_factors_ is not None and self._items64 is not None and self.active_items_ is not None
        n_items = self.item_factors_.shape[0]
        chunk = max(1, _CHUNK_CELLS // max(n_items, 1))
        tops = np.full((len(vecs), k), -1, np.int64)
        vals = np.full((len(vecs), k), -np.inf, np.float32)
        for start in range(0, len(vecs), chunk):
            stop = min(start + chunk, len(vecs))
            # float64 then rounded: a user's scores must not depend on the batch (BLAS blocking).
            scores = (vecs[start:stop].astype(np.float64) @ self._items64.T).astype(np.float32)
            scores[:, ~self.active_items_] = -np.inf
            scores[~has_history[start:stop]] = -np.inf
            excl = row_block(seen, start, stop) if seen is not None else None
            tops[start:stop], vals[start:stop] = topk_dense(scores, k, exclude=excl)
        return tops, vals

    # -- embeddings ------------------------------------------------------------------------
    def item_embeddings(self) -> np.ndarray:
        """(n_items × factors) float32 item factors, compared by inner product."""
        require_fitted(self, "item_factors_")
        assert self.item_factors_ is not None
        return self.item_factors_

    def user_embeddings(self, users: np.ndarray) -> np.ndarray:
        """(len(users) × factors) float32 user factors; zeros for users unknown at fit time."""
        require_fitted(self, "user_factors_")
        assert self.user_factors_ is not None
        users = np.asarray(users, dtype=np.int64)
        inside = (users >= 0) & (users < self.user_factors_.shape[0])
        out = np.zeros((len(users), self.user_factors_.shape[1]), dtype=np.float32)
        out[inside] = self.user_factors_[users[inside]]
        return out

    # -- persistence -----------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"factors": self.factors, "regularization": self.regularization, "alpha": self.alpha,
                "iterations": self.iterations, "confidence": self.confidence, "eps": self.eps,
                "event_weights": self.event_weights, "num_threads": self.num_threads,
                "use_gpu": self.use_gpu, "name": self.name}

    def get_state(self) -> State:
        require_fitted(self, "user_factors_")
        assert self.user_factors_ is not None and self.item_factors_ is not None and self.idf_ is not None
        arrays = {"user_factors": self.user_factors_, "item_factors": self.item_factors_, "idf": self.idf_,
                  **csr_to_arrays("counts", self.counts_)}
        return {**self._params(), "avg_len_": self.avg_len_}, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        obj = cls(**{k: v for k, v in params.items() if not k.endswith("_")})
        obj.idf_, obj.avg_len_ = arrays["idf"], float(params["avg_len_"])
        obj._set(arrays["user_factors"], arrays["item_factors"], csr_from_arrays("counts", arrays))
        return obj
