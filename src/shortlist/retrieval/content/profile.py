"""User profiles for content retrieval: which history items count, and how much."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions
from shortlist.errors import ConfigError
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER

_ROW, _RANK, _W = "__row", "__rank", "__w"


def default_half_life_days(history: Interactions) -> float:
    """Recency half-life for user profiles: 1/8 of the time span, between 1 and 365 days."""
    first, last = history.time_span()
    return float(min(365.0, max(1.0, (last - first) / SECONDS_PER_DAY / 8.0)))


def profile_weights(
    history: Interactions, *, n_recent: int | None, half_life_days: float | None
) -> sp.csr_matrix:
    """(n_users × n_items) profile weights: each user's last ``n_recent`` interactions, decayed by
    ``exp(-ln2 · age / half_life_days)`` with age from the user's own latest interaction (ties in
    time: later rows are more recent). Repeated items add up."""
    f = history.frame.select(USER, ITEM, TIMESTAMP).with_row_index(_ROW)
    f = f.sort([USER, TIMESTAMP, _ROW], descending=[False, True, True])
    f = f.with_columns(pl.int_range(pl.len()).over(USER).alias(_RANK))
    if n_recent is not None:
        f = f.filter(pl.col(_RANK) < n_recent)
    if half_life_days is None:
        w = pl.lit(1.0)
    else:
        age = (pl.col(TIMESTAMP).max().over(USER) - pl.col(TIMESTAMP)) / SECONDS_PER_DAY
        w = (-(math.log(2.0) / half_life_days) * age).exp()
    f = f.with_columns(w.cast(pl.Float32).alias(_W))
    m = sp.csr_matrix(
        (f.get_column(_W).to_numpy(), (f.get_column(USER).to_numpy(), f.get_column(ITEM).to_numpy())),
        shape=(history.n_users, history.n_items), dtype=np.float32,
    )
    m.sum_duplicates()
    return m


def history_weights(
    items: np.ndarray,
    n_items: int,
    *,
    timestamps: np.ndarray | None,
    n_recent: int | None,
    half_life_days: float | None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(1 × n_items) profile weights and seen-row of an ad-hoc history, weighted like a fitted user's.

    Without ``timestamps`` the items are taken as chronological and weighted equally; ids outside
    ``0..n_items-1`` are ignored.
    """
    items = np.asarray(items, dtype=np.int64).ravel()
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64).ravel()
    if ts is not None and ts.shape != items.shape:
        raise ConfigError(f"timestamps must match items: {ts.shape} vs {items.shape}")
    ok = (items >= 0) & (items < n_items)
    items, ts = items[ok], None if ts is None else ts[ok]
    order = np.arange(len(items)) if ts is None else np.argsort(ts, kind="stable")
    recent = order[-n_recent:] if n_recent is not None else order
    w = np.ones(len(recent), dtype=np.float32)
    if ts is not None and half_life_days is not None and len(recent):
        age_days = (ts[recent].max() - ts[recent]) / SECONDS_PER_DAY
        w = np.exp(-math.log(2.0) / half_life_days * age_days).astype(np.float32)
    weights = sp.csr_matrix((w, (np.zeros(len(recent)), items[recent])), shape=(1, n_items))
    ones = np.ones(len(items), np.float32)
    seen = sp.csr_matrix((ones, (np.zeros(len(items)), items)), shape=(1, n_items))
    seen.sum_duplicates()
    return weights, seen
