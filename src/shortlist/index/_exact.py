"""Exact inner-product search in numpy: BLAS matmul over query blocks, argpartition top-k."""

from __future__ import annotations

import numpy as np

from shortlist.index._topk import F32, I64, Exclusion, topk_block

# Score blocks are capped at this many float32 cells (64 MiB) unless the caller fixes chunk_size.
_BLOCK_CELLS = 16 * 1024 * 1024
_MAX_AUTO_CHUNK = 4096


def auto_chunk(n_items: int, chunk_size: int | None) -> int:
    """Queries per block: the caller's value, or as many as keep one score block under 64 MiB."""
    if chunk_size is not None:
        return chunk_size
    return int(min(_MAX_AUTO_CHUNK, max(1, _BLOCK_CELLS // max(n_items, 1))))


class NumpyExact:
    """Brute-force search; exclusions are applied to the score block before top-k (no over-fetch)."""

    name = "numpy"

    def __init__(self, vectors: F32, *, chunk_size: int | None) -> None:
        self._vectors = vectors
        self._chunk = auto_chunk(vectors.shape[0], chunk_size)

    def search(self, queries: F32, k: int, exclusion: Exclusion | None) -> tuple[I64, F32]:
        n_q, n = queries.shape[0], self._vectors.shape[0]
        k_eff = min(k, n)
        pos = np.empty((n_q, k_eff), dtype=np.int64)
        scores = np.empty((n_q, k_eff), dtype=np.float32)
        items_t = self._vectors.T
        for start in range(0, n_q, self._chunk):
            stop = min(start + self._chunk, n_q)
            block = queries[start:stop] @ items_t
            if exclusion is not None:
                rows, cols = exclusion.block(start, stop)
                block[rows, cols] = -np.inf
            pos[start:stop], scores[start:stop] = topk_block(block, k_eff)
        return pos, scores
