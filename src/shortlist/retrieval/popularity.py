"""Popularity: all-time or a recent window, optionally time-decayed."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.retrieval.base import (
    State,
    check_k,
    csr_from_arrays,
    csr_to_arrays,
    history_row,
    require_fitted,
    seen_rows,
)
from shortlist.retrieval.topk import topk_global
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, WEIGHT

Count = Literal["users", "interactions", "weight"]


def default_recent_days(history: Interactions) -> float:
    """A recent-popularity window derived from the data's time span: 1/20 of it, 1 to 28 days."""
    first, last = history.time_span()
    return float(min(28.0, max(1.0, (last - first) / SECONDS_PER_DAY / 20.0)))


def item_popularity(
    history: Interactions,
    *,
    window_days: float | None = None,
    half_life_days: float | None = None,
    count: Count = "users",
    now: int | None = None,
) -> np.ndarray:
    """Per-item popularity (length ``n_items``) over the last ``window_days`` before ``now``: the
    users of the item, each counting their strongest row's weight (``"users"``, 1 in an unweighted
    log), the summed weights (``"weight"``) or the rows (``"interactions"``)."""
    f = history.frame
    now = history.time_span()[1] if now is None else now
    if window_days is not None:
        f = f.filter(pl.col(TIMESTAMP) > now - window_days * SECONDS_PER_DAY)
    if count == "users":  # the latest interaction carries the decay weight
        f = f.group_by([USER, ITEM], maintain_order=True).agg(pl.col(TIMESTAMP).last(), pl.col(WEIGHT).max())
    w = pl.lit(1.0) if count == "interactions" else pl.col(WEIGHT)
    if half_life_days is not None:
        age_days = (now - pl.col(TIMESTAMP)).clip(lower_bound=0) / SECONDS_PER_DAY
        w = w * (-(math.log(2.0) / half_life_days) * age_days).exp()
    # Materialise the weight first: a bare literal inside agg() would not broadcast per row.
    agg = f.with_columns(w.cast(pl.Float64).alias("p")).group_by(ITEM).agg(pl.col("p").sum())
    pop = np.zeros(history.n_items, dtype=np.float64)
    pop[agg.get_column(ITEM).to_numpy()] = agg.get_column("p").to_numpy()
    return pop


class Popularity:
    """Recommend the most popular items (the same list for everyone, minus their seen items).

    ``window_days=None`` is all-time popularity; ``"auto"`` derives a recent window from the data's
    time span; ``half_life_days`` decays older interactions.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("seen_",)

    def __init__(
        self,
        *,
        window_days: float | Literal["auto"] | None = None,
        half_life_days: float | None = None,
        count: Count = "users",
        name: str | None = None,
    ) -> None:
        if count not in ("users", "interactions", "weight"):
            raise ConfigError(f"count must be 'users', 'interactions' or 'weight', got {count!r}")
        for label, v in (("window_days", window_days), ("half_life_days", half_life_days)):
            if isinstance(v, int | float) and v <= 0:
                raise ConfigError(f"{label} must be positive, got {v}")
        self.window_days = window_days
        self.half_life_days = half_life_days
        self.count = count
        self.name = name or ("popular" if window_days is None else "popular_recent")
        self.scores_: np.ndarray | None = None
        self.prior_: np.ndarray | None = None
        self.ranking_: np.ndarray | None = None
        self.seen_: sp.csr_matrix | None = None
        self.window_days_: float | None = None

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        window = default_recent_days(history) if self.window_days == "auto" else self.window_days
        self.window_days_ = None if window is None else float(window)
        pop = item_popularity(history, window_days=self.window_days_, half_life_days=self.half_life_days,
                              count=self.count)
        if window is not None and not pop.any():  # an empty window falls back to all-time counts
            pop = item_popularity(history, count=self.count)
        self._set(pop.astype(np.float32), history.to_csr(binary=True))
        return self

    def _set(self, scores: np.ndarray, seen: sp.csr_matrix) -> None:
        self.scores_ = scores
        self.prior_ = np.log1p(np.maximum(scores, 0.0).astype(np.float64))
        # Stable sort on -score: ties go to the lower item id, so the output is deterministic.
        self.ranking_ = np.argsort(-scores, kind="stable")
        self.ranking_ = self.ranking_[scores[self.ranking_] > 0]
        self.seen_ = seen

    def item_prior(self) -> np.ndarray:
        """``log(1 + popularity)`` of every item: the learned fusion's item prior (retrieval/fusion.py)."""
        require_fitted(self, "prior_")
        assert self.prior_ is not None
        return self.prior_

    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "scores_")
        assert self.ranking_ is not None and self.scores_ is not None and self.seen_ is not None
        users = np.asarray(users, dtype=np.int64)
        return topk_global(self.ranking_, self.scores_[self.ranking_], len(users), k,
                           exclude=seen_rows(self.seen_, users, exclude_seen))

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Popular items for an ad-hoc history (user id -1 in the result); times do not matter."""
        check_k(k)
        require_fitted(self, "scores_")
        assert self.ranking_ is not None and self.scores_ is not None and self.seen_ is not None
        row = history_row(items, self.seen_.shape[1]) if exclude_seen else None
        return topk_global(self.ranking_, self.scores_[self.ranking_], 1, k, exclude=row)

    def get_state(self) -> State:
        require_fitted(self, "scores_")
        assert self.scores_ is not None and self.seen_ is not None
        params: dict[str, Any] = {
            "window_days": self.window_days, "half_life_days": self.half_life_days,
            "count": self.count, "name": self.name, "window_days_": self.window_days_,
        }
        return params, {"scores": self.scores_, **csr_to_arrays("seen", self.seen_)}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        obj = cls(window_days=params["window_days"], half_life_days=params["half_life_days"],
                  count=params["count"], name=params["name"])
        obj.window_days_ = params["window_days_"]
        obj._set(arrays["scores"], csr_from_arrays("seen", arrays))
        return obj
