import numpy as np
import polars as pl
import pytest
from listing import retrieve, retrieve_for_history

from shortlist.data import Interactions
from shortlist.errors import ConfigError, NotFittedError
from shortlist.retrieval.chain import Chain
from shortlist.retrieval.popularity import Popularity, default_recent_days, item_popularity
from shortlist.retrieval.registry import load_source, save_source
from shortlist.retrieval.repurchase import Repurchase
from shortlist.schema import ITEM, RANK, SCORE, SECONDS_PER_DAY, USER

DAY = SECONDS_PER_DAY


def log() -> Interactions:
    # items: x bought by 3 users long ago; y by 2 users recently; z by u1 twice (old, recent)
    return Interactions.from_frame(pl.DataFrame({
        "user_id": ["u1", "u2", "u3", "u2", "u3", "u1", "u1"],
        "item_id": ["x", "x", "x", "y", "y", "z", "z"],
        "timestamp": [0, 0, 0, 99 * DAY, 100 * DAY, 1 * DAY, 100 * DAY],
    }))


def rows(c):
    return c.frame.select(USER, ITEM, RANK).rows()


def test_item_popularity_counts_users_interactions_and_windows():
    data = log()  # item ids: x=0, y=1, z=2
    assert item_popularity(data).tolist() == [3, 2, 1]
    assert item_popularity(data, count="interactions").tolist() == [3, 2, 2]
    assert item_popularity(data, window_days=2).tolist() == [0, 2, 1]
    decayed = item_popularity(data, half_life_days=100)
    assert decayed[0] == pytest.approx(1.5) and decayed[2] == pytest.approx(1.0)


def test_popularity_excludes_seen_and_keeps_k():
    data = log()
    p = Popularity().fit(data)
    c = retrieve(p, np.array([0, 1, 2]), 2)
    assert rows(c) == [(0, 1, 1), (1, 2, 1), (2, 2, 1)]  # u1 saw x,z; u2, u3 saw x,y
    c = retrieve(p, np.array([0]), 2, exclude_seen=False)
    assert rows(c) == [(0, 0, 1), (0, 1, 2)]
    assert c.frame[SCORE].to_list() == [3.0, 2.0]


def test_popularity_unknown_users_get_the_global_list():
    p = Popularity().fit(log())
    assert rows(retrieve(p, np.array([99]), 3)) == [(99, 0, 1), (99, 1, 2), (99, 2, 3)]


def test_recent_popularity_auto_window_from_span():
    data = log()
    assert default_recent_days(data) == pytest.approx(5.0)  # 100 days / 20
    p = Popularity(window_days="auto").fit(data)
    assert p.window_days_ == pytest.approx(5.0)
    assert rows(retrieve(p, np.array([99]), 3)) == [(99, 1, 1), (99, 2, 2)]


def test_repurchase_recency_weighted_and_empty_when_excluding():
    data = log()
    r = Repurchase(half_life_days=10).fit(data)
    c = retrieve(r, np.array([0, 1]), 5, exclude_seen=False)
    assert rows(c) == [(0, 2, 1), (0, 0, 2), (1, 1, 1), (1, 0, 2)]
    assert c.frame[SCORE][0] == pytest.approx(1.0 + 0.5 ** 9.9, rel=1e-5)
    assert len(retrieve(r, np.array([0]), 5, exclude_seen=True)) == 0
    assert len(retrieve(r, np.array([42]), 5, exclude_seen=False)) == 0


def test_repurchase_for_history_drops_ids_outside_the_catalogue():
    r = Repurchase(half_life_days=10).fit(log())  # 3 items
    c = retrieve_for_history(r, np.array([2, -5, 99, 0]), 5, timestamps=np.array([0, 1, 2, 10]) * DAY,
                               exclude_seen=False)
    assert c.frame.select(ITEM).to_series().to_list() == [0, 2]
    assert c.frame[SCORE].to_list() == pytest.approx([1.0, 0.5], rel=1e-6)
    assert len(retrieve_for_history(r, np.array([-1, 7]), 5, exclude_seen=False)) == 0


def test_chain_fills_from_next_source_without_duplicates():
    data = log()
    ch = Chain([Repurchase(), Popularity()]).fit(data)
    c = retrieve(ch, np.array([0, 42]), 3, exclude_seen=False)
    assert rows(c) == [(0, 2, 1), (0, 0, 2), (0, 1, 3), (42, 0, 1), (42, 1, 2), (42, 2, 3)]
    assert c.frame[SCORE].to_list() == [3.0, 2.0, 1.0, 3.0, 2.0, 1.0]


@pytest.mark.parametrize("make", [Popularity, lambda: Popularity(window_days="auto", half_life_days=3),
                                  Repurchase, lambda: Chain([Repurchase(), Popularity()])])
def test_save_load_roundtrip_identical(tmp_path, make):
    data = log()
    src = make().fit(data)
    save_source(src, tmp_path / "s")
    again = load_source(tmp_path / "s")
    users = np.array([0, 1, 2, 7])
    for excl in (True, False):
        assert retrieve(src, users, 3, exclude_seen=excl).frame.equals(retrieve(again, users, 3, exclude_seen=excl).frame)


def test_bad_parameters_and_unfitted():
    with pytest.raises(ConfigError):
        Popularity(window_days=-1)
    with pytest.raises(ConfigError):
        Popularity(count="bogus")  # type: ignore[arg-type]
    with pytest.raises(NotFittedError):
        retrieve(Popularity(), np.array([0]), 3)
    with pytest.raises(ConfigError, match="k must be"):
        retrieve(Popularity().fit(log()), np.array([0]), 0)
