"""Search candidates and their features: dense top-N ∪ BM25 top-N ∪ the most reviewed items.

One function gathers candidates for a block of queries and describes each (query, item) pair by
the re-ranker's features: both text scores for every candidate (not only the ones that retrieved
it), each list's rank, the fused rank score, query length and the item's review statistics.
Training, evaluation and serving all go through :func:`gather`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shortlist.retrieval.topk import topk_dense
from shortlist.search.dense import DenseRetriever
from shortlist.search.hybrid import rrf_score
from shortlist.search.lexical import BM25
from shortlist.search.stats import STAT_NAMES, ItemStats

TEXT_FEATURES: tuple[str, ...] = (
    "dense_score", "dense_rank", "dense_gap", "bm25_score", "bm25_rank", "bm25_share", "rrf_score",
    "query_words", "query_known_words",
)
FEATURE_NAMES: tuple[str, ...] = TEXT_FEATURES + STAT_NAMES


@dataclass(frozen=True)
class Candidates:
    """Candidate (query row, document position) pairs, grouped by query in order, with features."""

    query: np.ndarray  # int64, non-decreasing
    pos: np.ndarray  # int64 document positions
    features: np.ndarray  # float32 (n × len(FEATURE_NAMES)); NaN = missing (e.g. not in a list)

    def feature(self, name: str) -> np.ndarray:
        return self.features[:, FEATURE_NAMES.index(name)]

    def group_sizes(self, n_queries: int) -> np.ndarray:
        return np.bincount(self.query, minlength=n_queries)


def _rank_lookup(query: np.ndarray, pos: np.ndarray, lists: np.ndarray, n_docs: int) -> np.ndarray:
    """1-based rank of each (query, pos) pair in ``lists`` (n_queries × depth, -1 padded); NaN if absent."""
    rows, cols = np.nonzero(lists >= 0)
    keys = rows.astype(np.int64) * n_docs + lists[rows, cols]
    order = np.argsort(keys)
    keys, ranks = keys[order], (cols[order] + 1).astype(np.float32)
    want = query * n_docs + pos
    at = np.minimum(np.searchsorted(keys, want), max(keys.size - 1, 0))
    found = keys[at] == want if keys.size else np.zeros(want.size, dtype=bool)
    return np.where(found, ranks[at] if keys.size else np.float32(np.nan), np.float32(np.nan)).astype(np.float32)


def _union(lists: list[np.ndarray], n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (query, pos) pairs of every list, sorted by query then position."""
    keys = np.concatenate([(np.arange(len(x))[:, None] * n_docs + x)[x >= 0] for x in lists])
    keys = np.unique(keys)
    return keys // n_docs, keys % n_docs


def gather(
    queries: list[str],
    *,
    bm25: BM25,
    dense: DenseRetriever,
    stats: ItemStats,
    depth: int,
    popular: int,
    query_vectors: np.ndarray | None = None,
) -> Candidates:
    """Candidates of every query with their features (``depth`` from each text list, ``popular``
    most reviewed items for all)."""
    n_q, n_docs = len(queries), len(stats.matrix)
    qv = dense.encode(queries) if query_vectors is None else query_vectors
    dense_pos, dense_scores = dense.search(qv, depth)
    bm, known_words = bm25.score_queries(queries)
    bm_masked = np.where(bm > 0, bm, np.float32(-np.inf))
    bm_pos, _ = topk_dense(bm_masked, depth)
    pop = np.broadcast_to(stats.popular[: min(popular, n_docs)], (n_q, min(popular, n_docs)))
    query, pos = _union([dense_pos, bm_pos, pop], n_docs)
    d_score = dense.pair_scores(qv, query, pos)
    d_rank = _rank_lookup(query, pos, dense_pos, n_docs)
    b_rank = _rank_lookup(query, pos, bm_pos, n_docs)
    b_score = bm[query, pos]
    b_max = bm.max(axis=1)[query]
    top_dense = np.where(np.isfinite(dense_scores[:, 0]), dense_scores[:, 0], np.nan)[query]
    words = np.array([len(q.split()) for q in queries], dtype=np.float32)[query]
    text = np.column_stack([
        np.where(qv[query].any(axis=1), d_score, np.nan), d_rank, top_dense - d_score,
        b_score, b_rank, np.where(b_max > 0, b_score / np.maximum(b_max, 1e-9), np.nan),
        rrf_score(d_rank, b_rank), words, known_words[query],
    ]).astype(np.float32)
    return Candidates(query=query, pos=pos, features=np.hstack([text, stats.matrix[pos]]))
