"""Per-user state behind the user and pair features, built from explicit histories.

One code path for training and serving: a shard builds :class:`UserProfiles` for its users from
their rows of the fitted history, and a request for one user's explicit :class:`UserHistory` (their
offline history plus events that arrived since, or an anonymous session), with the same function. Every
per-user value is a function of that user's rows alone, accumulated in row order, so a known
user's profile built from their own training rows equals their row of the batch profiles bit for
bit. Item-level statistics (:class:`ItemTables`) always come from the fit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, cast

import numpy as np
import scipy.sparse as sp

from shortlist.features.base import SparseCells, keyed_rows
from shortlist.features.per_user import category_shape, distinct_per_user, event_counts, recent_items
from shortlist.retrieval.topk import rows_of
from shortlist.schema import SECONDS_PER_DAY

T = TypeVar("T")


@dataclass(frozen=True)
class UserHistory:
    """One user's interactions in time order: internal item ids and epoch-second timestamps.

    ``prices``: price paid per event (NaN: unknown, the item's price is used); ``baskets``: integer
    basket codes (``None``: each distinct timestamp is one basket); ``weights``: each event's strength
    (``None``: 1 each; :mod:`shortlist.data.events`); ``events``: each event's index in the model's
    event types (-1: none of them; ``None``: no event types).
    """

    items: np.ndarray
    timestamps: np.ndarray
    prices: np.ndarray | None = None
    baskets: np.ndarray | None = None
    weights: np.ndarray | None = None
    events: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    def extend(self, items: np.ndarray, timestamps: np.ndarray, *, prices: np.ndarray | None = None,
               weights: np.ndarray | None = None, events: np.ndarray | None = None) -> UserHistory:
        """This history followed by new events (online events get their own baskets, one per timestamp)."""
        items = np.asarray(items, dtype=np.int64)
        ts = np.asarray(timestamps, dtype=np.int64)
        new_p = np.full(len(items), np.nan) if prices is None else np.asarray(prices, dtype=np.float64)
        old_p = np.full(len(self), np.nan) if self.prices is None else self.prices
        baskets = None
        if self.baskets is not None:
            baskets = np.concatenate([self.baskets, -1 - ts])  # negative codes never meet the fitted ones
        return UserHistory(np.concatenate([self.items.astype(np.int64), items]),
                           np.concatenate([self.timestamps.astype(np.int64), ts]),
                           np.concatenate([old_p, new_p]), baskets,
                           _joined(self.weights, weights, len(self), len(items), 1.0, np.float32),
                           _joined(self.events, events, len(self), len(items), -1, np.int64))


@dataclass(frozen=True)
class ItemTables:
    """Item-level statistics of the fitted history that per-user state is measured against."""

    n_items: int
    item_pop: np.ndarray  # float32 log(1 + distinct users)
    item_price: np.ndarray  # float64, NaN unknown
    item_category: np.ndarray  # int32 primary category code, -1 unknown
    item_cats: sp.csr_matrix  # (n_items × n_categories) float32 membership: every category of an item
    has_baskets: bool  # whether the fitted history had basket ids (else user_n_baskets is NaN)

    @property
    def n_categories(self) -> int:
        return int(self.item_cats.shape[1])

    # Item-side vectors every profile build reads: computed once, not per request.
    @cached_property
    def categorised(self) -> np.ndarray:
        """float64 1 where an item has a category, else 0."""
        return (self.item_cats.getnnz(axis=1) > 0).astype(np.float64)

    @cached_property
    def priced(self) -> np.ndarray:
        """float64 1 where an item's price is known, else 0."""
        return (~np.isnan(self.item_price)).astype(np.float64)

    @cached_property
    def price_or_zero(self) -> np.ndarray:
        """float64 item prices, 0 where unknown."""
        return np.nan_to_num(self.item_price, nan=0.0)


@dataclass
class UserProfiles:
    """Per-user arrays (length ``n``) and user × item matrices (``n × n_items``) for ``n`` users."""

    n: int
    last: np.ndarray  # int64 last timestamp (history end where a user has none)
    static: dict[str, np.ndarray]  # user-level features, float32
    counts: sp.csr_matrix  # interactions per (user, item)
    pair_keys: np.ndarray  # sorted user * n_items + item of every (user, item) pair
    pair_count: np.ndarray  # float32 interactions of the pair (aligned with pair_keys)
    pair_first: np.ndarray  # float64 first timestamp of the pair
    pair_last: np.ndarray  # float64 last timestamp of the pair
    user_cat: SparseCells  # interactions per (user, category), an item counting in each of its categories
    total: np.ndarray  # float64 interactions
    cat_total: np.ndarray  # float64 interactions with items that have a category
    price: np.ndarray  # float64 mean catalogue price of the user's distinct items (NaN: none known)
    pop: np.ndarray  # float64 mean item_pop of the user's distinct items
    recent: np.ndarray  # int64 (n × recent_len) distinct items, most recent first, -1 padded
    event_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # float64 (n × event types)
    _derived: dict[Hashable, Any] = field(default_factory=dict)

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, once for these profiles: per-user tables that several chunks of a shard's
        candidate rows read (sorted recent items, mean item vectors)."""
        if key not in self._derived:
            self._derived[key] = build()
        return cast(T, self._derived[key])

    def recent_sorted(self, n: int) -> np.ndarray:
        """Each user's last ``n`` items in ascending id order (-1 padding first), cached."""
        return self.derived(("recent_sorted", n), lambda: np.sort(self.recent[:, :n], axis=1))

    def take_rows(self, users: np.ndarray) -> UserProfiles:
        """The profiles of ``users`` (user ``users[i]`` becomes user ``i``)."""
        users = np.asarray(users, np.int64)
        if np.any(users >= self.n):
            raise IndexError(f"users past the {self.n} profiled")
        at, keys = keyed_rows(self.pair_keys, self.counts.shape[1], users)
        return UserProfiles(
            n=len(users), last=self.last[users], static={k: v[users] for k, v in self.static.items()},
            counts=rows_of(self.counts, users), pair_keys=keys, pair_count=self.pair_count[at],
            pair_first=self.pair_first[at], pair_last=self.pair_last[at], user_cat=self.user_cat.take_rows(users),
            total=self.total[users], cat_total=self.cat_total[users], price=self.price[users], pop=self.pop[users],
            recent=self.recent[users],
            event_counts=self.event_counts[users] if len(self.event_counts) else self.event_counts)

    def pair_positions(self, rows: np.ndarray, items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of (rows[i], items[i]) in the pair arrays, and whether each pair exists."""
        q = np.where((rows >= 0) & (rows < self.n) & (items >= 0) & (items < n_items), rows * n_items + items, -1)
        if not len(self.pair_keys):
            return np.zeros(len(q), np.int64), np.zeros(len(q), bool)
        pos = np.minimum(np.searchsorted(self.pair_keys, q), len(self.pair_keys) - 1)
        return pos, self.pair_keys[pos] == q

    @classmethod
    def build(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ts: np.ndarray,
        *,
        n: int,
        tables: ItemTables,
        end_ts: int,
        prices: np.ndarray | None = None,
        baskets: np.ndarray | None = None,
        recent_len: int = 50,
        events: np.ndarray | None = None,
        n_event_types: int = 0,
    ) -> UserProfiles:
        """Profiles of users ``0..n-1`` from their rows (``users[j]`` owns row j), in row order;
        ``events``: each row's event type index (-1: none) of ``n_event_types``."""
        u = np.asarray(users, dtype=np.int64)
        it = np.asarray(items, dtype=np.int64)
        t = np.asarray(ts, dtype=np.int64)
        paid = tables.item_price[it] if prices is None else np.where(np.isnan(prices), tables.item_price[it], prices)
        n_rows = np.bincount(u, minlength=n).astype(np.float64)
        # distinct (user, item) pairs with count, first and last time: one sort by (pair, time)
        key = u * tables.n_items + it
        order = np.lexsort((t, key))
        ks, tsorted = key[order], t[order]
        start = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]]) if len(ks) else np.zeros(0, np.int64)
        stop = np.r_[start[1:], len(ks)][:len(start)] - 1
        pu, pi = ks[start] // tables.n_items, ks[start] % tables.n_items
        pair_n = (stop - start + 1).astype(np.float32)
        first, last = tsorted[start].astype(np.float64), tsorted[stop].astype(np.float64)

        # the pairs are distinct and sorted by (user, item): they are the CSR rows as they stand
        pair_ptr = np.r_[0, np.cumsum(np.bincount(pu, minlength=n))]
        counts = sp.csr_matrix((pair_n, pi, pair_ptr), shape=(n, tables.n_items))
        user_last = np.full(n, end_ts, dtype=np.int64)
        user_first = np.full(n, end_ts, dtype=np.int64)
        if len(t):
            by_user = np.lexsort((t, u))
            us = u[by_user]
            edge = np.flatnonzero(np.r_[True, us[1:] != us[:-1]])
            user_first[us[edge]] = t[by_user][edge]
            user_last[us[np.r_[edge[1:], len(us)] - 1]] = t[by_user][np.r_[edge[1:], len(us)] - 1]
        has = n_rows > 0
        n_items = np.bincount(pu, minlength=n).astype(np.float64)
        price_mean = np.bincount(u, weights=paid, minlength=n) / np.maximum(n_rows, 1)
        dev = (paid - price_mean[u]) ** 2
        price_std = np.sqrt(np.bincount(u, weights=dev, minlength=n) / np.maximum(n_rows - 1, 1))
        pop_mean = np.bincount(u, weights=tables.item_pop[it].astype(np.float64), minlength=n) / np.maximum(n_rows, 1)
        days = np.floor_divide(t, SECONDS_PER_DAY)
        basket_codes = t if baskets is None else np.asarray(baskets, dtype=np.int64)
        static = {
            "user_n": n_rows,
            "user_n_items": n_items,
            "user_active_days": distinct_per_user(u, days, n),
            "user_span_days": (user_last - user_first) / SECONDS_PER_DAY,
            "user_repeat_rate": 1.0 - n_items.astype(np.float32) / np.maximum(n_rows, 1).astype(np.float32),
            "user_price_mean": price_mean,
            "user_price_std": np.where(n_rows > 1, price_std, np.nan),
            "user_item_pop_mean": pop_mean,
            "user_n_baskets": (distinct_per_user(u, basket_codes, n) if tables.has_baskets
                               else np.full(n, np.nan)),
        }
        # An item counts once in each of its categories; items without one count in none.
        user_cat = (sp.csr_matrix(counts @ tables.item_cats) if tables.n_categories
                    else sp.csr_matrix((n, 1), dtype=np.float32))
        cat_total = np.asarray(counts @ tables.categorised, dtype=np.float64).ravel()
        static["user_top_cat_share"], static["user_cat_entropy"] = category_shape(user_cat, cat_total)
        static = {k: np.where(has, v, np.nan).astype(np.float32) for k, v in static.items()}
        binary = sp.csr_matrix((np.ones(len(pi), np.float32), pi, pair_ptr), shape=counts.shape)
        priced = binary @ tables.priced
        price = (binary @ tables.price_or_zero) / np.maximum(priced, 1e-9)
        return cls(
            n=n, last=user_last, static=static, counts=counts, pair_keys=ks[start], pair_count=pair_n,
            pair_first=first, pair_last=last, user_cat=SparseCells(user_cat), total=n_rows,
            cat_total=cat_total,
            price=np.where(priced > 0, price, np.nan),
            pop=(binary @ tables.item_pop) / np.maximum(n_items, 1e-9).astype(np.float32),
            recent=recent_items(pu, pi, last, n, recent_len),
            event_counts=event_counts(u, events, n, n_event_types),
        )

    @classmethod
    def of_history(cls, history: UserHistory, *, tables: ItemTables, end_ts: int, recent_len: int = 50,
                   n_event_types: int = 0) -> UserProfiles:
        """One user's profile (row 0) from an explicit history; events after ``end_ts`` count as at it."""
        ts = np.minimum(np.asarray(history.timestamps, dtype=np.int64), end_ts)
        items = np.asarray(history.items, dtype=np.int64)
        ok = (items >= 0) & (items < tables.n_items)
        return cls.build(np.zeros(int(ok.sum()), np.int64), items[ok], ts[ok], n=1, tables=tables, end_ts=end_ts,
                         prices=None if history.prices is None else np.asarray(history.prices, np.float64)[ok],
                         baskets=None if history.baskets is None else np.asarray(history.baskets)[ok],
                         recent_len=recent_len, n_event_types=n_event_types,
                         events=None if history.events is None else np.asarray(history.events, np.int64)[ok])


def _joined(old: np.ndarray | None, new: np.ndarray | None, n_old: int, n_new: int, fill: float,
            dtype: type) -> np.ndarray | None:
    """``old`` then ``new`` (a missing side filled with ``fill``); ``None`` when both are missing."""
    if old is None and new is None:
        return None
    a: np.ndarray = np.full(n_old, fill, dtype) if old is None else np.asarray(old, dtype)
    return np.concatenate([a, np.full(n_new, fill, dtype) if new is None else np.asarray(new, dtype)])
