"""Exact numpy backend: hand-checked answers, ties, exclusion, padding, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shortlist.index import VectorIndex
from shortlist.index._topk import _topk_dense, topk_block

# 5 items x 3 dims; for query q = (1, 0, 0) the inner products are 3, 1, 2, 0, -1
ITEMS = np.array(
    [[3.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 0.0, 5.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]],
    dtype=np.float32,
)
Q = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)


def _index(**kwargs: object) -> VectorIndex:
    return VectorIndex(backend="numpy", **kwargs).build(ITEMS)  # type: ignore[arg-type]


def test_inner_product_exact_answer() -> None:
    ids, scores = _index().search(Q, 3)
    # row 2: q=(0,1,0) scores 0,1,0,1,0 -> ties at 1 (ids 1, 3) then at 0 (ids 0, 2, 4)
    np.testing.assert_array_equal(ids, [[0, 2, 1], [1, 3, 0]])
    np.testing.assert_array_equal(scores, np.array([[3, 2, 1], [1, 1, 0]], dtype=np.float32))
    assert ids.dtype == np.int64 and scores.dtype == np.float32


def test_cosine_normalises_items_and_queries() -> None:
    ids, scores = _index(metric="cosine").search(Q * 10, 3)
    # cos with (1,0,0): 1, 1/sqrt2, 2/sqrt29, 0, -1 -> ids 0, 1, 2
    np.testing.assert_array_equal(ids[0], [0, 1, 2])
    np.testing.assert_allclose(scores[0], [1.0, 1 / np.sqrt(2), 2 / np.sqrt(29)], rtol=1e-6)
    np.testing.assert_array_equal(ids[1], [3, 1, 0])  # (0,1,0) is item 3 exactly
    assert _index(metric="ip").search(Q, 3)[0][0].tolist() != ids[0].tolist()


def test_cosine_zero_vector_scores_zero() -> None:
    index = VectorIndex(backend="numpy", metric="cosine").build(np.array([[0, 0], [1, 0]], np.float32))
    ids, scores = index.search(np.array([[-1.0, 0.0]]), 2)
    np.testing.assert_array_equal(ids, [[0, 1]])
    np.testing.assert_array_equal(scores, [[0.0, -1.0]])


def test_ties_break_by_lower_id_even_at_the_kth_slot() -> None:
    items = np.ones((6, 2), dtype=np.float32)
    items[4] = 2.0
    index = VectorIndex(backend="numpy").build(items, ids=np.array([50, 40, 30, 20, 10, 60]))
    ids, _ = index.search(np.array([[1.0, 1.0]]), 3)
    np.testing.assert_array_equal(ids, [[10, 20, 30]])


def test_custom_ids_are_returned() -> None:
    index = VectorIndex(backend="numpy").build(ITEMS, ids=np.array([9, 7, 5, 3, 1]))
    ids, _ = index.search(Q[:1], 2)
    np.testing.assert_array_equal(ids, [[9, 5]])
    np.testing.assert_array_equal(index.ids_, [1, 3, 5, 7, 9])


def test_exclude_drops_items_per_query() -> None:
    exclude = sp.csr_matrix(([1, 1, 1], ([0, 0, 1], [0, 2, 3])), shape=(2, 5))
    ids, scores = _index().search(Q, 3, exclude=exclude)
    np.testing.assert_array_equal(ids, [[1, 3, 4], [1, 0, 2]])
    np.testing.assert_array_equal(scores, np.array([[1, 0, -1], [1, 0, 0]], dtype=np.float32))


def test_exclude_ignores_stored_zeros_and_unknown_ids() -> None:
    exclude = sp.csr_matrix(([0, 1], ([0, 0], [0, 99])), shape=(2, 100))
    ids, _ = _index().search(Q, 2, exclude=exclude)
    np.testing.assert_array_equal(ids[0], [0, 2])
    assert exclude.nnz == 2  # the caller's matrix is not modified


def test_exclude_uses_id_space_with_custom_ids() -> None:
    index = VectorIndex(backend="numpy").build(ITEMS, ids=np.array([9, 7, 5, 3, 1]))
    exclude = sp.csr_matrix(([1], ([0], [9])), shape=(1, 10))
    ids, _ = index.search(Q[:1], 2, exclude=exclude)
    np.testing.assert_array_equal(ids, [[5, 7]])


def test_pads_when_k_exceeds_items_or_exclusions_leave_too_few() -> None:
    ids, scores = _index().search(Q[:1], 7)
    np.testing.assert_array_equal(ids, [[0, 2, 1, 3, 4, -1, -1]])
    assert np.isneginf(scores[0, 5:]).all()
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 1, 0]]))
    ids, scores = _index().search(Q[:1], 3, exclude=exclude)
    np.testing.assert_array_equal(ids, [[4, -1, -1]])
    np.testing.assert_array_equal(scores, np.array([[-1, -np.inf, -np.inf]], dtype=np.float32))


def test_single_query_vector_and_empty_query_batch() -> None:
    ids, _ = _index().search(np.array([1.0, 0.0, 0.0]), 1)
    np.testing.assert_array_equal(ids, [[0]])
    ids, scores = _index().search(np.zeros((0, 3)), 4)
    assert ids.shape == (0, 4) and scores.shape == (0, 4)


def test_chunk_size_does_not_change_results(random_small: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = random_small
    exclude = sp.random(len(queries), len(items), density=0.05, format="csr", random_state=1)
    results = [
        VectorIndex(backend="numpy", chunk_size=c).build(items).search(queries, 20, exclude=exclude)
        for c in (None, 1, 7)
    ]
    for ids, scores in results[1:]:
        np.testing.assert_array_equal(ids, results[0][0])
        # BLAS picks different kernels for 1-row and many-row products: last-bit differences only
        np.testing.assert_allclose(scores, results[0][1], rtol=1e-5)


def test_matches_full_sort_reference(random_small: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = random_small
    ids, scores = VectorIndex(backend="numpy").build(items).search(queries, 25)
    full = queries @ items.T
    ref = np.lexsort((np.broadcast_to(np.arange(len(items)), full.shape), -full), axis=-1)[:, :25]
    np.testing.assert_array_equal(ids, ref)
    np.testing.assert_array_equal(scores, np.take_along_axis(full, ref, axis=1))


@pytest.mark.parametrize("k", [1, 10, 50, 100])
def test_candidate_prefilter_equals_dense_top_k_with_ties_and_exclusions(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = np.round(rng.standard_normal((40, 3_000)), 1).astype(np.float32)  # many ties
    scores[:, rng.random(3_000) < 0.3] = -np.inf
    scores[0, : 3_000 - 5] = -np.inf  # a row with fewer than k finite scores
    fast, dense = topk_block(scores, k), _topk_dense(scores, k)
    np.testing.assert_array_equal(fast[0], dense[0])
    np.testing.assert_array_equal(fast[1], dense[1])
    ref = np.lexsort((np.broadcast_to(np.arange(3_000), scores.shape), -scores), axis=-1)[:, :k]
    expected = np.where(np.isfinite(np.take_along_axis(scores, ref, axis=1)), ref, -1)
    np.testing.assert_array_equal(fast[0], expected)


@pytest.mark.parametrize("k", [1, 10, 300, 3_000])
def test_mostly_missing_blocks_equal_a_full_sort(k: int) -> None:
    """Blocks where most entries are -inf or NaN (a sparse product's rows) are selected among the
    scored entries: the same items, scores and tie order as a full sort, missing slots -1 / -inf."""
    rng = np.random.default_rng(k)
    scores = np.round(rng.standard_normal((6, 3_000)), 1).astype(np.float32)
    scores[rng.random(scores.shape) < 0.9] = -np.inf
    scores[1, ::7] = np.nan
    scores[2] = -np.inf  # nothing scored
    scores[3, 50:] = -np.inf  # fewer scored than k
    pos, top = topk_block(scores, k)
    assert pos.shape == top.shape == (6, min(k, 3_000))
    clean = np.where(np.isnan(scores), np.float32(-np.inf), scores)
    ref = np.lexsort((np.broadcast_to(np.arange(3_000), scores.shape), -clean), axis=-1)[:, :k]
    ref_scores = np.take_along_axis(clean, ref, axis=1)
    np.testing.assert_array_equal(pos, np.where(np.isfinite(ref_scores), ref, -1))
    np.testing.assert_array_equal(top, ref_scores)
