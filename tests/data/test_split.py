import polars as pl
import pytest

from shortlist.data import Interactions
from shortlist.data.split import default_protocol, leave_last_out, random_holdout, split_by_protocol, time_window_split
from shortlist.errors import ConfigError, DataValidationError, NoTimestampsError
from shortlist.schema import ITEM, SECONDS_PER_DAY, USER

DAY = SECONDS_PER_DAY


def log() -> Interactions:
    # user a: items 1,2,3 with a timestamp tie between 2 and 3 (input order decides: 3 is last)
    # user b: items 1, 1 (a repeat), 4; user c: one interaction only
    return Interactions.from_frame(pl.DataFrame({
        "user_id": ["a", "a", "a", "b", "b", "b", "c"],
        "item_id": ["1", "2", "3", "1", "4", "1", "9"],
        "timestamp": [0, 5 * DAY, 5 * DAY, 1 * DAY, 2 * DAY, 9 * DAY, 3 * DAY],
    }))


def ext(inter: Interactions) -> list[tuple[str, str]]:
    f = inter.frame
    return list(zip(inter.users.external(f[USER]).to_list(), inter.items.external(f[ITEM]).to_list(), strict=True))


def test_leave_last_out_ties_keep_input_order_and_short_users_stay_in_train():
    s = leave_last_out(log(), repeats=True)
    assert ext(s.test) == [("a", "3"), ("b", "1")]
    assert ext(s.train) == [("a", "1"), ("a", "2"), ("b", "1"), ("b", "4"), ("c", "9")]
    assert s.counts["users_too_short"] == 1
    assert s.train.users is s.test.users


def test_leave_last_out_without_repeats_drops_seen_targets():
    s = leave_last_out(log(), repeats=False)
    assert ext(s.test) == [("a", "3")]
    assert s.counts["repeat_targets"] == 1


def test_leave_last_out_n_last_and_min_train():
    s = leave_last_out(log(), n_last=2, repeats=True)
    assert ext(s.test) == [("a", "2"), ("a", "3"), ("b", "4"), ("b", "1")]


def test_min_train_excludes_users_with_short_history():
    with pytest.raises(DataValidationError, match="no test targets"):
        leave_last_out(log(), repeats=True, min_train=3)
    s = leave_last_out(log(), repeats=True, min_train=2)
    assert ext(s.test) == [("a", "3"), ("b", "1")]


def test_time_window_days_cold_users_and_repeats():
    # cut-off = 9d - 5d = 4d: test = a@5d (items 2, 3) and b@9d (item 1, a repeat)
    s = time_window_split(log(), days=5, repeats=True)
    assert ext(s.test) == [("a", "2"), ("a", "3"), ("b", "1")]
    assert s.counts["cutoff"] == 4 * DAY
    s = time_window_split(log(), days=5, repeats=False)
    assert ext(s.test) == [("a", "2"), ("a", "3")] and s.counts["repeat_targets"] == 1


def test_time_window_cold_users_removed_and_counted():
    inter = Interactions.from_frame(pl.DataFrame({
        "user_id": ["a", "a", "new"], "item_id": ["1", "2", "3"], "timestamp": [0, 10 * DAY, 10 * DAY]}))
    s = time_window_split(inter, days=1)
    assert ext(s.test) == [("a", "2")] and s.counts["cold_user_rows"] == 1


def test_time_window_dedupes_targets():
    inter = Interactions.from_frame(pl.DataFrame({
        "user_id": ["a", "a", "a"], "item_id": ["1", "2", "2"], "timestamp": [0, 10 * DAY, 10 * DAY + 1]}))
    s = time_window_split(inter, days=1)
    assert ext(s.test) == [("a", "2")] and s.counts["duplicate_target_rows"] == 1


def test_quantile_split_and_protocol_parser():
    s = split_by_protocol(log(), "quantile:0.5", repeats=True)
    assert s.protocol == "quantile:0.5" and len(s.train) + len(s.test) <= len(log())
    assert split_by_protocol(log(), "llo", repeats=True).protocol == "llo:1"
    with pytest.raises(ConfigError, match="unknown protocol"):
        split_by_protocol(log(), "random", repeats=True)
    with pytest.raises(ConfigError, match="bad protocol"):
        split_by_protocol(log(), "days:x", repeats=True)
    with pytest.raises(ConfigError):
        time_window_split(log(), days=1, quantile=0.5)


def test_window_longer_than_data_is_a_clear_error():
    with pytest.raises(DataValidationError, match="empty train"):
        time_window_split(log(), days=100)


def test_no_leak_every_train_row_precedes_cutoff():
    s = time_window_split(log(), days=5, repeats=True)
    assert s.train.frame["timestamp"].max() <= s.counts["cutoff"] < s.test.frame["timestamp"].min()


def no_time_log() -> Interactions:
    """Pairs whose 'timestamps' are row positions, as in ml-1m-partial."""
    users = ["a"] * 5 + ["b"] * 3 + ["c"]
    items = ["1", "2", "3", "4", "5", "1", "2", "6", "1"]
    df = pl.DataFrame({"user_id": users, "item_id": items, "timestamp": list(range(9))})
    return Interactions.from_frame(df, timestamp_unit="s")


def test_time_protocols_on_data_without_time_raise_naming_the_dataset():
    inter = no_time_log()
    data = Interactions(inter.frame, inter.users, inter.items, has_time=False)
    assert not data.has_time and not data.filter(pl.col(USER) == 0).has_time  # subsets keep the flag
    for protocol in ("llo", "llo:2", "days:7", "quantile:0.5"):
        with pytest.raises(NoTimestampsError) as err:
            split_by_protocol(data, protocol, repeats=False, dataset="ml-1m-partial")
        msg = str(err.value)
        assert "ml-1m-partial has no timestamps" in msg and repr(protocol) in msg and "random:0.2" in msg
    with pytest.raises(NoTimestampsError):
        time_window_split(data, days=7)  # the label windows of a days:N target refuse it too
    assert default_protocol(data, "llo") == "random:0.2" and default_protocol(data, "random:0.3") == "random:0.3"
    assert default_protocol(log(), "llo") == "llo"
    assert split_by_protocol(data, "random:0.2", repeats=False).protocol == "random:0.2"


def test_random_holdout_is_seeded_per_user_and_never_takes_everything():
    s = random_holdout(no_time_log(), fraction=0.4, seed=0)
    assert s.protocol == "random:0.4"
    by_user = s.test.frame.group_by(USER).len().sort(USER)["len"].to_list()
    assert by_user == [2, 1]  # a: round(0.4 * 5) = 2, b: round(1.2) = 1, c: one row only, no target
    assert s.counts["users_too_short"] == 1 and len(s.train) + len(s.test) == 9
    again = random_holdout(no_time_log(), fraction=0.4, seed=0)
    assert ext(again.test) == ext(s.test)
    tests = {tuple(ext(random_holdout(no_time_log(), fraction=0.4, seed=k).test)) for k in range(8)}
    assert len(tests) > 1  # the seed decides
    most = random_holdout(no_time_log(), fraction=0.95, seed=0)
    assert most.train.frame.group_by(USER).len().sort(USER)["len"].to_list() == [1, 1, 1]  # one row always stays


def test_random_holdout_bad_fraction():
    for protocol in ("random:0", "random:1", "random:abc"):
        with pytest.raises(ConfigError):
            split_by_protocol(no_time_log(), protocol, repeats=False)
