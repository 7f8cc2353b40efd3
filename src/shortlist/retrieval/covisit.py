"""Co-visitation / item-CF: item–item co-occurrence, normalised against popularity.

Three kinds of co-occurrence, each a separate source so the union can budget them apart:

- ``user``: items sharing a user (classic item-kNN over whole histories);
- ``session``: items sharing a basket/session, or — without one — the same user within a time window;
- ``transition``: an item followed by another in a user's sequence, weighted by the time between them
  (directional; the reverse direction counts ``reverse_weight``).

A user's candidates are ``Σ_h w(h) · S[h, :]`` over their last ``last_n`` distinct items ``h`` with
recency weights ``w``, as the H&M winners' "ItemCF" does. Counts read the log's strengths
(:mod:`shortlist.data.events`): an item counts in a group by its strongest row, a transition by the
strength of the row it leads to; the recent items a user is scored from are the same for any weights.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items, read_only
from shortlist.data.events import strongest
from shortlist.errors import ConfigError
from shortlist.retrieval.base import (
    State,
    check_k,
    csr_from_arrays,
    csr_to_arrays,
    history_row,
    require_fitted,
)
from shortlist.retrieval.cooccurrence import (
    GroupKey,
    Normalise,
    TransitionKey,
    basket_codes,
    group_graph,
    normalise_rows,
    transition_counts,
    user_partitions,
)
from shortlist.retrieval.topk import product_topk, rows_of
from shortlist.schema import BASKET, ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, WEIGHT

Kind = Literal["user", "session", "transition"]


def default_window_days(history: Interactions) -> float:
    """Session window without baskets: 1/100 of the span, between 1 hour and 7 days."""
    first, last = history.time_span()
    return float(min(7.0, max(1.0 / 24, (last - first) / SECONDS_PER_DAY / 100.0)))


class CoVisitation:
    """Item–item co-occurrence source (see module docstring for the kinds)."""

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("history_", "seen_")

    def __init__(
        self,
        *,
        kind: Kind = "user",
        alpha: float = 0.5,
        neighbours: int = 200,
        last_n: int | Literal["auto"] = "auto",
        position_decay: float | Literal["auto"] = "auto",
        window_days: float | None = None,
        reverse_weight: float = 0.5,
        name: str | None = None,
    ) -> None:
        if kind not in ("user", "session", "transition"):
            raise ConfigError(f"kind must be 'user', 'session' or 'transition', got {kind!r}")
        bad_n = last_n != "auto" and (not isinstance(last_n, int) or last_n < 1)
        bad_d = position_decay != "auto" and not (isinstance(position_decay, int | float) and 0.0 < position_decay <= 1.0)
        if not 0.0 <= alpha <= 1.0 or neighbours < 1 or bad_n or bad_d:
            raise ConfigError("CoVisitation needs 0<=alpha<=1, neighbours>=1, last_n>=1 or 'auto', "
                              "0<position_decay<=1 or 'auto'")
        self.kind, self.alpha, self.neighbours = kind, alpha, neighbours
        self.last_n, self.position_decay = last_n, position_decay
        self.window_days, self.reverse_weight = window_days, reverse_weight
        self.name = name or {"user": "itemknn", "session": "covisit", "transition": "transition"}[kind]
        self.last_n_: int = 20
        self.position_decay_: float = 0.85
        self.sim_: sp.csr_matrix | None = None
        self.history_: sp.csr_matrix | None = None
        self.seen_: sp.csr_matrix | None = None

    # --- fit ---------------------------------------------------------------------------------
    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        f = history.frame.select(USER, ITEM, TIMESTAMP, WEIGHT, *([BASKET] if BASKET in history.frame.columns else []))
        self.last_n_, self.position_decay_ = self._recent_window(history)
        n_items = history.n_items
        pop = np.asarray(strongest(history).sum(axis=0)).ravel().astype(np.float64) + 1.0
        if self.kind == "transition":
            partitions = user_partitions(f.select(USER, ITEM, TIMESTAMP, WEIGHT), history.n_users)
            counts = transition_counts(TransitionKey(n_items, self.reverse_weight), partitions,
                                       step=f"{self.name} transitions")
            self.sim_ = normalise_rows(counts, pop, 0, self.alpha, self.neighbours)
        else:
            key = self._group_key(f, history)
            extra = [basket_codes(f.get_column(BASKET))] if key.by == "basket" else [TIMESTAMP] if key.by == "window" else []
            self.sim_ = group_graph(key, user_partitions(f.select(USER, ITEM, WEIGHT, *extra), history.n_users),
                                    Normalise(pop, self.alpha, self.neighbours), step=f"{self.name} co-occurrence")
        # item-kNN, co-visitation and transition weigh the same recent items: built once per history
        self.history_ = history.cached(("covisit:recent", self.last_n_, self.position_decay_),
                                       lambda: read_only(self._history_weights(f, history.n_users, n_items)))
        self.seen_ = history.to_csr(binary=True)
        return self

    def item_similarity(self) -> sp.csr_matrix:
        """The item × item graph (each row's ``neighbours`` best), for the pair features."""
        require_fitted(self, "sim_")
        assert self.sim_ is not None
        return self.sim_

    def _group_key(self, f: pl.DataFrame, history: Interactions) -> GroupKey:
        """Groups: the user (item-kNN), else the basket where the log has one, else a time window."""
        if self.kind == "user":
            return GroupKey("user", history.n_items)
        if BASKET in f.columns:
            return GroupKey("basket", history.n_items)
        return GroupKey("window", history.n_items, int((self.window_days or default_window_days(history)) * SECONDS_PER_DAY))

    def _recent_window(self, history: Interactions) -> tuple[int, float]:
        """``auto``: 20 items decaying 0.85 a step, or — where items arrive in baskets of 5 or more
        (retail invoices) — 100 items decaying 0.95, so the window spans several baskets (see
        benchmarks/RESULTS.md)."""
        long = history.basket_size() >= 5
        n = self.last_n if self.last_n != "auto" else (100 if long else 20)
        d = self.position_decay if self.position_decay != "auto" else (0.95 if long else 0.85)
        return int(n), float(d)

    def _history_weights(self, f: pl.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
        """Last ``last_n_`` distinct items per user, weighted ``position_decay_ ** recency_position``."""
        last = (
            f.group_by([USER, ITEM]).agg(pl.col(TIMESTAMP).max())
            .sort([USER, TIMESTAMP, ITEM], descending=[False, True, True])
            .with_columns(pl.int_range(pl.len()).over(USER).alias("_p"))
            .filter(pl.col("_p") < self.last_n_)
        )
        w = self.position_decay_ ** last.get_column("_p").to_numpy().astype(np.float64)
        return sp.csr_matrix(
            (w.astype(np.float32), (last.get_column(USER).to_numpy(), last.get_column(ITEM).to_numpy())),
            shape=(n_users, n_items),
        )

    # --- retrieve ----------------------------------------------------------------------------
    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "sim_")
        assert self.sim_ is not None and self.history_ is not None and self.seen_ is not None
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        seen = rows_of(self.seen_, users) if exclude_seen else None
        return product_topk(rows_of(self.history_, users), self.sim_, k, exclude=seen)

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for an ad-hoc history; ``items`` are oldest first unless ``timestamps`` say otherwise."""
        check_k(k)
        require_fitted(self, "sim_")
        assert self.sim_ is not None
        n = self.sim_.shape[0]
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        known = (items >= 0) & (items < n)
        if timestamps is not None:
            ts = np.asarray(timestamps).reshape(-1)[known]
            items = items[known][np.argsort(ts, kind="stable")]
        else:
            items = items[known]
        uniq_rev, first = np.unique(items[::-1], return_index=True)
        order = np.argsort(first)[: self.last_n_]
        recent = uniq_rev[order]
        by_item = np.argsort(recent)
        w = (self.position_decay_ ** np.arange(len(order))).astype(np.float32)
        row = sp.csr_matrix((w[by_item], recent[by_item], np.array([0, len(recent)])), shape=(1, n))
        return product_topk(row, self.sim_, k, exclude=history_row(items, n) if exclude_seen else None)

    # --- persistence ---------------------------------------------------------------------------
    def get_state(self) -> State:
        require_fitted(self, "sim_")
        assert self.sim_ is not None and self.history_ is not None and self.seen_ is not None
        params: dict[str, Any] = {
            "kind": self.kind, "alpha": self.alpha, "neighbours": self.neighbours, "last_n": self.last_n,
            "position_decay": self.position_decay, "window_days": self.window_days,
            "reverse_weight": self.reverse_weight, "name": self.name,
        }
        params["resolved"] = {"last_n": self.last_n_, "position_decay": self.position_decay_}
        return params, {**csr_to_arrays("sim", self.sim_), **csr_to_arrays("history", self.history_),
                        **csr_to_arrays("seen", self.seen_)}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        resolved = params.pop("resolved", {"last_n": 20, "position_decay": 0.85})
        obj = cls(**params)
        obj.last_n_, obj.position_decay_ = int(resolved["last_n"]), float(resolved["position_decay"])
        obj.sim_ = csr_from_arrays("sim", arrays)
        obj.history_ = csr_from_arrays("history", arrays)
        obj.seen_ = csr_from_arrays("seen", arrays)
        return obj


