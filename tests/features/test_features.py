"""Feature builders: exact values on a tiny hand-built history."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shortlist.data import build_dataset
from shortlist.features.base import FeatureRows, SparseCells, TimeScale, count_in_window, sorted_item_times, table_cells
from shortlist.features.item import ItemFeatures
from shortlist.features.pair import PairFeatures
from shortlist.features.pipeline import FeaturePipeline
from shortlist.features.similarity import SimilarityFeatures
from shortlist.features.stats import HistoryStats
from shortlist.features.user import UserFeatures
from shortlist.retrieval.union import CandidateUnion
from shortlist.schema import SECONDS_PER_DAY

DAY = SECONDS_PER_DAY


@pytest.fixture(scope="module")
def ds():
    # user a: x(d0), y(d1), x(d10); user b: y(d2), z(d5). Items: x=0, y=1, z=2; users: a=0, b=1
    inter = pl.DataFrame({
        "user_id": ["a", "a", "b", "b", "a"],
        "item_id": ["x", "y", "y", "z", "x"],
        "timestamp": [0, 1 * DAY, 2 * DAY, 5 * DAY, 10 * DAY],
        "price": [2.0, 4.0, 4.0, 10.0, 2.0],
    })
    items = pl.DataFrame({"item_id": ["x", "y", "z"], "title": ["ab", "abcd", ""], "category": ["c1", "c1", "c2"]})
    return build_dataset(inter, items)


def features(builder, ds, users, items, ref) -> pl.DataFrame:
    """``builder`` fitted on ``ds`` and computed for (user row, item, reference time) rows."""
    stats = HistoryStats.build(ds.interactions, ds.items)
    builder.fit(stats, ds.interactions, items=ds.items)
    profiles = stats.profiles_for(np.arange(stats.n_users))
    rows = FeatureRows(profiles, np.array(users, np.int64), np.array(items, np.int64), np.array(ref, np.int64))
    return pl.DataFrame(builder.compute(rows))


def test_sparse_cells_match_dense_lookup():
    rng = np.random.default_rng(0)
    m = sp.random(30, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    r, c = rng.integers(-2, 32, 500), rng.integers(-2, 42, 500)
    dense = m.toarray()
    expected = np.array([dense[i, j] if 0 <= i < 30 and 0 <= j < 40 else 0.0 for i, j in zip(r, c, strict=True)])
    np.testing.assert_array_equal(SparseCells(m).get(r, c), expected.astype(np.float32))
    assert SparseCells(sp.csr_matrix((3, 3), dtype=np.float32)).get(r[:4], c[:4]).tolist() == [0.0] * 4


def test_count_in_window(ds):
    keys = sorted_item_times(ds.interactions)
    # item x at days 0 and 10; window (day 0, day 10] → 1; (−1, 10] → 2
    got = count_in_window(keys, np.array([0, 0, 1]), np.array([0, 0 - 1, 0]), np.array([10 * DAY, 10 * DAY, 10 * DAY]))
    assert got.tolist() == [1.0, 2.0, 2.0]


def test_time_scale_windows():
    w = TimeScale(365.0).windows
    assert w["short"] == pytest.approx(7.3) and w["medium"] == pytest.approx(365 / 12) and w["long"] == pytest.approx(365 / 3)


def test_item_features_exact(ds):
    out = features(ItemFeatures(), ds, [0, 1, 0], [0, 1, 2], [10 * DAY, 3 * DAY, 4 * DAY])
    assert out.columns == ItemFeatures.names
    assert out["item_cnt_all"].to_list() == [2.0, 2.0, 1.0]
    assert out["item_users_all"].to_list() == [1.0, 2.0, 1.0]
    assert out["item_age_days"].to_list() == [10.0, 2.0, -1.0]
    assert out["item_days_since_last"].to_list()[:2] == [0.0, 1.0]
    assert out["item_days_since_last"][2] is None or np.isnan(out["item_days_since_last"][2])
    assert out["item_pop_rank"].to_list() == [2.0, 1.0, 3.0]
    assert out["item_repeat_share"].to_list() == [1.0, 0.0, 0.0]
    assert out["item_title_len"].to_list() == [2.0, 4.0, 0.0]
    assert out["item_price_log"][2] == pytest.approx(np.log1p(10.0))
    assert out["item_category"].to_list() == [0.0, 0.0, 1.0]


def test_user_features_exact(ds):
    out = features(UserFeatures(), ds, [0, 1, 7], [0, 0, 0], [10 * DAY, 10 * DAY, 10 * DAY])
    assert out["user_n"].to_list()[:2] == [3.0, 2.0]
    assert out["user_n_items"].to_list()[:2] == [2.0, 2.0]
    assert out["user_span_days"].to_list()[:2] == [10.0, 3.0]
    assert out["user_days_since_last"].to_list()[:2] == [0.0, 5.0]
    assert out["user_repeat_rate"][0] == pytest.approx(1 / 3)
    assert out["user_price_mean"][0] == pytest.approx(8 / 3)
    assert out["user_top_cat_share"].to_list()[:2] == [1.0, 0.5]
    assert out["user_cat_entropy"][1] == pytest.approx(np.log(2))
    assert all(v is None or np.isnan(v) for v in out.row(2))  # unknown user: all missing


def test_pair_features_exact(ds):
    sim = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 2], [0, 0, 0]], dtype=np.float32))
    out = features(PairFeatures(similarities={"s": sim}, last_n=(1, 3)), ds, [0, 0, 1], [0, 2, 0], [10 * DAY] * 3)
    assert out["pair_count"].to_list() == [2.0, 0.0, 0.0]
    assert out["pair_days_since_last"][0] == 0.0 and out["pair_days_since_first"][0] == 10.0
    assert out["pair_cat_affinity"].to_list() == [1.0, 0.0, 0.5]
    # user a's recent items: x (day 10) then y; sim[x, z] = 0, sim[y, z] = 2
    assert out["s_last1"].to_list() == [0.0, 0.0, 0.0]
    assert out["s_last3"].to_list() == [0.0, 2.0, 0.0]
    assert out["pair_price_ratio"][1] == pytest.approx(10.0 / 3.0)
    assert out["pair_interval_days"][0] == 10.0 and out["pair_cycle_ratio"][0] == 0.0
    assert out["pair_share"].to_list()[:2] == pytest.approx([2 / 3, 0.0])
    assert np.isnan(out["pair_interval_days"][1])


def test_recent_items_order(ds):
    stats = HistoryStats.build(ds.interactions, ds.items)
    assert stats.profiles_for(np.arange(stats.n_users)).recent[:, :3].tolist() == [[0, 1, -1], [2, 1, -1]]


def test_similarity_features(ds):
    v = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    out = features(SimilarityFeatures(embeddings={"e": v}), ds, [0, 1], [2, 0], [0, 0])
    assert out["e_sim_last1"][0] == pytest.approx(1 / np.sqrt(2))  # a's last item x vs z
    assert out["e_sim_max10"][1] == pytest.approx(1 / np.sqrt(2))  # b's items y, z vs x: best is z
    assert out["e_sim_last1"][1] == pytest.approx(1 / np.sqrt(2))


def test_pipeline_names_descriptions_and_reference_times(ds):
    p = FeaturePipeline(sources=["src"]).fit(ds.interactions, items=ds.items)
    assert len(p.names) == len(set(p.names)) and set(p.descriptions()) == set(p.names)
    union = CandidateUnion(np.array([0, 1]), np.array([2, 0]), np.array([[1, 100_000]], np.int32),
                           np.array([[0.5, np.nan]], np.float32), ("src",), np.array([1 / 31, 0.0], np.float32))
    X = p.matrix(union)
    assert X.shape == (2, len(p.names)) and X[:, :4].tolist()[0][:3] == [0.5, 1.0, 1.0]
    assert np.isnan(X[1, 0]) and X[1, 1] == 100_000
    assert p.reference_times(np.array([0, 1, 9])).tolist() == [10 * DAY, 5 * DAY, 10 * DAY]
    glob = FeaturePipeline(sources=["src"], reference="global").fit(ds.interactions, items=ds.items)
    assert glob.reference_times(np.array([0, 1])).tolist() == [10 * DAY, 10 * DAY]
    with pytest.raises(ValueError, match="sources"):
        FeaturePipeline(sources=["other"]).fit(ds.interactions).matrix(union)


def test_similarity_table_and_blocked_paths_agree(ds, monkeypatch):
    import shortlist.features.similarity as simmod

    v = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
    args = ([0, 0, 1, 1, 5], [0, 2, 1, 2, 1], [0, 0, 0, 0, 0])
    table = features(SimilarityFeatures(embeddings={"e": v}), ds, *args)
    monkeypatch.setattr(simmod, "DENSE_ITEM_TABLE_CELLS", 0)
    blocked = features(SimilarityFeatures(embeddings={"e": v}), ds, *args)
    np.testing.assert_allclose(table.to_numpy(), blocked.to_numpy(), rtol=1e-5, atol=1e-6)


def test_table_cells_is_a_scattered_lookup():
    rng = np.random.default_rng(5)
    table = rng.random((50, 40)).astype(np.float32)
    cols = rng.integers(0, 40, 30)
    same = np.broadcast_to(rng.integers(0, 50, 10), (30, 10)).copy()
    mixed = rng.integers(0, 50, (30, 10))
    for rows in (same, mixed, same[:1], same[:0]):
        expected = table.ravel().take(rows * 40 + cols[: len(rows), None])
        np.testing.assert_array_equal(table_cells(table, rows, cols[: len(rows)]), expected)
