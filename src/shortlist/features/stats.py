"""``HistoryStats``: what every feature builder needs from a history, computed once per fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.features.base import TimeScale, sorted_item_times, user_last_ts
from shortlist.schema import CATEGORY, ITEM, PRICE, SECONDS_PER_DAY, TIMESTAMP, USER


@dataclass
class HistoryStats:
    """Per-item and per-user arrays over one history (indexed by internal id)."""

    n_users: int
    n_items: int
    end_ts: int
    scale: TimeScale
    item_times: np.ndarray  # sorted (item, timestamp) keys
    user_last: np.ndarray  # last timestamp per user
    counts: sp.csr_matrix  # user × item interaction counts
    last_ts: sp.csr_matrix  # user × item last timestamp (offset by +1 so 0 means "never")
    first_ts: sp.csr_matrix  # user × item first timestamp (+1)
    item_price: np.ndarray  # NaN where unknown
    item_category: np.ndarray  # int codes, -1 unknown
    n_categories: int
    origin_ts: int  # last_ts/first_ts hold timestamp - origin_ts (> 0)

    @classmethod
    def build(cls, history: Interactions, items: Items | None = None) -> HistoryStats:
        f = history.frame
        n_u, n_i = history.n_users, history.n_items
        end = history.time_span()[1]
        agg = f.group_by([USER, ITEM]).agg(
            pl.len().alias("n"), pl.col(TIMESTAMP).max().alias("last"), pl.col(TIMESTAMP).min().alias("first")
        )
        u, i = agg.get_column(USER).to_numpy(), agg.get_column(ITEM).to_numpy()

        def mat(values: np.ndarray, dtype: type) -> sp.csr_matrix:
            return sp.csr_matrix((values.astype(dtype), (u, i)), shape=(n_u, n_i))

        # Timestamps are stored relative to the history start (+1) so float64 stays exact and 0 = never.
        base = history.time_span()[0] - 1
        price, category, n_cat = _item_attributes(history, items)
        return cls(
            n_users=n_u,
            n_items=n_i,
            end_ts=end,
            scale=TimeScale.of(history),
            item_times=sorted_item_times(history),
            user_last=user_last_ts(history),
            counts=mat(agg.get_column("n").to_numpy(), np.float32),
            last_ts=mat(agg.get_column("last").to_numpy() - base, np.float64),
            first_ts=mat(agg.get_column("first").to_numpy() - base, np.float64),
            item_price=price,
            item_category=category,
            n_categories=n_cat,
            origin_ts=base,
        )

    def days(self, seconds: np.ndarray) -> np.ndarray:
        return (seconds / SECONDS_PER_DAY).astype(np.float32)


def _item_attributes(history: Interactions, items: Items | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Median price per item (catalogue first, then paid prices) and category codes."""
    n = history.n_items
    price = np.full(n, np.nan, dtype=np.float64)
    f = history.frame
    if PRICE in f.columns:
        p = f.group_by(ITEM).agg(pl.col(PRICE).median())
        price[p.get_column(ITEM).to_numpy()] = p.get_column(PRICE).to_numpy()
    category = np.full(n, -1, dtype=np.int32)
    n_cat = 0
    if items is not None:
        if items.has(PRICE):
            cat_price = items.aligned(PRICE).cast(pl.Float64).to_numpy()
            price = np.where(np.isnan(cat_price), price, cat_price)
        if items.has(CATEGORY):
            c = items.aligned(CATEGORY).cast(pl.Utf8)
            codes = c.rank("dense").to_numpy()
            category = np.where(c.is_null().to_numpy(), -1, np.nan_to_num(codes, nan=0) - 1).astype(np.int32)
            n_cat = int(category.max()) + 1
    return price, category, n_cat


def recent_items(stats: HistoryStats, n: int) -> np.ndarray:
    """(n_users × n) each user's last ``n`` distinct items, most recent first, padded with -1."""
    coo = stats.last_ts.tocoo()
    f = (
        pl.DataFrame({"u": coo.row.astype(np.int64), "i": coo.col.astype(np.int64), "t": coo.data})
        .sort(["u", "t", "i"], descending=[False, True, True])
        .with_columns(pl.int_range(pl.len()).over("u").alias("p"))
        .filter(pl.col("p") < n)
    )
    out = np.full((stats.n_users, n), -1, dtype=np.int64)
    out[f.get_column("u").to_numpy(), f.get_column("p").to_numpy()] = f.get_column("i").to_numpy()
    return out
