"""Recall of an approximate index against exact search."""

from __future__ import annotations

import numpy as np

from shortlist.index._validate import check_k
from shortlist.index.errors import IndexNotBuiltError
from shortlist.index.vector_index import VectorIndex


def recall_at_k(approx: VectorIndex, queries: np.ndarray, *, k: int = 100, exact: VectorIndex | None = None) -> float:
    """Fraction of the exact top-`k` ids that `approx` also returns, pooled over all queries.

    `exact` defaults to an exact numpy index over `approx`'s own vectors, ids and metric.
    """
    k = check_k(k)
    if exact is None:
        if approx.vectors_ is None or approx.ids_ is None:
            raise IndexNotBuiltError("recall_at_k")
        exact = VectorIndex(backend="numpy", metric=approx.metric).build(approx.vectors_, ids=approx.ids_)
    truth, _ = exact.search(queries, k)
    found, _ = approx.search(queries, k)
    n_q = truth.shape[0]
    rows = np.repeat(np.arange(n_q, dtype=np.int64), k)
    span = int(max(truth.max(initial=0), found.max(initial=0))) + 2  # +1 shifts -1 padding to 0
    truth_keys = rows * span + (truth.ravel() + 1)
    found_keys = rows * span + (found.ravel() + 1)
    valid = truth.ravel() >= 0
    if not valid.any():
        return 1.0
    hits = np.isin(truth_keys[valid], found_keys[found.ravel() >= 0])
    return float(hits.mean())
