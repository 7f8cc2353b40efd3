"""UCI Online Retail loader: every cleaning rule counted exactly, both column namings, real file."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.loaders import load_online_retail
from shortlist.data.loaders.retail import NON_PRODUCT_PATTERN
from shortlist.errors import DependencyMissingError, MissingColumnError, TimestampParseError

Write = Callable[[str, "str | bytes"], Path]

T = "2010-12-01 08:26:00"
# (invoice, code, description, quantity, date, price, customer) — one row per rule, plus keepers.
ROWS = [
    ("536365", "85123a", "WHITE HEART", 6, T, 2.55, 17850.0),  # kept (code upper-cased)
    ("536365", "85123a", "WHITE HEART", 6, T, 2.55, 17850.0),  # exact duplicate: kept + noted
    ("536366", "85123A", "white heart typo", 2, "2010-12-02 09:00:00", 3.00, 13047.0),  # kept
    ("536367", "DCGSSBOY", "BOYS PARTY BAG", 1, "2010-12-03 10:00:00", 3.29, 13047.0),  # kept: a product
    ("536368", "22633", "HAND WARMER", 6, T, 1.85, None),  # missing customer
    ("C536379", "22633", "HAND WARMER", -1, T, 1.85, 14527.0),  # cancellation
    ("A563185", "B", "Adjust bad debt", 1, T, 11062.06, 14527.0),  # adjustment
    ("536370", "POST", "POSTAGE", 3, T, 18.0, 12583.0),  # non-product
    ("536371", "gift_0001_20", "Voucher", 1, T, 16.67, 12583.0),  # non-product (lower-case code)
    ("536372", "22633", "HAND WARMER", 0, T, 1.85, 12583.0),  # non-positive quantity
    ("536373", "22633", "HAND WARMER", 2, T, 0.0, 12583.0),  # non-positive price
]
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
EXPECTED_REMOVED = {
    "missing CustomerID": 1,
    "cancellation (InvoiceNo starts with 'C')": 1,
    "bad-debt adjustment (InvoiceNo starts with 'A')": 1,
    "non-product StockCode (postage, fees, manual, discount, samples, vouchers)": 2,
    "Quantity <= 0 or missing": 1,
    "UnitPrice <= 0 or missing": 1,
}


def _frame() -> pl.DataFrame:
    df = pl.DataFrame(ROWS, schema=COLUMNS, orient="row")
    return df.with_columns(pl.lit("United Kingdom").alias("Country"))


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


def test_cleaning_counts_and_values(write: Write) -> None:
    path = write("online-retail/online_retail.parquet", _parquet(_frame()))
    ds = load_online_retail(path.parent)  # a folder works too
    assert ds.name == "online-retail" and ds.repeats is True
    assert ds.report.n_input == 11 and ds.report.removed == EXPECTED_REMOVED and ds.report.n_output == 4
    assert ds.report.notes == ["1 exact duplicate invoice lines kept (they are part of the original data)"]
    inter = ds.interactions
    f = inter.frame
    assert inter.users.ids.to_list() == ["17850", "13047"]
    assert inter.items.ids.to_list() == ["85123A", "DCGSSBOY"]
    assert f["basket"].to_list() == ["536365", "536365", "536366", "536367"]
    assert f["quantity"].to_list() == [6, 6, 2, 1] and f["weight"].to_list() == [1.0] * 4
    assert f["price"].to_list() == [2.55, 2.55, 3.0, 3.29]
    assert f["timestamp"].to_list()[:1] == [1_291_191_960]  # 2010-12-01 08:26 UTC
    assert f["country"].unique().to_list() == ["United Kingdom"]
    assert ds.items is not None
    items = ds.items.frame.sort("item").to_dicts()
    assert items == [
        {"title": "WHITE HEART", "price": 2.55, "item": 0},  # most frequent description, median price
        {"title": "BOYS PARTY BAG", "price": 3.29, "item": 1},
    ]


def test_duplicates_can_be_dropped_with_a_count(write: Write) -> None:
    ds = load_online_retail(write("r.parquet", _parquet(_frame())), duplicates="drop")
    assert ds.report.removed["exact duplicate rows"] == 1 and ds.report.n_output == 3


def test_online_retail_ii_names_in_csv(write: Write) -> None:
    df = _frame().rename({"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})
    # the UCI CSV export writes dates as "12/1/2010 8:26"
    us_dates = pl.col("InvoiceDate").str.replace(r"^2010-12-0(\d) 0?(\d+):(\d+):00$", "12/$1/2010 $2:$3")
    df = df.with_columns(us_dates)
    path = write("online_retail_II.csv", df.write_csv())
    ds = load_online_retail(path)
    assert ds.report.removed == EXPECTED_REMOVED and len(ds.interactions) == 4
    assert ds.interactions.users.ids.to_list() == ["17850", "13047"]  # "17850.0" text → "17850"
    assert ds.interactions.frame["timestamp"].to_list()[0] == 1_291_191_960


def test_bad_invoice_date_names_file_and_column(write: Write) -> None:
    dates = _frame()["InvoiceDate"].to_list()
    dates[2] = "soon"  # a kept row
    path = write("r.parquet", _parquet(_frame().with_columns(pl.Series("InvoiceDate", dates))))
    with pytest.raises(TimestampParseError) as err:
        load_online_retail(path)
    assert str(path) in str(err.value) and "'InvoiceDate'" in str(err.value) and "soon" in str(err.value)
    ds = load_online_retail(path, drop_invalid=True)
    assert ds.report.removed["null or unparsable InvoiceDate"] == 1 and ds.report.n_output == 3


def test_non_product_pattern() -> None:
    codes = pl.Series(
        [
            "POST",
            "DOT",
            "M",
            "C2",
            "D",
            "S",
            "B",
            "PADS",
            "CRUK",
            "AMAZONFEE",
            "BANK CHARGES",
            "GIFT_0001_10",
            "ADJUST2",
            "TEST001",
            "85123A",
            "DCGSSGIRL",
            "DCGS0003",
            "22633",
        ]
    )
    assert codes.str.contains(NON_PRODUCT_PATTERN).to_list() == [True] * 14 + [False] * 4


def test_missing_column_names_file_and_column(write: Write) -> None:
    path = write("r.parquet", _parquet(_frame().rename({"CustomerID": "CustomerId"})))
    with pytest.raises(MissingColumnError) as err:
        load_online_retail(path)
    msg = str(err.value)
    assert str(path) in msg and "'CustomerID'" in msg and "Did you mean 'CustomerId'?" in msg


def test_xlsx_without_openpyxl_is_a_clear_error(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "openpyxl" else real(n, *a))
    path = write("Online Retail.xlsx", b"PK\x03\x04")
    with pytest.raises(DependencyMissingError, match=r"Online Retail\.xlsx.*openpyxl.*pip install"):
        load_online_retail(path)


@pytest.mark.shared
@pytest.mark.slow
def test_shared_online_retail(shared: Callable[[str], Path]) -> None:
    ds = load_online_retail(shared("online-retail"))
    r = ds.report
    assert r.n_input == 541_909
    # the usual cleaning (known customer, no cancellation, quantity > 0) leaves 397,924 rows ...
    assert r.n_input - r.removed["missing CustomerID"] - r.removed[
        "cancellation (InvoiceNo starts with 'C')"
    ] == (397_924)
    # ... and the stricter rules remove non-products and zero prices on top.
    assert r.removed == {
        "missing CustomerID": 135_080,
        "cancellation (InvoiceNo starts with 'C')": 8_905,
        "non-product StockCode (postage, fees, manual, discount, samples, vouchers)": 1_554,
        "UnitPrice <= 0 or missing": 33,
    }
    inter = ds.interactions
    assert len(inter) == r.n_output == 396_337
    assert (inter.n_users, inter.n_items) == (4_334, 3_659)
    assert inter.frame["basket"].n_unique() == 18_402
    assert r.notes == ["5,187 exact duplicate invoice lines kept (they are part of the original data)"]
    assert ds.items is not None and len(ds.items) == 3_659 and ds.items.frame["title"].null_count() == 0
