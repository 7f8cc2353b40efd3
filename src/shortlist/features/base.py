"""The ``FeatureBuilder`` protocol and shared helpers: time scales and vectorised pair lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.retrieval.topk import gather_spans
from shortlist.schema import ITEM, SECONDS_PER_DAY

if TYPE_CHECKING:
    from shortlist.features.profile import UserProfiles
    from shortlist.features.stats import HistoryStats


@dataclass(frozen=True)
class FeatureRows:
    """What a feature builder sees of a shard's candidates: per row, the user's row in ``profiles``
    (outside ``0..n-1``: unknown), the item, and the time the features are computed at."""

    profiles: UserProfiles
    rows: np.ndarray
    items: np.ndarray
    ref: np.ndarray


class FeatureBuilder(Protocol):
    """Stage-2 features: ``fit`` on a history's statistics, then ``compute`` exactly ``names`` for
    candidate rows (one float32 array each, aligned with the rows)."""

    @property
    def names(self) -> list[str]: ...

    def fit(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self: ...

    def compute(self, r: FeatureRows) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class TimeScale:
    """Window lengths (days) derived from the data's own time span, so one default fits all data.

    short ≈ span/50, medium ≈ span/12, long ≈ span/3 (a 1-year log gives ~1 week / 1 month / 4 months).
    """

    span_days: float

    @classmethod
    def of(cls, history: Interactions) -> TimeScale:
        first, last = history.time_span()
        return cls(max((last - first) / SECONDS_PER_DAY, 1.0))

    @property
    def windows(self) -> dict[str, float]:
        s = self.span_days
        return {"short": max(s / 50, 1.0), "medium": max(s / 12, 2.0), "long": max(s / 3, 4.0)}


def table_cells(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``table[rows[r, j], cols[r]]`` for a (rows × n) index block into a dense 2-D table (indices
    assumed valid)."""
    if not len(rows):
        return np.zeros(rows.shape, table.dtype)
    return table.ravel().take(rows * table.shape[1] + cols[:, None])


class SparseCells:
    """A sparse matrix's cells as sorted ``row * n_cols + col`` keys, for lookups of any pairs.

    Built once and reused: a lookup is one binary search per pair, so a request for a few hundred
    pairs costs microseconds while a batch of millions stays vectorised.
    """

    def __init__(self, matrix: sp.csr_matrix | sp.csr_array) -> None:
        m = sp.csr_matrix(matrix)
        m.sum_duplicates()  # also sorts indices, so keys come out sorted
        self.shape = m.shape
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        self.keys = rows * m.shape[1] + m.indices.astype(np.int64)
        self.data = m.data

    def get(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``matrix[rows[i], cols[i]]`` (0 where absent or out of range), any shape."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        out = np.zeros(rows.shape, dtype=self.data.dtype)
        if not len(self.keys):
            return out
        ok = (rows >= 0) & (rows < self.shape[0]) & (cols >= 0) & (cols < self.shape[1])
        q = np.where(ok, rows * self.shape[1] + cols, -1)
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        hit = ok & (self.keys[pos] == q)
        out[hit] = self.data[pos[hit]]
        return out

    def take_rows(self, users: np.ndarray) -> SparseCells:
        """The cells of rows ``users`` (row ``users[i]`` becomes row ``i``)."""
        at, keys = keyed_rows(self.keys, self.shape[1], users)
        out = object.__new__(SparseCells)
        out.shape, out.keys, out.data = (len(users), self.shape[1]), keys, self.data[at]
        return out


def keyed_rows(keys: np.ndarray, n_cols: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of sorted ``row * n_cols + col`` keys, the positions of rows ``rows`` (in that order) and their
    keys renumbered so that row ``rows[i]`` is row ``i`` (still sorted)."""
    rows = np.asarray(rows, np.int64)
    lo = np.searchsorted(keys, rows * n_cols)
    lens = np.searchsorted(keys, (rows + 1) * n_cols) - lo
    at = gather_spans(lo, lens)[1]
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lens)
    return at, local * n_cols + keys[at] % max(n_cols, 1)


def counts_before(
    keys: np.ndarray, items: np.ndarray, ref: np.ndarray, widths: Sequence[int]
) -> tuple[list[np.ndarray], np.ndarray]:
    """For each width w: interactions with ``items[i]`` in ``(ref[i] - w, ref[i]]``; and the time of
    the item's last interaction at or before ``ref[i]`` (-1: none). One sort serves them all, and
    each distinct (item, ref) is searched once (candidates share items and reference times)."""
    it = np.asarray(items, dtype=np.int64)
    ref = np.asarray(ref, dtype=np.int64)
    end_k = item_time_key(it, ref)
    order = np.argsort(end_k, kind="stable")
    sorted_k = end_k[order]
    first = np.flatnonzero(np.r_[True, sorted_k[1:] != sorted_k[:-1]]) if len(it) else np.zeros(0, np.int64)
    expand = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(it)]))  # sorted row -> distinct key
    it_u, ref_u = it[order][first], ref[order][first]
    hi = np.searchsorted(keys, sorted_k[first], side="right")
    out = []
    for w in widths:
        c = np.empty(len(it), dtype=np.float32)
        c[order] = (hi - np.searchsorted(keys, item_time_key(it_u, ref_u - w), side="right"))[expand]
        out.append(c)
    prev = keys[np.maximum(hi - 1, 0)] if len(keys) else np.zeros(len(hi), np.int64)
    found = (hi > 0) & ((prev // TS_BITS) == it_u)
    last = np.empty(len(it), dtype=np.int64)
    last[order] = np.where(found, (prev % TS_BITS) - TS_OFFSET, -1)[expand]
    return out, last


def count_in_window(keys: np.ndarray, items: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Number of interactions with ``items[i]`` with timestamp in ``(start[i], end[i]]``, vectorised.

    ``keys`` are the history's sorted (item, timestamp) keys from :func:`sorted_item_times`.
    """
    it = np.asarray(items, dtype=np.int64)
    end_k = item_time_key(it, np.asarray(end, dtype=np.int64))
    start_k = item_time_key(it, np.asarray(start, dtype=np.int64))
    order = np.argsort(end_k, kind="stable")  # sorted queries make the binary searches cache-friendly
    out = np.empty(len(it), dtype=np.float32)
    out[order] = np.searchsorted(keys, end_k[order], side="right") - np.searchsorted(keys, start_k[order], side="right")
    return out


TS_BITS = np.int64(1) << np.int64(36)  # epoch seconds fit in 36 bits until the year 4147
TS_OFFSET = np.int64(1) << np.int64(35)


def item_time_key(items: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return items.astype(np.int64) * TS_BITS + np.clip(ts + TS_OFFSET, 0, TS_BITS - 1)


def sorted_item_times(history: Interactions) -> np.ndarray:
    """Sorted composite keys (item, timestamp) of the history, for :func:`count_in_window`."""
    f = history.frame
    return np.sort(item_time_key(f.get_column(ITEM).to_numpy(), f.get_column("timestamp").to_numpy()))
