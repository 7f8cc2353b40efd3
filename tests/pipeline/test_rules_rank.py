"""Business rules through the model's one rank path: each rule against the same model's plain lists."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shortlist.data.split import leave_last_out
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import RulesError
from shortlist.pipeline.item_rules import ItemRules, model_catalogue
from shortlist.pipeline.rules import Boost, Pin, Rules
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.schema import CATEGORY, ITEM, PRICE

K = 8
USERS = np.arange(0, 200, 7)


@pytest.fixture(scope="module")
def model() -> TwoStageRecommender:
    ds = make_synthetic(n_users=200, n_items=100, n_interactions=6000, repeat_share=0.0, seed=7)
    train = leave_last_out(ds.interactions).train
    # A small candidate budget, so that a filter leaves lists short and widening has work to do.
    return TwoStageRecommender(sources=["itemknn", "covisit", "popular"], n_windows=1, per_source=12,
                               max_candidates=12, seed=1).fit(train, items=ds.items)


@pytest.fixture(scope="module")
def plain(model):
    return model.rank(USERS, K)


def ext(model, items: np.ndarray) -> list[str]:
    return model.history_.items.external(items).to_list()


def column(model, name: str) -> np.ndarray:
    return model.items_.aligned(name).to_numpy()


def test_no_rules_and_empty_rules_give_the_plain_lists(model, plain):
    for rules in (None, Rules(), ItemRules()):
        again = model.rank(USERS, K, rules=rules)
        np.testing.assert_array_equal(again.items, plain.items)
        np.testing.assert_array_equal(again.scores, plain.scores)


def test_excluding_each_users_first_item_shifts_the_list_up(model, plain):
    firsts = np.unique(plain.items[:, 0])
    # widen=1: the same candidate pool, so what is left of each plain list keeps its order, at the top
    ranked = model.rank(USERS, K, rules=Rules(exclude_items=tuple(ext(model, firsts)), widen=1))
    assert not np.isin(ranked.items, firsts).any()
    for r in range(len(USERS)):
        rest = [i for i in plain.items[r] if i not in firsts]
        assert ranked.items[r, : len(rest)].tolist() == rest


def test_a_pin_takes_its_position_and_the_rest_follow_in_order(model, plain):
    seen = model.history_.to_csr(binary=True)
    item = int(np.setdiff1d(np.arange(model.history_.n_items), plain.items)[0])
    ranked = model.rank(USERS, K, rules=Rules(pins=(Pin(ext(model, [item])[0], 3),)))
    assert 0 < (ranked.items[:, 2] == item).sum() < len(USERS) or not any(seen[u, item] for u in USERS)
    for r, u in enumerate(USERS):
        if seen[u, item]:
            assert ranked.items[r].tolist() == plain.items[r].tolist()  # seen: the pin is skipped
        else:
            assert ranked.items[r].tolist() == [*plain.items[r, :2], item, *plain.items[r, 2:K - 1]]
            assert np.isnan(ranked.scores[r, 2]) and ranked.rows[r, 2] == -1


def test_a_large_boost_moves_an_item_first_and_adds_its_log(model, plain):
    r = 0
    item = int(plain.items[r, 4])
    ranked = model.rank(USERS[:1], K, rules=Rules(boosts=(Boost(items=tuple(ext(model, [item])), multiply=1e6),)))
    assert ranked.items[0].tolist() == [item, *plain.items[r, :4], *plain.items[r, 5:]]
    assert ranked.scores[0, 0] == pytest.approx(plain.scores[r, 4] + np.log(1e6), rel=1e-5)
    lowered = model.rank(USERS[:1], K, rules=Rules(boosts=(Boost(items=tuple(ext(model, [item])), add=-1e6),)))
    assert item not in lowered.items[0, :K - 1].tolist()


def test_category_filter_price_range_and_cap(model):
    cats = np.array([str(c).casefold() for c in column(model, CATEGORY)])
    price = column(model, PRICE)
    ranked = model.rank(USERS, K, rules=Rules(categories=("CAT_01", "cat_03"), max_price=4.0))
    listed = ranked.items[ranked.items >= 0]
    assert len(listed) and set(cats[listed]) <= {"cat_01", "cat_03"} and (price[listed] <= 4.0).all()
    capped = model.rank(USERS, K, rules=Rules(max_per_category=2))
    for row in capped.items:
        _, counts = np.unique(cats[row[row >= 0]], return_counts=True)
        assert counts.max() <= 2 and (row >= 0).sum() == K


def test_widening_fills_filtered_lists_with_ranked_items(model):
    rules = Rules(categories=("cat_00",))
    narrow = model.rank(USERS, K, rules=Rules(categories=("cat_00",), widen=1))
    wide = model.rank(USERS, K, rules=rules)
    scored_narrow, scored_wide = (narrow.rows >= 0).sum(axis=1), (wide.rows >= 0).sum(axis=1)
    assert (scored_wide >= scored_narrow).all() and scored_wide.sum() > scored_narrow.sum()
    cats = np.array([str(c) for c in column(model, CATEGORY)])
    assert (cats[wide.items[wide.items >= 0]] == "cat_00").all()
    # the widened rows' union rows and features stay aligned with the lists
    assert wide.features.shape[0] == len(wide.union)
    hit = wide.rows >= 0
    np.testing.assert_array_equal(wide.union.items[wide.rows[hit]], wide.items[hit])
    np.testing.assert_array_equal(wide.union.users[wide.rows[hit]], np.repeat(USERS, hit.sum(axis=1)))
    # a user ranked alone gets the list they get in the shard
    alone = model.rank(USERS[3:4], K, rules=rules)
    assert alone.items[0].tolist() == wide.items[3].tolist()


def test_batch_rules_are_the_request_rules(model):
    excluded, pinned = ext(model, np.array([0, 5]))
    rules = Rules(exclude_items=(excluded,), max_per_category=3, pins=(Pin(pinned, 1),))
    users = model.history_.users.external(USERS[:5])
    batch = model.recommend(users, K, rules=rules)
    compiled = ItemRules.compile(rules, model_catalogue(model))
    one = model.rank(USERS[:5], K, rules=compiled)
    expected = [ext(model, row[row >= 0]) for row in one.items]
    got = batch.group_by("user_id", maintain_order=True).agg(pl.col("item_id")).get_column("item_id").to_list()
    assert got == expected and all(row[0] == pinned or pinned not in row for row in got)
    assert not any(excluded in row for row in got)


def test_session_history_and_unknown_users_follow_the_rules(model):
    cats = np.array([str(c) for c in column(model, CATEGORY)])
    rules = Rules(categories=("cat_11",))
    unknown = model.rank(np.array([10**6]), K, rules=rules)
    assert (cats[unknown.items[0]] == "cat_11").all() and np.isnan(unknown.scores).all()
    session = model.recommend_for_history(ext(model, np.array([0, 1])), K)  # the plain session path still works
    assert session.height == K
    history = model.user_history(3)
    ranked = model.rank(np.array([model.history_.n_users]), K, history=history, rules=rules)
    assert (cats[ranked.items[0][ranked.items[0] >= 0]] == "cat_11").all()


def test_rules_the_model_cannot_answer_are_errors(model):
    with pytest.raises(RulesError, match="unknown to the model"):
        model.rank(USERS, K, rules=Rules(pins=(Pin("no-such-item", 1),)))
    items = model.items_
    try:
        model.items_ = None
        with pytest.raises(RulesError, match="no category column"):
            model.rank(USERS, K, rules=Rules(categories=("cat_00",)))
    finally:
        model.items_ = items
    assert model.items_.frame.get_column(ITEM).len() == 100
