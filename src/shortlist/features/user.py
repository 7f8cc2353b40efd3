"""User features: activity, recency, span, prices paid, repeat rate, taste for popularity, categories."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np

from shortlist.data.containers import Interactions, Items
from shortlist.features.base import FeatureRows
from shortlist.features.stats import HistoryStats
from shortlist.schema import SECONDS_PER_DAY

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
    """Per-user statistics (from :class:`UserProfiles`), gathered for each candidate row."""

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("stats_",)

    names: ClassVar[list[str]] = list(USER_FEATURES)

    def __init__(self) -> None:
        self.stats_: HistoryStats | None = None

    def fit(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        self.stats_ = stats
        return self

    def compute(self, r: FeatureRows) -> dict[str, np.ndarray]:
        """Features for candidate rows owned by profile rows ``r.rows`` (outside ``0..n-1``: unknown)."""
        profiles, rows, ref = r.profiles, r.rows, r.ref
        known = (rows >= 0) & (rows < profiles.n)
        us = np.where(known, rows, 0)
        out = {name: np.where(known, profiles.static[name][us], np.nan).astype(np.float32)
               for name in self.names if name != "user_days_since_last"}
        last = profiles.last[us]
        out["user_days_since_last"] = np.where(known, (ref - last) / SECONDS_PER_DAY, np.nan).astype(np.float32)
        return {name: out[name] for name in self.names}
