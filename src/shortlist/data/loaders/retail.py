"""UCI Online Retail (2010-11) and Online Retail II: invoice lines → purchase interactions.

Cleaning, applied in this order and each counted separately in the report: missing customer,
cancellations (invoice ``C…``), adjustments (invoice ``A…``), non-product stock codes (postage,
fees, manual lines, discounts, samples, vouchers...), non-positive quantity, non-positive price.
Exact duplicate invoice lines are part of the original data: they are kept (and counted in a note)
unless ``duplicates="drop"``. Re-buying is normal here, so ``repeats=True``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl

from shortlist.data.containers import Dataset, build_dataset
from shortlist.data.ids import normalize_ids
from shortlist.data.report import CleaningReport
from shortlist.data.validate import DuplicatePolicy
from shortlist.errors import DependencyMissingError, EmptyInputError, MissingColumnError
from shortlist.schema import BASKET, ITEM_ID, PRICE, TIMESTAMP, TITLE, USER_ID

from ._checks import check_timestamps
from ._io import InputNotFoundError, find_first, read_table, reading, require_path

QUANTITY = "quantity"
COUNTRY = "country"
#: Stock codes that are not products (upper-cased, whole code): postage, carriage, manual lines,
#: discounts, samples, fees, charity commissions, bad-debt adjustments, test lines, gift vouchers.
NON_PRODUCT_PATTERN = (
    r"^(?:POST|DOT|M|C2|C3|D|S|B|PADS|CRUK|AMAZONFEE|BANK CHARGES|ADJUST\d*|TEST\d*|GIFT_\d+_\d+)$"
)
# Online Retail II column names → the 2010-11 names used below.
_II_NAMES = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}
_REQUIRED = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
_FILE_PATTERNS = (
    "online_retail*.parquet", "*.parquet", "online_retail*.csv*", "*.csv*", "Online Retail*.xlsx",
    "online_retail*.xlsx", "*.xlsx",
)  # fmt: skip


def load_online_retail(
    path: Path | str,
    *,
    name: str = "online-retail",
    duplicates: DuplicatePolicy = "keep",
    drop_invalid: bool = False,
    non_product_pattern: str = NON_PRODUCT_PATTERN,
) -> Dataset:
    """Load Online Retail (Parquet, CSV or XLSX; a file or its folder) into a cleaned Dataset.

    Interactions: user = customer, item = upper-cased stock code, timestamp = invoice date (UTC),
    basket = invoice, price = unit price, ``quantity`` kept as a column, weight 1.0 per line.
    Items: title = most frequent description of the code, price = median unit price.
    """
    file = _resolve(require_path(path, what="Online Retail file"))
    source = str(file)
    raw = _read(file).rename(lambda c: _II_NAMES.get(c.strip(), c.strip()))
    for col in _REQUIRED:
        if col not in raw.columns:
            raise MissingColumnError(
                source, col, raw.columns, hint="use the UCI Online Retail (or II) column names"
            )
    if raw.height == 0:
        raise EmptyInputError(source)
    report = CleaningReport(source, n_input=raw.height)
    lines = _clean(_normalise(raw), report=report, pattern=non_product_pattern)
    if lines.height == 0:
        raise EmptyInputError(source, "interactions (after cleaning)")
    lines = check_timestamps(
        lines, "InvoiceDate", source=source, unit="s", drop_invalid=drop_invalid, report=report
    )
    n_dup = lines.height - lines.unique().height
    if n_dup and duplicates == "keep":
        report.note(f"{n_dup:,} exact duplicate invoice lines kept (they are part of the original data)")
    inter_cols = [USER_ID, ITEM_ID, TIMESTAMP, BASKET, PRICE, QUANTITY] + (
        [COUNTRY] if COUNTRY in lines.columns else []
    )
    return build_dataset(
        lines.select(inter_cols),
        _items(lines),
        name=name,
        source=source,
        items_source=source,
        report=report,
        repeats=True,
        duplicates=duplicates,
        drop_invalid=drop_invalid,
    )


def _resolve(path: Path) -> Path:
    if path.is_file():
        return path
    found = find_first(path, _FILE_PATTERNS)
    if found is None:
        raise InputNotFoundError(path, "no Online Retail file (.parquet, .csv or .xlsx) in the folder")
    return found


def _read(file: Path) -> pl.DataFrame:
    if file.suffix.lower() != ".xlsx":
        return read_table(file, string_columns=("InvoiceNo", "Invoice", "StockCode"))
    if importlib.util.find_spec("openpyxl") is None:
        raise DependencyMissingError("openpyxl", "excel", f"reading {file}")
    with reading(file):
        sheets = pl.read_excel(file, sheet_id=0, engine="openpyxl", infer_schema_length=None)
    # Online Retail II ships one sheet per year; concatenate them.
    return pl.concat(list(sheets.values()), how="vertical_relaxed")


def _normalise(raw: pl.DataFrame) -> pl.DataFrame:
    cols = [
        pl.lit(normalize_ids(raw.get_column("CustomerID"), source="CustomerID")).alias(USER_ID),
        pl.col("StockCode").cast(pl.Utf8).str.strip_chars().str.to_uppercase().alias(ITEM_ID),
        pl.col("InvoiceDate").alias(TIMESTAMP),
        pl.col("InvoiceNo").cast(pl.Utf8).str.strip_chars().alias(BASKET),
        pl.col("UnitPrice").cast(pl.Float64, strict=False).alias(PRICE),
        pl.col("Quantity").cast(pl.Int64, strict=False).alias(QUANTITY),
    ]
    if "Description" in raw.columns:
        cols.append(pl.col("Description").cast(pl.Utf8).str.strip_chars().alias(TITLE))
    if "Country" in raw.columns:
        cols.append(pl.col("Country").cast(pl.Utf8).alias(COUNTRY))
    return raw.select(cols)


def _clean(df: pl.DataFrame, *, report: CleaningReport, pattern: str) -> pl.DataFrame:
    invoice = pl.col(BASKET).fill_null("")
    steps: list[tuple[str, pl.Expr]] = [
        ("missing CustomerID", pl.col(USER_ID).is_null() | (pl.col(USER_ID) == "")),
        ("cancellation (InvoiceNo starts with 'C')", invoice.str.starts_with("C")),
        ("bad-debt adjustment (InvoiceNo starts with 'A')", invoice.str.starts_with("A")),
        ("missing StockCode", pl.col(ITEM_ID).is_null() | (pl.col(ITEM_ID) == "")),
        ("non-product StockCode (postage, fees, manual, discount, samples, vouchers)",
         pl.col(ITEM_ID).str.contains(pattern)),
        ("Quantity <= 0 or missing", pl.col(QUANTITY).fill_null(0) <= 0),
        ("UnitPrice <= 0 or missing", pl.col(PRICE).fill_null(0.0).fill_nan(0.0) <= 0),
    ]  # fmt: skip
    for reason, bad in steps:
        mask = df.select(bad.fill_null(False)).to_series()
        report.drop(reason, int(mask.sum()))
        df = df.filter(~mask)
    return df


def _items(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per stock code: the most frequent description (ties → alphabetical) and median price."""
    prices = lines.group_by(ITEM_ID).agg(pl.col(PRICE).median())
    if TITLE not in lines.columns:
        return prices
    titles = (
        lines.filter(pl.col(TITLE).is_not_null() & (pl.col(TITLE) != ""))
        .group_by(ITEM_ID, TITLE)
        .len()
        .sort([ITEM_ID, "len", TITLE], descending=[False, True, False])
        .unique(ITEM_ID, keep="first", maintain_order=True)
        .select(ITEM_ID, TITLE)
    )
    return prices.join(titles, on=ITEM_ID, how="left").select(ITEM_ID, TITLE, PRICE).sort(ITEM_ID)
