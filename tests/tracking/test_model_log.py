"""What a fitted model tells a run: its resolved configuration, its metrics as flat keys, the
ranker's per-round validation curve, its features; no MLflow needed."""

from __future__ import annotations

import math
from types import SimpleNamespace

import polars as pl
import pytest

from shortlist.data.synthetic import make_synthetic
from shortlist.pipeline.baseline import BaselineRecommender
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.tracking.evaluation import table_metrics
from shortlist.tracking.fit_report import ranker_table, window_table
from shortlist.tracking.model_log import feature_table, model_curves, model_metrics, model_params
from shortlist.tracking.resolved import flatten, metric_key, resolved_config

FAST = ["transition", "itemknn", "covisit", "popular"]


@pytest.fixture(scope="module")
def model() -> TwoStageRecommender:
    ds = make_synthetic(n_users=200, n_items=100, n_interactions=6000, repeat_share=0.0, seed=7)
    return TwoStageRecommender(sources=FAST, n_windows=2, seed=1,
                               source_params={"covisit": {"neighbours": 50}}).fit(ds.interactions, items=ds.items)


def test_metric_keys_are_mlflow_safe() -> None:
    assert metric_key("eval", "source:als", "ndcg@10") == "eval.source_als.ndcg_at_10"
    assert metric_key("candidates", "union (≤100)", "recall@50") == "candidates.union_100.recall_at_50"
    assert metric_key("window", "days:14-1", "recall", "union") == "window.days_14-1.recall.union"
    assert metric_key("x", "", "??") == "x._._"


def test_flatten_nests_dotted_and_lists_as_json() -> None:
    tree = {"model": {"target": "last", "sources": ["als", "popular"], "source_params": {"als": {"factors": 64}},
                      "empty": {}}, "seed": None}
    assert flatten(tree) == {"model.target": "last", "model.sources": '["als", "popular"]',
                             "model.source_params.als.factors": 64, "model.empty": "{}", "seed": None}


def test_resolved_config_fills_in_every_data_derived_choice(model: TwoStageRecommender) -> None:
    config = resolved_config(model)
    assert model.config.max_candidates is None and model.config.n_windows == 2  # left to the data
    assert config["kind"] == "two_stage" and config["sources"] == FAST
    assert config["max_candidates"] == 200 and config["n_windows"] == 2  # the default for target=last
    assert config["source_params"]["covisit"]["neighbours"] == 50  # the override, beside the source's defaults
    assert set(config["source_params"]) == set(FAST)
    assert not any(k.endswith("_") for params in config["source_params"].values() for k in params)
    assert config["ranker_params"]["objective"] == "lambdarank" and config["ranker_params"]["num_leaves"] == 15
    params = model_params(model)
    assert params["model.windows"] == "last-1, last-2" and params["model.source_params.covisit.neighbours"] == 50


def test_a_model_that_keeps_its_derived_config_is_read_from_it() -> None:
    class Derived:
        def to_json(self) -> dict[str, object]:
            return {"target": "days:14", "sources": ["als"], "max_candidates": 100, "n_windows": 2,
                    "source_params": {"als": {"factors": 64}}, "ranker_params": {"num_leaves": 31}}

    class Ranker:
        def params(self) -> dict[str, object]:
            return {"objective": "lambdarank", "num_leaves": 31, "learning_rate": 0.1}

    model = SimpleNamespace(name="two_stage", resolved_=Derived(), ranker_=Ranker(), config=Derived())
    assert resolved_config(model) == {
        "kind": "two_stage", "target": "days:14", "sources": ["als"], "max_candidates": 100, "n_windows": 2,
        "source_params": {"als": {"factors": 64}},
        "ranker_params": {"num_leaves": 31, "objective": "lambdarank", "learning_rate": 0.1}}


def test_a_baseline_resolves_its_auto_kind() -> None:
    assert resolved_config(BaselineRecommender(kind="auto", allow_repeats=True)) == {
        "kind": "baseline:repurchase_then_popular", "allow_repeats": True}


def test_window_stats_become_per_window_metrics() -> None:
    metrics = {"target": "days:14", "windows": ["w1"],
               "candidate_recall": {"w1": 0.5},
               "window_stats": {"w1": {"rows": 300, "positives": 12, "labels": 24,
                                       "recall": {"union": 0.5, "als": 0.25, "source:odd": 0.125}}},
               "ranker": {"best_iteration": 7, "valid_ndcg@10": 0.4, "refit": True,
                          "valid_curve": {"ndcg@10": [0.1, 0.3, 0.4]}},
               "source_weights": {"als": 1.5}, "timings": {"total_s": 3.0, "windows_s": {"w1": {"combine": 1.0}}}}
    assert model_metrics(metrics) == {
        "recall.w1": 0.5,
        "window.w1.rows": 300.0, "window.w1.positives": 12.0, "window.w1.labels": 24.0,
        "window.w1.recall.union": 0.5, "window.w1.recall.als": 0.25, "window.w1.recall.source_odd": 0.125,
        "ranker.best_iteration": 7.0, "ranker.valid_ndcg_at_10": 0.4,  # booleans and curves are not metrics
        "fusion_weight.als": 1.5, "time.total_s": 3.0, "time.windows_s.w1.combine": 1.0,
    }
    assert model_curves(metrics) == {"ranker.rounds.valid_ndcg_at_10": [0.1, 0.3, 0.4]}
    table = window_table(metrics)
    assert table is not None and table.row(0, named=True) == {
        "window": "w1", "rows": 300, "positives": 12, "labels": 24, "recall: union": 0.5, "recall: als": 0.25,
        "recall: source:odd": 0.125}
    assert ranker_table(metrics).to_dicts() == [{"metric": "best_iteration", "value": 7.0},  # type: ignore[union-attr]
                                                {"metric": "valid_ndcg@10", "value": 0.4}]


def test_without_window_stats_the_union_recall_is_the_window_table() -> None:
    table = window_table({"candidate_recall": {"last-1": 0.75, "last-2": 0.5}})
    assert table is not None and table.to_dicts() == [{"window": "last-1", "recall: union": 0.75},
                                                      {"window": "last-2", "recall: union": 0.5}]
    assert window_table({}) is None and ranker_table({"ranker": {"valid_curve": {}}}) is None


def test_the_ranker_records_its_validation_curve_per_round(model: TwoStageRecommender) -> None:
    ranker = model.metrics_["ranker"]
    curve = ranker["valid_curve"]["ndcg@10"]
    best = ranker["best_iteration"]
    assert set(ranker["valid_curve"]) == {"ndcg@5", "ndcg@10", "ndcg@20"}
    assert best <= len(curve) and curve[best - 1] == ranker["valid_ndcg@10"]
    assert all(0.0 <= v <= 1.0 for v in curve)
    stats = model.metrics_["window_stats"]
    metrics = model_metrics(model.metrics_)
    for window, s in stats.items():
        assert metrics[f"window.{window}.rows"] == s["rows"] and metrics[f"window.{window}.recall.union"] == s["recall"]["union"]
    assert len(model_curves(model.metrics_)["ranker.rounds.valid_ndcg_at_10"]) == len(curve)


def test_features_json_has_a_description_and_importance_for_every_feature(model: TwoStageRecommender) -> None:
    table = feature_table(model)
    assert table is not None
    rows = table["features"]
    assert [r["name"] for r in rows] == model.feature_names
    assert all(r["description"] and r["gain"] is not None and r["split"] is not None for r in rows)
    assert feature_table(SimpleNamespace()) is None


def test_every_numeric_cell_of_the_evaluation_table_is_a_metric() -> None:
    table = pl.DataFrame({"model": ["baseline:popular", "two_stage"], "ndcg@10": [0.1, 0.4], "fit_s": [None, 2.5],
                          "note": ["a", "b"]})
    assert table_metrics(table, prefix="eval") == {"eval.baseline_popular.ndcg_at_10": 0.1,
                                                   "eval.two_stage.ndcg_at_10": 0.4, "eval.two_stage.fit_s": 2.5}
    recall = pl.DataFrame({"candidates": ["als", "union (≤200)"], "recall@50": [0.5, math.nan]})
    assert table_metrics(recall, prefix="candidates", label="candidates")["candidates.union_200.recall_at_50"] != 0.5
