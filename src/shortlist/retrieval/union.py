"""``CandidateUnion``: the one value type between stage 1 and stage 2, and the union that builds it.

A shard of users (a request is a shard of one) goes through the same three functions: each
source's top-k matrices → :func:`union` → :func:`fuse` (ordered and budgeted) → features → ranker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from shortlist.errors import ConfigError
from shortlist.ordering import best_first
from shortlist.retrieval.fusion import Fusion
from shortlist.schema import ITEM, MISSING_RANK, N_SOURCES, USER

#: A source's answer for a shard: (rows × k) item ids (-1 padding) and float32 scores (-inf
#: padding), best first, rows aligned with the shard's users.
TopK = tuple[np.ndarray, np.ndarray]
FUSED = "fused_score"


def score_col(source: str) -> str:
    return f"{source}_score"


def rank_col(source: str) -> str:
    return f"{source}_rank"


@dataclass(frozen=True)
class CandidateUnion:
    """One row per (user, item) any source proposed, for a shard of users.

    ``users`` / ``items``: int64 per row, rows grouped by user in the shard's order; ``ranks``:
    int32 (sources × rows), a row's 1-based rank in each source's list, ``MISSING_RANK`` where the
    source did not propose it; ``scores``: float32 (sources × rows), NaN there; ``fused``: the
    fusion score once :func:`fuse` ordered the union (rows within a user best first), else ``None``.
    """

    users: np.ndarray
    items: np.ndarray
    ranks: np.ndarray
    scores: np.ndarray
    sources: tuple[str, ...]
    fused: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def empty(cls, sources: Sequence[str]) -> CandidateUnion:
        s = len(sources)
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((s, 0), np.int32),
                   np.zeros((s, 0), np.float32), tuple(sources))

    @property
    def n_sources(self) -> np.ndarray:
        """How many sources proposed each row."""
        return np.count_nonzero(self.ranks < MISSING_RANK, axis=0).astype(np.int32)

    def best_rank(self) -> np.ndarray:
        """The best (lowest) rank any source gave each row."""
        if not len(self.sources):
            return np.full(len(self), MISSING_RANK, np.int32)
        return self.ranks.min(axis=0)

    def starts(self) -> np.ndarray:
        """Offsets of each user's first row, then ``len(self)``."""
        u = self.users
        if not len(u):
            return np.zeros(1, np.int64)
        change = np.ones(len(u) + 1, dtype=bool)
        np.not_equal(u[1:], u[:-1], out=change[1:-1])
        return np.flatnonzero(change)

    def take(self, rows: np.ndarray) -> CandidateUnion:
        """The union restricted to ``rows`` (in that order)."""
        return CandidateUnion(self.users[rows], self.items[rows], self.ranks[:, rows], self.scores[:, rows],
                              self.sources, None if self.fused is None else self.fused[rows])

    def to_frame(self) -> pl.DataFrame:
        """For I/O and reports: ``user, item, n_sources``, each source's ``_score`` (null: not proposed)
        and ``_rank``, then ``fused_score`` when fused."""
        cols = [pl.Series(USER, self.users, dtype=pl.Int64), pl.Series(ITEM, self.items, dtype=pl.Int64),
                pl.Series(N_SOURCES, self.n_sources)]
        for j, s in enumerate(self.sources):
            cols += [pl.Series(score_col(s), self.scores[j], nan_to_null=True), pl.Series(rank_col(s), self.ranks[j])]
        if self.fused is not None:
            cols.append(pl.Series(FUSED, self.fused))
        return pl.DataFrame(cols)


def union(users: np.ndarray, tops: Mapping[str, TopK], sources: Sequence[str], *,
          budgets: Mapping[str, int] | None = None,
          per_block: Callable[[CandidateUnion], CandidateUnion] | None = None) -> CandidateUnion:
    """The union of each source's top-k matrices for distinct ``users`` (rows aligned with them).

    Rows come grouped by user in ``users``' order, items ascending within a user; a source's
    k-th valid entry in a row has rank k, and where a source repeats an item its best rank wins.
    ``budgets`` keeps only each source's first so many entries. Sources missing from ``tops``
    (failed or skipped) propose nothing. ``per_block`` (e.g. :func:`fuse` with a per-user cap) is
    applied to each block of whole users as it is built, so the unreduced union of every user is
    never held at once.
    """
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    names = tuple(sources)
    if len(set(names)) != len(names):
        raise ConfigError(f"source names must be unique, got {list(names)}")
    if len(np.unique(users)) != len(users):
        raise ConfigError("union needs distinct users (a user asked twice gets one list)")
    present = [j for j, s in enumerate(names) if s in tops]
    step = _block_users(_width(tops, names, present)) if len(users) > 1 else 1
    finish = per_block or (lambda u: u)
    parts = [finish(_union_block(users, lo, min(lo + step, len(users)), tops, names, present, budgets))
             for lo in range(0, len(users), step)]
    if not parts:
        return finish(CandidateUnion.empty(names))
    if len(parts) == 1:
        return parts[0]
    fused = None if parts[0].fused is None else np.concatenate([p.fused for p in parts if p.fused is not None])
    return CandidateUnion(np.concatenate([p.users for p in parts]), np.concatenate([p.items for p in parts]),
                          np.concatenate([p.ranks for p in parts], axis=1),
                          np.concatenate([p.scores for p in parts], axis=1), names, fused=fused)


def fuse(u: CandidateUnion, fusion: Fusion, *, max_per_user: int | None = None,
         priors: Mapping[str, np.ndarray] | None = None) -> CandidateUnion:
    """``u`` ordered by ``fusion``'s score within each user (ties: lower item id), keeping the best
    ``max_per_user`` a user."""
    fused = fusion.score(u.ranks, u.items, u.sources, priors or {}).astype(np.float32)
    starts = u.starts()
    sizes = np.diff(starts)
    order = best_first(np.repeat(np.arange(len(sizes)), sizes), fused, u.items)
    if max_per_user is not None and len(order):
        pos = np.arange(len(order)) - np.repeat(starts[:-1], sizes)
        order = order[pos < max_per_user]
    return replace(u.take(order), fused=fused[order])


#: A block's (users × items) cells at most: direct addressing of the (user, item) cells instead of a sort.
DIRECT_CELLS = 1 << 25


def _width(tops: Mapping[str, TopK], names: tuple[str, ...], present: list[int]) -> int:
    top = max((int(tops[names[j]][0].max(initial=-1)) for j in present), default=-1)
    return top + 1


def _block_users(n_items: int) -> int:
    """Users a block: as many as keep its (users × items) cells within :data:`DIRECT_CELLS`."""
    return max(1, min(DIRECT_CELLS // max(n_items, 1), 4096))


def _union_block(users: np.ndarray, lo: int, hi: int, tops: Mapping[str, TopK], names: tuple[str, ...],
                 present: list[int], budgets: Mapping[str, int] | None) -> CandidateUnion:
    """:func:`union` of rows ``lo:hi`` of the top-k matrices, every source's in one stacked array
    (sources × rows × slots), so the cost of a one-user request does not grow with numpy calls per source."""
    items, scores = _stacked(tops, [names[j] for j in present], lo, hi)
    n_items = int(items.max(initial=-1)) + 1  # the cells' addressing width within this block
    valid = items >= 0
    rank = np.cumsum(valid, axis=2, dtype=np.int32)
    if budgets:
        limit = np.array([budgets.get(names[j], rank.shape[2]) for j in present], dtype=np.int32)
        valid &= rank <= limit[:, None, None]
    src, row, _ = np.nonzero(valid)  # source-major: each source's entries in row order, as proposed
    item = items[valid]
    cells, inv = _unique(row * max(n_items, 1) + item)
    n = len(cells)
    ranks = np.full((len(names), n), MISSING_RANK, dtype=np.int32)
    vals = np.full((len(names), n), np.nan, dtype=np.float32)
    if n:
        _scatter_first(ranks, vals, np.asarray(present, np.int64)[src] * n + inv, rank[valid], scores[valid])
    block_users = users[lo:hi]
    return CandidateUnion(block_users[cells // max(n_items, 1)], cells % max(n_items, 1), ranks, vals, names)


def _stacked(tops: Mapping[str, TopK], names: list[str], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``lo:hi`` of the named sources' (items, scores) as (sources × rows × slots) arrays
    (int64, float32), narrower matrices padded with no item."""
    width = max((tops[n][0].shape[1] for n in names), default=0)
    items = np.full((len(names), hi - lo, width), -1, dtype=np.int64)
    scores = np.full((len(names), hi - lo, width), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        t_items, t_scores = tops[name]
        items[j, :, :t_items.shape[1]] = t_items[lo:hi]
        scores[j, :, :t_items.shape[1]] = t_scores[lo:hi]
    return items, scores


def _unique(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(cells, return_inverse=True)``; by direct addressing when the range is small."""
    if not len(cells) or int(cells.max()) >= DIRECT_CELLS:
        return np.unique(cells, return_inverse=True)
    present = np.zeros(int(cells.max()) + 1, dtype=bool)
    present[cells] = True
    uniq = np.flatnonzero(present)
    slot = np.empty(len(present), dtype=np.int32)
    slot[uniq] = np.arange(len(uniq), dtype=np.int32)
    return uniq, slot[cells]


def _scatter_first(ranks: np.ndarray, vals: np.ndarray, cells: np.ndarray, rank: np.ndarray,
                   score: np.ndarray) -> None:
    """``ranks`` / ``vals`` at flat ``cells`` = ``rank`` / ``score``, the first (best-ranked) entry
    winning where a source repeats a pair (numpy leaves a repeated index's winner unspecified)."""
    seen = np.zeros(ranks.size, dtype=bool)
    seen[cells] = True
    if np.count_nonzero(seen) != len(cells):
        first = np.unique(cells, return_index=True)[1]
        cells, rank, score = cells[first], rank[first], score[first]
    ranks.reshape(-1)[cells] = rank
    vals.reshape(-1)[cells] = score
