"""Scoring saved models (A/B variants) on one split, and refusing a model that saw the test data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shortlist.data.export import export_interactions
from shortlist.data.split import split_by_protocol
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import LeakageError
from shortlist.evaluation.saved import check_unseen, evaluate_saved, rankings_of
from shortlist.pipeline.two_stage import TwoStageRecommender

FAST = {"sources": ["itemknn", "popular"], "n_windows": 1, "seed": 1}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=150, n_items=60, n_interactions=3000, repeat_share=0.0, seed=4).interactions


@pytest.fixture(scope="module")
def split(data):
    return split_by_protocol(data, "days:14", repeats=False)


@pytest.fixture(scope="module")
def honest(split):
    return TwoStageRecommender(target="days:14", **FAST).fit(split.train)


def test_rankings_are_the_models_rank_path_in_split_ids(honest, split):
    ranked = honest.rank(split.test_users, 50).items  # the model saw split.train: the same id maps
    np.testing.assert_array_equal(rankings_of(honest, split, 50), ranked)


def test_variants_are_scored_beside_popularity(honest, split):
    other = TwoStageRecommender(target="days:14", max_candidates=20, **FAST).fit(split.train)
    result = evaluate_saved({"A": honest, "B": other}, split, ks=(5, 10))
    assert result.table.get_column("model").to_list() == ["baseline:popular", "variant:A", "variant:B"]
    assert result.n_users == len(split.test_users) and result.table.get_column("ndcg@10").is_finite().all()
    from shortlist.evaluation.metrics import compute_metrics

    expected = compute_metrics(honest.rank(split.test_users, 50).items, split.targets()[split.test_users], ks=(10,),
                               metrics=("ndcg",))["ndcg@10"]
    assert result.table.filter(pl.col("model") == "variant:A")["ndcg@10"].item() == pytest.approx(expected)


def test_a_model_fitted_into_the_test_period_is_refused(data, split):
    leaky = TwoStageRecommender(target="days:14", **FAST).fit(data)
    with pytest.raises(LeakageError, match=r"variant B: its model was fitted on data up to .* into the test period"):
        check_unseen("B", leaky, split)


def test_a_model_that_holds_the_test_interactions_is_refused(data):
    llo = split_by_protocol(data, "llo", repeats=False)
    honest = TwoStageRecommender(**FAST).fit(llo.train)
    check_unseen("A", honest, llo)  # passes
    leaky = TwoStageRecommender(**FAST).fit(data)
    with pytest.raises(LeakageError, match=r"variant B: its model's history holds \d+ of the \d+ test interactions"):
        check_unseen("B", leaky, llo)


def test_cli_compares_saved_variants_and_refuses_a_leaky_one(data, tmp_path, cli):
    export_interactions(data).write_csv(tmp_path / "log.csv")
    TwoStageRecommender(target="days:14", **FAST).fit(
        split_by_protocol(data, "days:14", repeats=False).train).save(tmp_path / "A")
    TwoStageRecommender(target="days:14", **FAST).fit(data).save(tmp_path / "leaky")
    code, out, err = cli(["evaluate", "--interactions", str(tmp_path / "log.csv"), "--protocol", "days:14",
                          "--no-repeats", "--variant", f"A={tmp_path / 'A'}", "--variant", f"B={tmp_path / 'A'}"])
    assert code == 0, err
    assert "variant:A" in out and "variant:B" in out and "baseline:popular" in out and "A/B variants" in out
    code, _, err = cli(["evaluate", "--interactions", str(tmp_path / "log.csv"), "--protocol", "days:14",
                        "--no-repeats", "--variant", f"A={tmp_path / 'A'}", "--variant", f"B={tmp_path / 'leaky'}"])
    assert code == 2 and "variant B: its model was fitted on data up to" in " ".join(err.split())
