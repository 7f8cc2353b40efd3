import numpy as np
import scipy.sparse as sp

from shortlist.retrieval.topk import rows_of, sparse_topk, sparse_topk_csr, topk_dense, topk_global


def test_topk_dense_ties_exclusion_and_padding():
    scores = np.array([[0.5, 0.9, 0.9, 0.1], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    excl = sp.csr_matrix(np.array([[0, 0, 1, 0], [1, 1, 1, 0]]))
    items, vals = topk_dense(scores, 3, exclude=excl)
    assert items.tolist() == [[1, 0, 3], [3, -1, -1]]
    assert vals[0].tolist() == [np.float32(0.9), 0.5, np.float32(0.1)] and np.isneginf(vals[1, 1:]).all()
    items, _ = topk_dense(scores, 2)
    assert items.tolist() == [[1, 2], [3, 2]]  # tie 0.9/0.9 → lower id first


def test_topk_global_masks_each_rows_seen_items():
    ranking = np.array([5, 3, 1, 0])
    rscores = np.array([4.0, 3.0, 2.0, 1.0], dtype=np.float32)
    excl = sp.csr_matrix(([1, 1, 1], ([0, 0, 1], [5, 1, 3])), shape=(3, 6))
    items, vals = topk_global(ranking, rscores, 3, 2, exclude=excl)
    assert items.tolist() == [[3, 0], [5, 1], [5, 3]]
    assert vals.tolist() == [[3.0, 1.0], [4.0, 2.0], [4.0, 3.0]]
    items, _ = topk_global(ranking, rscores, 1, 6)
    assert items.tolist() == [[5, 3, 1, 0, -1, -1]]


def test_rows_of_gives_empty_rows_for_unknown_users():
    m = sp.csr_matrix(np.array([[1, 0], [0, 1]], dtype=np.float32))
    r = rows_of(m, np.array([1, 5, 0]))
    assert r.toarray().tolist() == [[0, 1], [0, 0], [1, 0]]


def test_topk_dense_equals_a_full_sort_ties_at_the_cut_included():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 6, size=(7, 300)).astype(np.float32)  # many ties at every cut
    scores[2, :290] = -np.inf
    scores[3, 10:20] = np.nan
    for k in (1, 10, 57, 299, 300, 400):
        items, vals = topk_dense(scores, k)
        for r in range(len(scores)):
            s = np.where(np.isnan(scores[r]), np.float32(-np.inf), scores[r])
            full = np.lexsort((np.arange(300), -s))[:k]
            full = full[np.isfinite(s[full])]
            assert items[r, : len(full)].tolist() == full.tolist() and (items[r, len(full):] == -1).all()
            assert np.array_equal(vals[r, : len(full)], s[full])
            one = topk_dense(scores[r:r + 1], k)
            assert np.array_equal(one[0][0], items[r]) and np.array_equal(one[1][0], vals[r])


def test_sparse_topk_equals_topk_dense_on_the_densified_rows():
    """Stored entries only (absent = never selected), with ties, NaN, -inf, explicit zeros,
    float64 input cut to float32, excluded entries, empty rows and rows shorter than k."""
    from shortlist.retrieval.topk import sparse_topk

    rng = np.random.default_rng(3)
    n_rows, n_cols = 60, 40
    dense = np.full((n_rows, n_cols), -np.inf)
    for r in range(n_rows):
        nnz = int(rng.integers(0, n_cols))
        cols = rng.choice(n_cols, nnz, replace=False)
        dense[r, cols] = rng.integers(0, 6, nnz) / 4.0 + 1e-12 * rng.random(nnz)  # float32 ties
    dense[3, :5] = [np.nan, -np.inf, 0.0, 0.0, 2.0]
    stored = np.isfinite(dense) | np.isnan(dense)
    stored[3, :5] = True
    r, c = np.nonzero(stored)
    m = sp.csr_matrix((dense[r, c], (r, c)), shape=dense.shape)
    excl = sp.random(n_rows, n_cols, density=0.2, random_state=1, format="csr")
    for k in (1, 7, 40, 55):
        for ex in (None, excl):
            items, vals = sparse_topk(m, k, exclude=ex)
            d_items, d_vals = topk_dense(dense.astype(np.float32), k, exclude=ex)
            assert items.tolist() == d_items.tolist()
            np.testing.assert_array_equal(vals, d_vals)


def _sorted_by_column(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """sparse_topk's selection, reordered by column, as CSR (the reference for sparse_topk_csr)."""
    items, vals = sparse_topk(m, k)
    order = np.argsort(np.where(items >= 0, items, np.iinfo(np.int64).max), axis=1, kind="stable")
    items, vals = np.take_along_axis(items, order, axis=1), np.take_along_axis(vals, order, axis=1)
    keep = items >= 0
    indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    return sp.csr_matrix((vals[keep], items[keep], indptr), shape=m.shape)


def test_sparse_topk_csr_selects_as_sparse_topk_with_ties_infinities_nan_and_unsorted_columns():
    rng = np.random.default_rng(0)
    for _ in range(150):
        n, cols = int(rng.integers(1, 30)), int(rng.integers(1, 40))
        a = sp.random(n, cols, density=rng.random(), format="csr", dtype=np.float32,
                      random_state=int(rng.integers(1 << 30)))
        a.data = rng.integers(0, 4, a.nnz).astype(np.float32)  # many ties at the cut
        a.data[rng.random(a.nnz) < 0.1] = -np.inf
        a.data[rng.random(a.nnz) < 0.05] = np.nan
        for r in range(n):  # columns in no order within a row, as sparse products leave them
            lo, hi = a.indptr[r], a.indptr[r + 1]
            p = rng.permutation(hi - lo) + lo
            a.indices[lo:hi], a.data[lo:hi] = a.indices[p], a.data[p]
        a.has_sorted_indices = False
        k = int(rng.integers(1, 10))
        got, want = sparse_topk_csr(a, k), _sorted_by_column(a, k)
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
        assert (np.diff(got.indptr) <= k).all() and np.isfinite(got.data).all()
    row = sp.csr_matrix(np.array([[1, 2, 2, 2, 0, 3]], np.float32))
    assert sparse_topk_csr(row, 3).indices.tolist() == [1, 2, 5]  # the tie at 2 keeps the lower columns
