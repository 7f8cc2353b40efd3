"""The full evaluation under every protocol the splitter knows."""

from __future__ import annotations

import pytest

from shortlist.config import TwoStageConfig
from shortlist.data.split import split_by_protocol
from shortlist.data.synthetic import make_synthetic
from shortlist.evaluation.full import evaluate_full, target_for

FAST = TwoStageConfig(sources=("transition", "itemknn", "popular"), n_windows=1)


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(n_users=120, n_items=50, n_interactions=3000, repeat_share=0.3, seed=2)


@pytest.mark.parametrize(("protocol", "target"), [("llo", "last"), ("llo:2", "last"), ("days:14", "days:14")])
def test_target_follows_the_protocol(ds, protocol, target):
    assert target_for(split_by_protocol(ds.interactions, protocol, repeats=True)) == target


def test_quantile_protocol_evaluates(ds):
    # bug 6: quantile:Q passed the protocol itself as the model's target and always failed
    split = split_by_protocol(ds.interactions, "quantile:0.9", repeats=True)
    ts = split.test.frame.get_column("timestamp")
    days = float(target_for(split).removeprefix("days:"))
    assert (int(ts.max()) - int(ts.min())) / 86400 <= days <= (int(ts.max()) - int(ts.min())) / 86400 + 0.02
    result, recall, model = evaluate_full(split, config=FAST)
    assert "two_stage" in result.table.get_column("model").to_list()
    assert str(model.target) == target_for(split) and recall.height == len(FAST.sources) + 1
