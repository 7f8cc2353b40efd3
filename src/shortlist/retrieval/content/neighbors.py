"""Item-to-item content neighbours and the "neighbors" scoring of a history.

A single mean profile vector blurs a user with several interests; scoring each candidate by
``sum_i w_i · max(0, cos(i, j))^sharpen`` over the user's recent items ``i``, restricted to each
item's ``n_neighbors`` nearest items, keeps every interest (like item-kNN, with text similarity).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.index import VectorIndex
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.topk import sparse_rows_topk

_ROWS_PER_CHUNK = 8192  # users scored per sparse product: bounds the memory of W @ S


def neighbor_graph(
    vectors: np.ndarray, index: VectorIndex, *, n_neighbors: int, sharpen: float
) -> sp.csr_matrix:
    """(n_items × n_items) CSR: each text-bearing item's ``n_neighbors`` nearest items (itself
    included), weighted ``max(0, cos)^sharpen``; items without text have empty rows."""
    n_items = vectors.shape[0]
    has = np.flatnonzero(np.any(vectors != 0, axis=1))
    ids, sims = index.search(vectors[has], n_neighbors + 1)
    rows = np.repeat(has, ids.shape[1])
    cols, vals = ids.ravel(), np.maximum(sims.ravel(), 0.0) ** sharpen
    keep = (cols >= 0) & (vals > 0)
    graph = sp.csr_matrix((vals[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n_items, n_items))
    graph.sum_duplicates()
    return graph


def neighbor_candidates(
    weights: sp.csr_matrix,
    graph: sp.csr_matrix,
    users: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None,
    source: str,
) -> Candidates:
    """Top-``k`` items of ``weights @ graph`` per row (rows aligned with ``users``), minus ``exclude``."""
    parts = []
    for start in range(0, len(users), _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, len(users))
        scores = sp.csr_matrix(weights[start:stop] @ graph)
        if exclude is not None and exclude.nnz:
            mask = sp.csr_matrix(exclude[start:stop], dtype=bool).astype(np.float32)
            scores = sp.csr_matrix(scores - scores.multiply(mask))
            scores.eliminate_zeros()
        if scores.nnz:
            parts.append(sparse_rows_topk(scores, users[start:stop], k, source))
    if not parts:
        return Candidates.empty(source)
    return parts[0] if len(parts) == 1 else Candidates(pl.concat([p.frame for p in parts]))
