"""A seeded synthetic interaction generator for tests and scale benchmarks.

It has what real logs have: long-tail item popularity, users with category preferences,
repeat purchases, prices per category, text titles, baskets, event types, and temporal drift
(items launch over time and fade), at any size, fully vectorised.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shortlist.data.containers import Dataset, build_dataset
from shortlist.errors import ConfigError
from shortlist.schema import (
    BASKET,
    CATEGORY,
    DESCRIPTION,
    EVENT,
    ITEM_ID,
    PRICE,
    SECONDS_PER_DAY,
    TIMESTAMP,
    TITLE,
    USER_ID,
)

_ADJ = np.array([
    "red", "blue", "green", "classic", "vintage", "modern", "small", "large", "soft", "bright",
    "wooden", "metal", "silver", "golden", "retro", "rustic", "floral", "striped", "glass", "paper",
])
_NOUN = np.array([
    "mug", "lantern", "candle", "frame", "cushion", "bag", "bottle", "clock", "tin", "box", "card",
    "notebook", "vase", "tray", "jar", "garland", "basket", "light", "ornament", "blanket",
])
_EVENTS = np.array(["view", "cart", "purchase"])


def make_synthetic(
    *,
    n_users: int = 1_000,
    n_items: int = 500,
    n_interactions: int = 20_000,
    n_categories: int = 12,
    days: float = 180.0,
    repeat_share: float = 0.25,
    preference: float = 0.7,
    zipf: float = 1.1,
    drift_days: float | None = 60.0,
    with_events: bool = False,
    start: int = 1_600_000_000,
    seed: int = 0,
) -> Dataset:
    """Generate a :class:`Dataset` with ``n_interactions`` rows (same seed ⇒ same data).

    ``repeat_share`` of the rows re-buy an item the user had earlier; ``preference`` is the chance
    an event comes from one of the user's favourite categories; ``drift_days`` is how fast an item's
    appeal fades after launch (``None``: no drift).
    """
    if min(n_users, n_items, n_interactions, n_categories) <= 0 or not 0 <= repeat_share < 1:
        raise ConfigError("make_synthetic needs positive sizes and 0 <= repeat_share < 1")
    rng = np.random.default_rng(seed)
    span = int(days * SECONDS_PER_DAY)
    end = start + span

    cat = np.minimum(rng.zipf(1.6, n_items) - 1, n_categories - 1)
    base = 1.0 / np.arange(1, n_items + 1) ** zipf
    base = base[rng.permutation(n_items)]
    launch = np.where(rng.random(n_items) < 0.5, start - span, start + rng.random(n_items) * span).astype(np.int64)
    price = np.round(np.exp(rng.normal(1.0 + 0.15 * cat, 0.6)), 2)

    activity = np.exp(rng.normal(0.0, 1.0, n_users))
    fav = rng.choice(n_categories, size=(n_users, 2), p=np.bincount(cat, minlength=n_categories) / n_items)
    n_new = n_interactions - int(n_interactions * repeat_share)
    users = rng.choice(n_users, size=n_new, p=activity / activity.sum())
    times = start + (rng.random(n_new) * span).astype(np.int64)
    in_fav = rng.random(n_new) < preference
    ev_cat = np.where(in_fav, fav[users, rng.integers(0, 2, n_new)], cat[rng.integers(0, n_items, n_new)])
    items = _sample_items(rng, ev_cat, times, cat, base, launch, n_categories, drift_days, start, end)

    n_rep = n_interactions - n_new
    src = rng.integers(0, n_new, n_rep)
    rep_times = np.minimum(times[src] + rng.exponential(span / 10, n_rep).astype(np.int64), end)
    users = np.concatenate([users, users[src]])
    items = np.concatenate([items, items[src]])
    times = np.concatenate([times, rep_times])

    frame = pl.DataFrame({
        USER_ID: "u" + pl.Series(users).cast(pl.Utf8),
        ITEM_ID: "i" + pl.Series(items).cast(pl.Utf8),
        TIMESTAMP: times,
        PRICE: price[items],
        BASKET: pl.Series(users).cast(pl.Utf8) + "-" + pl.Series(times // SECONDS_PER_DAY).cast(pl.Utf8),
    })
    if with_events:
        frame = frame.with_columns(pl.Series(EVENT, _EVENTS[rng.choice(3, len(users), p=[0.6, 0.25, 0.15])]))
    frame = frame.sort(TIMESTAMP, maintain_order=True)
    catalogue = pl.DataFrame({
        ITEM_ID: "i" + pl.Series(np.arange(n_items)).cast(pl.Utf8),
        TITLE: pl.Series(_ADJ[rng.integers(0, len(_ADJ), n_items)]) + " " + pl.Series(_NOUN[cat % len(_NOUN)]),
        DESCRIPTION: "a " + pl.Series(_ADJ[rng.integers(0, len(_ADJ), n_items)]) + " "
        + pl.Series(_NOUN[cat % len(_NOUN)]) + " for every occasion",
        CATEGORY: "cat_" + pl.Series(cat).cast(pl.Utf8).str.zfill(2),
        PRICE: price,
    })
    return build_dataset(frame, catalogue, name=f"synthetic-{seed}", source="synthetic",
                         items_source="synthetic-items", repeats=repeat_share > 0, duplicates="keep")


def _sample_items(
    rng: np.random.Generator,
    ev_cat: np.ndarray,
    times: np.ndarray,
    cat: np.ndarray,
    base: np.ndarray,
    launch: np.ndarray,
    n_categories: int,
    drift_days: float | None,
    start: int,
    end: int,
    n_buckets: int = 8,
) -> np.ndarray:
    """Draw an item per event from its category, weighted by popularity at the event's time."""
    order = np.argsort(cat, kind="stable")
    seg = np.searchsorted(cat[order], np.arange(n_categories + 1))
    edges = np.linspace(start, end + 1, n_buckets + 1)
    bucket = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, n_buckets - 1)
    out = np.empty(len(times), dtype=np.int64)
    for b in range(n_buckets):  # a handful of time buckets; each draw inside is vectorised
        mid = (edges[b] + edges[b + 1]) / 2
        age = (mid - launch[order]) / SECONDS_PER_DAY
        w = base[order] * (age >= 0)
        if drift_days is not None:
            w = w * np.exp(-np.clip(age, 0, None) / drift_days)
        w = w + 1e-12  # every category keeps a non-empty distribution
        cum = np.concatenate([[0.0], np.cumsum(w)])
        sel = bucket == b
        c = ev_cat[sel]
        lo, hi = cum[seg[c]], cum[seg[c + 1]]
        target = lo + rng.random(sel.sum()) * (hi - lo)
        pos = np.clip(np.searchsorted(cum, target, side="right") - 1, seg[c], np.maximum(seg[c + 1] - 1, seg[c]))
        out[sel] = order[pos]
    return out
