"""``Ranked``: a shard's final top-k lists, and the two steps that make them from scored candidates —
order each user's candidates, then top short lists up from popularity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.ordering import best_first
from shortlist.retrieval.topk import topk_global
from shortlist.retrieval.union import CandidateUnion
from shortlist.schema import ITEM, RANK, SCORE, USER


@dataclass(frozen=True)
class Ranked:
    """Row r is ``users[r]``'s list: ``items`` (users × k, -1 padding), ``scores`` (the ranker's;
    NaN where popularity filled the list in), ``rows`` (each item's row in ``union``, -1 for a
    filled-in item), and what the lists were ranked from (``features``: the union's matrix, when a
    ranker scored it; ``failed``: sources that raised and were left out; ``stages``: seconds spent)."""

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    rows: np.ndarray
    union: CandidateUnion
    features: np.ndarray | None = None
    failed: tuple[str, ...] = ()
    stages: Mapping[str, float] = field(default_factory=dict)  # seconds: retrieval, features, ranking

    def to_frame(self) -> pl.DataFrame:
        """``user, item, rank, score`` rows (internal ids), ranks 1-based, in the shard's user order."""
        return lists_frame(self.users, self.items, self.scores)


def lists_frame(users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    """``user, item, rank, score`` rows of (users × k) lists (-1 padding; NaN score: null)."""
    valid = items >= 0
    ranks = np.cumsum(valid, axis=1)[valid].astype(np.int32)
    return pl.DataFrame({USER: np.repeat(np.asarray(users, np.int64), valid.sum(axis=1)), ITEM: items[valid],
                         RANK: ranks, SCORE: pl.Series(scores[valid].astype(np.float32), nan_to_null=True)})


def best_per_user(union: CandidateUnion, scores: np.ndarray, users: np.ndarray, k: int,
                  keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each of ``users``' best ``k`` union rows by score (ties: lower item id), as (items, scores,
    rows) matrices aligned with ``users``; ``keep`` masks union rows out (a request's filters)."""
    n = len(users)
    items = np.full((n, k), -1, np.int64)
    out_scores = np.full((n, k), np.nan, np.float32)
    out_rows = np.full((n, k), -1, np.int64)
    idx = np.arange(len(union)) if keep is None else np.flatnonzero(keep)
    position = _positions_of(union.users[idx], users)
    idx, position = idx[position >= 0], position[position >= 0]
    order = best_first(position, scores[idx], union.items[idx])
    idx, position = idx[order], position[order]
    first = np.flatnonzero(np.r_[True, position[1:] != position[:-1]]) if len(position) else np.zeros(0, np.int64)
    rank = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
    top = rank < k
    items[position[top], rank[top]] = union.items[idx[top]]
    out_scores[position[top], rank[top]] = scores[idx[top]]
    out_rows[position[top], rank[top]] = idx[top]
    return items, out_scores, out_rows


def top_up(items: np.ndarray, scores: np.ndarray, rows: np.ndarray, ranking: np.ndarray, n_items: int,
           exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Short lists (holes at their end, -1) filled from ``ranking`` (popularity, best first), skipping
    each row's listed items and its ``exclude`` row (seen items); filled items score NaN: the ranker
    never scored them."""
    k = items.shape[1]
    short = np.flatnonzero((items < 0).any(axis=1))
    if not len(short) or not len(ranking):
        return items, scores, rows
    listed = items[short]
    have = listed >= 0
    block = sp.csr_matrix((np.ones(int(have.sum()), np.float32), listed[have], np.r_[0, np.cumsum(have.sum(axis=1))]),
                          shape=(len(short), n_items))
    if exclude is not None:
        block = sp.csr_matrix((block + exclude[short]) > 0, dtype=np.float32)
    fill, _ = topk_global(ranking, np.zeros(len(ranking), np.float32), len(short), k, exclude=block)
    items = items.copy()
    need = items[short] < 0
    r, c = np.nonzero(need)
    items[short[r], c] = fill[r, (np.cumsum(need, axis=1) - 1)[r, c]]
    return items, scores, rows


def _positions_of(values: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Each value's position in ``users`` (distinct), -1 where absent."""
    order = np.argsort(users, kind="stable")
    pos = np.searchsorted(users[order], values)
    pos = np.minimum(pos, max(len(users) - 1, 0))
    found = (users[order][pos] == values) if len(users) else np.zeros(len(values), bool)
    return np.where(found, order[pos] if len(users) else -1, -1)
