"""User features: activity, recency, span, prices paid, repeat rate, taste for popularity, categories."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.stats import HistoryStats
from shortlist.schema import BASKET, ITEM, PRICE, SECONDS_PER_DAY, TIMESTAMP, USER

REF_TS = "ref_ts"

USER_FEATURES: dict[str, str] = {
    "user_n": "interactions in the user's history",
    "user_n_items": "distinct items in the user's history",
    "user_active_days": "distinct days with activity",
    "user_span_days": "days between the user's first and last interaction",
    "user_days_since_last": "days from the user's last interaction to the reference time",
    "user_repeat_rate": "1 - distinct items / interactions (how much the user re-consumes)",
    "user_price_mean": "mean price of the user's items",
    "user_price_std": "spread (std) of the prices of the user's items",
    "user_item_pop_mean": "mean log(1 + distinct users) of the user's items (taste for popular items)",
    "user_top_cat_share": "share of the user's interactions in their most frequent category",
    "user_cat_entropy": "entropy (nats) of the user's category distribution",
    "user_n_baskets": "distinct baskets/sessions (NaN without a basket column)",
}


class UserFeatures:
    """Per-user statistics of a history, gathered for each candidate row."""

    names: ClassVar[list[str]] = list(USER_FEATURES)

    def __init__(self) -> None:
        self.stats_: HistoryStats | None = None
        self.static_: dict[str, np.ndarray] | None = None
        self.user_cat_: sp.csr_matrix | None = None

    def fit(self, history: Interactions, *, items: Items | None = None) -> Self:
        return self.fit_stats(HistoryStats.build(history, items), history, items=items)

    def fit_stats(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        n = history.n_users
        f = history.frame
        item_users = np.asarray((stats.counts > 0).sum(axis=0)).ravel()
        f = f.with_columns(
            pl.Series("_pop", np.log1p(item_users[f.get_column(ITEM).to_numpy()]).astype(np.float32)),
            pl.Series("_price", stats.item_price[f.get_column(ITEM).to_numpy()]) if PRICE not in f.columns
            else pl.col(PRICE).cast(pl.Float64).alias("_price"),
        )
        aggs = [
            pl.len().alias("user_n"),
            pl.col(ITEM).n_unique().alias("user_n_items"),
            (pl.col(TIMESTAMP) // SECONDS_PER_DAY).n_unique().alias("user_active_days"),
            ((pl.col(TIMESTAMP).max() - pl.col(TIMESTAMP).min()) / SECONDS_PER_DAY).alias("user_span_days"),
            pl.col("_price").mean().alias("user_price_mean"),
            pl.col("_price").std().alias("user_price_std"),
            pl.col("_pop").mean().alias("user_item_pop_mean"),
        ]
        if BASKET in f.columns:
            aggs.append(pl.col(BASKET).n_unique().alias("user_n_baskets"))
        per_user = f.group_by(USER).agg(aggs)
        idx = per_user.get_column(USER).to_numpy()
        static: dict[str, np.ndarray] = {}
        for name in self.names:
            arr = np.full(n, np.nan, np.float32)
            if name in per_user.columns:
                arr[idx] = per_user.get_column(name).cast(pl.Float64).to_numpy()
            static[name] = arr
        static["user_repeat_rate"] = 1.0 - static["user_n_items"] / static["user_n"]
        self.user_cat_ = _user_categories(stats)
        share, entropy = _category_shape(self.user_cat_, n)
        static["user_top_cat_share"], static["user_cat_entropy"] = share, entropy
        self.static_, self.stats_ = static, stats
        return self

    def transform(self, candidates: pl.DataFrame) -> pl.DataFrame:
        if self.stats_ is None or self.static_ is None:
            raise NotFittedError("UserFeatures")
        u = candidates.get_column(USER).to_numpy().astype(np.int64)
        ref = candidates.get_column(REF_TS).to_numpy().astype(np.int64)
        known = (u >= 0) & (u < self.stats_.n_users)
        us = np.where(known, u, 0)
        out = {name: np.where(known, self.static_[name][us], np.nan).astype(np.float32) for name in self.names}
        last = self.stats_.user_last[us]
        out["user_days_since_last"] = np.where(known, (ref - last) / SECONDS_PER_DAY, np.nan).astype(np.float32)
        return pl.DataFrame(out)


def _user_categories(stats: HistoryStats) -> sp.csr_matrix:
    """(n_users × n_categories) interaction counts per category."""
    if stats.n_categories == 0:
        return sp.csr_matrix((stats.n_users, 1), dtype=np.float32)
    coo = stats.counts.tocoo()
    cat = stats.item_category[coo.col]
    keep = cat >= 0
    m = sp.csr_matrix((coo.data[keep], (coo.row[keep], cat[keep])), shape=(stats.n_users, stats.n_categories))
    m.sum_duplicates()
    return m


def _category_shape(m: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    total = np.asarray(m.sum(axis=1)).ravel()
    if m.nnz == 0:
        return np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    top = m.max(axis=1).toarray().ravel()
    p = m.multiply(1.0 / np.maximum(total, 1e-9)[:, None]).tocsr()
    ent = _entropy(p)
    has = total > 0
    return (np.where(has, top / np.maximum(total, 1e-9), np.nan).astype(np.float32),
            np.where(has, ent, np.nan).astype(np.float32))


def _entropy(p: sp.csr_matrix) -> np.ndarray:
    q = p.copy()
    q.data = -q.data * np.log(np.maximum(q.data, 1e-12))
    return np.asarray(q.sum(axis=1)).ravel()
