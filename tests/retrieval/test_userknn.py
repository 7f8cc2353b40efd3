import numpy as np
import polars as pl
import pytest
from listing import retrieve, retrieve_for_history

from shortlist.data import Interactions
from shortlist.errors import ConfigError
from shortlist.retrieval.userknn import UserKNN
from shortlist.schema import ITEM, SCORE, SECONDS_PER_DAY, USER

DAY = SECONDS_PER_DAY


def log() -> Interactions:
    # u0 = {a, b}; u1 = {a, b, c} (c bought at day 100); u2 = {a, d} (d at day 50); u3 = {e}
    return Interactions.from_frame(pl.DataFrame({
        "user_id": ["u0", "u0", "u1", "u1", "u1", "u2", "u2", "u3"],
        "item_id": ["a", "b", "a", "b", "c", "a", "d", "e"],
        "timestamp": [0, 0, 0, 0, 100 * DAY, 0, 50 * DAY, 100 * DAY],
    }))


def test_neighbours_recent_items_by_cosine_times_decay():
    data = log()  # users u0..u3 = 0..3; items a..e = 0..4
    src = UserKNN(neighbours=2, half_life_days=50.0).fit(data)
    f = retrieve(src, np.array([0]), 5).frame
    # u0's neighbours: u1 (cos 2/sqrt(6)) and u2 (cos 1/2); u3 shares nothing
    assert f.get_column(ITEM).to_list() == [2, 3]
    c_score = 2 / np.sqrt(6) * 1.0  # c bought at the end of the history: no decay
    d_score = 0.5 * 0.5  # d bought one half-life before the end
    assert f.get_column(SCORE).to_list() == pytest.approx([c_score, d_score], rel=1e-6)
    with_seen = retrieve(src, np.array([0]), 5, exclude_seen=False).frame
    # own items count too when repeats are allowed: a = 0.82·0.25 + 0.5·0.25, b = 0.82·0.25
    assert with_seen.get_column(ITEM).to_list() == [2, 0, 3, 1]
    assert retrieve(src, np.array([3]), 5).frame.height == 0  # no one shares u3's item
    assert retrieve(src, np.array([99]), 5).frame.height == 0  # unknown user


def test_neighbours_limit_and_ad_hoc_history():
    data = log()
    one = UserKNN(neighbours=1, half_life_days=None).fit(data)
    assert retrieve(one, np.array([0]), 5).frame.get_column(ITEM).to_list() == [2]  # only u1
    # an ad-hoc history {a, d} is u2's: its one neighbour is u2, who adds nothing unseen
    assert retrieve_for_history(one, np.array([0, 3]), 5).frame.height == 0
    two = UserKNN(neighbours=2, half_life_days=None).fit(data)
    f = retrieve_for_history(two, np.array([0, 1]), 5).frame  # {a, b}: neighbours u0 (cos 1) and u1
    assert f.get_column(USER).to_list() == [-1] and f.get_column(ITEM).to_list() == [2]
    assert f.get_column(SCORE).to_list() == pytest.approx([2 / np.sqrt(6)], rel=1e-6)


def test_bad_parameters_fail_at_construction():
    with pytest.raises(ConfigError):
        UserKNN(neighbours=0)
    with pytest.raises(ConfigError):
        UserKNN(half_life_days=-1.0)


def test_neighbours_come_from_the_most_recently_active_pool():
    data = log()  # last activity: u0 day 0, u1 day 100, u2 day 50, u3 day 100
    src = UserKNN(neighbours=5, half_life_days=50.0, max_pool=2).fit(data)
    assert src.pool_.tolist() == [1, 3]
    assert retrieve(src, np.array([2]), 5).frame.get_column(ITEM).to_list() == [2, 1]  # via u1 only: c, then b
    assert retrieve(src, np.array([1]), 5).frame.height == 0  # u1's only other pool member shares nothing


def test_warm_neighbour_graph_gives_identical_lists():
    from shortlist.data.synthetic import make_synthetic

    data = make_synthetic(n_users=300, n_items=120, n_interactions=6000, seed=3).interactions
    cold = UserKNN(neighbours=20, half_life_days=30.0, max_pool=200).fit(data)
    warm = UserKNN(neighbours=20, half_life_days=30.0, max_pool=200).fit(data).warm()
    users = np.array([0, 5, 17, 299, 350, -1])  # 350 and -1: unknown
    for exclude in (True, False):
        a, b = cold.topk(users, 30, exclude_seen=exclude), warm.topk(users, 30, exclude_seen=exclude)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        for u in users:  # one user at a time (the serving path) against the batch
            one = warm.topk(np.array([u]), 30, exclude_seen=exclude)
            np.testing.assert_array_equal(one[0][0], a[0][list(users).index(u)])
            np.testing.assert_array_equal(one[1][0], a[1][list(users).index(u)])
    assert warm.graph_[0].shape == (data.n_users, 20)
