"""Event weights (issue 18): one table of event strengths for every count, the labels and serving;
per-event features (counts and conversion rates) for logs with event types."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from shortlist.config import TwoStageConfig, derive, load_config, model_config
from shortlist.data import Interactions
from shortlist.data.events import (
    DEFAULT_EVENT_WEIGHTS,
    check_event_weights,
    event_types,
    grade_table,
    strongest,
    weigh,
)
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError, UnknownEventError
from shortlist.features.base import FeatureRows
from shortlist.features.conversion import EventFeatures
from shortlist.features.profile import UserHistory
from shortlist.features.stats import HistoryStats
from shortlist.pipeline.labels import Target, label_windows
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.retrieval.ease import EASE
from shortlist.retrieval.repurchase import Repurchase

RR = {"view": "view", "cart": "addtocart", "purchase": "transaction"}  # RetailRocket's names
FAST = ["itemknn", "covisit", "ease", "popular"]
ONES = {"view": 1, "addtocart": 1, "transaction": 1}


def tiny() -> Interactions:
    """u0: view x, view x, addtocart x, transaction x, view y; u1: view y, transaction z; u2: addtocart z.
    (users u0, u1, u2 -> 0, 1, 2; items x, y, z -> 0, 1, 2)."""
    return Interactions.from_frame(pl.DataFrame({
        "user_id": ["u0", "u0", "u0", "u0", "u0", "u1", "u1", "u2"],
        "item_id": ["x", "x", "x", "x", "y", "y", "z", "z"],
        "timestamp": [0, 10, 20, 30, 40, 50, 60, 70],
        "event": ["view", "view", "addtocart", "transaction", "view", "view", "transaction", "addtocart"],
    }), duplicates="keep")


@pytest.fixture(scope="module")
def retail():
    """A synthetic log with RetailRocket's event names (60% views, 25% carts, 15% purchases)."""
    ds = make_synthetic(n_users=150, n_items=80, n_interactions=5000, repeat_share=0.0, with_events=True, seed=11)
    f = ds.interactions.frame
    return ds.interactions.with_frame(f.with_columns(pl.col("event").replace_strict(RR)))


# --- the table ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [{}, {"view": -1}, {"view": math.nan}, {"view": math.inf}, {"view": True},
                                 {"view": "3"}, {"": 1}, {"View": 1, "view": 2}, [("view", 1)]])
def test_a_bad_weights_table_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match="event_weights"):
        TwoStageConfig(event_weights=bad)


def test_names_are_lower_cased_and_defaults_are_the_schema_strengths():
    assert check_event_weights({"View": 1, "CART": 2.5}) == {"view": 1.0, "cart": 2.5}
    assert TwoStageConfig().event_weights == DEFAULT_EVENT_WEIGHTS


def test_weigh_multiplies_weights_and_leaves_out_weight_zero_events():
    data = tiny()
    w = weigh(data, {"view": 0.5, "addtocart": 2, "transaction": 4})
    assert w.frame.get_column("weight").to_list() == [0.5, 0.5, 2.0, 4.0, 0.5, 0.5, 4.0, 2.0]
    dropped = weigh(data, {"view": 0, "addtocart": 2, "transaction": 4})
    assert dropped.frame.get_column("event").to_list() == ["addtocart", "transaction", "transaction", "addtocart"]
    assert strongest(dropped).toarray().tolist() == [[4.0, 0.0, 0.0], [0.0, 0.0, 4.0], [0.0, 0.0, 2.0]]
    no_events = data.with_frame(data.frame.drop("event"))
    assert weigh(no_events, {"view": 5}) is no_events
    with pytest.raises(ConfigError, match="every row"):
        weigh(data, {"view": 0, "addtocart": 0, "transaction": 0})


def test_an_event_the_table_does_not_name_is_an_error_naming_it_and_the_fix():
    with pytest.raises(UnknownEventError, match=r"'addtocart' \(2 rows\).*'transaction' \(2 rows\).*\[events\]"):
        weigh(tiny(), {"view": 1})
    with pytest.raises(UnknownEventError, match="addtocart"):
        TwoStageRecommender(sources=["popular"], event_weights={"view": 1}).fit(tiny())


def test_label_grades_follow_the_weights_order():
    assert grade_table({"view": 1, "cart": 3, "purchase": 5}) == {"view": 1, "cart": 2, "purchase": 3}
    assert grade_table({"view": 0, "cart": 2, "purchase": 2}) == {"view": 0, "cart": 1, "purchase": 1}
    data = tiny()
    last = label_windows(data, Target.parse("last"), n_windows=1, repeats=True,
                         event_weights={"view": 1, "addtocart": 5, "transaction": 9})[0]
    assert sorted(last.labels.rows()) == [(0, 1, 1.0), (1, 2, 3.0)]  # a view, a transaction (u2: no history)
    no_views = label_windows(data, Target.parse("last"), n_windows=1, repeats=True,
                             event_weights={"view": 0, "addtocart": 5, "transaction": 9})[0]
    assert no_views.labels.rows() == [(1, 2, 2.0)]  # a view of weight 0 is no label


# --- the sources read strengths, in batch and for an ad-hoc history alike ---------------------------------
@pytest.mark.parametrize("source", [EASE(l2=1.0), EASE(l2=1.0, binary=False), Repurchase(half_life_days=30)])
def test_a_history_weighed_at_serving_scores_as_the_fitted_user(retail, source):
    data = weigh(retail, {"view": 1, "addtocart": 4, "transaction": 9})
    src = source.fit(data)
    f = data.frame.filter(pl.col("user") == 3)
    items, ts, w = (f.get_column(c).to_numpy() for c in ("item", "timestamp", "weight"))
    exclude = not isinstance(source, Repurchase)
    batch = src.topk(np.array([3]), 10, exclude_seen=exclude)
    adhoc = src.topk_for_history(items, 10, timestamps=ts, exclude_seen=exclude, weights=w)
    np.testing.assert_array_equal(adhoc[0], batch[0])
    scale = batch[1][0, 0] / adhoc[1][0, 0]  # repurchase decays to the log's end at fit, to the history's own here
    np.testing.assert_allclose(adhoc[1] * scale, batch[1], rtol=1e-5)
    unweighted = src.topk_for_history(items, 10, timestamps=ts, exclude_seen=exclude)
    assert not np.allclose(unweighted[1] * batch[1][0, 0] / unweighted[1][0, 0], batch[1])  # the weights make them equal


# --- per-event features ---------------------------------------------------------------------------------
def test_event_types_are_the_logs_most_frequent_first():
    assert event_types(tiny()) == ("view", "addtocart", "transaction")
    single = tiny().filter(pl.col("event") == "view")
    assert event_types(single) == ()
    assert event_types(tiny().with_frame(tiny().frame.drop("event"))) == ()
    assert derive(TwoStageConfig(sources=("popular",)), tiny()).event_types == ("view", "addtocart", "transaction")


def test_conversion_features_by_hand():
    data = weigh(tiny(), DEFAULT_EVENT_WEIGHTS)
    types = ("view", "addtocart", "transaction")
    stats = HistoryStats.build(data, event_types=types)
    feats = EventFeatures(types).fit(stats, data)
    assert feats.names == ["user_n_view", "user_n_addtocart", "user_n_transaction", "user_addtocart_per_view",
                           "user_transaction_per_view", "item_n_view", "item_n_addtocart", "item_n_transaction",
                           "item_addtocart_per_view", "item_transaction_per_view"]
    profiles = stats.profiles_for(np.arange(stats.n_users))
    rows = FeatureRows(profiles, np.array([0, 1, 2, 7]), np.array([0, 1, 2, 0]), np.zeros(4, np.int64))
    out = feats.compute(rows)
    nan = np.nan
    expected = {  # rows: (u0, x), (u1, y), (u2, z), (unknown user, x)
        "user_n_view": [3, 1, 0, nan], "user_n_addtocart": [1, 0, 1, nan], "user_n_transaction": [1, 1, 0, nan],
        "user_addtocart_per_view": [1 / 3, 0, nan, nan], "user_transaction_per_view": [1 / 3, 1, nan, nan],
        "item_n_view": [2, 2, 0, 2], "item_n_addtocart": [1, 0, 1, 1], "item_n_transaction": [1, 0, 1, 1],
        "item_addtocart_per_view": [0.5, 0, nan, 0.5], "item_transaction_per_view": [0.5, 0, nan, 0.5],
    }
    for name, values in expected.items():
        assert out[name].dtype == np.float32
        np.testing.assert_allclose(out[name], values, rtol=1e-6, err_msg=name)
    # a request's history (the user's rows plus an online transaction) counts as batch rows do
    own = stats.user_history(1).extend(np.array([0]), np.array([80]), weights=np.array([3.0]), events=np.array([2]))
    one = feats.compute(FeatureRows(stats.profile_of(own), np.zeros(1, np.int64), np.array([1]), np.zeros(1, np.int64)))
    assert one["user_n_transaction"][0] == 2 and one["user_transaction_per_view"][0] == 2


def test_no_event_features_without_event_types(retail):
    model = TwoStageRecommender(sources=FAST, n_windows=1, seed=0, event_types=())
    model.fit(retail)
    assert not [n for n in model.feature_names if "_per_" in n or n.startswith(("user_n_view", "item_n_view"))]


# --- the model ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_models(retail):
    default = TwoStageRecommender(sources=FAST, n_windows=2, seed=0).fit(retail)
    ones = TwoStageRecommender(sources=FAST, n_windows=2, seed=0, event_weights=ONES).fit(retail)
    return default, ones


def test_the_weights_change_the_model(two_models, retail):
    default, ones = two_models
    users = retail.users.ids.head(40)
    a = pl.concat(list(default.candidate_batches(users)))
    b = pl.concat(list(ones.candidate_batches(users)))
    assert not a.select("item_id", "ease_score", "itemknn_score").equals(b.select("item_id", "ease_score", "itemknn_score"))
    assert not default.recommend(users, 10).equals(ones.recommend(users, 10))
    # the per-event features are there, with rates over views (the most frequent type)
    assert {"user_n_transaction", "item_transaction_per_view", "user_addtocart_per_view"} <= set(default.feature_names)
    assert default.resolved_.event_types == ("view", "addtocart", "transaction")


def test_config_round_trip_toml_model_saved_loaded(tmp_path, retail):
    p = tmp_path / "c.toml"
    p.write_text('[model]\nsources = ["itemknn", "popular"]\nn_windows = 1\n'
                 '[events]\nweights = {view = 1, addtocart = 3, transaction = 5}\n')
    config = model_config(load_config(p))
    table = {"view": 1.0, "addtocart": 3.0, "transaction": 5.0}
    assert config.event_weights == table
    model = TwoStageRecommender(config).fit(retail)
    loaded = TwoStageRecommender.load(model.save(tmp_path / "m"))
    assert loaded.config.event_weights == loaded.resolved_.event_weights == table
    assert loaded.feature_names == model.feature_names
    users = retail.users.ids.head(30)
    assert loaded.recommend(users, 10).equals(model.recommend(users, 10))
    bad = tmp_path / "bad.toml"
    bad.write_text("[events]\nweights = {view = -2}\n")
    with pytest.raises(ConfigError, match=r"\[events\] weights: the weight of 'view'"):
        model_config(load_config(bad))


def test_serving_weighs_online_events_by_the_models_table(tmp_path, two_models, retail):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from shortlist.serving.engine import Engine

    default, _ = two_models
    engine = Engine.load(default.save(tmp_path / "m"))
    assert engine.event_weights == DEFAULT_EVENT_WEIGHTS and engine.event_types == ("view", "addtocart", "transaction")
    base = engine.user_history(5)
    items, ts = engine.recommend_user(5, 1).items[:1].astype(np.int64), np.array([engine.end_ts])
    bought = engine.with_events(base, items, ts, ["transaction"])
    viewed = engine.with_events(base, items, ts, ["view"])
    assert bought.weights[-1] == 3.0 and viewed.weights[-1] == 1.0 and bought.events[-1] == 2
    a, b = engine.recommend_history(bought, 10, user=5), engine.recommend_history(viewed, 10, user=5)
    assert not np.array_equal(a.scores, b.scores)  # a purchase online counts as a purchase in the fit did
    with pytest.raises(UnknownEventError, match="teleport"):
        engine.with_events(base, items, ts, ["teleport"])


def test_pushed_histories_keep_the_events_strengths_and_types():
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from shortlist.serving.histories_redis import decode, encode

    h = UserHistory(np.array([3, 1]), np.array([10, 20]), weights=np.array([3.0, 1.0], np.float32),
                    events=np.array([2, -1]))
    got = decode(encode(h))
    assert got.weights.tolist() == [3.0, 1.0] and got.events.tolist() == [2, -1] and got.baskets is None
    plain = decode(encode(UserHistory(h.items, h.timestamps)))
    assert plain.weights is None and plain.events is None
