"""The two-stage model end to end on small synthetic data."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import polars as pl
import pytest

from shortlist.data import Interactions
from shortlist.data.split import leave_last_out
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError, ModelLoadError
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.item_rules import ItemRules
from shortlist.pipeline.load import load_model
from shortlist.pipeline.two_stage import TwoStageRecommender

FAST = ["transition", "itemknn", "covisit", "popular"]


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(n_users=200, n_items=100, n_interactions=6000, repeat_share=0.0, seed=7)


@pytest.fixture(scope="module")
def fitted(ds):
    split = leave_last_out(ds.interactions)
    model = TwoStageRecommender(sources=FAST, n_windows=2, seed=1).fit(split.train, items=ds.items)
    return split, model


def test_fit_trains_a_ranker_and_records_metrics(fitted):
    _, model = fitted
    m = model.metrics_
    assert m["windows"] == ["last-1", "last-2"] and model.ranker_ is not None
    assert set(m["candidate_recall"]) == {"last-1", "last-2"}
    assert m["ranker"]["best_iteration"] >= 1 and m["groups_kept"] > 20
    for name, stats in m["window_stats"].items():
        assert stats["recall"]["union"] == m["candidate_recall"][name]
        assert set(stats["recall"]) == {"union", *FAST} and 0 < stats["positives"] <= stats["labels"]
        assert all(0.0 <= r <= 1.0 for r in stats["recall"].values())
    imp = model.importance()
    assert imp.columns == ["name", "gain", "split"] and imp.height == len(model.features_.names)


def test_rank_contract_and_beats_popularity(fitted):
    split, model = fitted
    users = split.test_users
    ranked = model.rank(users, 10)
    assert ranked.items.shape == (len(users), 10) and (ranked.users == users).all()
    f = ranked.to_frame()
    seen = split.train.frame.select(pl.col("user").cast(pl.Int64), pl.col("item").cast(pl.Int64)).unique()
    assert f.join(seen, on=["user", "item"], how="inner").height == 0
    ndcg = compute_metrics(ranked.items, split.targets()[users], metrics=("ndcg",))["ndcg@10"]
    pop = model.fallback_.topk(users, 10)[0]
    assert ndcg > compute_metrics(pop, split.targets()[users], metrics=("ndcg",))["ndcg@10"]


def test_same_seed_same_recommendations(ds, fitted):
    split, model = fitted
    again = TwoStageRecommender(sources=FAST, n_windows=2, seed=1).fit(split.train, items=ds.items)
    users = split.test_users[:50]
    np.testing.assert_array_equal(model.rank(users, 10).items, again.rank(users, 10).items)


def test_jobs_and_shards_change_nothing(ds):
    """Sources fitted one at a time or side by side, users in one shard or many: the same model."""
    split = leave_last_out(ds.interactions)
    runs = []
    for jobs, shard in ((1, 10_000), (3, 37)):
        model = TwoStageRecommender(sources=[*FAST, "ease", "als", "content"], n_windows=2, seed=3, n_jobs=jobs,
                                    shard_users=shard, source_params={"content": {"encoder": "tfidf", "tfidf_dim": 16}})
        runs.append(model.fit(split.train, items=ds.items))
    one, many = runs
    users = split.test_users
    ids = split.train.users.external(users).to_list()
    assert one.recommend(ids, 10).equals(many.recommend(ids, 10))
    assert pickle.loads(pickle.dumps(many)).rank(users, 10).items.tolist() == one.rank(users, 10).items.tolist()
    assert one.stage1_.fusion == many.stage1_.fusion
    assert one.ranker_.booster_.model_to_string() == many.ranker_.booster_.model_to_string()


def test_an_error_in_a_source_fit_reaches_the_caller(ds, monkeypatch):
    from shortlist.retrieval.covisit import CoVisitation

    def boom(*args, **kwargs):
        raise RuntimeError("boom in a source")

    monkeypatch.setattr(CoVisitation, "fit", boom)
    split = leave_last_out(ds.interactions)
    with pytest.raises(RuntimeError, match="boom in a source"):
        TwoStageRecommender(sources=FAST, n_windows=2, seed=1, n_jobs=2).fit(split.train, items=ds.items)


def test_recommend_external_ids_with_fallback(fitted):
    split, model = fitted
    ids = [*split.train.users.ids.head(3).to_list(), "somebody-new"]
    recs = model.recommend(ids, 5)
    assert recs.columns == ["user_id", "item_id", "rank", "score"]
    assert recs.group_by("user_id").len().sort("user_id")["len"].to_list() == [5, 5, 5, 5]
    assert recs.filter(pl.col("user_id") == "somebody-new")["rank"].to_list() == [1, 2, 3, 4, 5]
    assert recs["user_id"].unique(maintain_order=True).to_list() == ids  # request order


def test_recommend_batches_stream_every_user(fitted):
    _, model = fitted
    parts = list(TwoStageRecommender.recommend_batches(model, None, 3))
    everyone = pl.concat(parts)
    assert everyone["user_id"].n_unique() == model.n_users and everyone.height <= 3 * model.n_users
    small = model.config.shard_users
    assert len(parts) == -(-model.n_users // small)


def test_save_load_identical_and_verified(tmp_path, fitted):
    split, model = fitted
    d = model.save(tmp_path / "m")
    loaded = load_model(d)
    ids = [*split.train.users.ids.head(40).to_list(), "x"]
    assert loaded.recommend(ids, 10).equals(model.recommend(ids, 10))
    assert (d / "ranker.txt").exists() and (d / "importance.csv").exists()
    assert loaded.history_.has_time and loaded.resolved_ == model.resolved_
    # the sources' equal arrays (each saves its own seen-items matrix) are one read-only copy once loaded
    seen = [s.seen_ for s in loaded.stage1_.sources.values() if getattr(s, "seen_", None) is not None]
    assert len(seen) > 1 and all(np.shares_memory(seen[0].indices, s.indices) for s in seen[1:])
    assert not seen[0].indices.flags.writeable
    (d / "ranker.txt").write_text("garbage")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model(d)


def test_too_little_data_still_gives_a_model_with_a_warning():
    df = pl.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "item_id": ["1", "2", "2", "3", "1"],
                       "timestamp": [1, 2, 3, 4, 5]})
    inter = Interactions.from_frame(df)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = TwoStageRecommender(sources=["itemknn", "popular"]).fit(inter)
    assert model.ranker_ is None and any("too little data" in str(x.message) for x in w)
    recs = model.recommend(["a", "zz"], 2)
    assert recs.filter(pl.col("user_id") == "a")["item_id"].to_list() == ["3"]  # the only unseen item
    assert recs.filter(pl.col("user_id") == "zz").height == 2


def test_days_target_with_repeats():
    ds = make_synthetic(n_users=200, n_items=80, n_interactions=8000, repeat_share=0.3, seed=3)
    model = TwoStageRecommender(target="days:10", allow_repeats=True, sources=["repurchase", "covisit", "popular"],
                                n_windows=2).fit(ds.interactions, items=ds.items)
    assert model.metrics_["windows"][0].startswith("days:10")
    f = model.rank(np.arange(20), 10).to_frame()
    seen = ds.interactions.frame.select(pl.col("user").cast(pl.Int64), pl.col("item").cast(pl.Int64)).unique()
    assert f.join(seen, on=["user", "item"], how="inner").height > 0  # repeats are allowed


def test_recommend_for_history_uses_the_session(fitted):
    split, model = fitted
    ext_items = split.train.items.ids.head(5).to_list()
    recs = model.recommend_for_history([*ext_items, "not-an-item"], 8)
    assert recs.columns == ["item_id", "rank", "score"] and recs["rank"].to_list() == list(range(1, 9))
    assert not set(recs["item_id"]) & set(ext_items)  # seen items excluded without repeats
    other = model.recommend_for_history(split.train.items.ids.slice(50, 5).to_list(), 8)
    assert recs["item_id"].to_list() != other["item_id"].to_list()  # the history matters
    empty = model.recommend_for_history([], 4)
    assert empty["rank"].to_list() == [1, 2, 3, 4]  # nothing known: popularity


def test_fusion_learned_from_the_training_window(fitted):
    _, model = fitted
    fusion = model.stage1_.fusion
    # a learned fusion: per source an RRF coefficient and a presence bonus, and the popularity prior
    assert fusion.learned and set(fusion.weights) == set(fusion.presence) == set(FAST)
    assert set(fusion.priors) == {"popular"} and model.metrics_["fusion"] == fusion.to_json()


def test_bad_options_fail_early_with_the_valid_ones():
    with pytest.raises(ConfigError, match="num_leaves"):
        TwoStageRecommender(ranker_params={"num_leaf": 3})
    with pytest.raises(ConfigError, match="unknown source 'alz'"):
        TwoStageRecommender(sources=["alz"])
    with pytest.raises(ConfigError, match="lightgbm"):
        TwoStageRecommender(ranker="catboost")
    with pytest.raises(ConfigError, match="target must be"):
        TwoStageRecommender(target="soon")
    with pytest.raises(ConfigError, match="max_candidates"):
        TwoStageRecommender(max_candidates=0)


def test_derived_options_follow_the_target_and_data():
    from shortlist.config import TwoStageConfig, derive

    data = make_synthetic(n_users=20, n_items=10, n_interactions=200, seed=0).interactions
    assert derive(TwoStageConfig(target="last"), data).max_candidates == 200
    days = derive(TwoStageConfig(target="days:14"), data)
    assert days.max_candidates == 100 and days.n_windows == 3
    from shortlist.config import LARGE_LOG_ROWS

    big = data.with_frame(data.frame.sample(LARGE_LOG_ROWS, with_replacement=True, seed=0))
    assert derive(TwoStageConfig(target="days:14"), big).n_windows == 2
    assert derive(TwoStageConfig(target="days:14", max_candidates=37), data).max_candidates == 37
    assert TwoStageConfig(target="days:14").max_candidates is None  # saved as "derive it"
    assert days.source_params["als"] == {"factors": 64, "iterations": 8} and "repurchase" not in days.sources


def test_data_derived_source_params_follow_basket_size():
    from shortlist.config import data_source_params

    retail = make_synthetic(n_users=20, n_items=30, n_interactions=400, seed=1).interactions
    big = retail.with_frame(retail.frame.with_columns(pl.lit("one-basket").alias("basket")))
    # EASE's half-life: half of the 179.3-day span
    assert data_source_params(big) == {"content": {"n_recent": 200, "sharpen": 5.0}, "ease": {"half_life_days": 89.7}}
    assert data_source_params(retail.with_frame(retail.frame.drop("basket"))) == {}


def test_a_users_list_does_not_depend_on_its_shard_and_history_path_equals_it(fitted):
    split, model = fitted
    users = np.array([0, 5, 17])
    batch = model.rank(users, 10)
    for r, u in enumerate(users):
        alone = model.rank(np.array([u]), 10)
        np.testing.assert_array_equal(alone.items[0], batch.items[r])
        np.testing.assert_array_equal(alone.scores[0], batch.scores[r])
        own = model.rank(np.array([u]), 10, history=model.user_history(int(u)))
        np.testing.assert_array_equal(own.items[0][own.rows[0] >= 0], batch.items[r][batch.rows[r] >= 0])
    assert batch.features is not None and batch.features.dtype == np.float32
    contrib = model.contributions(batch.features[:7])
    assert contrib.shape == (7, len(model.feature_names) + 1)
    scores = model.ranker_.predict(batch.features[:7])
    np.testing.assert_allclose(contrib.sum(axis=1), scores, rtol=1e-5, atol=1e-5)
    h = model.user_history(0)
    assert len(h) == split.train.frame.filter(pl.col("user") == 0).height


def test_filters_keep_only_allowed_items_and_top_up_within_them(fitted):
    _, model = fitted
    allowed = np.zeros(model.history_.n_items, bool)
    allowed[::3] = True
    ranked = model.rank(np.array([0, 10**6]), 8, rules=ItemRules(allowed=allowed))
    listed = ranked.items[ranked.items >= 0]
    assert allowed[listed].all() and (ranked.items >= 0).sum(axis=1).tolist() == [8, 8]


def test_unknown_users_get_the_popular_list(fitted):
    # bug 10: unknown users were ranked with all-NaN features (items 151st-210th by popularity)
    _, model = fitted
    recs = model.recommend(["nobody", "nobody-else"], 10)
    popular = model.history_.items.external(model.fallback_.ranking_[:10]).to_list()
    for user in ("nobody", "nobody-else"):
        got = recs.filter(pl.col("user_id") == user).sort("rank")
        assert got.get_column("item_id").to_list() == popular
        assert got.get_column("score").is_null().all()  # never scored by the ranker


def test_a_huge_k_costs_the_catalogue_not_k(fitted):
    # bug 18: recommend --k 1000000000 was killed for memory (lists padded to k)
    _, model = fitted
    user = model.history_.users.external([0]).item()
    recs = model.recommend([user, "nobody"], 10**9)
    n_items = model.history_.n_items
    assert recs.group_by("user_id").len().get_column("len").max() <= n_items
    assert model.recommend_for_history([model.history_.items.external([0]).item()], 10**9).height <= n_items


def test_the_model_accepts_source_and_ranker_objects(ds, tmp_path):
    from shortlist.ranking.lgbm import LGBMRanker
    from shortlist.retrieval.covisit import CoVisitation

    split = leave_last_out(ds.interactions)
    knn = CoVisitation(kind="user", neighbours=20, name="knn20")
    ranker = LGBMRanker(num_leaves=7, n_estimators=30)
    model = TwoStageRecommender(sources=[knn, "popular"], ranker=ranker, n_windows=2, seed=1).fit(split.train)
    assert model.stage1_.names == ("knn20", "popular") and knn.sim_ is None  # the prototype stays unfitted
    assert model.stage1_.sources["knn20"].neighbours == 20 and model.ranker_ is not ranker
    assert model.ranker_.num_leaves == 7 and model.ranker_.booster_.num_trees() <= 30
    loaded = load_model(model.save(tmp_path / "m"))
    ids = split.train.users.ids.head(10).to_list()
    assert loaded.recommend(ids, 5).equals(model.recommend(ids, 5))
    with pytest.raises(ConfigError, match="LGBMRanker"):
        TwoStageRecommender(ranker=object())
