"""The ranker's training rows: positives kept, hardest negatives kept, the rest sampled by a hash of
(seed, user, item) so a user's rows never depend on the shard; validation never splits a user."""

from __future__ import annotations

import numpy as np

from shortlist.config import TwoStageConfig
from shortlist.pipeline.negatives import sample_rows, uniform_hash
from shortlist.pipeline.training import _valid_groups, group_sizes
from shortlist.retrieval.union import CandidateUnion


def union(users: list[int], items: list[int], ranks: list[int]) -> CandidateUnion:
    n = len(users)
    return CandidateUnion(np.array(users), np.array(items), np.array([ranks], np.int32),
                          np.zeros((1, n), np.float32), ("s",))


def test_positives_and_hard_negatives_kept_rest_sampled():
    u = union([1, 1, 1, 1, 1, 2, 2, 3], [10, 11, 12, 13, 14, 10, 11, 12], [1, 2, 3, 4, 5, 1, 2, 1])
    y = np.array([0, 1, 0, 0, 0, 0, 0, 1], np.float32)
    keep = sample_rows(u, y, TwoStageConfig(max_negatives=2, hard_negatives=1))
    kept_user1 = [i for i in keep if u.users[i] == 1]
    assert 1 in kept_user1 and 0 in kept_user1 and len(kept_user1) == 3  # positive, hardest, one random
    assert {5, 6} <= set(keep.tolist()) and 7 in keep  # user 2's two negatives, user 3's positive
    assert len(sample_rows(u, y, TwoStageConfig(max_negatives=None))) == 8


def test_a_users_sample_does_not_depend_on_the_other_rows():
    u = union([1] * 6 + [2] * 6, list(range(6)) * 2, list(range(1, 7)) * 2)
    y = np.zeros(12, np.float32)
    cfg = TwoStageConfig(max_negatives=3, hard_negatives=1)
    together = sample_rows(u, y, cfg)
    alone = sample_rows(u.take(np.arange(6, 12)), y[6:], cfg) + 6
    assert together[together >= 6].tolist() == alone.tolist()
    assert ((uniform_hash(u.users, u.items, 0) >= 0) & (uniform_hash(u.users, u.items, 0) < 1)).all()
    assert not np.array_equal(uniform_hash(u.users, u.items, 0), uniform_hash(u.users, u.items, 1))


def test_validation_never_splits_a_group_and_sizes_count_runs():
    groups = np.repeat(np.arange(20), 3)
    mask = _valid_groups(groups, 0.25, np.random.default_rng(1))
    assert all(len(set(mask[groups == g])) == 1 for g in range(20)) and mask.sum() == 15
    assert group_sizes(np.array([1, 1, 1, 1, 1, 2, 2, 3])).tolist() == [5, 2, 1] and group_sizes(np.zeros(0)).tolist() == []


def test_training_rows_are_gathered_across_windows_in_order():
    from shortlist.pipeline.training import WindowFrame, _gather

    a = WindowFrame(np.arange(6, dtype=np.float32).reshape(3, 2), np.zeros(3, np.float32), np.zeros(3, np.int64))
    b = WindowFrame(np.arange(6, 10, dtype=np.float32).reshape(2, 2), np.zeros(2, np.float32), np.zeros(2, np.int64))
    got = _gather([a, b], np.array([4, 0, 2, 3]))
    assert got.tolist() == [[8, 9], [0, 1], [4, 5], [6, 7]] and got.flags.c_contiguous


def test_source_hits_read_from_the_top_k_matrices_equal_the_unions_count():
    from shortlist.pipeline.training import _keys, _source_hits
    from shortlist.retrieval.union import union
    from shortlist.schema import MISSING_RANK

    rng = np.random.default_rng(3)
    users = np.array([5, 2, 9, 7])
    tops = {}
    for name in ("a", "b"):
        items = rng.integers(-1, 12, size=(len(users), 6))
        items[0, :2] = 4  # a source repeating an item counts it once
        tops[name] = (items, rng.random(items.shape).astype(np.float32))
    keys = np.sort(_keys(rng.choice(users, 30), rng.integers(0, 12, 30)))
    u = union(users, tops, ["a", "b", "c"])
    expected = (np.isin(_keys(u.users, u.items), keys)[None, :] & (u.ranks < MISSING_RANK)).sum(axis=1)
    assert _source_hits(users, tops, ["a", "b", "c"], keys).tolist() == expected.tolist()  # keys may repeat
    assert expected[:2].sum() > 0 and expected[2] == 0
