"""Deterministic top-k over score blocks and per-query exclusion lists, shared by all backends.

Order contract: higher score first; on equal scores the lower position (= lower item id, since
the index stores items sorted by id) comes first. Missing results are position -1, score -inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

# Below this many items per top-k slot the candidate pre-filter of `topk_block` costs more than it saves
# (it pays off on long rows, where ties at -inf slow argpartition down).
_MIN_GROUPS = 40


@dataclass(frozen=True)
class Exclusion:
    """Per-query excluded item positions, CSR-style (`indptr` over queries, `indices` are positions)."""

    indptr: I64
    indices: I64

    def block(self, start: int, stop: int) -> tuple[I64, I64]:
        """(row-in-block, position) pairs for queries `start:stop`."""
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        counts = np.diff(self.indptr[start : stop + 1])
        rows = np.repeat(np.arange(stop - start, dtype=np.int64), counts)
        return rows, self.indices[lo:hi]

    def max_count(self, start: int, stop: int) -> int:
        """Largest number of exclusions of any query in `start:stop` (how much to over-fetch)."""
        if stop <= start:
            return 0
        return int(np.diff(self.indptr[start : stop + 1]).max())


def flat_index(columns: I64, width: int) -> I64:
    """Positions in a row-major (rows × ``width``) array's ``ravel()`` of each row's ``columns``:
    ``values.ravel()[flat_index(c, w)]`` is ``np.take_along_axis(values, c, axis=1)`` without its
    per-call index building (a request gathers a few hundred cells a source)."""
    return columns + (np.arange(len(columns), dtype=np.int64) * width)[:, None]


def order_topk(pos: I64, scores: F32, k: int) -> tuple[I64, F32]:
    """Sort each row by (score desc, position asc), keep `k` columns, turn non-finite entries into -1.

    A slot with no item (position < 0) must score -inf. Few numpy calls: a request orders a few
    hundred slots per source, where each call's overhead is the cost.
    """
    width = pos.shape[1]
    order = np.lexsort((pos, -scores), axis=-1)[:, :k]  # NaN sorts last
    flat = flat_index(order, width)
    pos, s = pos.ravel()[flat], scores.ravel()[flat].astype(np.float32, copy=False)
    missing = ~np.isfinite(s)
    pos[missing], s[missing] = -1, -np.inf
    return pos, s


def topk_block(scores: F32, k: int) -> tuple[I64, F32]:
    """Exact top-`k` of each row of a dense (m, n) score block, with deterministic tie-breaking.
    Missing entries (-inf, NaN) never displace a scored one; fewer than `k` scored: -1 / -inf."""
    m, n = scores.shape
    k = min(k, n)
    if m == 0 or k == 0:
        return _topk_dense(scores, k)
    sample = scores[:: max(1, m // 16)]  # a few rows tell whether the block is mostly missing
    if np.count_nonzero(sample > -np.inf) <= sample.size // 2:
        # a sparse product's rows, say: argpartition slows down several-fold on long runs of equal
        # -inf, so select among the scored entries only (any block gets the same answer this way)
        return _select(scores, scores > -np.inf, k)
    n_groups = n // k
    if n_groups < _MIN_GROUPS:
        return _topk_dense(scores, k)
    # Lower bound on each row's k-th score: the smallest of k maxima over disjoint (interleaved)
    # item groups. Everything at or above it is a candidate: ~k*ln(k) items instead of n, so the
    # slow introselect runs on a small matrix. A row whose bound is useless (heavy exclusion)
    # only makes the candidate matrix wider, never the result wrong.
    bound = scores[:, : n_groups * k].reshape(m, n_groups, k).max(axis=1).min(axis=1)
    return _select(scores, scores >= bound[:, None], k, max_width=n // 4)


def _select(scores: F32, keep: npt.NDArray[np.bool_], k: int, max_width: int | None = None) -> tuple[I64, F32]:
    """Top-`k` of each row among its `keep` entries (a superset of its scored top k), padded with
    -1 / -inf; over whole rows when a row keeps more than ``max_width`` (the selection would not pay).
    Candidates stay in ascending position order, which the tie rule relies on."""
    m, n = scores.shape
    # flatnonzero on a bool array is ~10x faster than 2-D nonzero
    flat = np.flatnonzero(keep)
    rows = flat // n
    counts = np.bincount(rows, minlength=m)
    width = int(counts.max(initial=0))
    if max_width is not None and width > max_width:
        return _topk_dense(scores, k)
    pos = np.full((m, k), -1, dtype=np.int64)
    top = np.full((m, k), -np.inf, dtype=np.float32)
    if width == 0:
        return pos, top
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    cand_pos = np.full((m, width), -1, dtype=np.int64)
    cand_scores = np.full((m, width), -np.inf, dtype=np.float32)
    cand_pos[rows, slot] = flat - rows * n
    cand_scores[rows, slot] = scores.ravel()[flat]
    col, vals = _topk_dense(cand_scores, min(k, width))
    got = col.shape[1]
    pos[:, :got] = np.where(col >= 0, cand_pos.ravel()[flat_index(np.maximum(col, 0), width)], -1)
    top[:, :got] = vals
    return pos, top


def _topk_dense(scores: F32, k: int) -> tuple[I64, F32]:
    """Top-k by argpartition over whole rows; rows with ties at the k-th score are redone exactly."""
    m, n = scores.shape
    if k == n:
        pos = np.broadcast_to(np.arange(n, dtype=np.int64), (m, n)).copy()
        return order_topk(pos, scores, k)
    # partition at the (k+1)-th largest: the k after it are the top k, and it tells whether the
    # k-th score is tied with an item left out (argpartition keeps an arbitrary one of those)
    part = np.argpartition(scores, n - k - 1, axis=1)[:, n - k - 1 :].astype(np.int64, copy=False)
    vals = scores.ravel()[flat_index(part, n)]
    pos, next_best, vals = part[:, 1:], vals[:, 0], vals[:, 1:]
    kth = vals.min(axis=1)
    # -inf slots come out as missing whichever -inf items fill them: only finite ties need redoing
    tied = np.flatnonzero((kth == next_best) & (kth > -np.inf))
    if tied.size:
        pos[tied] = _lowest_positions_on_ties(scores[tied], kth[tied], k)
        vals[tied] = np.take_along_axis(scores[tied], pos[tied], axis=1)
    return order_topk(pos, vals, k)


def _lowest_positions_on_ties(scores: F32, kth: F32, k: int) -> I64:
    """Top-k positions per row when several items share the k-th score: keep the lowest positions."""
    above = scores > kth[:, None]
    equal = scores == kth[:, None]
    need = k - np.count_nonzero(above, axis=1)
    keep = above | (equal & (np.cumsum(equal, axis=1) <= need[:, None]))
    # every row keeps exactly k columns, so the row-major nonzero list reshapes cleanly
    return np.nonzero(keep)[1].astype(np.int64).reshape(-1, k)


def mask_candidates(pos: I64, scores: F32, rows: I64, cols: I64, n_items: int) -> F32:
    """Set the score of every (row, position) candidate that is in the exclusion pairs to -inf."""
    if rows.size == 0:
        return scores
    cand = np.arange(pos.shape[0], dtype=np.int64)[:, None] * n_items + pos
    hit = np.isin(cand, rows * n_items + cols) & (pos >= 0)
    return np.where(hit, np.float32(-np.inf), scores).astype(np.float32, copy=False)
