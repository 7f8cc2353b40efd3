"""A fitted stage 1 and feature pipeline split into their item side and a shard's user rows (what a
worker holds for a window's shard) give the same candidates and feature rows as the whole, and the
item side holds no row of any user. (Each source's own split: tests/retrieval/test_contract.py.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from reachable import arrays
from shortlist.data.synthetic import make_synthetic
from shortlist.pipeline.stage1 import Stage1
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.pipeline.user_rows import for_users, item_side, shards_with_rows, user_rows
from shortlist.retrieval.als import ALS
from shortlist.retrieval.popularity import Popularity


@pytest.fixture(scope="module")
def model():
    ds = make_synthetic(n_users=170, n_items=70, n_interactions=5000, with_events=True, seed=5)
    return TwoStageRecommender(target="days:7", allow_repeats=False, n_jobs=1,
                               sources=["repurchase", "itemknn", "covisit", "transition", "ease", "als", "userknn",
                                        "content", "popular", "popular_recent"],
                               source_params={"als": {"factors": 8, "iterations": 3},
                                              "content": {"encoder": "tfidf", "tfidf_dim": 16}},
                               ranker_params={"n_estimators": 5}).fit(ds.interactions, items=ds.items,
                                                                      rng=np.random.default_rng(0))


def _split(stage, features, users):
    stage, features = for_users(item_side((stage, features)), user_rows((stage, features), users))
    return replace(stage, user_ids=users), features


def test_a_shard_s_rows_give_the_whole_s_candidates_and_features(model):
    stage, features = model.stage1_, model.features_
    users = np.array([90, 4, 133, 0, 57, 12, model.n_users - 1])  # out of order, as a shard may be
    whole = stage.candidates(users, stage.topk(users, exclude_seen=True))
    part_stage, part_features = _split(stage, features, users)
    rows = np.arange(len(users))
    part = part_stage.candidates(rows, part_stage.topk(rows, exclude_seen=True))
    assert len(whole) > 100
    np.testing.assert_array_equal(users[part.users], whole.users)
    np.testing.assert_array_equal(part.items, whole.items)
    np.testing.assert_array_equal(part.fused, whole.fused)
    assert features.event_types  # the per-event features are among those compared
    np.testing.assert_array_equal(part_features.matrix(part), features.matrix(whole))


def test_the_item_side_holds_no_user_rows_and_is_not_the_fitted_objects(model):
    stage, features = model.stage1_, model.features_
    n = model.n_users
    assert n not in (model.history_.n_items, model.history_.n_items + 1)
    side_stage, side_features = item_side((stage, features))
    left = [p for p, shape in arrays((side_stage, side_features), "") if shape and shape[0] in (n, n + 1)
            and "pool" not in p]  # the user-kNN pool is compared with every shard: item side by design
    assert left == []
    assert side_features.stats_.n_users == 0 and features.stats_.n_users == n  # the fitted ones untouched
    assert side_features.builders[0].stats_ is side_features.stats_  # shared objects stay shared


class _GlobalIds:
    """A source of the user's own that does not declare its user rows: kept whole, asked by user id."""

    name = "mine"

    def __init__(self, inner):
        self.inner = inner

    def topk(self, users, k, *, exclude_seen=True):
        return self.inner.topk(users, k, exclude_seen=exclude_seen)


def test_a_source_without_declared_user_rows_is_kept_whole_and_asked_by_id(model):
    history = model.history_
    mine = _GlobalIds(ALS(factors=4, iterations=2).fit(history, rng=np.random.default_rng(1)))
    stage = Stage1({"mine": mine, "popular": Popularity(name="popular").fit(history)}, per_source=10, max_candidates=15)
    users = np.array([33, 2, 150])
    part, _ = _split(stage, None, users)
    assert part.sources["mine"] is mine
    got = part.topk(np.arange(3), exclude_seen=True)
    want = stage.topk(users, exclude_seen=True)
    for name in ("mine", "popular"):
        np.testing.assert_array_equal(got[name][0], want[name][0])


def test_a_chain_or_a_subclass_is_kept_whole_and_asked_by_id(model):
    """A chain may hold an undeclared source, a subclass more state than its base declares: neither
    is split, and both get user ids (a chain of a user's source gave other users' lists before)."""
    from shortlist.retrieval.chain import Chain
    from shortlist.retrieval.repurchase import Repurchase

    class MyALS(ALS):
        pass

    history = model.history_
    chain = Chain([_GlobalIds(Repurchase().fit(history)), Popularity().fit(history)], name="chain")
    sub = MyALS(factors=4, iterations=2, name="sub").fit(history, rng=np.random.default_rng(1))
    stage = Stage1({"chain": chain, "sub": sub}, per_source=6, max_candidates=10)
    users = np.array([40, 3, 17])
    part, _ = _split(stage, None, users)
    assert part.sources["chain"] is chain and part.sources["sub"] is sub
    got, want = part.topk(np.arange(3), exclude_seen=False), stage.topk(users, exclude_seen=False)
    for name in ("chain", "sub"):
        np.testing.assert_array_equal(got[name][0], want[name][0])


def test_a_shard_past_the_fitted_users_is_an_error_not_a_shorter_list(model):
    shards = shards_with_rows(model.stage1_, [np.array([1, 2]), np.array([model.n_users + 5]), np.array([3])])
    with pytest.raises(IndexError):
        list(shards)


def test_shards_cut_their_rows_when_asked_and_rows_fit_only_their_object(model):
    stage = model.stage1_
    shards = shards_with_rows(stage, [np.array([1, 2]), np.array([3])])
    assert len(shards) == 2 and shards[1].users.tolist() == [3] and len(shards[0:2]) == 2
    with pytest.raises(ValueError, match="not the same object"):
        for_users(item_side(stage.sources["popular"]), user_rows(stage, np.array([1])))



def _model_items(model):
    return model.history_.items.ids


@pytest.mark.parametrize("repeats", [False, True])
def test_batches_from_shards_rows_equal_the_whole_models_rank(model, repeats):
    """``recommend`` and ``candidate_batches`` run each shard from its users' rows (known users among
    unknown ones, and a shard of unknown users alone), under rules that narrow and widen: the same
    rows as the whole model's rank path and stage 1 give."""
    from shortlist.pipeline.item_rules import item_rules
    from shortlist.pipeline.rules import Rules

    m = replace_config(model, shard_users=3, allow_repeats=repeats)
    ext = m.history_.users.ids
    ids = [ext[5], "new-a", ext[m.n_users - 1], "new-b", "new-c", "new-d", ext[0], ext[90]]  # shards of 3
    rules = Rules(available_items=tuple(_model_items(m)[: len(_model_items(m)) // 3]))
    got = m.recommend(ids, 6, rules=rules)
    internal = np.array([5, m.n_users, m.n_users - 1, m.n_users + 1, m.n_users + 2, m.n_users + 3, 0, 90])
    ranked = m.rank_state().rank(internal, 6, rules=item_rules(m, rules)).to_frame()
    assert got.get_column("user_id").unique(maintain_order=True).to_list() == ids
    assert got.get_column("item_id").to_list() == m.history_.items.external(ranked.get_column("item")).to_list()
    assert got.get_column("score").to_list() == ranked.get_column("score").to_list()
    cands = pl.concat(list(m.candidate_batches(ids)))
    stage = m.stage1_
    whole = stage.candidates(internal, stage.topk(internal, exclude_seen=not repeats)).to_frame()
    assert cands.height == whole.height > 0
    assert cands.get_column("fused_score").to_list() == whole.get_column("fused_score").to_list()


def replace_config(model, **options):
    """The fitted ``model`` under other inference options (a shallow copy)."""
    import copy

    out = copy.copy(model)
    out.config = model.config.from_json({**model.config.to_json(), **options})
    return out


def test_the_rank_states_item_side_holds_no_user_rows(model):
    state = model.rank_state()
    n = model.n_users
    side = item_side(state)
    left = [p for p, shape in arrays(side, "") if shape and shape[0] in (n, n + 1) and "pool" not in p]
    assert left == [] and side.n_users == 0 and side.n_items == state.n_items


def test_a_request_shard_asks_undeclared_sources_by_the_users_ids(model):
    from shortlist.pipeline.shard_tasks import shard_state
    from shortlist.pipeline.user_rows import with_rows

    state = model.rank_state()
    users = np.array([model.n_users + 1, 7, model.n_users, 2])
    shard = with_rows(state, users, state.n_users)
    part = shard_state(item_side(state), shard)
    assert part.stage.user_ids[shard.local].tolist() == users.tolist() and part.n_users == 2


def test_a_large_part_is_ranked_shard_users_at_a_time(model, monkeypatch):
    """An export part of many users costs one ``shard_users`` slice's candidates at a time, with
    the same lists as shards of that size."""
    from shortlist.pipeline.rank_state import RankState

    m = replace_config(model, shard_users=4)
    ids = m.history_.users.ids[:11]
    sizes: list[int] = []
    rank = RankState.rank
    monkeypatch.setattr(RankState, "rank", lambda self, users, *a, **kw: sizes.append(len(users)) or
                        rank(self, users, *a, **kw))
    [part] = list(m.recommend_batches(ids, 5, shard_users=11))
    assert sizes == [4, 4, 3]
    assert part.equals(pl.concat(list(m.recommend_batches(ids, 5))))
