"""User-kNN: what the users most similar to me bought recently ("popular among people like me").

Item-based sources score an item by its similarity to each of my items one at a time; user-kNN
compares whole histories first, so an item enters my list when it is common among the users who
share many of my items, even if it co-occurs weakly with each single one. Where tastes and
catalogues move (retail: new products, seasons), the neighbours' *recent* items are what counts,
so their items are weighted ``exp(-ln2 · age / half_life_days)``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.index._topk import flat_index
from shortlist.retrieval.base import State, check_k, csr_from_arrays, csr_to_arrays, history_row, require_fitted
from shortlist.retrieval.topk import product_topk, rows_of, rows_or
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, WEIGHT

_ROWS_PER_CHUNK = 1024  # users per block: bounds the dense (block × users) similarity
#: Sorts after every pool position (a padded neighbour slot).
_NO_NEIGHBOUR = np.iinfo(np.int64).max


def default_half_life_days(history: Interactions) -> float:
    """Neighbours' item recency half-life: 1/12 of the time span, between 7 and 365 days."""
    first, last = history.time_span()
    return float(min(365.0, max(7.0, (last - first) / SECONDS_PER_DAY / 12.0)))


class UserKNN:
    """Score items by ``Σ_v sim(u, v) · recency_v(i)`` over the ``neighbours`` most similar users ``v``.

    ``sim`` is the cosine of binary histories; a neighbour's item weighs its recency times the
    strength of their strongest row of it (:mod:`shortlist.data.events`); ``half_life_days``: ``"auto"`` (1/12 of the time
    span), a number, or ``None`` (no decay). Neighbours come from the ``max_pool`` most recently
    active users (all of them up to that size), which bounds the cost per query on large data.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("normed_", "recent_", "seen_", "pool_pos_", "graph_")

    def __init__(self, *, neighbours: int = 200, half_life_days: float | Literal["auto"] | None = "auto",
                 max_pool: int = 50_000, name: str = "userknn") -> None:
        if not isinstance(neighbours, int) or neighbours < 1:
            raise ConfigError(f"neighbours must be a positive integer, got {neighbours!r}")
        if not isinstance(max_pool, int) or max_pool < 1:
            raise ConfigError(f"max_pool must be a positive integer, got {max_pool!r}")
        if isinstance(half_life_days, int | float) and half_life_days <= 0:
            raise ConfigError(f"half_life_days must be positive, 'auto' or None, got {half_life_days}")
        self.neighbours, self.half_life_days, self.max_pool, self.name = neighbours, half_life_days, max_pool, name
        self.normed_: sp.csr_matrix | None = None  # users × items, rows L2-normalised binary
        self.pool_: np.ndarray | None = None  # the users neighbours are drawn from, ascending
        self.pool_pos_: np.ndarray | None = None  # user -> position in the pool (-1: not in it)
        self.normed_t_: sp.csr_matrix | None = None  # pool rows of normed_, transposed (items × pool)
        self.recent_: sp.csr_matrix | None = None  # users × items, recency weight of each user's items
        self.recent_pool_: sp.csr_matrix | None = None  # its pool rows
        self.seen_: sp.csr_matrix | None = None
        self.half_life_days_: float | None = None
        # Optional kNN graph of the fitted users (built by :meth:`warm`): each user's neighbours
        # and similarities, exactly as the first step of :meth:`_score` finds them.
        self.graph_: tuple[np.ndarray, np.ndarray] | None = None

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        hl = default_half_life_days(history) if self.half_life_days == "auto" else self.half_life_days
        now = history.time_span()[1]
        pairs = history.frame.group_by(USER, ITEM).agg(pl.col(TIMESTAMP).max(), pl.col(WEIGHT).max())
        u, i = pairs.get_column(USER).to_numpy(), pairs.get_column(ITEM).to_numpy()
        age = np.maximum(now - pairs.get_column(TIMESTAMP).to_numpy(), 0) / SECONDS_PER_DAY
        w = np.ones(len(age)) if hl is None else np.exp(-math.log(2.0) / hl * age)
        w = w * pairs.get_column(WEIGHT).to_numpy()
        shape = (history.n_users, history.n_items)
        recent = sp.csr_matrix((w.astype(np.float32), (u, i)), shape=shape)
        seen = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=shape)
        last = pairs.group_by(USER).agg(pl.col(TIMESTAMP).max()).sort([TIMESTAMP, USER], descending=True)
        pool = np.sort(last.get_column(USER).to_numpy()[: self.max_pool].astype(np.int64))
        self._set(seen, recent, hl, pool)
        return self

    def _set(self, seen: sp.csr_matrix, recent: sp.csr_matrix, hl: float | None, pool: np.ndarray) -> None:
        seen.sort_indices()
        recent.sort_indices()
        norm = np.sqrt(np.diff(seen.indptr)).astype(np.float32)
        scale = np.repeat(1.0 / np.maximum(norm, 1.0), np.diff(seen.indptr)).astype(np.float32)
        self.normed_ = sp.csr_matrix((seen.data * scale, seen.indices, seen.indptr), shape=seen.shape)
        self.normed_t_ = sp.csr_matrix(rows_of(self.normed_, pool).T)
        self.normed_t_.sort_indices()
        self.pool_, self.recent_pool_ = pool, rows_of(recent, pool)
        self.pool_pos_ = np.full(seen.shape[0], -1, np.int64)
        self.pool_pos_[pool] = np.arange(len(pool))
        self.seen_, self.recent_, self.half_life_days_ = seen, recent, hl
        self.graph_ = None

    def warm(self) -> Self:
        """Find every fitted user's neighbours once (a kNN graph, ``n_users × neighbours``), so a
        known user's request only scores its neighbours' items: the serving path's cost drops from
        two sparse products to one. Results are identical with or without it (tested)."""
        require_fitted(self, "normed_")
        assert self.normed_ is not None
        n = self.normed_.shape[0]
        nb = np.full((n, self.neighbours), -1, np.int64)
        sim = np.full((n, self.neighbours), -np.inf, np.float32)
        for start in range(0, n, _ROWS_PER_CHUNK):
            block = np.arange(start, min(start + _ROWS_PER_CHUNK, n))
            nb[block], sim[block] = self._neighbours(rows_of(self.normed_, block), block)
        self.graph_ = (nb.astype(np.int32), sim)
        return self

    # --- retrieve ----------------------------------------------------------------------------
    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "normed_")
        assert self.normed_ is not None and self.seen_ is not None
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        items = np.full((len(users), k), -1, np.int64)
        scores = np.full((len(users), k), -np.inf, np.float32)
        for start in range(0, len(users), _ROWS_PER_CHUNK):
            block = users[start:start + _ROWS_PER_CHUNK]
            seen = rows_of(self.seen_, block) if exclude_seen else None
            items[start:start + len(block)], scores[start:start + len(block)] = self._score(None, block, k, seen)
        return items, scores

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for an ad-hoc history (user id -1); its neighbours are the fitted users."""
        check_k(k)
        require_fitted(self, "normed_")
        assert self.seen_ is not None
        row = history_row(items, self.seen_.shape[1])
        if row.nnz:
            row.data[:] = np.float32(1.0 / max(math.sqrt(row.nnz), 1.0))
        return self._score(row, np.array([-1]), k, row if exclude_seen else None)

    def _neighbours(self, normed: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's ``neighbours`` most similar pool users by cosine (never the user itself), as
        pool positions, padded -1 / -inf."""
        assert self.normed_t_ is not None and self.pool_pos_ is not None
        n_pool = self.normed_t_.shape[1]
        pos = rows_or(self.pool_pos_, users, -1)
        self_rows = np.flatnonzero(pos >= 0)
        me = sp.csr_matrix((np.ones(len(self_rows), np.float32), (self_rows, pos[self_rows])),
                           shape=(len(users), n_pool))
        return product_topk(normed, self.normed_t_, self.neighbours, exclude=me)

    def _score(self, normed: sp.csr_matrix | None, users: np.ndarray, k: int,
               seen: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours by cosine (never the user itself), then their recency-weighted items.
        ``normed``: the rows' normalised histories (``None``: the fitted users ``users``)."""
        assert self.normed_t_ is not None and self.recent_pool_ is not None and self.normed_ is not None
        n_pool = self.normed_t_.shape[1]
        if normed is None and self.graph_ is not None:
            # users unknown at fit time have no neighbours
            nb, sim = rows_or(self.graph_[0], users, -1).astype(np.int64), rows_or(self.graph_[1], users, -np.inf)
        else:
            nb, sim = self._neighbours(rows_of(self.normed_, users) if normed is None else normed, users)
        # Each row's neighbours (distinct) by pool position, straight into CSR: the same matrix as
        # a COO build + sort_indices, without its conversion.
        order = np.argsort(np.where(nb >= 0, nb, _NO_NEIGHBOUR), axis=1, kind="stable")
        flat = flat_index(order, nb.shape[1])
        nb, sim = nb.ravel()[flat], sim.ravel()[flat]
        ok = nb >= 0
        indptr = np.zeros(len(users) + 1, np.int64)
        np.cumsum(ok.sum(axis=1), out=indptr[1:])
        weights = sp.csr_matrix((sim[ok], nb[ok], indptr), shape=(len(users), n_pool))
        return product_topk(weights, self.recent_pool_, k, exclude=seen)

    # --- persistence ---------------------------------------------------------------------------
    def get_state(self) -> State:
        require_fitted(self, "normed_")
        assert self.seen_ is not None and self.recent_ is not None and self.pool_ is not None
        params: dict[str, Any] = {"neighbours": self.neighbours, "half_life_days": self.half_life_days,
                                  "max_pool": self.max_pool, "name": self.name,
                                  "half_life_days_": self.half_life_days_}
        return params, {**csr_to_arrays("seen", self.seen_), **csr_to_arrays("recent", self.recent_),
                        "pool": self.pool_}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        obj = cls(neighbours=params["neighbours"], half_life_days=params["half_life_days"],
                  max_pool=params["max_pool"], name=params["name"])
        obj._set(csr_from_arrays("seen", arrays), csr_from_arrays("recent", arrays), params["half_life_days_"],
                 np.asarray(arrays["pool"], dtype=np.int64))
        return obj

