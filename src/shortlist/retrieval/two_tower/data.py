"""Numpy side of the two-tower source: user sequences, training pairs, padded histories, item features.

Everything here is vectorised and torch-free: the training loop turns these arrays into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.schema import CATEGORY, ITEM, PRICE, TIMESTAMP, USER


@dataclass(frozen=True)
class Sequences:
    """Every user's items in time order, concatenated: user ``u`` owns ``items[indptr[u]:indptr[u+1]]``."""

    items: np.ndarray  # int64, (n_interactions,)
    indptr: np.ndarray  # int64, (n_users + 1,)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_interactions(cls, history: Interactions) -> Sequences:
        # Ties in time keep input order (a basket's lines in invoice order), so fits are reproducible.
        f = history.frame.select(USER, ITEM, TIMESTAMP).with_row_index("_row").sort([USER, TIMESTAMP, "_row"])
        users = f.get_column(USER).to_numpy().astype(np.int64)
        counts = np.bincount(users, minlength=history.n_users)
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return cls(f.get_column(ITEM).to_numpy().astype(np.int64), indptr)

    def training_pairs(self, last: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(user, position) of every prediction target: each position with at least one item before it.

        ``last`` keeps only each user's last ``last`` targets (``None``: all of them).
        """
        lengths = np.diff(self.indptr)
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), lengths)
        pos = np.arange(len(self.items), dtype=np.int64)
        offset = pos - self.indptr[users]
        keep = offset >= 1
        if last is not None:
            keep &= offset >= lengths[users] - last
        return users[keep], pos[keep]

    def histories(self, users: np.ndarray, ends: np.ndarray, max_len: int, pad: int) -> np.ndarray:
        """(len(users) × max_len) item ids before global position ``ends`` (exclusive), right-aligned.

        Slots before a user's first item hold ``pad``; the most recent item is in the last column.
        """
        idx = ends[:, None] - max_len + np.arange(max_len, dtype=np.int64)[None, :]
        valid = idx >= self.indptr[users][:, None]
        return np.where(valid, self.items[np.maximum(idx, 0)], pad)

    def last_histories(self, users: np.ndarray, max_len: int, pad: int) -> np.ndarray:
        """Each user's full-history window: their last ``max_len`` items."""
        return self.histories(users, self.indptr[users + 1], max_len, pad)


def adhoc_history(
    items: np.ndarray, timestamps: np.ndarray | None, max_len: int, pad: int, n_items: int
) -> np.ndarray:
    """A (1 × max_len) padded history from an ad-hoc item list; items unknown at fit time are dropped."""
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    if timestamps is not None:
        ts = np.asarray(timestamps).reshape(-1)
        if len(ts) != len(items):
            raise ConfigError(f"timestamps has {len(ts)} entries, items {len(items)}; pass one per item")
        items = items[np.argsort(ts, kind="stable")]
    items = items[(items >= 0) & (items < n_items)][-max_len:]
    out = np.full((1, max_len), pad, dtype=np.int64)
    if len(items):
        out[0, -len(items):] = items
    return out


@dataclass(frozen=True)
class ItemFeatures:
    """Per-item content inputs, with one extra padding row at index ``n_items``.

    ``category``/``price_bucket`` are ids where 0 means unknown; ``text`` is an optional dense vector.
    """

    category: np.ndarray  # int64, (n_items + 1,)
    price_bucket: np.ndarray  # int64, (n_items + 1,)
    text: np.ndarray | None  # float32, (n_items + 1, f)
    n_categories: int  # including the unknown id 0
    n_price_buckets: int  # including the unknown id 0


def item_features(
    n_items: int, items: Items | None, vectors: np.ndarray | None, *, n_price_buckets: int
) -> ItemFeatures:
    """Encode a catalogue's category and log-price (quantile buckets) plus optional precomputed vectors."""
    category = np.zeros(n_items + 1, dtype=np.int64)
    bucket = np.zeros(n_items + 1, dtype=np.int64)
    n_cat, n_buck = 1, 1
    if items is not None:
        if len(items.ids) < n_items:
            raise ConfigError(
                f"the item catalogue knows {len(items.ids)} item ids but the history has {n_items}; "
                "build both with the same id map (shortlist.data.build_dataset)"
            )
        if items.has(CATEGORY):
            cat = items.aligned(CATEGORY).cast(pl.Utf8).head(n_items)
            known = cat.is_not_null().to_numpy()
            if known.any():
                uniq, inverse = np.unique(cat.to_numpy()[known].astype(str), return_inverse=True)
                category[:n_items][known] = inverse + 1
                n_cat = len(uniq) + 1
        if items.has(PRICE) and n_price_buckets > 0:
            price = items.aligned(PRICE).cast(pl.Float64).head(n_items).to_numpy()
            ok = np.isfinite(price) & (price > 0)
            if ok.any():
                logp = np.log(price[ok])
                edges = np.unique(np.quantile(logp, np.linspace(0, 1, n_price_buckets + 1)[1:-1]))
                bucket[:n_items][ok] = np.searchsorted(edges, logp, side="right") + 1
                n_buck = len(edges) + 2
    text = None
    if vectors is not None:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[0] != n_items:
            raise ConfigError(
                f"item_features must be (n_items={n_items}) × f, got shape {v.shape}; "
                "align its rows to internal item ids"
            )
        text = np.vstack([np.nan_to_num(v), np.zeros((1, v.shape[1]), np.float32)])
    return ItemFeatures(category, bucket, text, n_cat, n_buck)
