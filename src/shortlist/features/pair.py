"""User × item features: repurchase, recency of the pair, co-visitation with the user's last items,
category affinity, price and popularity relative to the user."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.base import FeatureRows, SparseCells, table_cells
from shortlist.features.profile import UserProfiles
from shortlist.features.stats import HistoryStats
from shortlist.schema import SECONDS_PER_DAY

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

    ``similarities`` maps a name to an item × item sparse matrix (e.g. a co-visitation source's);
    one small enough for :data:`DENSE_SIM_CELLS` is densified once and reused by every transform.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("stats_",)

    def __init__(
        self, *, similarities: Mapping[str, sp.csr_matrix] | None = None, last_n: Sequence[int] = (1, 3, 10)
    ) -> None:
        self.similarities = dict(similarities or {})
        self.last_n = tuple(last_n)
        self.names = list(PAIR_FEATURES) + [f"{s}_last{n}" for s in self.similarities for n in self.last_n]
        self.stats_: HistoryStats | None = None
        self._tables: dict[str, np.ndarray | SparseCells] = {}

    def fit(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        self.stats_ = stats
        return self

    def table(self, name: str) -> np.ndarray | SparseCells:
        """A dense item × item table when small enough (one gather per lookup), else sorted cells."""
        if name not in self._tables:
            sim = self.similarities[name]
            small = sim.shape[0] * sim.shape[1] <= DENSE_SIM_CELLS
            self._tables[name] = np.asarray(sim.toarray(), dtype=np.float32) if small else SparseCells(sim)
        return self._tables[name]

    def compute(self, r: FeatureRows) -> dict[str, np.ndarray]:
        """Features for candidate rows (profile row, item, reference time); unknown rows/items give NaN/0."""
        profiles, rows, i, ref = r.profiles, r.rows, r.items, r.ref
        st = self.stats_
        if st is None:
            raise NotFittedError("PairFeatures")
        ku = (rows >= 0) & (rows < profiles.n)
        ki = (i >= 0) & (i < st.n_items)
        us, is_ = np.where(ku, rows, 0), np.where(ki, i, 0)
        pos, hit = profiles.pair_positions(rows, i, st.n_items)
        def at(values: np.ndarray) -> np.ndarray:
            return values[pos] if len(values) else np.zeros(len(pos), values.dtype)

        count = np.where(hit, at(profiles.pair_count), 0).astype(np.float32)
        out: dict[str, np.ndarray] = {"pair_count": count}
        for name, when in (("pair_days_since_last", profiles.pair_last), ("pair_days_since_first", profiles.pair_first)):
            out[name] = np.where(hit, (ref - at(when)) / SECONDS_PER_DAY, np.nan).astype(np.float32)
        c64 = count.astype(np.float64)
        span = (out["pair_days_since_first"] - out["pair_days_since_last"]).astype(np.float64)
        interval = np.where(c64 > 1, span / np.maximum(c64 - 1, 1), np.nan)
        out["pair_interval_days"] = interval.astype(np.float32)
        out["pair_cycle_ratio"] = (out["pair_days_since_last"] / np.maximum(interval, 1.0 / 24)).astype(np.float32)
        out["pair_share"] = np.where(ku, c64 / np.maximum(profiles.total[us], 1), np.nan).astype(np.float32)
        aff, has_cat = _category_affinity(profiles, st.tables.item_cats, np.where(ku, rows, -1), np.where(ki, i, -1))
        out["pair_cat_affinity"] = np.where(ku & has_cat, aff / np.maximum(profiles.cat_total[us], 1e-9),
                                            np.nan).astype(np.float32)
        price = np.where(ki, st.item_price[is_], np.nan)
        out["pair_price_ratio"] = np.where(ku, price / profiles.price[us], np.nan).astype(np.float32)
        out["pair_pop_gap"] = np.where(ku & ki, st.tables.item_pop[is_] - profiles.pop[us], np.nan).astype(np.float32)
        pair_ok = ku & ki
        for n in self.last_n:
            # Σ over the user's last n items in ascending id order, added one at a time: the order
            # (and so every float32 rounding) is a row's own, whatever the shard.
            recent = profiles.recent_sorted(n)[us]
            absent = (recent < 0) | ~pair_ok[:, None]
            known = np.where(absent, 0, recent)
            for sname in self.similarities:
                table = self.table(sname)
                if isinstance(table, np.ndarray):
                    vals = table_cells(table, known, is_)
                    vals[absent] = 0.0
                else:
                    vals = table.get(np.where(absent, -1, recent),
                                     np.broadcast_to(is_[:, None], recent.shape)).astype(np.float32)
                out[f"{sname}_last{n}"] = _row_sums(vals)
        return {name: out[name] for name in self.names}


def _row_sums(vals: np.ndarray) -> np.ndarray:
    """Σ across columns, strictly left to right in float32 (np.sum's pairwise order depends on width)."""
    if not vals.shape[1]:
        return np.zeros(len(vals), dtype=np.float32)
    return np.add.accumulate(vals.astype(np.float32, copy=False), axis=1)[:, -1]


DENSE_SIM_CELLS = 16_000_000



def _category_affinity(profiles: UserProfiles, item_cats: sp.csr_matrix, rows: np.ndarray,
                       items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the user's interactions in the item's most frequent (for them) category, and
    whether the item has a category at all (rows or items of -1: none)."""
    known = items >= 0
    it = np.where(known, items, 0)
    n_cats = np.where(known, np.diff(item_cats.indptr)[it], 0)
    ends = np.cumsum(n_cats)
    pair = np.repeat(np.arange(len(items)), n_cats)
    offset = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - n_cats, n_cats)
    cats = item_cats.indices[item_cats.indptr[it][pair] + offset]
    values = profiles.user_cat.get(rows[pair], cats).astype(np.float64)
    best = np.zeros(len(items), dtype=np.float64)
    has = n_cats > 0
    if has.any():
        best[has] = np.maximum.reduceat(values, (ends - n_cats)[has])
    return best, has
