"""Hybrid retrieval: reciprocal rank fusion (RRF) of the dense and BM25 rankings."""

from __future__ import annotations

import numpy as np

#: The RRF constant of Cormack, Clarke & Büttcher (2009): damps the weight of the very top ranks.
RRF_K = 60.0


def rrf_score(*ranks: np.ndarray, k: float = RRF_K) -> np.ndarray:
    """Sum over rankings of ``1 / (k + rank)`` (1-based ranks; NaN = not in that ranking, adds 0)."""
    total = np.zeros(np.shape(ranks[0]), dtype=np.float64)
    for r in ranks:
        r = np.asarray(r, dtype=np.float64)
        total += np.where(np.isnan(r), 0.0, 1.0 / (k + np.nan_to_num(r, nan=0.0)))
    return total.astype(np.float32)
