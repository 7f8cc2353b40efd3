import polars as pl
import pytest

from shortlist.data import Interactions
from shortlist.errors import ConfigError
from shortlist.pipeline.labels import Target, label_windows
from shortlist.schema import SECONDS_PER_DAY

DAY = SECONDS_PER_DAY


def data(events: bool = False) -> Interactions:
    df = pl.DataFrame({
        "user_id": ["a"] * 4 + ["b"] * 3,
        "item_id": ["1", "2", "3", "4", "1", "2", "1"],
        "timestamp": [0, DAY, 2 * DAY, 3 * DAY, 0, 2 * DAY, 3 * DAY],
    })
    if events:
        df = df.with_columns(pl.Series("event", ["view", "view", "cart", "purchase", "view", "view", "purchase"]))
    return Interactions.from_frame(df)


def test_target_parse():
    assert Target.parse("last").reference == "user"
    t = Target.parse("days:14")
    assert t.days == 14 and t.reference == "global" and str(t) == "days:14"
    for bad in ("days:0", "days:x", "next"):
        with pytest.raises(ConfigError):
            Target.parse(bad)


def test_last_windows_stack_label_depths_without_leakage():
    w = label_windows(data(), Target.parse("last"), n_windows=2, repeats=True)
    assert [x.name for x in w] == ["last-1", "last-2"]
    # depth 1: a's label is item 4 (index 3), b's item 1 (a repeat)
    assert w[0].labels.select("user", "item").rows() == [(0, 3), (1, 0)]
    assert w[0].history.frame["timestamp"].max() <= 3 * DAY and len(w[0].history) == 5
    assert w[1].labels.select("user", "item").rows() == [(0, 2), (1, 1)]
    assert len(w[1].history) == 3 and w[0].n_seen_labels == 1


def test_last_windows_drop_seen_labels_without_repeats():
    w = label_windows(data(), Target.parse("last"), n_windows=1, repeats=False)
    assert w[0].labels.select("user", "item").rows() == [(0, 3)]


def test_day_windows_and_graded_labels():
    w = label_windows(data(events=True), Target.parse("days:1"), n_windows=2, repeats=True)
    assert w[0].labels.rows() == [(0, 3, 3.0), (1, 0, 3.0)]  # purchases grade 3
    assert w[1].labels.rows() == [(0, 2, 2.0), (1, 1, 1.0)]  # cart 2, view 1
    assert w[1].history.frame["timestamp"].max() < 2 * DAY


def test_random_windows_hold_out_a_seeded_share_of_each_user():
    t = Target.parse("random:0.5")
    assert t.share == 0.5 and t.reference == "user" and str(t) == "random:0.5"
    for bad in ("random:0", "random:1", "random:x"):
        with pytest.raises(ConfigError):
            Target.parse(bad)
    w = label_windows(data(), t, n_windows=2, repeats=True)
    assert [x.name for x in w] == ["random:0.5#1", "random:0.5#2"]
    for window in w:  # every user keeps a history; labels and history split each user's rows
        assert window.labels["user"].n_unique() == 2 and window.history.frame["user"].n_unique() == 2
        assert len(window.history) + window.labels.height <= 7
    assert w[0].labels.rows() == label_windows(data(), t, n_windows=1, repeats=True)[0].labels.rows()  # seeded
