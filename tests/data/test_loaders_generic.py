"""Generic loaders: every format, column mapping, and one typed error per malformed input."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.loaders import (
    InputNotFoundError,
    UnreadableFileError,
    load_dataset,
    load_interactions,
    load_items,
    load_user_ids,
)
from shortlist.errors import (
    ColumnTypeError,
    ConfigError,
    DuplicateRowsError,
    EmptyInputError,
    InvalidIdError,
    MissingColumnError,
    TimestampParseError,
    UnsupportedFormatError,
)

Write = Callable[[str, "str | bytes"], Path]

RAW = pl.DataFrame(
    {
        "user_id": ["007", "007", "008"],
        "item_id": ["a", "b", "a"],
        "timestamp": [1_609_459_200, 1_609_545_600, 1_609_632_000],
        "rating": [5.0, 3.0, 4.0],
    }
)
CSV = (
    "user_id,item_id,timestamp,rating\n"
    "007,a,2021-01-01 00:00:00,5\n007,b,2021-01-02,3\n008,a,2021-01-03T00:00:00,4\n"
)


def _encode(df: pl.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return df.write_csv().encode()
    if fmt == "tsv":
        return df.write_csv(separator="\t").encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        df.write_parquet(buf)
        return buf.getvalue()
    if fmt == "json":
        return df.write_json().encode()
    return df.write_ndjson().encode()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("x.csv", "csv"),
        ("x.tsv", "tsv"),
        ("x.parquet", "parquet"),
        ("x.jsonl", "jsonl"),
        ("x.ndjson", "jsonl"),
        ("x.json", "json"),
        ("x.csv.gz", "csv"),
        ("x.tsv.gz", "tsv"),
        ("x.jsonl.gz", "jsonl"),
        ("x.json.gz", "json"),
        ("x.parquet.gz", "parquet"),
    ],
)
def test_every_format_loads_the_same_rows(write: Write, name: str, fmt: str) -> None:
    data = _encode(RAW, fmt)
    path = write(name, gzip.compress(data) if name.endswith(".gz") else data)
    ds = load_interactions(path)
    f = ds.interactions.frame
    assert ds.interactions.users.ids.to_list() == ["007", "008"]  # leading zeros kept
    assert ds.interactions.items.ids.to_list() == ["a", "b"]
    assert f["user"].to_list() == [0, 0, 1]
    assert f["timestamp"].to_list() == [1_609_459_200, 1_609_545_600, 1_609_632_000]
    assert f["rating"].to_list() == [5.0, 3.0, 4.0]
    assert ds.report.n_input == 3 and ds.report.n_output == 3
    assert ds.name == "x"


def test_csv_parses_date_strings(write: Write) -> None:
    ds = load_interactions(write("dates.csv", CSV))
    assert ds.interactions.frame["timestamp"].to_list() == [1_609_459_200, 1_609_545_600, 1_609_632_000]


def test_column_mapping_and_format_override(write: Write) -> None:
    path = write("log.txt", "uid;sku;when\n1;x;100\n2;y;200\n".replace(";", ","))
    with pytest.raises(UnsupportedFormatError, match=r"log\.txt.*'\.txt'"):
        load_interactions(path)
    ds = load_interactions(
        path, format="csv", columns={"user_id": "uid", "item_id": "sku", "timestamp": "when"}
    )
    assert ds.interactions.items.ids.to_list() == ["x", "y"]
    assert ds.interactions.frame["timestamp"].to_list() == [100, 200]


def test_missing_column_names_file_column_and_suggestion(write: Write) -> None:
    path = write("bad.csv", "user_id,item,timestamp\n1,a,100\n")
    with pytest.raises(MissingColumnError) as err:
        load_interactions(path)
    msg = str(err.value)
    assert str(path) in msg and "'item_id'" in msg and "Did you mean 'item'?" in msg


def test_mapping_to_an_absent_column_is_named(write: Write) -> None:
    path = write("bad.csv", "u,i,t\n1,a,100\n")
    with pytest.raises(MissingColumnError, match=r"bad\.csv.*'sku'"):
        load_interactions(path, columns={"user_id": "u", "item_id": "sku", "timestamp": "t"})


def test_wrong_type_names_file_and_column(write: Write) -> None:
    path = write("bad.csv", "user_id,item_id,timestamp,rating\n1,a,100,5\n2,a,200,great\n")
    with pytest.raises(ColumnTypeError) as err:
        load_interactions(path)
    assert str(path) in str(err.value) and "'rating'" in str(err.value) and "great" in str(err.value)


def test_empty_ids_error_or_are_dropped_with_a_count(write: Write) -> None:
    path = write("ids.csv", "user_id,item_id,timestamp\n1,a,100\n,b,200\n3,,300\n4,c,400\n")
    with pytest.raises(InvalidIdError) as err:
        load_interactions(path)
    assert str(path) in str(err.value) and "'user_id'" in str(err.value)
    ds = load_interactions(path, drop_invalid=True)
    assert ds.report.removed == {"null or empty user_id": 1, "null or empty item_id": 1}
    assert len(ds.interactions) == 2 and ds.report.n_output == 2


def test_nan_ids_in_parquet_are_invalid(write: Write) -> None:
    df = pl.DataFrame({"user_id": [1.0, float("nan")], "item_id": ["a", "b"], "timestamp": [1, 2]})
    path = write("nan.parquet", _encode(df, "parquet"))
    with pytest.raises(InvalidIdError, match=r"nan\.parquet.*'user_id'"):
        load_interactions(path)


def test_unparsable_timestamps(write: Write) -> None:
    path = write("ts.csv", "user_id,item_id,timestamp\n1,a,2021-01-01\n2,b,yesterday\n")
    with pytest.raises(TimestampParseError) as err:
        load_interactions(path)
    assert str(path) in str(err.value) and "'timestamp'" in str(err.value) and "yesterday" in str(err.value)
    ds = load_interactions(path, drop_invalid=True)
    assert ds.report.removed == {"null or unparsable timestamp": 1}


@pytest.mark.parametrize("content", ["", "user_id,item_id,timestamp\n"])
def test_empty_input(write: Write, content: str) -> None:
    path = write("empty.csv", content)
    with pytest.raises(EmptyInputError, match=r"empty\.csv"):
        load_interactions(path)


def test_duplicates_drop_count_error_or_keep(write: Write) -> None:
    path = write("dup.csv", "user_id,item_id,timestamp\n1,a,100\n1,a,100\n2,a,100\n")
    ds = load_interactions(path)
    assert ds.report.removed == {"exact duplicate rows": 1} and len(ds.interactions) == 2
    with pytest.raises(DuplicateRowsError, match=r"dup\.csv: 1 duplicate"):
        load_interactions(path, duplicates="error")
    assert len(load_interactions(path, duplicates="keep").interactions) == 3


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.parquet", b"PAR1 this is not parquet"),
        ("bad.csv.gz", gzip.compress(CSV.encode())[:30]),  # truncated gzip stream
        ("bad.jsonl", b'{"user_id": "1", "item_id": "a", "timestamp": 1}\n{oops\n'),
    ],
    ids=["parquet", "truncated-gzip", "jsonl"],
)
def test_corrupt_files_raise_a_typed_error_naming_the_file(write: Write, name: str, content: bytes) -> None:
    path = write(name, content)
    with pytest.raises(UnreadableFileError) as err:
        load_interactions(path)
    assert str(err.value).startswith(f"{path}: cannot read the file (")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"nope\.csv: the interactions file does not exist") as err:
        load_interactions(tmp_path / "nope.csv")
    assert isinstance(err.value, FileNotFoundError)


def test_folder_of_part_files(write: Write, tmp_path: Path) -> None:
    write("parts/part-0.parquet", _encode(RAW.head(2), "parquet"))
    write("parts/part-1.parquet", _encode(RAW.tail(1), "parquet"))
    write("parts/_SUCCESS", "")
    ds = load_interactions(tmp_path / "parts")
    assert len(ds.interactions) == 3 and ds.name == "parts"
    write("parts/extra.csv", CSV)
    with pytest.raises(UnreadableFileError, match="mixes formats"):
        load_interactions(tmp_path / "parts")


def test_load_items_maps_columns_and_checks_types(write: Write) -> None:
    path = write("items.csv", "sku,name,cost\n007,Red mug,2.5\n008,Blue mug,\n")
    items = load_items(path, columns={"item_id": "sku", "title": "name", "price": "cost"})
    assert items.to_dicts() == [
        {"item_id": "007", "title": "Red mug", "price": 2.5},
        {"item_id": "008", "title": "Blue mug", "price": None},
    ]
    bad = write("bad_items.csv", "item_id,price\n1,cheap\n")
    with pytest.raises(ColumnTypeError, match=r"bad_items\.csv.*'price'.*cheap"):
        load_items(bad)
    with pytest.raises(MissingColumnError, match=r"items2\.csv.*'item_id'.*Did you mean 'item_idx'"):
        load_items(write("items2.csv", "item_idx,title\n1,a\n"))


def test_load_dataset_with_catalogue(write: Write) -> None:
    inter = write("inter.csv", CSV)
    items = write("items.jsonl", '{"item_id": "b", "title": "B"}\n{"item_id": "c", "title": "C"}\n')
    ds = load_dataset(inter, items, repeats=True, name="shop")
    assert ds.name == "shop" and ds.repeats is True
    # interacted items first, then catalogue-only items
    assert ds.interactions.items.ids.to_list() == ["a", "b", "c"]
    assert ds.items is not None and ds.items.aligned("title").to_list() == [None, "B", "C"]


def test_map_reaches_the_catalogue_where_it_has_the_column(write: Write) -> None:
    inter = write("log.csv", "uid,sku,when\n1,A,1609459200\n2,B,1609459260\n")
    items = write("items.csv", "sku,name,cost\nA,Mug,2.5\nC,Jar,1.0\n")
    cmap = {"user_id": "uid", "item_id": "sku", "timestamp": "when", "title": "name", "price": "cost"}
    ds = load_dataset(inter, items, columns=cmap)  # price=cost: only the catalogue has it
    assert ds.interactions.items.ids.to_list() == ["A", "B", "C"]
    assert ds.items is not None and ds.items.aligned("title").to_list() == ["Mug", None, "Jar"]
    assert ds.items.aligned("price").to_list() == [2.5, None, 1.0]
    with pytest.raises(MissingColumnError, match=r"log\.csv.*'UnitPrice'"):
        load_dataset(inter, items, columns={**cmap, "price": "UnitPrice"})


def test_catalogue_map_entry_without_a_catalogue_or_column_is_an_error(write: Write) -> None:
    inter = write("log.csv", "user_id,item_id,timestamp\n1,A,1609459200\n")
    with pytest.raises(ConfigError, match="title=name is for a catalogue"):
        load_dataset(inter, columns={"title": "name"})
    with pytest.raises(MissingColumnError, match=r"items\.csv.*'nmae'"):
        load_dataset(inter, write("items.csv", "item_id,name\nA,Mug\n"), columns={"title": "nmae"})


def test_catalogue_missing_item_id_recommends_a_mapping_that_works(write: Write) -> None:
    inter = write("log.csv", "user_id,item_id,timestamp\n1,A,1609459200\n")
    items = write("items.csv", "code,name\nA,Mug\n")
    with pytest.raises(MissingColumnError) as err:
        load_dataset(inter, items)
    assert "items_columns={'item_id': 'sku'}" in str(err.value) and "--items-map item_id=" in str(err.value)
    ds = load_dataset(inter, items, items_columns={"item_id": "code", "title": "name"})
    assert ds.items is not None and ds.items.aligned("title").to_list() == ["Mug"]


@pytest.mark.parametrize("name", ["log.jsonl", "log.json"])
def test_json_file_missing_a_column_names_the_column_not_redownload(write: Write, name: str) -> None:
    row = '{"uid": "a", "item_id": "x", "timestamp": 1609459200}'
    path = write(name, f"[{row}]" if name.endswith(".json") else row + "\n")
    with pytest.raises(MissingColumnError) as err:
        load_interactions(path)
    assert "'user_id' is missing" in str(err.value) and "--map user_id=" in str(err.value)
    assert "re-download" not in str(err.value)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_with_another_separator_is_read(write: Write, sep: str) -> None:
    text = "user_id,item_id,timestamp\n1,a,1609459200\n2,b,1609459260\n".replace(",", sep)
    ds = load_interactions(write("semi.csv", text))
    assert ds.interactions.users.ids.to_list() == ["1", "2"] and len(ds.interactions) == 2


def test_catalogue_prices_nan_or_negative_become_null_with_a_note(write: Write) -> None:
    inter = write("inter.csv", "user_id,item_id,timestamp\n1,a,1609459200\n")
    ds = load_dataset(inter, write("items.csv", "item_id,price\na,nan\nb,-3\nc,2.5\n"))
    assert ds.items is not None and ds.items.aligned("price").to_list() == [None, None, 2.5]
    assert any("2 catalogue prices that are NaN, infinite or negative set to null" in n for n in ds.report.notes)


def test_users_file_with_a_blank_id_names_the_rows_and_a_fix_that_exists(write: Write) -> None:
    with pytest.raises(InvalidIdError) as err:
        load_user_ids(write("users.csv", "user_id\n1\n\n2\n"))
    assert "first rows: [1]" in str(err.value) and "remove or fill those rows of the users file" in str(err.value)
    assert "--drop-invalid" not in str(err.value)  # recommend has no such option
    with pytest.raises(MissingColumnError, match="first line `user_id`"):
        load_user_ids(write("noheader.csv", "1\n2\n"))
