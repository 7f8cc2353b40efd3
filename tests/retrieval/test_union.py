"""The union of sources' top-k matrices: one row per (user, item), each source's rank and score."""

import numpy as np
import pytest

from shortlist.errors import ConfigError
from shortlist.retrieval.union import CandidateUnion, union
from shortlist.schema import MISSING_RANK


def tops(rows: dict[int, list[tuple[int, float]]], users: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(users × k) matrices from each user's (item, score) list in rank order."""
    k = max((len(v) for v in rows.values()), default=1)
    items = np.full((len(users), k), -1)
    scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    for r, u in enumerate(users):
        mine = rows.get(u, [])
        items[r, : len(mine)] = [i for i, _ in mine]
        scores[r, : len(mine)] = [s for _, s in mine]
    return items, scores


USERS = [0, 1, 2]
A = tops({0: [(10, 0.9), (11, 0.5)], 1: [(12, 0.7)]}, USERS)
B = tops({0: [(11, 3.0), (13, 2.0), (10, 1.0)], 2: [(10, 5.0)]}, USERS)


def rows(u: CandidateUnion) -> list[tuple]:
    return list(zip(u.users.tolist(), u.items.tolist(), u.n_sources.tolist(), *[r.tolist() for r in u.ranks],
                    strict=True))


def test_union_one_row_per_pair_with_per_source_ranks_and_scores():
    u = union(np.array(USERS), {"a": A, "b": B}, ["a", "b"])
    assert u.sources == ("a", "b") and u.fused is None
    assert rows(u) == [
        (0, 10, 2, 1, 3),
        (0, 11, 2, 2, 1),
        (0, 13, 1, MISSING_RANK, 2),
        (1, 12, 1, 1, MISSING_RANK),
        (2, 10, 1, MISSING_RANK, 1),
    ]
    assert np.isnan(u.scores[0, 2]) and u.scores[1, :3].tolist() == [1.0, 3.0, 2.0]
    assert u.ranks.dtype == np.int32 and u.scores.dtype == np.float32


def test_rows_follow_the_shard_order_and_blocks_change_nothing(monkeypatch):
    import shortlist.retrieval.union as union_module

    order = np.array([2, 0, 1])
    perm = [USERS.index(x) for x in order]
    shuffled = {s: (t[0][perm], t[1][perm]) for s, t in (("a", A), ("b", B))}
    whole = union(order, shuffled, ["a", "b"])
    assert whole.users.tolist() == [2, 0, 0, 0, 1]
    monkeypatch.setattr(union_module, "DIRECT_CELLS", 16)  # a block of one user each
    assert rows(union(order, shuffled, ["a", "b"])) == rows(whole)


def test_fusing_each_block_equals_fusing_the_whole_union(monkeypatch):
    import shortlist.retrieval.union as union_module
    from shortlist.retrieval.fusion import Fusion

    fusion = Fusion({"a": 0.5, "b": 0.0}, {"b": 1.0}, {})
    whole = union_module.fuse(union(np.array(USERS), {"a": A, "b": B}, ["a", "b"]), fusion, max_per_user=2)
    monkeypatch.setattr(union_module, "DIRECT_CELLS", 16)  # a block of one user each
    blocks = union(np.array(USERS), {"a": A, "b": B}, ["a", "b"],
                   per_block=lambda u: union_module.fuse(u, fusion, max_per_user=2))
    assert rows(blocks) == rows(whole) and len(whole) == 4  # user 0 cut from 3 items to 2
    assert np.array_equal(blocks.fused, whole.fused) and np.array_equal(blocks.scores, whole.scores, equal_nan=True)
    empty = union(np.zeros(0, np.int64), {"a": A}, ["a"], per_block=lambda u: union_module.fuse(u, fusion))
    assert len(empty) == 0 and empty.fused is not None


def test_budgets_repeats_missing_and_empty_sources():
    u = union(np.array(USERS), {"a": A, "b": B}, ["a", "b"], budgets={"b": 1})
    assert list(zip(u.users.tolist(), u.items.tolist(), strict=True)) == [(0, 10), (0, 11), (1, 12), (2, 10)]
    twice = (np.array([[5, 5, 6]]), np.array([[3.0, 2.0, 1.0]], np.float32))
    u = union(np.array([0]), {"c": twice}, ["c", "gone"])  # a source that repeats an item: its best rank wins
    assert rows(u) == [(0, 5, 1, 1, MISSING_RANK), (0, 6, 1, 3, MISSING_RANK)]
    assert len(union(np.zeros(0, np.int64), {}, ["x"])) == 0


def test_union_rejects_duplicate_names_and_users():
    with pytest.raises(ConfigError):
        union(np.array(USERS), {"a": A}, ["a", "a"])
    with pytest.raises(ConfigError, match="distinct users"):
        union(np.array([0, 0, 1]), {"a": A}, ["a"])


def test_to_frame_for_io():
    f = union(np.array(USERS), {"a": A, "b": B}, ["a", "b"]).to_frame()
    assert f.columns == ["user", "item", "n_sources", "a_score", "a_rank", "b_score", "b_rank"]
    assert f["a_score"].to_list()[2] is None
