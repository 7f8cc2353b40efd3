"""``HistoryStats``: what every feature builder needs from a history, computed once per fit.

User profiles are not kept for every user: :meth:`HistoryStats.profiles_of` builds them for the
users a shard or a request asks about, from those users' own rows, so memory follows the shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.data.events import event_codes
from shortlist.features.base import TimeScale, sorted_item_times
from shortlist.features.profile import ItemTables, UserHistory, UserProfiles
from shortlist.retrieval.topk import gather_spans
from shortlist.schema import BASKET, CATEGORY, EVENT, ITEM, PRICE, TIMESTAMP, USER, WEIGHT


@dataclass
class HistoryStats:
    """Item-level arrays of one history, and each user's rows and last activity (the rows their
    :class:`UserProfiles` are built from on demand)."""

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("last", "rows")

    n_items: int
    end_ts: int
    scale: TimeScale
    item_times: np.ndarray  # sorted (item, timestamp) keys
    tables: ItemTables
    item_repeaters: np.ndarray  # float32 per item: users with two or more rows of it
    last: np.ndarray  # int64 per user: last timestamp (the history's end where a user has none)
    rows: _UserRows  # each user's rows: their profiles and :meth:`user_history`
    recent_len: int = 50  # distinct recent items a profile keeps
    event_types: tuple[str, ...] = ()  # the types per-event features count
    event_codes: np.ndarray | None = None  # each row's index in event_types (-1: none)

    @classmethod
    def build(cls, history: Interactions, items: Items | None = None, *, recent_len: int = 50,
              event_types: Sequence[str] = ()) -> HistoryStats:
        """``event_types``: the types per-event statistics count (rows of others count in none)."""
        f = history.frame
        types = tuple(event_types)
        codes = event_codes(f.get_column(EVENT), types) if types and EVENT in f.columns else None
        n_u, n_i = history.n_users, history.n_items
        end = history.time_span()[1]
        u = f.get_column(USER).to_numpy().astype(np.int64)
        it = f.get_column(ITEM).to_numpy().astype(np.int64)
        ts = f.get_column(TIMESTAMP).to_numpy().astype(np.int64)
        price, category, item_cats = _item_attributes(history, items)
        pairs, per_pair = np.unique(u * n_i + it, return_counts=True)
        item_users = np.bincount(pairs % max(n_i, 1), minlength=n_i) if n_i else np.zeros(0)
        repeaters = np.bincount(pairs[per_pair > 1] % max(n_i, 1), minlength=n_i).astype(np.float32)
        tables = ItemTables(n_items=n_i, item_pop=np.log1p(item_users).astype(np.float32), item_price=price,
                            item_category=category, item_cats=item_cats, has_baskets=BASKET in f.columns)
        paid = f.get_column(PRICE).cast(pl.Float64).fill_null(np.nan).to_numpy() if PRICE in f.columns else None
        baskets = (f.get_column(BASKET).cast(pl.Utf8).rank("dense").fill_null(0).to_numpy().astype(np.int64)
                   if BASKET in f.columns else None)
        w = f.get_column(WEIGHT).to_numpy().astype(np.float32)
        weights = None if bool((w == 1.0).all()) else w  # an unweighted log: 1 each, implied
        rows = _UserRows.of(u, it, ts, paid, baskets, n_u, weights, codes)
        return cls(n_items=n_i, end_ts=end, scale=TimeScale.of(history), item_times=sorted_item_times(history),
                   tables=tables, item_repeaters=repeaters, last=rows.last(end), rows=rows, recent_len=recent_len,
                   event_types=types, event_codes=codes)

    @property
    def n_users(self) -> int:
        return len(self.last)

    def profiles_of(self, users: np.ndarray) -> tuple[UserProfiles, np.ndarray]:
        """The profiles of the distinct known users among ``users`` (rows of a candidate union), and
        each entry's row in them (-1: a user unknown to the fit). Built from those users' rows alone,
        so each equals the user's profile in a build over the whole history."""
        users = np.asarray(users, np.int64)
        known = (users >= 0) & (users < self.n_users)
        distinct, at = np.unique(users[known], return_inverse=True)
        rows = np.full(len(users), -1, np.int64)
        rows[known] = at
        return self.profiles_for(distinct), rows

    def profiles_for(self, users: np.ndarray) -> UserProfiles:
        """The profiles of ``users`` (distinct, known; user ``users[i]`` becomes row ``i``)."""
        r = self.rows.take_rows(np.asarray(users, np.int64))
        owner = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(r.indptr))
        return UserProfiles.build(owner, r.items, r.ts, n=len(users), tables=self.tables, end_ts=self.end_ts,
                                  prices=r.prices, baskets=r.baskets, recent_len=self.recent_len, events=r.events,
                                  n_event_types=len(self.event_types))

    @property
    def item_price(self) -> np.ndarray:
        return self.tables.item_price

    @property
    def item_category(self) -> np.ndarray:
        return self.tables.item_category

    @property
    def n_categories(self) -> int:
        return self.tables.n_categories

    def user_history(self, user: int) -> UserHistory:
        """A known user's rows of the fitted history, in history order (empty for an unknown user)."""
        return self.rows.history(user)

    def profile_of(self, history: UserHistory) -> UserProfiles:
        """The profile of one explicit history, against this fit's item statistics."""
        return UserProfiles.of_history(history, tables=self.tables, end_ts=self.end_ts,
                                       recent_len=self.recent_len, n_event_types=len(self.event_types))


@dataclass
class _UserRows:
    """The history's rows grouped by user (stable: history order within a user)."""

    indptr: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    prices: np.ndarray | None
    baskets: np.ndarray | None
    weights: np.ndarray | None = None
    events: np.ndarray | None = None

    @classmethod
    def of(cls, u: np.ndarray, it: np.ndarray, ts: np.ndarray, prices: np.ndarray | None,
           baskets: np.ndarray | None, n: int, weights: np.ndarray | None = None,
           events: np.ndarray | None = None) -> _UserRows:
        order = np.argsort(u, kind="stable")
        indptr = np.r_[0, np.cumsum(np.bincount(u, minlength=n))]
        return cls(indptr, it[order], ts[order], *(None if a is None else a[order]
                                                    for a in (prices, baskets, weights, events)))

    def take_rows(self, users: np.ndarray) -> _UserRows:
        """The rows of ``users`` (user ``users[i]`` becomes user ``i``)."""
        lo = self.indptr[users]
        indptr, take = gather_spans(lo, self.indptr[users + 1] - lo)

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[take]

        return _UserRows(indptr, self.items[take], self.ts[take], cut(self.prices), cut(self.baskets),
                         cut(self.weights), cut(self.events))

    def last(self, end_ts: int) -> np.ndarray:
        """Each user's last timestamp (``end_ts`` where a user has no rows)."""
        out = np.full(len(self.indptr) - 1, end_ts, np.int64)
        has = np.flatnonzero(np.diff(self.indptr) > 0)
        if len(has):
            out[has] = np.maximum.reduceat(self.ts, self.indptr[has])
        return out

    def history(self, user: int) -> UserHistory:
        if not 0 <= user < len(self.indptr) - 1:
            return UserHistory(np.zeros(0, np.int64), np.zeros(0, np.int64))
        a, b = int(self.indptr[user]), int(self.indptr[user + 1])
        return UserHistory(self.items[a:b], self.ts[a:b], *(None if x is None else x[a:b]
                                                             for x in (self.prices, self.baskets, self.weights,
                                                                       self.events)))


def _item_attributes(history: Interactions, items: Items | None) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Median price per item (catalogue first, then paid prices), the primary category code (-1:
    none) and the item × category membership of every category an item has."""
    n = history.n_items
    price = np.full(n, np.nan, dtype=np.float64)
    f = history.frame
    if PRICE in f.columns:
        p = f.group_by(ITEM).agg(pl.col(PRICE).median())
        price[p.get_column(ITEM).to_numpy()] = p.get_column(PRICE).to_numpy()
    category = np.full(n, -1, dtype=np.int32)
    sets: list[frozenset[str]] = [frozenset()] * n
    if items is not None:
        if items.has(PRICE):
            cat_price = items.aligned(PRICE).cast(pl.Float64).to_numpy()
            price = np.where(np.isnan(cat_price), price, cat_price)
        if items.has(CATEGORY):
            c = items.aligned(CATEGORY).cast(pl.Utf8)
            codes = c.rank("dense").to_numpy()
            category = np.where(c.is_null().to_numpy(), -1, np.nan_to_num(codes, nan=0) - 1).astype(np.int32)
            sets = items.category_sets()[:n]
    return price, category, category_membership(sets, n)


def category_membership(sets: Sequence[frozenset[str]], n_items: int) -> sp.csr_matrix:
    """(n_items × categories) float32 0/1: row i marks every category of item i (columns in
    sorted category order); items past ``sets`` have none."""
    vocab = {c: j for j, c in enumerate(sorted(set().union(*sets)))}
    cols = [vocab[c] for s in sets for c in sorted(s)]
    indptr = np.r_[0, np.cumsum([len(s) for s in sets], dtype=np.int64)]
    indptr = np.r_[indptr, np.full(n_items - len(sets), indptr[-1], dtype=np.int64)]
    return sp.csr_matrix((np.ones(len(cols), np.float32), np.asarray(cols, np.int64), indptr),
                         shape=(n_items, len(vocab)))

