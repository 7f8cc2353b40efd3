"""One code path: features from an explicit history equal the fitted (batch) features exactly."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shortlist.data.synthetic import make_synthetic
from shortlist.features.pipeline import FeaturePipeline, with_reference_times
from shortlist.features.profile import UserHistory


@pytest.fixture(scope="module")
def fitted():
    ds = make_synthetic(n_users=60, n_items=40, n_interactions=1500, repeat_share=0.3, seed=5)
    rng = np.random.default_rng(0)
    sim = sp.random(40, 40, density=0.3, format="csr", random_state=2, dtype=np.float32)
    emb = rng.normal(size=(40, 6)).astype(np.float32)
    p = FeaturePipeline(sources=["src"], similarities={"s": sim}, embeddings={"e": emb})
    p.fit(ds.interactions, items=ds.items)
    users = np.repeat(np.arange(60), 40)
    c = pl.DataFrame({"user": users.astype(np.int32), "item": np.tile(np.arange(40), 60).astype(np.int32),
                      "n_sources": np.ones(len(users), np.uint32), "src_score": rng.random(len(users)),
                      "src_rank": rng.integers(1, 300, len(users)), "fused_score": rng.random(len(users))})
    return ds, p, c


@pytest.mark.parametrize("mode", ["user", "global"])
def test_history_path_equals_batch_for_every_user(fitted, mode):
    ds, p, c = fitted
    batch = p.matrix(with_reference_times(c, p, mode=mode))
    assert ds.interactions.frame.columns.count("basket") == 1 and ds.interactions.frame["price"].null_count() == 0
    for u in range(60):
        rows = np.flatnonzero(c["user"].to_numpy() == u)
        one = p.matrix_for_history(c[rows], p.user_history(u), mode=mode)
        np.testing.assert_array_equal(one, batch[rows])  # bit for bit (NaN where NaN)


def test_small_and_threaded_batches_agree(fitted, monkeypatch):
    import shortlist.features.pipeline as pipemod

    _, p, c = fitted
    cr = with_reference_times(c, p, mode="global")
    whole = p.matrix(cr)
    monkeypatch.setattr(pipemod, "CHUNK_ROWS", 7)  # many chunks, two threads
    np.testing.assert_array_equal(p.matrix(cr), whole)
    np.testing.assert_array_equal(p.matrix(cr[100:140]), whole[100:140])
    assert p.transform(cr).columns == p.names and np.array_equal(p.transform(cr).to_numpy(), whole, equal_nan=True)


def test_online_events_change_user_and_pair_features(fitted):
    _, p, c = fitted
    names = p.names
    h = p.user_history(3)
    end = p.stats_.end_ts
    extended = h.extend(np.array([7, 7]), np.array([end - 10, end + 999]))  # the later one counts as at the end
    rows = c.filter(pl.col("user") == 3)
    before = p.matrix_for_history(rows, h, mode="global")
    after = p.matrix_for_history(rows, extended, mode="global")
    col = {n: j for j, n in enumerate(names)}
    assert after[7, col["pair_count"]] == before[7, col["pair_count"]] + 2
    assert after[7, col["pair_days_since_last"]] == 0.0
    assert after[0, col["user_n"]] == len(h) + 2 and after[0, col["user_days_since_last"]] == 0.0
    assert after[0, col["s_last1"]] == p.pair.similarities["s"][7, 0]  # item 7 is now the last item
    np.testing.assert_array_equal(after[:, col["item_cnt_all"]], before[:, col["item_cnt_all"]])  # item stats: the fit's


def test_empty_and_session_histories():
    from shortlist.data import build_dataset

    inter = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "timestamp": [0, 86400, 2 * 86400]})
    ds = build_dataset(inter, None)
    p = FeaturePipeline(sources=[]).fit(ds.interactions)
    c = pl.DataFrame({"user": np.array([9, 9], np.int32), "item": np.array([0, 1], np.int32),
                      "n_sources": [1, 1], "fused_score": [0.5, 0.25]})
    empty = p.matrix_for_history(c, UserHistory(np.zeros(0, np.int64), np.zeros(0, np.int64)), mode="user")
    col = {n: j for j, n in enumerate(p.names)}
    assert np.isnan(empty[:, col["user_n"]]).all() and (empty[:, col["pair_count"]] == 0).all()
    session = p.matrix_for_history(c, UserHistory(np.array([1, 0, 1]), np.array([10, 20, 30])), mode="user")
    assert session[:, col["user_n"]].tolist() == [3.0, 3.0] and session[:, col["pair_count"]].tolist() == [1.0, 2.0]
    assert np.isnan(session[0, col["user_n_baskets"]])  # no basket column at fit time


def test_one_user_block_path_equals_mixed_rows_with_unknown_items(fitted):
    """A request's rows (one user: the block lookups) equal the same rows computed among other
    users' (the scattered lookups), unknown item ids and users with short histories included."""
    _, p, c = fitted
    for u in (0, 7, 59):
        mine = c.filter(pl.col("user") == u).head(12)
        odd = mine.head(2).with_columns(pl.Series("item", [45, 40], dtype=pl.Int32))  # outside the catalogue
        req = with_reference_times(pl.concat([mine, odd]), p, mode="user")
        other = with_reference_times(c.filter(pl.col("user") == (u + 1) % 60).head(5), p, mode="user")
        alone = p.matrix(req)
        mixed = p.matrix(pl.concat([other, req]))[other.height:]
        np.testing.assert_array_equal(alone, mixed)
