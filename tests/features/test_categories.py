"""Catalogues with partial or multi-valued categories: features never crash and count every category."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shortlist.data import build_dataset
from shortlist.features.pipeline import FeaturePipeline
from shortlist.features.profile import UserHistory
from shortlist.features.stats import category_membership
from shortlist.retrieval.union import CandidateUnion


def _dataset(categories: list[str | None]):
    inter = pl.DataFrame({
        "user_id": ["a", "a", "a", "b", "b", "c"],
        "item_id": ["i0", "i1", "i2", "i1", "i3", "i0"],
        "timestamp": [10, 20, 30, 15, 25, 35],
    })
    items = pl.DataFrame({"item_id": ["i0", "i1", "i2", "i3"], "category": categories})
    return build_dataset(inter, items)


def _union(users: list[int], items: list[int]) -> CandidateUnion:
    n = len(users)
    return CandidateUnion(np.array(users), np.array(items), np.zeros((0, n), np.int32), np.zeros((0, n), np.float32),
                          (), np.zeros(n, np.float32))


def _affinity(ds, user: str, item: str) -> float:
    p = FeaturePipeline(sources=[]).fit(ds.interactions, items=ds.items)
    u, i = ds.interactions.users.get(user), ds.interactions.items.get(item)
    X = p.matrix(_union([u], [i]))
    return float(X[0, p.names.index("pair_cat_affinity")])


def test_items_without_category_do_not_crash_the_profiles():
    # bug 1: an interacted item without a category crashed every two-stage fit
    ds = _dataset(["x", None, "y", None])
    p = FeaturePipeline(sources=[]).fit(ds.interactions, items=ds.items)
    a = ds.interactions.users.get("a")
    assert p.stats_.profiles_for(np.array([a])).cat_total[0] == 2.0  # i0 (x) and i2 (y); i1 has no category
    assert _affinity(ds, "a", "i0") == pytest.approx(0.5)
    assert np.isnan(_affinity(ds, "a", "i1"))  # the item has no category


def test_item_without_category_in_an_explicit_history_scores():
    # bug 1, serving side: a session (or POST /events) holding such an item answered 500
    ds = _dataset(["x", None, "y", None])
    p = FeaturePipeline(sources=[]).fit(ds.interactions, items=ds.items)
    i1, i3 = ds.interactions.items.get("i1"), ds.interactions.items.get("i3")
    hist = UserHistory(np.array([i1, i3]), np.array([5, 6]))
    X = p.matrix(_union([0, 0], [0, 2]), history=hist)
    assert X.shape == (2, len(p.names))
    # the history holds no categorised interaction: no affinity with the categorised candidates
    assert X[:, p.names.index("pair_cat_affinity")].tolist() == [0.0, 0.0]


def test_category_membership_marks_every_category_of_an_item():
    m = category_membership([frozenset({"b", "a"}), frozenset(), frozenset({"b"})], 4)
    assert m.shape == (4, 2)
    assert m.toarray().tolist() == [[1, 1], [0, 0], [0, 1], [0, 0]]


def test_multi_valued_categories_count_in_each_of_their_categories():
    # a list / "A|B" / "A > B" category: the item is in each; affinity takes the user's best of them
    ds = _dataset(["Drama|Crime", "Crime", "Home > Kitchen", None])
    p = FeaturePipeline(sources=[]).fit(ds.interactions, items=ds.items)
    a = ds.interactions.users.get("a")
    assert p.stats_.profiles_for(np.array([a])).cat_total[0] == 3.0  # i0, i1, i2: each categorised
    assert _affinity(ds, "a", "i0") == pytest.approx(2 / 3)  # Crime: i0 and i1 of a's three
    assert _affinity(ds, "a", "i2") == pytest.approx(1 / 3)
