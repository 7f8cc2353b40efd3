"""One code path: features from an explicit history equal the fitted (batch) features exactly, and
a row's features never depend on the shard it is computed in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shortlist.data.synthetic import make_synthetic
from shortlist.features.pipeline import FeaturePipeline
from shortlist.features.profile import UserHistory
from shortlist.retrieval.union import CandidateUnion

N_USERS, N_ITEMS = 60, 40


def pipeline(ds, reference: str) -> FeaturePipeline:
    rng = np.random.default_rng(0)
    sim = sp.random(N_ITEMS, N_ITEMS, density=0.3, format="csr", random_state=2, dtype=np.float32)
    emb = rng.normal(size=(N_ITEMS, 6)).astype(np.float32)
    return FeaturePipeline(sources=["src"], reference=reference, similarities={"s": sim},  # type: ignore[arg-type]
                           embeddings={"e": emb}).fit(ds.interactions, items=ds.items)


def every_pair(users: np.ndarray, items: np.ndarray) -> CandidateUnion:
    rng = np.random.default_rng(1)
    n = len(users)
    return CandidateUnion(users.astype(np.int64), items.astype(np.int64),
                          rng.integers(1, 300, (1, n)).astype(np.int32), rng.random((1, n)).astype(np.float32),
                          ("src",), rng.random(n).astype(np.float32))


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(n_users=N_USERS, n_items=N_ITEMS, n_interactions=1500, repeat_share=0.3, seed=5)


@pytest.fixture(scope="module")
def union() -> CandidateUnion:
    return every_pair(np.repeat(np.arange(N_USERS), N_ITEMS), np.tile(np.arange(N_ITEMS), N_USERS))


@pytest.mark.parametrize("reference", ["user", "global"])
def test_history_path_equals_batch_for_every_user(ds, union, reference):
    p = pipeline(ds, reference)
    batch = p.matrix(union)
    assert ds.interactions.frame.columns.count("basket") == 1 and ds.interactions.frame["price"].null_count() == 0
    for u in range(N_USERS):
        rows = np.flatnonzero(union.users == u)
        one = p.matrix(union.take(rows), history=p.user_history(u))
        np.testing.assert_array_equal(one, batch[rows])  # bit for bit (NaN where NaN)


def test_a_rows_features_do_not_depend_on_its_shard_or_chunks(ds, union, monkeypatch):
    import shortlist.features.pipeline as pipemod

    p = pipeline(ds, "global")
    whole = p.matrix(union)
    monkeypatch.setattr(pipemod, "CHUNK_ROWS", 7)
    np.testing.assert_array_equal(p.matrix(union), whole)
    for u in (0, 7, 59):  # one user's rows, with ids outside the catalogue, alone and among others
        rows = np.flatnonzero(union.users == u)[:12]
        odd = every_pair(np.array([u, u]), np.array([45, 40]))
        alone = np.vstack([p.matrix(union.take(rows)), p.matrix(odd)])
        mixed = p.matrix(union.take(np.r_[np.flatnonzero(union.users == (u + 1) % N_USERS)[:5], rows]))[5:]
        np.testing.assert_array_equal(alone[:len(rows)], mixed)
        assert np.isnan(alone[len(rows):, p.names.index("item_cnt_all")]).all()


def test_online_events_change_user_and_pair_features(ds, union):
    p = pipeline(ds, "global")
    h = p.user_history(3)
    end = p.stats_.end_ts
    extended = h.extend(np.array([7, 7]), np.array([end - 10, end + 999]))  # the later one counts as at the end
    rows = union.take(np.flatnonzero(union.users == 3))
    before, after = p.matrix(rows, history=h), p.matrix(rows, history=extended)
    col = {n: j for j, n in enumerate(p.names)}
    assert after[7, col["pair_count"]] == before[7, col["pair_count"]] + 2
    assert after[7, col["pair_days_since_last"]] == 0.0
    assert after[0, col["user_n"]] == len(h) + 2 and after[0, col["user_days_since_last"]] == 0.0
    pair = p.builders[2]
    assert after[0, col["s_last1"]] == pair.similarities["s"][7, 0]  # item 7 is now the last item
    np.testing.assert_array_equal(after[:, col["item_cnt_all"]], before[:, col["item_cnt_all"]])  # item stats: the fit's


def test_empty_and_session_histories():
    import polars as pl

    from shortlist.data import build_dataset

    inter = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "timestamp": [0, 86400, 2 * 86400]})
    ds = build_dataset(inter, None)
    p = FeaturePipeline(sources=[]).fit(ds.interactions)
    c = CandidateUnion(np.array([9, 9]), np.array([0, 1]), np.zeros((0, 2), np.int32), np.zeros((0, 2), np.float32),
                       (), np.array([0.5, 0.25], np.float32))
    empty = p.matrix(c, history=UserHistory(np.zeros(0, np.int64), np.zeros(0, np.int64)))
    col = {n: j for j, n in enumerate(p.names)}
    assert np.isnan(empty[:, col["user_n"]]).all() and (empty[:, col["pair_count"]] == 0).all()
    session = p.matrix(c, history=UserHistory(np.array([1, 0, 1]), np.array([10, 20, 30])))
    assert session[:, col["user_n"]].tolist() == [3.0, 3.0] and session[:, col["pair_count"]].tolist() == [1.0, 2.0]
    assert np.isnan(session[0, col["user_n_baskets"]])  # no basket column at fit time


def test_a_shards_profiles_equal_its_users_rows_of_the_whole_historys(ds):
    st = pipeline(ds, "user").stats_
    whole = st.profiles_for(np.arange(st.n_users))
    some = np.array([41, 3, 17, 0])  # out of order
    part = st.profiles_for(some)
    cut = whole.take_rows(some)
    for name in ("last", "counts", "pair_keys", "pair_count", "pair_first", "pair_last", "total", "cat_total",
                 "price", "pop", "recent", "event_counts"):
        a, b = getattr(part, name), getattr(cut, name)
        np.testing.assert_array_equal(a.toarray() if sp.issparse(a) else a, b.toarray() if sp.issparse(b) else b)
    for name, values in whole.static.items():
        np.testing.assert_array_equal(part.static[name], values[some])
    np.testing.assert_array_equal(st.last, whole.last)
    repeaters = np.asarray((whole.counts > 1).sum(axis=0)).ravel()
    np.testing.assert_array_equal(st.item_repeaters, repeaters)
    assert repeaters.sum() > 0  # the synthetic log repeats items


def test_a_unions_unknown_and_repeated_users_get_their_rows(ds):
    st = pipeline(ds, "user").stats_
    profiles, rows = st.profiles_of(np.array([5, 99, 5, 2, -1, 2, 5]))
    assert profiles.n == 2 and rows.tolist() == [1, -1, 1, 0, -1, 0, 1]
    np.testing.assert_array_equal(profiles.recent, st.profiles_for(np.array([2, 5])).recent)


def test_category_shape_equals_scipys_row_reductions():
    from shortlist.features.per_user import category_shape

    rng = np.random.default_rng(0)
    for trial in range(100):
        n, c = int(rng.integers(1, 40)), int(rng.integers(1, 20))
        m = sp.random(n, c, density=rng.random(), format="csr", random_state=trial, dtype=np.float32)
        m.data = np.round(m.data * 20).astype(np.float32) + 1  # counts
        cat_total = np.asarray(m.sum(axis=1)).ravel().astype(np.float64) + rng.integers(0, 3, n)
        total = np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
        p = m.multiply(1.0 / np.maximum(total, 1e-9)[:, None]).tocsr()
        p.data = -p.data * np.log(np.maximum(p.data, 1e-12))
        has = total > 0
        top = np.where(has, m.max(axis=1).toarray().ravel() / np.maximum(cat_total, 1e-9), np.nan)
        ent = np.where(has, np.asarray(p.sum(axis=1)).ravel(), np.nan)
        got_top, got_ent = category_shape(m, cat_total)
        np.testing.assert_array_equal(got_top, top)  # bit for bit
        np.testing.assert_array_equal(got_ent, ent)
