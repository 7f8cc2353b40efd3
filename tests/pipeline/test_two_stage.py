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
from shortlist.pipeline.load import load_model
from shortlist.pipeline.two_stage import TwoStageRecommender, fit_threads

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


def test_retrieve_contract_and_beats_popularity(fitted):
    split, model = fitted
    users = split.test_users
    c = model.retrieve(users, 10)
    f = c.frame
    assert f.group_by("user").len()["len"].max() <= 10
    seen = split.train.frame.select("user", "item").unique()
    assert f.join(seen, on=["user", "item"], how="inner").height == 0
    ndcg = compute_metrics(c.to_matrix(users, 10), split.targets()[users], metrics=("ndcg",))["ndcg@10"]
    pop = model.fallback_.retrieve(users, 10)
    ndcg_pop = compute_metrics(pop.to_matrix(users, 10), split.targets()[users], metrics=("ndcg",))["ndcg@10"]
    assert ndcg > ndcg_pop


def test_same_seed_same_recommendations(ds, fitted):
    split, model = fitted
    again = TwoStageRecommender(sources=FAST, n_windows=2, seed=1).fit(split.train, items=ds.items)
    users = split.test_users[:50]
    assert model.retrieve(users, 10).frame.equals(again.retrieve(users, 10).frame)


def test_threads_change_nothing(ds, monkeypatch):
    """The windows' and the final refit's sources are fitted in parallel threads (sharing one
    catalogue encoding): one thread or three, the model recommends the same."""
    split = leave_last_out(ds.interactions)
    runs = []
    for threads in ("1", "3"):
        monkeypatch.setenv("SHORTLIST_FIT_THREADS", threads)
        model = TwoStageRecommender(sources=[*FAST, "ease", "als", "content"], n_windows=2, seed=3,
                                    source_params={"content": {"encoder": "tfidf", "tfidf_dim": 16}})
        runs.append(model.fit(split.train, items=ds.items))
    one, three = runs
    users = split.test_users
    assert one.retrieve(users, 10).frame.equals(three.retrieve(users, 10).frame)
    assert pickle.loads(pickle.dumps(three)).retrieve(users, 10).frame.equals(one.retrieve(users, 10).frame)
    assert one.source_weights_ == three.source_weights_
    assert one.ranker_.booster_.model_to_string() == three.ranker_.booster_.model_to_string()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv("SHORTLIST_FIT_THREADS", value)
    with pytest.raises(ConfigError, match="SHORTLIST_FIT_THREADS"):
        fit_threads(3)


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("SHORTLIST_FIT_THREADS", " 2 ")
    assert fit_threads(3) == 2
    assert fit_threads(1) == 1
    monkeypatch.delenv("SHORTLIST_FIT_THREADS")
    assert 1 <= fit_threads(3) <= 3


@pytest.mark.parametrize("stage", ["_window_candidates", "_final_fit", "_window_frame"])
def test_an_error_in_a_parallel_fit_stage_reaches_the_caller(ds, monkeypatch, stage):
    def boom(*args, **kwargs):
        raise RuntimeError(f"boom in {stage}")

    monkeypatch.setattr(TwoStageRecommender, stage, boom)
    split = leave_last_out(ds.interactions)
    with pytest.raises(RuntimeError, match=f"boom in {stage}"):
        TwoStageRecommender(sources=FAST, n_windows=2, seed=1).fit(split.train, items=ds.items)


def test_recommend_external_ids_with_fallback(fitted):
    split, model = fitted
    ids = [*split.train.users.ids.head(3).to_list(), "somebody-new"]
    recs = model.recommend(ids, 5)
    assert recs.columns == ["user_id", "item_id", "rank", "score"]
    assert recs.group_by("user_id").len().sort("user_id")["len"].to_list() == [5, 5, 5, 5]
    assert recs.filter(pl.col("user_id") == "somebody-new")["rank"].to_list() == [1, 2, 3, 4, 5]


def test_save_load_identical_and_verified(tmp_path, fitted):
    split, model = fitted
    d = model.save(tmp_path / "m")
    loaded = load_model(d)
    ids = [*split.train.users.ids.head(40).to_list(), "x"]
    assert loaded.recommend(ids, 10).equals(model.recommend(ids, 10))
    assert (d / "ranker.txt").exists() and (d / "importance.csv").exists()
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
    users = np.arange(20)
    f = model.retrieve(users, 10).frame
    seen = ds.interactions.frame.select("user", "item").unique()
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


def test_fusion_weights_learned_from_the_training_window(fitted):
    _, model = fitted
    w = model.source_weights_
    # a learned fusion: per source an RRF coefficient and a presence bonus, and the popularity prior
    assert w is not None and set(w) == {*FAST, *(f"{s}@present" for s in FAST), "@prior:popular"}
    assert model.generator_.weights == w and model.metrics_["source_weights"] == w


def test_learn_weights_exact():
    from shortlist.pipeline.sources import CandidateGenerator
    from shortlist.retrieval.candidates import Candidates

    gen = CandidateGenerator(["a", "b"])
    a = Candidates.from_topk(np.array([0, 1]), np.array([[5, 6], [7, 8]]), np.ones((2, 2), np.float32), "a")
    b = Candidates.from_topk(np.array([0, 1]), np.array([[9, 9 + 1], [11, 12]]), np.ones((2, 2), np.float32), "b")
    labels = pl.DataFrame({"user": [0, 1], "item": [5, 8]}, schema={"user": pl.Int32, "item": pl.Int32})
    w = gen.learn_weights({"a": a, "b": b}, labels)
    # raw recall@100: a finds both labels (1.0), b none (floored at 1e-3); scaled to mean 1, rounded
    assert w == {"a": pytest.approx(2 / 1.001, abs=1e-4), "b": pytest.approx(0.002 / 1.001, abs=1e-4)}


def test_bad_options_fail_early_with_the_valid_ones():
    from shortlist.errors import ConfigError

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


def test_candidate_budget_follows_the_target_unless_given():
    assert TwoStageRecommender(target="last").candidates_count == 200
    assert TwoStageRecommender(target="days:14").candidates_count == 100
    assert TwoStageRecommender(target="days:14", max_candidates=37).candidates_count == 37
    model = TwoStageRecommender(target="days:14")
    assert model.config()["max_candidates"] is None  # saved as "the target's default"
    assert model._generator(make_synthetic(n_users=20, n_items=10, n_interactions=200, seed=0).interactions
                            ).max_candidates == 100


def test_data_derived_source_params_follow_basket_size():
    from shortlist.pipeline.sources import data_source_params

    retail = make_synthetic(n_users=20, n_items=30, n_interactions=400, seed=1).interactions
    big = retail.with_frame(retail.frame.with_columns(pl.lit("one-basket").alias("basket")))
    # EASE's half-life: half of the 179.3-day span
    assert data_source_params(big) == {"content": {"n_recent": 200, "sharpen": 5.0}, "ease": {"half_life_days": 89.7}}
    assert data_source_params(retail.with_frame(retail.frame.drop("basket"))) == {}


def test_serving_api_one_code_path(fitted):
    split, model = fitted
    users = np.array([0, 5, 17])
    cands = model.generator_.generate(users, exclude_seen=True)
    batch = model.features_for(cands)
    assert batch.shape == (cands.height, len(model.feature_names)) and batch.dtype == np.float32
    scores = model.score_candidates(cands)
    for u in users:
        rows = np.flatnonzero(cands["user"].to_numpy() == u)
        one = cands[rows]
        np.testing.assert_array_equal(model.features_for(one, history=model.user_history(int(u))), batch[rows])
        np.testing.assert_array_equal(model.features_for(one), batch[rows])  # one user's rows alone
        np.testing.assert_array_equal(model.score_candidates(one, history=model.user_history(int(u))), scores[rows])
        np.testing.assert_array_equal(model.score_candidates(one), scores[rows])  # one user alone: same scores
    contrib = model.contributions(cands[:7])
    assert contrib.shape == (7, len(model.feature_names) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), scores[:7], rtol=1e-5, atol=1e-5)
    h = model.user_history(0)
    assert len(h) == split.train.frame.filter(pl.col("user") == 0).height
    later = h.extend(np.array([int(cands["item"][0])]), np.array([split.train.time_span()[1]]))
    assert model.features_for(cands[:1], history=later)[0, model.feature_names.index("user_n")] == len(h) + 1


def test_vector_cache_copies_with_fresh_locks():
    from shortlist.pipeline.sources import VectorCache

    cache = VectorCache()
    cache.put("content", (np.ones((3, 2), np.float32), "tfidf"))
    with cache.lock("content"):
        copy = pickle.loads(pickle.dumps(cache))  # a held lock does not travel
    assert copy.get("content")[1] == "tfidf" and np.array_equal(copy.get("content")[0], np.ones((3, 2)))
    assert copy.lock("content").acquire(blocking=False)


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
