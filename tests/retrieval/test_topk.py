import numpy as np
import pytest
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


def test_product_row_topk_equals_product_topk_on_the_row_as_a_matrix():
    """The serving path (a row's arrays, exclusions as columns) against the matrix path, known,
    empty and unknown rows, with and without exclusions, k above the candidates."""
    from shortlist.retrieval.topk import product_row_topk, product_topk, row_entries, rows_of

    hist = sp.random(30, 50, density=0.1, random_state=2, format="csr", dtype=np.float32)
    sim = sp.random(50, 50, density=0.2, random_state=3, format="csr", dtype=np.float32)
    seen = (hist > 0).astype(np.float32).tocsr()
    for u in [*range(30), 30, -1]:  # 30 and -1: unknown users, empty rows
        for k in (5, 60):
            for excl in (True, False):
                want = product_topk(rows_of(hist, np.array([u])), sim, k,
                                    exclude=rows_of(seen, np.array([u])) if excl else None)
                idx, w = row_entries(hist, u)
                got = product_row_topk(idx, w, sim, k, exclude=row_entries(seen, u)[0] if excl else None)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padded_rows_product_is_bit_identical(dtype):
    """PaddedRows.product_row against the CSR gather and scipy's own product: rows of different
    lengths (empty ones included), float32 ties, repeated and unsorted history entries."""
    from shortlist.retrieval.topk import PaddedRows, product_row_dense

    rng = np.random.default_rng(5)
    n = 80
    rows, cols, vals = [], [], []
    for r in range(n):
        width = int(rng.integers(0, 25)) if r % 7 else 0
        c = rng.choice(n, width, replace=False)
        rows += [r] * width
        cols += c.tolist()
        vals += (rng.integers(1, 5, width) / 3.0 + rng.random(width) * 1e-3).tolist()
    b = sp.csr_matrix((np.array(vals, dtype), (rows, cols)), shape=(n, n))
    table = PaddedRows(b)
    for _ in range(30):
        m = int(rng.integers(0, 30))
        idx = rng.integers(0, n, m).astype(np.int32)  # unsorted, with repeats
        w = (rng.random(m) ** 2).astype(dtype)
        want = product_row_dense(idx, w, b)
        got = product_row_dense(idx, w, b, padded=table)
        np.testing.assert_array_equal(got, want)
        a = sp.csr_matrix((w, idx, np.array([0, m])), shape=(1, n))
        ref = (a @ b).toarray()[0].astype(np.float32)
        stored = (a @ b).toarray()[0] != 0
        np.testing.assert_array_equal(got[stored], ref[stored])
        assert np.all(got[~stored] == -np.inf)


def test_padded_rows_refuses_skewed_or_oversized_matrices(monkeypatch):
    from shortlist.retrieval.topk import PaddedRows

    skewed = sp.csr_matrix((np.ones(105, np.float32), (np.r_[np.zeros(100, int), np.arange(1, 6)],
                                                       np.r_[np.arange(100), np.zeros(5, int)])), shape=(6, 100))
    assert PaddedRows.of(skewed) is None
    assert PaddedRows.of(sp.csr_matrix((6, 100), dtype=np.float32)) is None
    even = sp.random(50, 50, density=0.3, random_state=1, format="csr", dtype=np.float32)
    assert PaddedRows.of(even) is not None
    monkeypatch.setattr(PaddedRows, "MAX_BYTES", 1000)  # a table over the byte budget is not built either
    assert PaddedRows.of(even) is None


def test_als_bounded_float32_search_equals_the_float64_product():
    """ALS's one-user search (float32 product, error-bounded, float64 rescoring of the few items
    near the cut) lists exactly what the float64 product over every item lists, with near-ties
    and excluded items."""
    from shortlist.retrieval.als import _exact_topk_dot

    rng = np.random.default_rng(3)
    items32 = rng.normal(size=(500, 16)).astype(np.float32)
    items32[100:140] = items32[99]  # exact ties
    items32[200:260] = items32[199] * np.float32(1 + 1e-7)  # near-ties below float32 resolution
    items64 = items32.astype(np.float64)
    norms = np.linalg.norm(items64, axis=1)
    for trial in range(20):
        u = rng.normal(size=16).astype(np.float32)
        eligible = rng.random(500) > 0.2
        for k in (1, 10, 150, 450):
            want = (items64 @ u.astype(np.float64)).astype(np.float32)
            want[~eligible] = -np.inf
            wi, wv = topk_dense(want[None], k)
            gi, gv = _exact_topk_dot(u, items32, items64, norms, eligible, k)
            np.testing.assert_array_equal(gi, wi, err_msg=f"trial {trial} k {k}")
            np.testing.assert_array_equal(gv, wv)
    none = np.zeros(500, bool)
    gi, gv = _exact_topk_dot(u, items32, items64, norms, none, 5)
    assert (gi == -1).all() and np.isneginf(gv).all()


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
