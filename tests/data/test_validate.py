import polars as pl
import pytest

from shortlist.data import validate_interactions
from shortlist.data.timestamps import parse_timestamps
from shortlist.errors import (
    ColumnTypeError,
    DuplicateRowsError,
    EmptyInputError,
    InvalidIdError,
    MissingColumnError,
    TimestampParseError,
)


def frame(**over: list) -> pl.DataFrame:
    cols = {"user_id": ["u1", "u2", "u1"], "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3]}
    cols.update(over)
    return pl.DataFrame(cols)


def test_clean_frame_passes_with_weight_default():
    df, rep = validate_interactions(frame(), source="f.csv")
    assert df.get_column("weight").to_list() == [1.0, 1.0, 1.0]
    assert rep.n_input == 3 and rep.n_output == 3 and rep.removed == {}


def test_missing_column_names_file_column_and_suggests():
    df = frame().rename({"user_id": "userid"})
    with pytest.raises(MissingColumnError) as e:
        validate_interactions(df, source="f.csv")
    msg = str(e.value)
    assert "f.csv" in msg and "'user_id'" in msg and "Did you mean 'userid'" in msg and "--map" in msg


def test_column_mapping_renames():
    df = frame().rename({"user_id": "CustomerID"})
    out, _ = validate_interactions(df, columns={"user_id": "CustomerID"})
    assert out.get_column("user_id").to_list() == ["u1", "u2", "u1"]
    with pytest.raises(MissingColumnError, match="Customer"):
        validate_interactions(frame(), columns={"user_id": "Customer"}, source="x.csv")


def test_empty_input():
    with pytest.raises(EmptyInputError, match=r"f\.csv"):
        validate_interactions(frame().head(0), source="f.csv")


@pytest.mark.parametrize("bad", [None, "", "  "])
def test_null_or_empty_ids_error_with_rows(bad):
    with pytest.raises(InvalidIdError) as e:
        validate_interactions(frame(user_id=["u1", bad, "u1"]), source="f.csv")
    assert "f.csv" in str(e.value) and "'user_id'" in str(e.value) and "[1]" in str(e.value)


def test_invalid_ids_dropped_and_counted_when_asked():
    df, rep = validate_interactions(frame(item_id=["a", None, "c"]), drop_invalid=True)
    assert df.height == 2 and rep.removed == {"null or empty item_id": 1}


def test_float_ids_become_integer_strings():
    df, _ = validate_interactions(frame(user_id=[17850.0, 13047.0, 17850.0]))
    assert df.get_column("user_id").to_list() == ["17850", "13047", "17850"]


def test_unparsable_timestamps():
    with pytest.raises(TimestampParseError) as e:
        validate_interactions(frame(timestamp=["2011-01-01", "yesterday", "2011-01-03"]), source="f.csv")
    assert "yesterday" in str(e.value) and "'timestamp'" in str(e.value) and "f.csv" in str(e.value)


def test_timestamp_formats_to_epoch_seconds():
    s = parse_timestamps(pl.Series(["2011-12-09 12:50:00", "2011-12-09T12:50:00+01:00", "2011-12-09"]))
    assert s.to_list() == [1323435000, 1323431400, 1323388800]
    assert parse_timestamps(pl.Series([1_323_435_000_000])).to_list() == [1323435000]  # ms detected
    assert parse_timestamps(pl.Series(["1323435000"])).to_list() == [1323435000]


def test_wrong_type_weight():
    with pytest.raises(ColumnTypeError) as e:
        validate_interactions(frame(weight=["1", "two", "3"]), source="f.csv")
    assert "'weight'" in str(e.value) and "two" in str(e.value)


def test_negative_price_rejected():
    with pytest.raises(ColumnTypeError, match="price"):
        validate_interactions(frame(price=[1.0, -2.0, 3.0]))


def test_duplicates_dropped_counted_or_error():
    df = pl.concat([frame(), frame().head(1)])
    out, rep = validate_interactions(df)
    assert out.height == 3 and rep.removed == {"exact duplicate rows": 1}
    with pytest.raises(DuplicateRowsError, match="1 duplicate"):
        validate_interactions(df, duplicates="error", source="f.csv")
    kept, _ = validate_interactions(df, duplicates="keep")
    assert kept.height == 4


def test_event_is_lowercased():
    out, _ = validate_interactions(frame(event=["View", "PURCHASE", "cart"]))
    assert out.get_column("event").to_list() == ["view", "purchase", "cart"]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), None])
def test_negative_nan_inf_or_missing_weights_rejected_before_als(bad):
    with pytest.raises(ColumnTypeError) as e:
        validate_interactions(frame(weight=[1.0, bad, 2.0]), source="w.csv")
    msg = str(e.value)
    assert "w.csv" in msg and "'weight'" in msg and "finite non-negative number" in msg and "1 invalid" in msg
    assert "--drop-invalid" in msg
    df, rep = validate_interactions(frame(weight=[1.0, bad, 2.0]), drop_invalid=True)
    assert df.get_column("weight").to_list() == [1.0, 2.0]
    assert rep.removed == {"invalid weight (not a finite non-negative number)": 1}


def test_zero_weight_is_valid():
    df, _ = validate_interactions(frame(weight=[0.0, 1.0, 2.5]))
    assert df.get_column("weight").to_list() == [0.0, 1.0, 2.5]


def test_drop_invalid_drops_bad_ids_timestamps_and_weights_with_counts():
    df = frame(user_id=["u1", "", "u1", "u2", "u3"], item_id=["a", "b", "c", "d", "e"],
               timestamp=["2020-01-01", "2020-01-02", "never", "2020-01-04", "2020-01-05"],
               weight=[1.0, 1.0, 1.0, -2.0, 3.0])
    out, rep = validate_interactions(df, drop_invalid=True, source="messy.csv")
    assert out.get_column("item_id").to_list() == ["a", "e"]
    assert rep.removed == {"null or empty user_id": 1, "null or unparsable timestamp": 1,
                           "invalid weight (not a finite non-negative number)": 1}
    assert rep.n_input == 5 and rep.n_output == 2


def test_basket_with_some_nulls_gets_one_basket_per_user_and_timestamp():
    df = frame(basket=["b1", None, " "], timestamp=[1_600_000_000, 1_600_000_000, 1_600_000_005])
    out, rep = validate_interactions(df, source="b.csv")
    assert out.get_column("basket").to_list() == ["b1", "u2@1600000000#own", "u1@1600000005#own"]
    assert rep.notes == ["b.csv: 2 row(s) without a basket: each (user, timestamp) made its own basket"]
    ints, _ = validate_interactions(frame(basket=[536365.0, 536365.0, None], timestamp=[1_600_000_000] * 3))
    assert ints.get_column("basket").to_list() == ["536365", "536365", "u1@1600000000#own"]
