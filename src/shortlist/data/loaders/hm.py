"""H&M Personalized Fashion Recommendations (Kaggle): transactions, articles and customers.

``article_id`` is an integer in the CSVs but a zero-padded 10-character code in the official id
format (``0108775015``); it is kept as that string. ``customers.csv`` is user features, which a
:class:`Dataset` has no slot for: load it with :func:`load_hm_customers`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shortlist.data.containers import Dataset, build_dataset
from shortlist.data.report import CleaningReport
from shortlist.data.validate import DuplicatePolicy
from shortlist.errors import EmptyInputError, MissingColumnError, TimestampParseError
from shortlist.schema import CATEGORY, DESCRIPTION, ITEM_ID, PRICE, TIMESTAMP, TITLE, USER_ID

from ._checks import check_ids
from ._io import locate, main_file, reading, require_path

CHANNEL = "sales_channel_id"
ARTICLE_ID_WIDTH = 10
_TRANSACTIONS = "transactions_train.csv"
_ARTICLES = "articles.csv"
_CUSTOMERS = "customers.csv"
_TX_SCHEMA = {
    "t_dat": pl.Utf8,
    "customer_id": pl.Utf8,
    "article_id": pl.Utf8,
    "price": pl.Float64,
    CHANNEL: pl.Int8,
}
_ARTICLE_RENAMES = {"prod_name": TITLE, "product_type_name": CATEGORY, "detail_desc": DESCRIPTION}
_ARTICLE_ATTRIBUTES = (
    "product_group_name", "graphical_appearance_name", "colour_group_name", "perceived_colour_value_name",
    "perceived_colour_master_name", "department_name", "index_name", "index_group_name", "section_name",
    "garment_group_name",
)  # fmt: skip


def load_hm(
    path: Path | str,
    *,
    name: str = "hm",
    duplicates: DuplicatePolicy = "keep",
    drop_invalid: bool = False,
) -> Dataset:
    """Load the H&M folder (or its ``transactions_train.csv``) into a Dataset with the article catalogue.

    Each transaction row is one purchased unit, so identical rows (same customer, article, day,
    price) are real repeat units: they are kept by default (``duplicates="keep"``, counted in a note).
    """
    tx_path, directory = main_file(path, _TRANSACTIONS, what="H&M folder", fix="pass the folder of the Kaggle H&M data")
    report = CleaningReport(str(tx_path))
    tx = _transactions(tx_path, report=report, drop_invalid=drop_invalid)
    if duplicates == "keep":
        n_dup = tx.height - tx.unique().height
        if n_dup:
            report.note(f"{n_dup:,} identical transaction rows kept (one row per unit bought)")
    articles_path = locate(directory, _ARTICLES)
    items = load_hm_articles(articles_path) if articles_path else None
    if locate(directory, _CUSTOMERS):
        report.note(f"{_CUSTOMERS} holds user features: load them with load_hm_customers()")
    return build_dataset(
        tx,
        items,
        name=name,
        source=str(tx_path),
        items_source=str(articles_path or "<items>"),
        report=report,
        repeats=True,
        duplicates=duplicates,
        drop_invalid=drop_invalid,
    )


def _transactions(path: Path, *, report: CleaningReport, drop_invalid: bool) -> pl.DataFrame:
    with reading(path):
        header = pl.read_csv(path, n_rows=0).columns
        for col in ("t_dat", "customer_id", "article_id"):
            if col not in header:
                raise MissingColumnError(str(path), col, header)
        schema = {c: t for c, t in _TX_SCHEMA.items() if c in header}
        tx = (
            pl.scan_csv(path, schema_overrides=schema)
            .select(
                pl.col("customer_id").alias(USER_ID),
                _article_id(pl.col("article_id")).alias(ITEM_ID),
                pl.col("t_dat"),
                pl.col("t_dat").str.strip_chars().str.to_date("%Y-%m-%d", strict=False).alias(TIMESTAMP),
                *([pl.col("price").alias(PRICE)] if "price" in header else []),
                *([pl.col(CHANNEL)] if CHANNEL in header else []),
            )
            .collect()
        )
    report.n_input = tx.height
    if tx.height == 0:
        raise EmptyInputError(str(path))
    bad = tx.get_column(TIMESTAMP).is_null()
    if bad.any():
        if not drop_invalid:
            examples = tx.get_column("t_dat").filter(bad).head(5).to_list()
            raise TimestampParseError(str(path), "t_dat", int(bad.sum()), examples)
        report.drop("unparsable t_dat (expected YYYY-MM-DD)", int(bad.sum()))
        tx = tx.filter(~bad)
    ids = {USER_ID: "customer_id", ITEM_ID: "article_id"}
    return check_ids(tx.drop("t_dat"), ids, source=str(path), drop_invalid=drop_invalid, report=report)


def load_hm_articles(path: Path | str) -> pl.DataFrame:
    """``articles.csv`` → catalogue: title = prod_name, category = product_type_name,
    description = detail_desc, plus the descriptive ``*_name`` columns as attributes."""
    p = require_path(path, what="H&M articles file")
    with reading(p):
        raw = pl.read_csv(p, schema_overrides={"article_id": pl.Utf8}, infer_schema_length=10_000)
    if "article_id" not in raw.columns:
        raise MissingColumnError(str(p), "article_id", raw.columns)
    keep = [c for c in (*_ARTICLE_RENAMES, *_ARTICLE_ATTRIBUTES) if c in raw.columns]
    return raw.select(
        _article_id(pl.col("article_id")).alias(ITEM_ID),
        *[pl.col(c).cast(pl.Utf8).str.strip_chars().alias(_ARTICLE_RENAMES.get(c, c)) for c in keep],
    )


def load_hm_customers(path: Path | str) -> pl.DataFrame:
    """``customers.csv`` (a file or the H&M folder) → user features keyed by ``user_id``."""
    file, _ = main_file(path, _CUSTOMERS, what="H&M customers file", fix="pass customers.csv or the H&M folder")
    with reading(file):
        raw = pl.read_csv(file, infer_schema_length=10_000, schema_overrides={"customer_id": pl.Utf8})
    if "customer_id" not in raw.columns:
        raise MissingColumnError(str(file), "customer_id", raw.columns)
    return raw.rename({"customer_id": USER_ID} | {c: c.lower() for c in raw.columns if c != "customer_id"})


def _article_id(col: pl.Expr) -> pl.Expr:
    text = col.cast(pl.Utf8).str.strip_chars()
    return pl.when(text.str.len_chars() > 0).then(text.str.zfill(ARTICLE_ID_WIDTH))
