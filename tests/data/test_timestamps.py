"""Timestamps (issue 21, bugs 3 and 16): ISO 8601 with Z/offsets, units decided per column by plausibility."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shortlist.data import validate_interactions
from shortlist.data.loaders import load_interactions
from shortlist.data.timestamps import parse_timestamps
from shortlist.errors import ImplausibleTimestampsError, TimestampParseError

Write = Callable[[str, "str | bytes"], Path]
JAN1_10H = 1_577_872_800  # 2020-01-01T10:00:00Z
JAN1 = 1_577_836_800  # 2020-01-01T00:00:00Z


def frame(timestamps: list) -> pl.DataFrame:
    n = len(timestamps)
    return pl.DataFrame({"user_id": [f"u{i % 2}" for i in range(n)], "item_id": [f"i{i}" for i in range(n)],
                         "timestamp": timestamps})


def test_iso_timestamps_with_z_suffix() -> None:
    s = pl.Series(["2020-01-01T10:00:00Z", "2020-01-01T10:00:00.250Z", "2020-01-01T10:00:00z", "2020-01-01 10:00Z"])
    assert parse_timestamps(s).to_list() == [JAN1_10H] * 4


def test_iso_timestamps_with_offsets_and_fractional_seconds() -> None:
    s = pl.Series(["2020-01-01T11:00:00+01:00", "2020-01-01T05:00:00.999-05:00", "2020-01-01T11:00:00+0100",
                   "2020-01-01T10:00:00.123456", "2020-01-01T10:00"])
    assert parse_timestamps(s).to_list() == [JAN1_10H] * 5


def test_iso_z_timestamps_load_from_a_csv(write: Write) -> None:
    path = write("js.csv", "user_id,item_id,timestamp\n1,a,2020-01-01T10:00:00Z\n2,b,2020-01-01T10:00:00.5Z\n")
    assert load_interactions(path).interactions.frame["timestamp"].to_list() == [JAN1_10H, JAN1_10H]


@pytest.mark.parametrize(("scale", "unit"), [(1, "s"), (1_000, "ms"), (1_000_000, "us"), (1_000_000_000, "ns")])
def test_each_epoch_unit_is_decided_for_the_whole_column(scale: int, unit: str) -> None:
    s = pl.Series([JAN1 * scale, (JAN1 + 86_400) * scale])
    assert parse_timestamps(s).to_list() == [JAN1, JAN1 + 86_400], unit


def test_yyyymmdd_integers_are_read_as_dates_not_1970() -> None:
    df, report = validate_interactions(frame([20200101, 20200102, 20200103]), source="d.csv")
    assert df["timestamp"].to_list() == [JAN1, JAN1 + 86_400, JAN1 + 2 * 86_400]
    assert any("YYYYMMDD" in n for n in report.notes)
    assert parse_timestamps(pl.Series(["20200101100000", "20200101100000"])).to_list() == [JAN1_10H] * 2


def test_yyyymmdd_with_an_impossible_date_is_an_error_not_1970() -> None:
    with pytest.raises(TimestampParseError, match=r"d\.csv.*'timestamp'.*20201301"):
        validate_interactions(frame([20200101, 20201301, 20200103]), source="d.csv")


def test_mixed_seconds_and_milliseconds_rejected_with_examples() -> None:
    ts = [JAN1, JAN1 + 60, (JAN1 + 120) * 1000]
    with pytest.raises(ImplausibleTimestampsError) as err:
        validate_interactions(frame(ts), source="mix.csv")
    msg = str(err.value)
    assert "mix.csv" in msg and "mixes timestamp units" in msg
    assert f"2 look like epoch seconds (e.g. {JAN1}" in msg and f"1 look like epoch milliseconds (e.g. {ts[2]})" in msg
    df, report = validate_interactions(frame(ts), drop_invalid=True)
    assert df["timestamp"].to_list() == [JAN1, JAN1 + 60]
    assert report.removed == {"minority-unit values in timestamp": 1}


def test_dates_before_1990_rejected_with_examples_or_dropped() -> None:
    ts = [JAN1, 0, JAN1 + 60, 500_000_000]  # 0 and a 1985 date among 2020 seconds
    with pytest.raises(ImplausibleTimestampsError) as err:
        validate_interactions(frame(ts), source="old.csv")
    msg = str(err.value)
    assert "2 value(s)" in msg and "0 → 1970-01-01" in msg and "500000000 → 1985-11-05" in msg
    assert "--drop-invalid" in msg
    df, report = validate_interactions(frame(ts), drop_invalid=True)
    assert df["timestamp"].to_list() == [JAN1, JAN1 + 60]
    assert report.removed == {"implausible dates in timestamp": 2}


def test_dates_after_next_year_rejected() -> None:
    far = int(dt.datetime(dt.date.today().year + 3, 6, 1, tzinfo=dt.UTC).timestamp())
    with pytest.raises(ImplausibleTimestampsError, match=r"no plausible date as epoch seconds"):
        validate_interactions(frame([JAN1, far]))


@pytest.mark.parametrize(("values", "what"), [([18_262, 18_263], "days since 1970-01-01"),
                                             ([43_831, 43_832], "spreadsheet serial dates")])
def test_day_numbers_are_an_error_naming_the_fix(values: list[int], what: str) -> None:
    with pytest.raises(ImplausibleTimestampsError) as err:
        validate_interactions(frame(values), source="days.csv")
    assert what in str(err.value) and "timestamp_unit='D'" in str(err.value)


def test_explicit_unit_keeps_working() -> None:
    df, _ = validate_interactions(frame([18_262, 18_263]), timestamp_unit="D")
    assert df["timestamp"].to_list() == [JAN1, JAN1 + 86_400]
    df, _ = validate_interactions(frame([20200101, 20200102]), timestamp_unit="s")  # taken as given
    assert df["timestamp"].to_list() == [20200101, 20200102]
    df, _ = validate_interactions(frame([JAN1 * 1000, JAN1]), timestamp_unit="ms")
    assert df["timestamp"].to_list() == [JAN1, JAN1 // 1000]


def test_small_numbers_are_relative_seconds_with_a_note() -> None:
    df, report = validate_interactions(frame([1, 2, 3]), source="steps.csv")
    assert df["timestamp"].to_list() == [1, 2, 3]
    assert report.notes == ["steps.csv: 'timestamp' values 1..3 are not dates in any epoch unit: read as seconds "
                            "from an arbitrary origin (pass real dates to use calendar time windows)"]


def test_numbers_beyond_any_date_are_an_error_not_a_crash() -> None:
    with pytest.raises(ImplausibleTimestampsError, match=r"1e\+25 → out of range"):
        validate_interactions(frame([1e25, JAN1]))
    with pytest.raises(TimestampParseError, match=r"1e\+25"):
        validate_interactions(frame([1e25, JAN1]), timestamp_unit="s")
    df, report = validate_interactions(frame([1e25, JAN1, float("inf")]), drop_invalid=True)
    assert df["timestamp"].to_list() == [JAN1] and report.removed == {"implausible dates in timestamp": 2}
