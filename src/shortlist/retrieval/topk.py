"""Vectorised top-k selection with per-user exclusion of seen items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shortlist.retrieval.candidates import Candidates


def topk_dense(scores: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns per row of a dense score matrix, best first.

    ``exclude`` (same shape, rows aligned) masks items; ties break towards the lower item id.
    Returns (items, scores), padded with -1 / -inf where fewer than ``k`` items are left.
    """
    n, m = scores.shape
    s = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and exclude.nnz:
        coo = exclude.tocoo()
        s[coo.row, coo.col] = -np.inf
    kk = min(k, m)
    if kk < m:
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    part_scores = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(part_scores, order, axis=1)
    items[~np.isfinite(vals)] = -1
    return _pad(items, vals, k)


def topk_global(
    ranking: np.ndarray,
    ranking_scores: np.ndarray,
    n_rows: int,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The same global ranking for every row, minus each row's excluded items, first ``k`` kept.

    Only a pool of ``k + max excluded per row`` items is examined, so the cost does not grow with
    the catalogue.
    """
    if exclude is None or not exclude.nnz:
        items = np.broadcast_to(ranking[:k], (n_rows, min(k, len(ranking)))).astype(np.int64)
        vals = np.broadcast_to(ranking_scores[:k], items.shape).astype(np.float32)
        return _pad(items.copy(), vals.copy(), k)
    max_excl = int(np.diff(exclude.indptr).max())
    pool = ranking[: k + max_excl]
    masked = exclude[:, pool].toarray() > 0
    keep = ~masked
    pos = np.cumsum(keep, axis=1)
    sel = keep & (pos <= k)
    rows, cols = np.nonzero(sel)
    slot = pos[rows, cols] - 1
    items = np.full((n_rows, k), -1, dtype=np.int64)
    vals = np.full((n_rows, k), -np.inf, dtype=np.float32)
    items[rows, slot] = pool[cols]
    vals[rows, slot] = ranking_scores[: len(pool)][cols]
    return items, vals


def _pad(items: np.ndarray, vals: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n, have = items.shape
    if have >= k:
        return items[:, :k], vals[:, :k].astype(np.float32)
    pi = np.full((n, k), -1, dtype=np.int64)
    pv = np.full((n, k), -np.inf, dtype=np.float32)
    pi[:, :have], pv[:, :have] = items, vals
    return pi, pv


def rows_of(matrix: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """Rows of ``matrix`` for ``users``; users beyond its shape (unknown at fit time) get empty rows."""
    users = np.asarray(users, dtype=np.int64)
    inside = users < matrix.shape[0]
    if inside.all():
        return matrix[users]
    out = sp.diags(inside.astype(matrix.dtype)) @ matrix[np.where(inside, users, 0)]
    out.eliminate_zeros()
    return sp.csr_matrix(out)


def sparse_topk(m: sp.csr_matrix, k: int, *, max_block: int = 8_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` stored entries per row of a sparse matrix: (items, scores), padded -1 / -inf.

    Rows are densified in blocks of at most ``max_block`` cells (absent entries are -inf, never
    selected) and picked with :func:`topk_dense` — far faster than sorting every stored entry.
    """
    m = sp.csr_matrix(m)
    n_rows, n_cols = m.shape
    chunk = max(1, min(n_rows, max_block // max(n_cols, 1)))
    items = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    for start in range(0, n_rows, chunk):
        block = m[start : start + chunk]
        dense = np.full(block.shape, -np.inf, dtype=np.float32)
        r = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        dense[r, block.indices] = block.data
        items[start : start + chunk], scores[start : start + chunk] = topk_dense(dense, k)
    return items, scores


def sparse_rows_topk(m: sp.csr_matrix, users: np.ndarray, k: int, source: str) -> Candidates:
    """Top-``k`` stored entries per row of a sparse score matrix (rows aligned to ``users``)."""
    items, scores = sparse_topk(m, k)
    return Candidates.from_topk(np.asarray(users), items, scores, source)
