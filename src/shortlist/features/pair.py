"""User × item features: repurchase, recency of the pair, co-visitation with the user's last items,
category affinity, price and popularity relative to the user."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.base import RowGather, pair_lookup
from shortlist.features.stats import HistoryStats, recent_items
from shortlist.features.user import _user_categories
from shortlist.schema import ITEM, SECONDS_PER_DAY, USER

REF_TS = "ref_ts"

PAIR_FEATURES: dict[str, str] = {
    "pair_count": "times the user had the item (repurchase count)",
    "pair_days_since_last": "days since the user last had the item (NaN: never)",
    "pair_days_since_first": "days since the user first had the item (NaN: never)",
    "pair_interval_days": "mean days between the user's interactions with the item (NaN: fewer than two)",
    "pair_cycle_ratio": "days since last / the user's mean interval for the item (≈1: due again)",
    "pair_share": "the item's share of the user's interactions",
    "pair_cat_affinity": "share of the user's interactions in the item's category",
    "pair_price_ratio": "item price / mean price of the user's items",
    "pair_pop_gap": "log(1 + item users) minus the user's mean of it (novelty for this user)",
}


class PairFeatures:
    """Pair statistics, and ``<sim>_last{n}``: Σ similarity of the item to the user's last n items.

    ``similarities`` maps a name to an item × item sparse matrix (e.g. a co-visitation source's).
    """

    def __init__(
        self, *, similarities: Mapping[str, sp.csr_matrix] | None = None, last_n: Sequence[int] = (1, 3, 10)
    ) -> None:
        self.similarities = dict(similarities or {})
        self.last_n = tuple(last_n)
        self.names = list(PAIR_FEATURES) + [f"{s}_last{n}" for s in self.similarities for n in self.last_n]
        self.stats_: HistoryStats | None = None
        self.recent_: sp.csr_matrix | None = None
        self.user_cat_: sp.csr_matrix | None = None
        self.user_price_: np.ndarray | None = None
        self.user_pop_: np.ndarray | None = None
        self.item_pop_: np.ndarray | None = None
        self.last_items_: np.ndarray | None = None

    def fit(self, history: Interactions, *, items: Items | None = None) -> Self:
        return self.fit_stats(HistoryStats.build(history, items), history, items=items)

    def fit_stats(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        self.stats_ = stats
        self.user_cat_ = _user_categories(stats)
        counts = stats.counts
        self.item_pop_ = np.log1p(np.asarray((counts > 0).sum(axis=0)).ravel()).astype(np.float32)
        binary = (counts > 0).astype(np.float32)
        n_items = np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1e-9)
        self.user_pop_ = (binary @ self.item_pop_) / n_items
        price = np.nan_to_num(stats.item_price, nan=0.0)
        has_price = (~np.isnan(stats.item_price)).astype(np.float32)
        self.user_price_ = (binary @ price) / np.maximum(binary @ has_price, 1e-9)
        self.user_price_[(binary @ has_price) == 0] = np.nan
        self.last_items_ = recent_items(stats, max(self.last_n, default=1))
        return self

    def transform(self, candidates: pl.DataFrame) -> pl.DataFrame:
        st = self.stats_
        if st is None or self.user_cat_ is None or self.last_items_ is None:
            raise NotFittedError("PairFeatures")
        assert self.user_price_ is not None and self.user_pop_ is not None and self.item_pop_ is not None
        u = candidates.get_column(USER).to_numpy().astype(np.int64)
        i = candidates.get_column(ITEM).to_numpy().astype(np.int64)
        ref = candidates.get_column(REF_TS).to_numpy().astype(np.int64)
        ku = (u >= 0) & (u < st.n_users)
        ki = (i >= 0) & (i < st.n_items)
        us, is_ = np.where(ku, u, 0), np.where(ki, i, 0)
        # Only the users present are looked at: index them locally so cost follows the candidates.
        uniq, local = np.unique(np.where(ku, u, -1), return_inverse=True)
        uniq_known = np.where(uniq >= 0, uniq, 0)
        known_rows = uniq_known[uniq >= 0]
        offset = int((uniq < 0).sum())  # the unknown-user row, if any, sorts first (index 0)
        pairs = RowGather(np.where(ku & ki, local - offset, -1), is_)
        out: dict[str, np.ndarray] = {"pair_count": pairs.gather(st.counts[known_rows])}
        for name, mat in (("pair_days_since_last", st.last_ts), ("pair_days_since_first", st.first_ts)):
            rel = pairs.gather(mat[known_rows])
            out[name] = np.where(rel > 0, (ref - (rel + st.origin_ts)) / SECONDS_PER_DAY, np.nan).astype(np.float32)
        count = out["pair_count"].astype(np.float64)
        span = (out["pair_days_since_first"] - out["pair_days_since_last"]).astype(np.float64)
        interval = np.where(count > 1, span / np.maximum(count - 1, 1), np.nan)
        out["pair_interval_days"] = interval.astype(np.float32)
        out["pair_cycle_ratio"] = (out["pair_days_since_last"] / np.maximum(interval, 1.0 / 24)).astype(np.float32)
        user_n = np.asarray(st.counts.sum(axis=1)).ravel()
        out["pair_share"] = np.where(ku, count / np.maximum(user_n[us], 1), np.nan).astype(np.float32)
        cat = np.where(ki, st.item_category[is_], -1)
        total = np.asarray(self.user_cat_.sum(axis=1)).ravel()
        aff = pair_lookup(self.user_cat_, np.where(ku & (cat >= 0), u, -1), np.maximum(cat, 0))
        out["pair_cat_affinity"] = np.where(ku & (cat >= 0), aff / np.maximum(total[us], 1e-9), np.nan).astype(np.float32)
        price = np.where(ki, st.item_price[is_], np.nan)
        out["pair_price_ratio"] = np.where(ku, price / self.user_price_[us], np.nan).astype(np.float32)
        out["pair_pop_gap"] = np.where(ku & ki, self.item_pop_[is_] - self.user_pop_[us], np.nan).astype(np.float32)
        recent = self.last_items_[known_rows]
        for n in self.last_n:
            h = _indicator(recent[:, :n], st.n_items)
            for sname, sim in self.similarities.items():
                out[f"{sname}_last{n}"] = pairs.gather(h, sim)
        return pl.DataFrame({name: out[name] for name in self.names})


def _indicator(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """(rows × n_items) 0/1 matrix with a 1 at each non-negative entry of ``items``."""
    r, c = np.nonzero(items >= 0)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, items[r, c])), shape=(items.shape[0], n_items))
