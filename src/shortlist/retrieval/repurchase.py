"""Repurchase: a user's own past items, scored by recency-decayed frequency."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.retrieval.base import State, check_k, csr_from_arrays, csr_to_arrays, require_fitted
from shortlist.retrieval.topk import rows_of, sparse_topk
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, WEIGHT


def default_half_life_days(history: Interactions) -> float:
    """Half-life for repurchase decay: 1/8 of the time span, between 7 and 365 days."""
    first, last = history.time_span()
    return float(min(365.0, max(7.0, (last - first) / SECONDS_PER_DAY / 8.0)))


class Repurchase:
    """Score each item a user had by ``sum(strength · exp(-ln2 · age / half_life))`` over their
    interactions (strength: the row's weight, :mod:`shortlist.data.events`).

    Only meaningful where buying again is normal (``exclude_seen=False``); with exclusion on it
    returns nothing, by definition.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("scores_",)

    def __init__(self, *, half_life_days: float | None = None, name: str = "repurchase") -> None:
        if half_life_days is not None and half_life_days <= 0:
            raise ConfigError(f"half_life_days must be positive, got {half_life_days}")
        self.half_life_days = half_life_days
        self.name = name
        self.scores_: sp.csr_matrix | None = None
        self.half_life_days_: float | None = None

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        hl = self.half_life_days or default_half_life_days(history)
        now = history.time_span()[1]
        age = (now - pl.col(TIMESTAMP)).clip(lower_bound=0) / SECONDS_PER_DAY
        w = history.frame.select(USER, ITEM, (pl.col(WEIGHT) * (-(math.log(2.0) / hl) * age).exp()).alias("w"))
        m = sp.csr_matrix(
            (w.get_column("w").to_numpy().astype(np.float32),
             (w.get_column(USER).to_numpy(), w.get_column(ITEM).to_numpy())),
            shape=(history.n_users, history.n_items),
        )
        m.sum_duplicates()
        m.eliminate_zeros()
        self.scores_, self.half_life_days_ = m, hl
        return self

    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "scores_")
        assert self.scores_ is not None
        users = np.asarray(users, dtype=np.int64)
        if exclude_seen:
            return np.full((len(users), k), -1, np.int64), np.full((len(users), k), -np.inf, np.float32)
        return sparse_topk(rows_of(self.scores_, users.reshape(-1)), k)

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The given history's own items by decayed strength (``weights``, default 1 an event), as a
        fitted user's."""
        check_k(k)
        require_fitted(self, "scores_")
        assert self.half_life_days_ is not None and self.scores_ is not None
        n_items = self.scores_.shape[1]
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        known = (items >= 0) & (items < n_items)  # ids outside the fitted catalogue are dropped
        if exclude_seen or not known.any():
            return np.full((1, k), -1, np.int64), np.full((1, k), -np.inf, np.float32)
        if timestamps is None:
            age_days = np.arange(len(items))[::-1].astype(np.float64)[known]  # one step per position
        else:
            ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)[known]
            age_days = (ts.max() - ts) / SECONDS_PER_DAY
        items = items[known]
        w = np.exp(-(math.log(2.0) / self.half_life_days_) * age_days)
        if weights is not None:
            w = w * np.asarray(weights, np.float64).reshape(-1)[known]
        w = w.astype(np.float32)
        row = sp.csr_matrix((w, (np.zeros(len(items)), items)), shape=(1, n_items))
        row.sum_duplicates()
        row.eliminate_zeros()
        return sparse_topk(row, k)

    def get_state(self) -> State:
        require_fitted(self, "scores_")
        assert self.scores_ is not None
        params: dict[str, Any] = {"half_life_days": self.half_life_days, "name": self.name,
                                  "half_life_days_": self.half_life_days_}
        return params, csr_to_arrays("scores", self.scores_)

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        obj = cls(half_life_days=params["half_life_days"], name=params["name"])
        obj.scores_, obj.half_life_days_ = csr_from_arrays("scores", arrays), params["half_life_days_"]
        return obj
