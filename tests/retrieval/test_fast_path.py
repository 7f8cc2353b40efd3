"""The small-batch (serving) path gives exactly the batch path's output, for every source and the union."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from polars.testing import assert_frame_equal

from shortlist.data.synthetic import make_synthetic
from shortlist.pipeline.sources import CandidateGenerator
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.topk import product_rows_dense, product_topk, rows_of, sparse_topk, topk_dense
from shortlist.retrieval.union import FUSED, fuse, fuse_topk, union, union_topk
from shortlist.schema import MISSING_RANK, USER


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(n_users=120, n_items=60, n_interactions=2500, seed=11)


def all_users(data) -> np.ndarray:
    return np.arange(data.n_users + 2)  # two users unknown at fit time


def test_generator_one_user_equals_the_batch_union(dataset):
    data = dataset.interactions
    names = ["repurchase", "transition", "itemknn", "covisit", "ease", "als", "content", "popular_recent", "popular",
             "userknn"]
    gen = CandidateGenerator(names, per_source=15, max_candidates=25,
                             overrides={"als": {"factors": 8, "iterations": 3},
                                        "content": {"encoder": "tfidf", "tfidf_dim": 16, "backend": "numpy"}})
    gen.fit(data, items=dataset.items, rng=np.random.default_rng(0))
    gen.weights = {"ease": 1.5, "popular": 0.5}
    users = all_users(data)
    for exclude in (True, False):
        batch = gen.combine(gen.retrieve_all(users, exclude_seen=exclude))
        assert batch.height and batch.columns[-1] == FUSED
        fast = pl.concat([gen.generate(np.array([u]), exclude_seen=exclude) for u in users])
        assert_frame_equal(fast, batch)
        assert_frame_equal(gen.generate(users[:5], exclude_seen=exclude),
                           batch.filter(pl.col(USER) < 5))
        # the batch path (numpy union of the top-k matrices) whatever the users' order, repeats or threads
        shuffled = np.random.default_rng(1).permutation(np.concatenate([users, users[:7]]))
        for threads in (1, 2):
            assert_frame_equal(gen.generate(shuffled, exclude_seen=exclude, threads=threads), batch)
    session = gen.generate_for_history(np.array([3, 5, 8]), timestamps=np.array([1, 2, 3]), exclude_seen=True)
    assert session.height and (session[USER] == -1).all() and not set(session["item"].to_list()) & {3, 5, 8}


@pytest.mark.parametrize(("block_users", "direct_cells"), [(2048, 1 << 25), (16, 1 << 25), (2048, 0), (7, 0)])
def test_union_of_topk_matrices_equals_the_union_of_frames(dataset, monkeypatch, block_users, direct_cells):
    """Blocks of users and both ways of finding a block's distinct pairs (direct addressing, sort)."""
    import shortlist.retrieval.union as union_module

    monkeypatch.setattr(union_module, "BLOCK_USERS", block_users)
    monkeypatch.setattr(union_module, "DIRECT_CELLS", direct_cells)
    data = dataset.interactions
    names = ["repurchase", "itemknn", "ease", "popular", "userknn"]
    gen = CandidateGenerator(names, per_source=15, max_candidates=25).fit(data, rng=np.random.default_rng(0))
    users = np.random.default_rng(2).permutation(all_users(data))
    for exclude in (True, False):
        parts = gen.retrieve_all(users, exclude_seen=exclude)
        tops = gen.topk_all(users, exclude_seen=exclude)
        expected = gen.union_of(parts)
        got = gen.union_tops(users, tops)
        assert_frame_equal(got, expected)
        assert got.height > 10 * len(users)
        assert_frame_equal(gen.combine(unioned=got), gen.combine(parts))
        assert_frame_equal(gen.fuse_tops(users, tops), gen.combine(parts))
    assert gen.union_tops(np.zeros(0, np.int64), gen.topk_all(np.zeros(0, np.int64), exclude_seen=True)).height == 0


def test_learn_weights_fallback_from_the_union_equals_from_the_parts(dataset):
    data = dataset.interactions
    gen = CandidateGenerator(["itemknn", "popular"], per_source=15, max_candidates=25).fit(data, rng=np.random.default_rng(0))
    users = np.arange(30)
    parts = gen.retrieve_all(users, exclude_seen=True)
    labels = parts["popular"].frame.filter(pl.col("rank") == 3).select("user", "item").head(5)  # too few to learn
    from_parts = gen.learn_weights(parts, labels)
    assert set(from_parts) == {"itemknn", "popular"}
    assert gen.learn_weights(None, labels, unioned=gen.union_of(parts)) == from_parts
    with pytest.raises(ValueError, match="union"):
        gen.learn_weights(None, labels)


def test_fuse_topk_equals_fuse_of_union_with_exact_rows():
    users = np.array([2, 0])
    tops = {
        "a": (np.array([[10, 11, -1], [12, -1, -1]]), np.array([[0.9, 0.5, -np.inf], [0.7, -np.inf, -np.inf]],
                                                                np.float32)),
        "b": (np.array([[11, 13, 10], [-1, -1, -1]]), np.array([[3.0, 2.0, 1.0], [-np.inf] * 3], np.float32)),
    }
    parts = [Candidates.from_topk(users, *tops[s], s) for s in ("a", "b")]
    kw = {"priority": ("b",), "max_per_user": 3, "weights": {"a": 2.0}}
    expected = fuse(union(parts, sources=["a", "b"]), ["a", "b"], **kw)
    got = fuse_topk(users, tops, ["a", "b"], **kw)
    assert_frame_equal(got, expected)
    assert got.select("user", "item", "n_sources", "a_rank", "b_rank").rows() == [
        (0, 12, 1, 1, MISSING_RANK),
        (2, 10, 2, 1, 3),  # 2/31 + 1/33 + 1 (priority) beats 2/32 + 1/31 + 1
        (2, 11, 2, 2, 1),
        (2, 13, 1, MISSING_RANK, 2),
    ]
    budget = fuse_topk(users, tops, ["a", "b"], budgets={"b": 1})
    assert_frame_equal(budget, fuse(union(parts, sources=["a", "b"], budgets={"b": 1}), ["a", "b"]))
    assert budget.filter(pl.col("user") == 2).select("item", "b_rank").rows() == [(11, 1), (10, MISSING_RANK)]


def test_dense_product_is_bit_identical_to_scipy():
    a = sp.random(6, 300, density=0.2, format="csr", dtype=np.float32, random_state=1)
    b = sp.random(300, 250, density=0.05, format="csr", dtype=np.float32, random_state=2)
    product = (a @ b).tocsr()
    dense = np.full(product.shape, -np.inf, np.float32)
    dense[np.repeat(np.arange(6), np.diff(product.indptr)), product.indices] = product.data
    np.testing.assert_array_equal(product_rows_dense(a, b), dense)
    seen = sp.csr_matrix(np.eye(6, 250, dtype=np.float32))
    for got, want in zip(product_topk(a, b, 20, exclude=seen), sparse_topk(product, 20, exclude=seen), strict=True):
        np.testing.assert_array_equal(got, want)


def test_one_row_topk_dense_matches_the_matrix_path():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=(4, 50)).astype(np.float32)  # many ties
    scores[1, :45] = -np.inf
    items, vals = topk_dense(scores, 10)
    for r in range(4):
        one = topk_dense(scores[r:r + 1], 10)
        np.testing.assert_array_equal(one[0][0], items[r])
        np.testing.assert_array_equal(one[1][0], vals[r])
    assert (items[1, 5:] == -1).all()


def test_rows_of_single_and_negative_users():
    m = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    assert rows_of(m, np.array([1])).toarray().tolist() == [[0, 3, 0]]
    assert rows_of(m, np.array([-1])).toarray().tolist() == [[0, 0, 0]]
    assert rows_of(m, np.array([0, -1, 7, 1])).toarray().tolist() == [[1, 0, 2], [0, 0, 0], [0, 0, 0], [0, 3, 0]]


def test_one_user_fusion_equals_the_many_user_path():
    """fuse_topk_columns' one-user path (a request) against the block path on two users, with
    budgets, priority, learned bonuses and priors, a per-user cut, repeats within a source, gaps
    and an anonymous user (-1)."""
    from shortlist.retrieval.union import fuse_topk_columns

    rng = np.random.default_rng(4)
    names = ["a", "b", "c", "d"]
    prior = rng.random(40)
    for trial in range(40):
        width = int(rng.integers(1, 12))
        tops = {}
        for s in names[: int(rng.integers(1, 5))]:
            items = rng.integers(-1, 40, (2, width))
            items[:, -1] = -1 if trial % 3 == 0 else items[:, -1]
            scores = np.where(items >= 0, rng.random((2, width)), -np.inf).astype(np.float32)
            tops[s] = (items, scores)
        kw = {"priority": ("b",), "max_per_user": int(rng.integers(1, 30)) if trial % 2 else None,
              "weights": {"a": 2.0, "c": 0.5, "b@present": 0.3, "@prior:pop": 0.7},
              "priors": {"pop": prior}, "budgets": {"c": 3} if trial % 4 == 1 else None}
        for u, row in ((7, 0), (-1, 1)):
            users = np.array([u, 99]) if row == 0 else np.array([99, u])
            both = fuse_topk_columns(users, tops, names, **kw)
            mine = both[USER] == u
            one = fuse_topk_columns(np.array([u]), {s: (t[0][row:row + 1], t[1][row:row + 1]) for s, t in tops.items()},
                                    names, **kw)
            assert list(one) == list(both)
            for col, values in one.items():
                np.testing.assert_array_equal(values, both[col][mine], err_msg=f"{col} trial {trial}")
                assert values.dtype == both[col].dtype, col


def test_fused_scores_add_terms_in_a_fixed_order():
    """Σ of the source terms, then presence bonuses, then priors, one term after another (what a
    reduction over a stacked block gives), for any number of rows, negative weights included."""
    from shortlist.retrieval.union import fused_scores

    rng = np.random.default_rng(6)
    names = ["a", "b", "c"]
    weights = {"a": 1.3, "b": -0.2, "a@present": 0.4, "c@present": -0.1, "@prior:pop": 0.25}
    prior = rng.random(90)
    for n in (0, 1, 5, 20_000):
        ranks = rng.integers(1, 300, (3, n)).astype(np.int32)
        ranks[rng.random((3, n)) < 0.4] = MISSING_RANK
        items = rng.integers(0, 100, n)  # some outside the prior: 0
        terms = [w / (30.0 + ranks[j].astype(np.float64)) for j, w in enumerate([1.3, -0.2, 1.0])]
        terms += [np.where(ranks[0] < MISSING_RANK, 0.4, 0.0), np.where(ranks[2] < MISSING_RANK, -0.1, 0.0)]
        terms += [0.25 * np.where(items < 90, prior[np.minimum(items, 89)], 0.0)]
        want = np.add.reduce(np.stack(terms), axis=0) + np.where(ranks[1] < MISSING_RANK, 1.0, 0.0)
        got = fused_scores(ranks, items, names, k0=30.0, priority=("b",), weights=weights, priors={"pop": prior})
        np.testing.assert_array_equal(got, want)


def test_fuse_topk_on_threads_equals_one_thread(dataset, monkeypatch):
    import shortlist.retrieval.union as union_module

    monkeypatch.setattr(union_module, "PARALLEL_MIN_USERS", 10)
    data = dataset.interactions
    gen = CandidateGenerator(["repurchase", "itemknn", "ease", "popular"], per_source=15, max_candidates=20)
    gen.fit(data, rng=np.random.default_rng(0))
    gen.weights = {"ease": 1.5, "popular": 0.5}
    users = np.random.default_rng(3).permutation(all_users(data))
    tops = gen.topk_all(users, exclude_seen=True)
    one = gen.fuse_tops(users, tops)
    assert one.height > 5 * len(users)
    for threads in (2, 3):
        assert_frame_equal(gen.fuse_tops(users, tops, threads=threads), one)


def test_a_source_repeating_an_item_keeps_its_first_rank_on_every_path():
    users = np.array([1, 0])
    tops = {"a": (np.array([[3, 3, 5], [4, 2, 4]]), np.array([[2.0, 1.0, 0.5], [3.0, 2.0, 1.0]], np.float32)),
            "b": (np.array([[5, 3, -1], [2, 2, 2]]), np.array([[9.0, 8.0, -np.inf], [1.0, 1.0, 1.0]], np.float32))}
    parts = [Candidates.from_topk(users, *tops[s], s) for s in ("a", "b")]
    expected = union(parts, sources=["a", "b"])
    assert expected.filter(pl.col(USER) == 1).select("item", "a_score", "a_rank").rows()[0] == (3, 2.0, 1)
    assert expected.filter((pl.col(USER) == 0) & (pl.col("item") == 2)).select("b_rank").item() == 1
    assert_frame_equal(union_topk(users, tops, ["a", "b"]), expected)
    fused = fuse(expected, ["a", "b"])
    assert_frame_equal(fuse_topk(users, tops, ["a", "b"]), fused)
    one_by_one = [fuse_topk(np.array([u]), {s: (t[0][[r]], t[1][[r]]) for s, t in tops.items()}, ["a", "b"])
                  for r, u in enumerate(users)]
    assert_frame_equal(pl.concat(one_by_one[::-1]), fused)
