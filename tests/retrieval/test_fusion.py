"""The fusion: exact scores on hand-built unions, what it learns, and its round trip."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist.data.synthetic import make_synthetic
from shortlist.retrieval.fusion import MIN_POSITIVES, Fusion, learn_fusion, recall_fusion
from shortlist.retrieval.popularity import Popularity
from shortlist.retrieval.union import CandidateUnion, fuse, union
from shortlist.schema import MISSING_RANK

TOPS = {
    "a": (np.array([[10, 11, -1], [12, -1, -1]]), np.array([[0.9, 0.5, -np.inf], [0.7, -np.inf, -np.inf]], np.float32)),
    "b": (np.array([[11, 13, 10], [-1, -1, -1]]), np.array([[3.0, 2.0, 1.0], [-np.inf] * 3], np.float32)),
}
USERS = np.array([2, 0])


def test_learned_terms_are_exact():
    prior = np.zeros(20)
    prior[13] = 2.0
    fusion = Fusion({"a": 0.0, "b": 0.0}, {"b": 1.0}, {"pop": 0.25, "absent": 9.0})
    got = fuse(union(USERS, TOPS, ["a", "b"]), fusion, max_per_user=3, priors={"pop": prior})
    # b's presence bonus (1.0) plus the prior (0.25 * prior[item]); a prior the stage lacks is skipped
    assert list(zip(got.users.tolist(), got.items.tolist(), got.fused.tolist(), strict=True)) == [
        (2, 13, 1.5), (2, 10, 1.0), (2, 11, 1.0), (0, 12, 0.0)]


def test_plain_fusion_puts_priority_sources_first_and_budgets():
    u = union(USERS, TOPS, ["a", "b"])
    plain = fuse(u, Fusion(), max_per_user=2)
    assert plain.items.tolist() == [11, 10, 12]  # rows of user 2 in fused order, cut at 2; then user 0
    first = fuse(u, Fusion(priority=("b",)), max_per_user=4)
    assert first.items[:3].tolist() == [11, 10, 13] and (first.fused[:3] >= 1.0).all()


def test_fusion_json_round_trip_and_learned():
    f = Fusion({"a": 0.5}, {"a": 0.1}, {"popular": 0.3}, ("x",), 20.0)
    assert Fusion.from_json(f.to_json()) == f and f.learned and not Fusion({"a": 2.0}).learned


def labelled_case(n_users: int = 40) -> tuple[CandidateUnion, np.ndarray, np.ndarray]:
    """'loud' ranks a non-label first for every user; 'quiet' ranks the user's label second."""
    users = np.arange(n_users)
    ones = np.ones((n_users, 2), np.float32)
    tops = {"loud": (np.stack([users + 100, users + 200], axis=1), ones),
            "quiet": (np.stack([users + 300, users], axis=1), ones)}
    return union(users, tops, ["loud", "quiet"]), users, users.copy()


def test_learn_fusion_puts_the_source_that_finds_labels_first():
    u, lu, li = labelled_case()
    plain = fuse(u, Fusion(), max_per_user=1)
    assert not (plain.items == plain.users).any()  # equal RRF: loud's first item wins everywhere
    learned = learn_fusion(u, lu, li)
    assert learned is not None and set(learned.weights) == set(learned.presence) == {"loud", "quiet"}
    assert learned == learn_fusion(u, lu, li)  # deterministic
    top1 = fuse(u, learned, max_per_user=1)
    assert (top1.items == top1.users).all()  # every label now comes first


def test_learn_fusion_needs_enough_labels_among_the_candidates():
    u, lu, li = labelled_case(n_users=MIN_POSITIVES - 1)
    assert learn_fusion(u, lu, li) is None
    u, lu, li = labelled_case()
    assert learn_fusion(u, lu, li + 1000) is None  # none found
    weights = recall_fusion(u, lu, li).weights
    assert weights["quiet"] > weights["loud"] and weights["loud"] == pytest.approx(2 * 1e-3 / (1 + 1e-3), rel=1e-3)


def test_popularity_prior_is_log_popularity_and_survives_save_load():
    data = make_synthetic(n_users=30, n_items=15, n_interactions=300, seed=2).interactions
    src = Popularity().fit(data)
    assert src.scores_ is not None
    np.testing.assert_allclose(src.item_prior(), np.log1p(src.scores_.astype(np.float64)))
    again = Popularity.from_state(*src.get_state())
    np.testing.assert_array_equal(again.item_prior(), src.item_prior())
    assert MISSING_RANK > 1000
