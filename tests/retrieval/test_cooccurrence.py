"""Co-occurrence counts as sums over partitions of users: the graph of many partitions is the graph
of one, a user is never split, and a group never spans users."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shortlist.data.containers import Interactions
from shortlist.data.ids import IdMap
from shortlist.data.synthetic import make_synthetic
from shortlist.retrieval import cooccurrence
from shortlist.retrieval.cooccurrence import bounds, user_partitions
from shortlist.retrieval.covisit import CoVisitation
from shortlist.schema import BASKET, USER


@pytest.fixture(scope="module")
def log() -> Interactions:
    return make_synthetic(n_users=150, n_items=80, n_interactions=4000, seed=3).interactions


def test_bounds_split_by_work():
    assert bounds(np.array([5, 5, 5, 20, 1, 1]), 10) == [0, 2, 4, 6]
    assert bounds(np.array([]), 10) == [0] and bounds(np.array([3.0]), 10) == [0, 1]


def test_partitions_are_consecutive_user_ranges_holding_every_row_once(log):
    parts = user_partitions(log.frame, log.n_users, rows=500)
    assert len(parts) == pytest.approx(len(log) / 500, abs=1)
    users = [p.get_column(USER).unique().sort().to_list() for p in parts]
    assert sum(len(p) for p in parts) == len(log)
    assert all(a[-1] < b[0] for a, b in itertools.pairwise(users))  # no user in two
    assert all(len(p) <= 500 + log.frame.get_column(USER).value_counts().get_column("count").max() for p in parts)
    assert parts[-1].equals(parts[len(parts) - 1]) and len(parts[1:3]) == 2
    with pytest.raises(IndexError):
        parts[len(parts)]
    empty = user_partitions(log.frame.clear(), 0)
    assert len(empty) == 1 and len(empty[0]) == 0


@pytest.mark.parametrize("kind,basket", [("user", True), ("session", True), ("session", False), ("transition", True)])
def test_many_partitions_give_the_graph_of_one(monkeypatch, log, kind, basket):
    """Each partition's counts summed equal the whole log's counts (float32 sums in another order:
    equal within rounding). All pairs kept, so no cut decides between near-equal counts."""
    history = log if basket else Interactions(log.frame.drop(BASKET), log.users, log.items)
    whole = CoVisitation(kind=kind, neighbours=80).fit(history).sim_
    monkeypatch.setattr(cooccurrence, "ROWS_PER_PARTITION", 300)  # 14 partitions
    monkeypatch.setattr(cooccurrence, "PAIRS_PER_BLOCK", 500)  # and many blocks
    parted = CoVisitation(kind=kind, neighbours=80).fit(history).sim_
    assert parted.shape == whole.shape and whole.nnz > 300
    np.testing.assert_array_equal(parted.indptr, whole.indptr)
    np.testing.assert_array_equal(parted.indices, whole.indices)
    np.testing.assert_allclose(parted.data, whole.data, rtol=1e-5)


def test_a_cut_graph_of_many_partitions_keeps_the_best_neighbours(monkeypatch, log):
    whole = CoVisitation(kind="user", neighbours=10).fit(log).sim_
    monkeypatch.setattr(cooccurrence, "ROWS_PER_PARTITION", 300)
    parted = CoVisitation(kind="user", neighbours=10).fit(log).sim_
    np.testing.assert_array_equal(np.diff(parted.indptr), np.diff(whole.indptr))
    # the k-th best score of each row is the same within rounding (ties may swap items)
    rows = [i for i in range(80) if whole[i].nnz]
    assert len(rows) > 40
    np.testing.assert_allclose([whole[i].data.min() for i in rows], [parted[i].data.min() for i in rows], rtol=1e-5)


def test_a_basket_id_two_users_share_is_two_baskets():
    """Logs that number baskets per user ("1", "2", ...) do not join different users' baskets."""
    frame = pl.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 2, 3], "timestamp": [0, 0, 0, 0],
                          "weight": [1.0] * 4, BASKET: ["1"] * 4},
                         schema_overrides={"user": pl.Int32, "item": pl.Int32, "weight": pl.Float32})
    log = Interactions(frame, IdMap(pl.Series(["a", "b"])), IdMap(pl.Series(["w", "x", "y", "z"])))
    sim = CoVisitation(kind="session", neighbours=5).fit(log).sim_
    pairs = {(int(i), int(j)) for i, j in zip(*sp.find(sim)[:2], strict=True)}
    assert pairs == {(0, 1), (1, 0), (2, 3), (3, 2)}
