"""One id normalisation for every input (issue 21, bug 4): files, catalogues, users and requests agree."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shortlist.data import IdMap, build_dataset
from shortlist.data.ids import normalize_id, normalize_ids
from shortlist.data.loaders import load_dataset, load_interactions, load_user_ids
from shortlist.errors import ColumnTypeError, IdValueError
from shortlist.pipeline.external import internal_users, unknown_users

Write = Callable[[str, "str | bytes"], Path]
T0 = 1_293_840_000  # 2011-01-01


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def test_normalize_ids_rule_for_every_dtype() -> None:
    assert normalize_ids(pl.Series([12346, -5, 7])).to_list() == ["12346", "-5", "7"]
    floats = pl.Series([12346.0, 1.5, float("nan"), None, float("inf"), -3.0])
    assert normalize_ids(floats).to_list() == ["12346", "1.5", None, None, None, "-3"]
    text = pl.Series(["12346.0", " 7 ", "007", "007.00", "1.50", "abc", "-5.0", "", "  ", None])
    assert normalize_ids(text).to_list() == ["12346", "7", "007", "007", "1.50", "abc", "-5", None, None, None]
    python = [12346, 12346.0, "12346.0", " x ", None, float("nan")]
    assert normalize_ids(python).to_list() == ["12346", "12346", "12346", "x", None, None]


def test_normalize_ids_refuses_booleans_and_lists() -> None:
    with pytest.raises(ColumnTypeError, match="text or integer ids"):
        normalize_ids(pl.Series("user_id", [True, False]))
    with pytest.raises(ColumnTypeError, match="'user_id'"):
        normalize_ids(pl.Series("user_id", [["a"], ["b"]]))
    with pytest.raises(IdValueError, match="True is not a valid id"):
        normalize_ids([True])


def test_normalize_id_scalar_for_http_ids() -> None:
    assert normalize_id(50) == normalize_id(50.0) == normalize_id("50.0") == normalize_id(" 50 ") == "50"
    assert normalize_id("007") == "007"
    for bad in (None, "", "  ", float("nan"), True, ["a"]):
        with pytest.raises(IdValueError):
            normalize_id(bad)


def test_id_map_get_normalises_the_requested_id() -> None:
    m = IdMap.from_values(pl.Series(["50", "a"]))
    assert m.get(50) == m.get(50.0) == m.get("50.0") == 0
    assert m.get("zz") is None and m.get(True) is None


def test_float_customer_ids_agree_between_csv_and_parquet(write: Write) -> None:
    # Online Retail exports: CustomerID is float64 in Parquet and "12346.0" text in a CSV written by pandas.
    raw = pl.DataFrame({"user_id": [12346.0, 17850.0, 12346.0], "item_id": ["85123A", "71053", "22752"],
                        "timestamp": [T0, T0 + 60, T0 + 120]})
    from_csv = load_interactions(write("retail.csv", raw.write_csv()))
    from_parquet = load_interactions(write("retail.parquet", _parquet(raw)))
    assert "12346.0" in raw.write_csv()  # the CSV really spells the float
    assert from_csv.interactions.users.ids.to_list() == ["12346", "17850"]
    assert from_parquet.interactions.users.ids.to_list() == ["12346", "17850"]


def test_catalogue_float_ids_match_interaction_integer_ids(write: Write) -> None:
    inter = write("inter.csv", f"user_id,item_id,timestamp\n1,50,{T0}\n2,51,{T0 + 1}\n")
    items = pl.DataFrame({"item_id": [50.0, 51.0, 52.0], "title": ["a", "b", "c"]})
    ds = load_dataset(inter, write("items.parquet", _parquet(items)))
    assert ds.interactions.items.ids.to_list() == ["50", "51", "52"]  # no "50.0" twin
    assert ds.items is not None and ds.items.aligned("title").to_list() == ["a", "b", "c"]


def test_numeric_and_string_ids_mixed_in_one_column(write: Write) -> None:
    path = write("mixed.jsonl", "".join(
        f'{{"user_id": {u}, "item_id": {i}, "timestamp": {T0 + n}}}\n'
        for n, (u, i) in enumerate([("1", '"a"'), ('"1"', "2"), ('"x7"', "2.0"), ("3.0", '"a"')])
    ))
    ds = load_interactions(path)
    assert ds.interactions.users.ids.to_list() == ["1", "x7", "3"]
    assert ds.interactions.items.ids.to_list() == ["a", "2"]


def test_build_dataset_catalogue_ids_normalised_like_interactions() -> None:
    inter = pl.DataFrame({"user_id": ["u"], "item_id": [7], "timestamp": [T0]})
    ds = build_dataset(inter, pl.DataFrame({"item_id": ["7.0", " 8 "], "title": ["seven", "eight"]}))
    assert ds.interactions.items.ids.to_list() == ["7", "8"]


def test_users_file_ids_normalised_like_the_model(write: Write) -> None:
    csv = load_user_ids(write("users.csv", "user_id\n12346.0\n 17850 \n12346\n"))
    parquet = load_user_ids(write("users.parquet", _parquet(pl.DataFrame({"user_id": [12346.0, 17850.0]}))))
    assert csv.to_list() == parquet.to_list() == ["12346", "17850"]


def test_unknown_users_are_counted_after_normalisation() -> None:
    known = IdMap.from_values(pl.Series(["12346", "17850"]))
    assert unknown_users([12346, "17850.0", "99", 99.0], known).to_list() == ["99"]
    ext, internal = internal_users(pl.Series([12346.0, 5.0]), known)
    assert ext.to_list() == ["12346", "5"] and internal.to_list() == [0, 3]  # unknown: past the map
    with pytest.raises(IdValueError):
        internal_users(["a", ""], known)
