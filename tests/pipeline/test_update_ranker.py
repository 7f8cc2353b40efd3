"""update_model(..., ranker="refresh"): the ranker retrained on the new period as one label window over
the old model's own stage 1 and features (no leakage), and the failures of that path."""

from __future__ import annotations

import polars as pl
import pytest

import shortlist.pipeline.update_ranker as update_ranker
from shortlist.data import Interactions
from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import UpdateError
from shortlist.pipeline.labels import Target
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.pipeline.update import update_model
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, USER_ID

SOURCES = ["repurchase", "itemknn", "covisit", "als", "popular"]


@pytest.fixture(scope="module")
def logs():
    """(the old log, the new log, the label window's days): the new log is the last 30% of the time;
    the window covers about its first two thirds, so some new rows fall after it."""
    raw = export_interactions(make_synthetic(n_users=200, n_items=80, n_interactions=8000, seed=11).interactions)
    ts = raw.get_column(TIMESTAMP)
    cut = int(ts.quantile(0.7))
    days = (int(ts.max()) - cut) * 2 / 3 / SECONDS_PER_DAY
    return raw.filter(pl.col(TIMESTAMP) <= cut), raw.filter(pl.col(TIMESTAMP) > cut), days


@pytest.fixture(scope="module")
def fitted(logs):
    old, _, days = logs
    model = TwoStageRecommender(sources=SOURCES, n_windows=2, allow_repeats=True, target=f"days:{days}", seed=4)
    return model.fit(Interactions.from_frame(old))


@pytest.fixture(scope="module")
def refreshed(fitted, logs):
    """(the refreshed model, what each window_frame call was given)."""
    calls = []
    real = update_ranker.window_frame

    def spy(stage, features, window, users, index, config, *args):
        calls.append((stage, features, window, users))
        return real(stage, features, window, users, index, config, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(update_ranker, "window_frame", spy)
        model = update_model(fitted, logs[1], ranker="refresh")
    return model, calls


def test_refresh_learns_from_the_new_period_over_the_old_sources(fitted, refreshed, logs):
    model, calls = refreshed
    assert len(calls) == 1
    stage, features, window, users = calls[0]
    assert stage is fitted.stage1_ and features is fitted.features_  # fitted on the history before the labels
    assert len(window.history) == len(fitted.history_)
    end = int(fitted.history_.frame.get_column(TIMESTAMP).max())
    stop = end + int(fitted.target.days * SECONDS_PER_DAY)
    summary = model.metrics_["update"]
    new = model.history_.frame.tail(summary["rows"])  # the new rows as the update read them
    inside = new.filter(pl.col(TIMESTAMP) <= stop)
    pairs = set(zip(inside.get_column(USER).to_list(), inside.get_column(ITEM).to_list(), strict=True))
    labels = set(zip(window.labels.get_column(USER).to_list(), window.labels.get_column(ITEM).to_list(), strict=True))
    assert labels and labels <= pairs  # labels: new rows inside the window only
    after = new.filter(pl.col(TIMESTAMP) > stop)
    late_only = set(zip(after.get_column(USER).to_list(), after.get_column(ITEM).to_list(), strict=True)) - pairs
    assert late_only and not labels & late_only  # rows after the window taught nothing
    info = summary["ranker_refresh"]
    assert summary["ranker"] == "refresh" and info["rows_after_window"] > 0
    warm = pl.col(USER) < fitted.history_.n_users
    assert info["rows_after_window"] == after.filter(warm).height
    assert info["label_rows"] == inside.filter(warm).height
    assert set(users.tolist()) <= set(window.labels.get_column(USER).to_list())


def test_refresh_replaces_the_ranker_and_keeps_the_rest(fitted, refreshed):
    model, _ = refreshed
    assert model.ranker_ is not fitted.ranker_ and model.ranker_ is not None
    assert model.feature_names == fitted.feature_names and model.stage1_.fusion == fitted.stage1_.fusion
    users = model.history_.users.ids.head(30)
    assert model.recommend(users, 5).get_column("score").null_count() == 0


def test_refresh_is_refused_where_it_cannot_learn(fitted, logs):
    few = logs[1].filter(pl.col(USER_ID).is_in(logs[1].get_column(USER_ID).unique().sort().head(3).implode()))
    with pytest.raises(UpdateError, match="--ranker keep"):
        update_model(fitted, few, ranker="refresh")
    with pytest.raises(UpdateError, match="keep, refresh"):
        update_model(fitted, logs[1], ranker="retrain")


def test_the_window_under_each_target():
    def log(rows):
        return pl.DataFrame(rows, schema={USER: pl.Int32, ITEM: pl.Int32, TIMESTAMP: pl.Int64,
                                          "weight": pl.Float32}, orient="row")

    from shortlist.data.ids import IdMap

    users, items = IdMap.from_values(pl.Series(["a", "b", "c"])), IdMap.from_values(pl.Series(["x", "y", "z"]))
    old = Interactions(log([(0, 0, 10, 1.0), (1, 1, 20, 1.0)]), users, items, has_time=True)
    added = Interactions(log([(0, 2, 40, 1.0), (0, 1, 30, 1.0), (1, 0, 20, 1.0), (2, 0, 35, 1.0)]), users, items,
                         has_time=True)
    old = Interactions(old.frame, IdMap.from_values(pl.Series(["a", "b"])), items, has_time=True)  # "c" is a new user
    window, counts = update_ranker.new_period_window(old, added, Target.parse("last"), repeats=True, event_weights={})
    assert sorted(map(tuple, window.labels.select(USER, ITEM).rows())) == [(0, 1)]  # a's first new row
    assert counts["cold_user_rows"] == 1 and counts["rows_at_or_before_history_end"] == 1
    window, counts = update_ranker.new_period_window(old, added, Target("days", 15 / SECONDS_PER_DAY), repeats=True,
                                                     event_weights={})
    assert sorted(map(tuple, window.labels.select(USER, ITEM).rows())) == [(0, 1)] and counts["rows_after_window"] == 1
    with pytest.raises(UpdateError, match="no time order"):
        update_ranker.new_period_window(old, added, Target.parse("random:0.2"), repeats=True, event_weights={})


def test_a_model_whose_ranker_trained_on_a_cluster_refreshes_here(fitted, logs):
    """lightgbm-dask needs a cluster to fit; outside one, its refresh trains LightGBM in this process."""
    import copy
    from dataclasses import replace

    model = copy.deepcopy(fitted)
    assert model.resolved_ is not None
    model.resolved_ = replace(model.resolved_, ranker="lightgbm-dask")
    updated = update_model(model, logs[1], ranker="refresh")
    assert updated.ranker_ is not None and updated.ranker_ is not model.ranker_
    assert updated.metrics_["update"]["ranker_refresh"]["ranker"]["train_rows"] > 0
