"""Item-to-item content neighbours and the "neighbors" scoring of a history.

A single mean profile vector blurs a user with several interests; scoring each candidate by
``sum_i w_i · max(0, cos(i, j))^sharpen`` over the user's recent items ``i``, restricted to each
item's ``n_neighbors`` nearest items, keeps every interest (like item-kNN, with text similarity).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shortlist.index import VectorIndex
from shortlist.retrieval.topk import product_topk, row_block, sparse_topk

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


def neighbor_topk(
    weights: sp.csr_matrix, graph: sp.csr_matrix, k: int, *, exclude: sp.csr_matrix | None
) -> tuple[np.ndarray, np.ndarray]:
    """(rows × k) items and scores of ``weights @ graph``, best first, minus ``exclude``; padded -1 / -inf."""
    n = weights.shape[0]
    if n <= _ROWS_PER_CHUNK:
        return product_topk(weights, graph, k, exclude=exclude)
    items = np.full((n, k), -1, np.int64)
    scores = np.full((n, k), -np.inf, np.float32)
    for start in range(0, n, _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, n)
        excl = None if exclude is None else row_block(exclude, start, stop)
        items[start:stop], scores[start:stop] = sparse_topk(row_block(weights, start, stop) @ graph, k, exclude=excl)
    return items, scores
