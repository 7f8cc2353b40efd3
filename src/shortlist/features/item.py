"""Item features: popularity windows and trend, age, recency, rank, price, text, category."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import polars as pl

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.base import FeatureRows, counts_before
from shortlist.features.stats import HistoryStats
from shortlist.schema import DESCRIPTION, ITEM, SECONDS_PER_DAY, TIMESTAMP, TITLE, USER

WINDOWS = ("short", "medium", "long")

#: name → one-line meaning (the ``names`` of :class:`ItemFeatures`, in order).
ITEM_FEATURES: dict[str, str] = {
    "item_cnt_all": "interactions with the item in the whole history",
    "item_users_all": "distinct users of the item in the whole history",
    "item_cnt_short": "interactions in the short window (≈span/50) before the reference time",
    "item_cnt_medium": "interactions in the medium window (≈span/12) before the reference time",
    "item_cnt_long": "interactions in the long window (≈span/3) before the reference time",
    "item_trend": "short-window rate over medium-window rate (>1: rising)",
    "item_age_days": "days from the item's first interaction to the reference time",
    "item_days_since_last": "days since the item's last interaction before the reference time",
    "item_pop_rank": "rank of the item by distinct users (1 = most popular)",
    "item_repeat_share": "share of the item's users who had it more than once",
    "item_price_log": "log(1 + price); catalogue price, else median price paid",
    "item_title_len": "characters in the title",
    "item_desc_len": "characters in the description",
    "item_category": "category code (categorical; -1 unknown)",
}


class ItemFeatures:
    """Per-item statistics of a history, plus windowed counts relative to each row's ``ref_ts``."""

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("stats_",)

    names: ClassVar[list[str]] = list(ITEM_FEATURES)

    def __init__(self) -> None:
        self.stats_: HistoryStats | None = None
        self.static_: dict[str, np.ndarray] | None = None
        self.at_end_: tuple[list[np.ndarray], np.ndarray] | None = None

    def fit(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        n = history.n_items
        f = history.frame
        per_item = f.group_by(ITEM).agg(
            pl.len().alias("cnt"), pl.col(USER).n_unique().alias("users"), pl.col(TIMESTAMP).min().alias("first")
        )
        idx = per_item.get_column(ITEM).to_numpy()
        cnt = np.zeros(n, np.float32)
        users = np.zeros(n, np.float32)
        first = np.full(n, np.nan)
        cnt[idx] = per_item.get_column("cnt").to_numpy()
        users[idx] = per_item.get_column("users").to_numpy()
        first[idx] = per_item.get_column("first").to_numpy()
        rank = np.empty(n, np.float32)
        rank[np.argsort(-users, kind="stable")] = np.arange(1, n + 1)
        repeaters = stats.item_repeaters
        self.static_ = {
            "item_cnt_all": cnt,
            "item_users_all": users,
            "first": first,
            "item_pop_rank": rank,
            "item_repeat_share": np.where(users > 0, repeaters / np.maximum(users, 1), np.nan).astype(np.float32),
            "item_price_log": np.log1p(stats.item_price).astype(np.float32),
            "item_title_len": _text_len(items, TITLE, n),
            "item_desc_len": _text_len(items, DESCRIPTION, n),
            "item_category": stats.item_category.astype(np.float32),
        }
        self.stats_ = stats
        every = np.arange(n, dtype=np.int64)  # windows at the history's end, for every item (a request's common case)
        self.at_end_ = counts_before(stats.item_times, every, np.full(n, stats.end_ts, np.int64), self._widths())
        return self

    def _widths(self) -> list[int]:
        assert self.stats_ is not None
        w = self.stats_.scale.windows
        return [int(w[n] * SECONDS_PER_DAY) for n in WINDOWS]

    def _windows(self, it_safe: np.ndarray, ref: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Window counts and last time per row: looked up when every row is at the history's end."""
        assert self.stats_ is not None and self.at_end_ is not None
        if len(ref) and (ref == self.stats_.end_ts).all():
            counts, last = self.at_end_
            return [c[it_safe] for c in counts], last[it_safe]
        return counts_before(self.stats_.item_times, it_safe, ref, self._widths())

    def compute(self, r: FeatureRows) -> dict[str, np.ndarray]:
        """Features for candidate rows (item, reference time)."""
        if self.stats_ is None or self.static_ is None:
            raise NotFittedError("ItemFeatures")
        st, s, it, ref = self.stats_, self.static_, r.items, r.ref
        known = (it >= 0) & (it < st.n_items)
        it_safe = np.where(known, it, 0)

        def g(a: np.ndarray) -> np.ndarray:
            return np.where(known, a[it_safe], np.nan).astype(np.float32)

        w = st.scale.windows
        windowed, last_ts = self._windows(it_safe, ref)
        counts = {n: c * known for n, c in zip(WINDOWS, windowed, strict=True)}
        trend = (counts["short"] / w["short"] + 0.1) / (counts["medium"] / w["medium"] + 0.1)
        out = {
            "item_cnt_all": g(s["item_cnt_all"]),
            "item_users_all": g(s["item_users_all"]),
            "item_cnt_short": counts["short"],
            "item_cnt_medium": counts["medium"],
            "item_cnt_long": counts["long"],
            "item_trend": trend.astype(np.float32),
            "item_age_days": ((ref - g(s["first"]).astype(np.float64)) / SECONDS_PER_DAY).astype(np.float32),
            "item_days_since_last": np.where(known & (last_ts >= 0), (ref - last_ts) / SECONDS_PER_DAY,
                                             np.nan).astype(np.float32),
            "item_pop_rank": g(s["item_pop_rank"]),
            "item_repeat_share": g(s["item_repeat_share"]),
            "item_price_log": g(s["item_price_log"]),
            "item_title_len": g(s["item_title_len"]),
            "item_desc_len": g(s["item_desc_len"]),
            "item_category": np.where(known, s["item_category"][it_safe], -1).astype(np.float32),
        }
        return out


def _text_len(items: Items | None, column: str, n: int) -> np.ndarray:
    if items is None or not items.has(column):
        return np.full(n, np.nan, np.float32)
    s = items.aligned(column).cast(pl.Utf8).str.len_chars()
    return s.fill_null(0).to_numpy().astype(np.float32)
