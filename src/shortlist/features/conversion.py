"""Per-event features for logs with event types (views, carts, purchases, ...): counts per type and
conversion rates, per user and per item.

The types are the model's (``TwoStageConfig.event_types``: the log's, most frequent first); each
rate divides a type's count by the first type's (RetailRocket: carts per view, purchases per view),
NaN where that count is 0. Item statistics come from the fitted history; user statistics from the
user's rows (:class:`~shortlist.features.profile.UserProfiles`), so a request's online events count
as a batch user's rows do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Self

import numpy as np

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.base import FeatureRows
from shortlist.features.stats import HistoryStats
from shortlist.schema import ITEM


def event_labels(types: Sequence[str]) -> list[str]:
    """A feature-name-safe label per event type (lower case, ``[a-z0-9_]``, distinct)."""
    out: list[str] = []
    for i, t in enumerate(types):
        label = re.sub(r"[^0-9a-z]+", "_", t.lower()).strip("_") or f"event{i}"
        out.append(label if label not in out else f"{label}_{i}")
    return out


def event_feature_names(types: Sequence[str]) -> dict[str, str]:
    """name → one-line meaning of the per-event features for ``types`` (none for fewer than two)."""
    if len(types) < 2:
        return {}
    labels = event_labels(types)
    out: dict[str, str] = {}
    for side, whose in (("user", "the user's"), ("item", "the item's")):
        out.update({f"{side}_n_{lab}": f"{whose} {t!r} events" for lab, t in zip(labels, types, strict=True)})
        out.update({f"{side}_{lab}_per_{labels[0]}": f"{whose} {t!r} events per {types[0]!r} event (NaN: none of those)"
                    for lab, t in zip(labels[1:], types[1:], strict=True)})
    return out


def with_rates(counts: np.ndarray) -> np.ndarray:
    """(rows × types) counts → (rows × (2·types − 1)) float32: the counts, then each later type's
    count over the first's (NaN where the first is 0)."""
    base = counts[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(base > 0, counts[:, 1:] / np.where(base > 0, base, 1.0), np.nan)
    return np.hstack([counts, rates]).astype(np.float32)


class EventFeatures:
    """Counts per event type and conversion rates of the user and of the item of each candidate row."""

    def __init__(self, event_types: Sequence[str] = ()) -> None:
        self.event_types = tuple(event_types)
        self.names = list(event_feature_names(self.event_types))
        self.item_: np.ndarray | None = None  # (n_items × half the names) float32

    def fit(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        n, t = history.n_items, len(self.event_types)
        codes = stats.event_codes if stats.event_codes is not None else np.full(len(history), -1, np.int64)
        it = history.frame.get_column(ITEM).to_numpy().astype(np.int64)
        ok = codes >= 0
        counts = np.bincount(it[ok] * t + codes[ok], minlength=n * t).astype(np.float64).reshape(n, t)
        self.item_ = with_rates(counts)
        return self

    def compute(self, r: FeatureRows) -> dict[str, np.ndarray]:
        if self.item_ is None:
            raise NotFittedError("EventFeatures")
        if not self.names:
            return {}
        half = len(self.names) // 2
        known_u = (r.rows >= 0) & (r.rows < r.profiles.n)
        user = with_rates(r.profiles.event_counts[np.where(known_u, r.rows, 0)].reshape(len(r.rows), -1))
        user[~known_u] = np.nan
        known_i = (r.items >= 0) & (r.items < len(self.item_))
        item = self.item_[np.where(known_i, r.items, 0)]
        item[~known_i] = np.nan
        out = {name: user[:, j] for j, name in enumerate(self.names[:half])}
        out.update({name: item[:, j] for j, name in enumerate(self.names[half:])})
        return out
