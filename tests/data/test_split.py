import polars as pl
import pytest

from shortlist.data import Interactions
from shortlist.data.split import leave_last_out, split_by_protocol, time_window_split
from shortlist.errors import ConfigError, DataValidationError
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
