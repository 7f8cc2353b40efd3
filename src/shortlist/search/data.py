"""Search inputs as two canonical frames: the catalogue (one row per item) and the reviews.

A catalogue has ``item_id`` plus any of title, description, features, brand, category, price.
Reviews have ``item_id``, ``timestamp`` (epoch seconds) and ``review_text``; ``user_id``,
``rating`` and ``review_title`` when the source has them. Amazon 2018/2023 files are read by the
project's Amazon loaders; any other table by the generic loaders.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from shortlist.data.containers import Dataset
from shortlist.data.export import export_interactions
from shortlist.data.loaders import load_amazon, load_amazon_meta, load_dataset, load_items
from shortlist.data.loaders._io import base_suffix, first_json_keys, read_lines, require_path
from shortlist.data.loaders.amazon import REVIEW_TEXT, REVIEW_TITLE
from shortlist.data.loaders.amazon_meta import FEATURES
from shortlist.errors import DataValidationError, EmptyInputError, MissingColumnError
from shortlist.schema import BRAND, CATEGORY, DESCRIPTION, ITEM_ID, PRICE, RATING, TIMESTAMP, TITLE, USER_ID

logger = logging.getLogger(__name__)

#: Columns the optional LLM step adds (see :mod:`shortlist.search.llm`).
LLM_KEYWORDS, SUMMARY = "llm_keywords", "summary"
#: Catalogue text fields a document may use, and the numeric price.
CATALOGUE_COLUMNS: tuple[str, ...] = (TITLE, DESCRIPTION, FEATURES, BRAND, CATEGORY, LLM_KEYWORDS, SUMMARY, PRICE)
#: Review columns, in order (user, rating and title may be null).
REVIEW_COLUMNS: tuple[str, ...] = (ITEM_ID, USER_ID, TIMESTAMP, RATING, REVIEW_TITLE, REVIEW_TEXT)
_JSON = (".json", ".jsonl", ".ndjson")
_AMAZON_META_KEYS = ("asin", "parent_asin")
_AMAZON_REVIEW_KEYS = ("reviewerID", "user_id")


def catalogue_frame(df: pl.DataFrame, *, source: str = "<catalogue>") -> pl.DataFrame:
    """``df`` as a canonical catalogue: ``item_id`` (text, unique) + the known fields present.

    Repeated item ids keep their first row (logged); an empty catalogue is an error.
    """
    if ITEM_ID not in df.columns:
        raise MissingColumnError(source, ITEM_ID, df.columns)
    if df.height == 0:
        raise EmptyInputError(source, "catalogue")
    out = df.select(
        pl.col(ITEM_ID).cast(pl.Utf8).str.strip_chars(),
        *[pl.col(c).cast(pl.Float64 if c == PRICE else pl.Utf8) for c in CATALOGUE_COLUMNS if c in df.columns],
    ).filter(pl.col(ITEM_ID).is_not_null() & (pl.col(ITEM_ID) != ""))
    repeated = ~out.get_column(ITEM_ID).is_first_distinct()
    if repeated.any():
        logger.warning("%s: %d repeated item ids; kept the first row of each", source, int(repeated.sum()))
        out = out.filter(~repeated)
    if out.height == 0:
        raise EmptyInputError(source, "catalogue (no row has an item_id)")
    return out


def catalogue_from_dataset(ds: Dataset) -> pl.DataFrame:
    """The dataset's item catalogue with external ids (every catalogued item, reviewed or not)."""
    if ds.items is None:
        raise DataValidationError(f"{ds.name}: the dataset has no item catalogue; search needs item text. "
                                  f"Fix: pass --items with the catalogue file.")
    frame = ds.items.frame
    ids = ds.items.ids.external(frame.get_column("item"))
    return catalogue_frame(frame.with_columns(ids.alias(ITEM_ID)), source=ds.name)


def reviews_from_dataset(ds: Dataset) -> pl.DataFrame:
    """The dataset's reviews (interactions with a ``review_text`` column) with external ids."""
    frame = export_interactions(ds.interactions)
    if REVIEW_TEXT not in frame.columns:
        raise MissingColumnError(ds.name, REVIEW_TEXT, frame.columns,
                                 hint="reviews need their text: a 'review_text' column (Amazon files have it)")
    return review_frame(frame, source=ds.name)


def review_frame(df: pl.DataFrame, *, source: str = "<reviews>") -> pl.DataFrame:
    """``df`` as canonical reviews; missing optional columns become nulls, text is trimmed."""
    for col in (ITEM_ID, TIMESTAMP, REVIEW_TEXT):
        if col not in df.columns:
            raise MissingColumnError(source, col, df.columns)
    dtypes = {ITEM_ID: pl.Utf8, USER_ID: pl.Utf8, TIMESTAMP: pl.Int64, RATING: pl.Float32,
              REVIEW_TITLE: pl.Utf8, REVIEW_TEXT: pl.Utf8}
    cols = [(pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c) for c, t in dtypes.items()]
    out = df.select(cols).with_columns(pl.col(REVIEW_TEXT).str.strip_chars(), pl.col(ITEM_ID).cast(pl.Utf8))
    if out.height == 0:
        raise EmptyInputError(source, "reviews")
    return out


def _json_keys(path: Path) -> list[str] | None:
    if not path.is_file() or base_suffix(path) not in _JSON:
        return None
    return first_json_keys(read_lines(path), path=path)


def read_catalogue(path: Path | str) -> pl.DataFrame:
    """A catalogue file: Amazon metadata (2018 ``meta_*.json`` / 2023 ``.jsonl``) or any table
    with an ``item_id`` column (CSV, TSV, Parquet, JSON Lines; gzipped or not)."""
    p = require_path(path, what="item catalogue")
    keys = _json_keys(p)
    if keys is not None and any(k in keys for k in _AMAZON_META_KEYS):
        return catalogue_frame(load_amazon_meta(p), source=str(p))
    return catalogue_frame(load_items(p), source=str(p))


def read_reviews(path: Path | str) -> pl.DataFrame:
    """A review file: Amazon reviews (2018 or 2023 JSON Lines) or any table with ``user_id``,
    ``item_id``, ``timestamp`` and ``review_text`` columns."""
    p = require_path(path, what="review file")
    keys = _json_keys(p)
    if keys is not None and any(k in keys for k in _AMAZON_REVIEW_KEYS):
        ds = load_amazon(p, keep_text=True)
    else:
        ds = load_dataset(p)
    logger.info("%s", ds.report)
    return reviews_from_dataset(ds)


def query_texts(reviews: pl.DataFrame) -> list[str]:
    """The search query of each review: its text (empty string where it has none)."""
    return reviews.get_column(REVIEW_TEXT).fill_null("").to_list()


__all__ = [
    "CATALOGUE_COLUMNS",
    "FEATURES",
    "LLM_KEYWORDS",
    "REVIEW_COLUMNS",
    "REVIEW_TEXT",
    "REVIEW_TITLE",
    "SUMMARY",
    "catalogue_frame",
    "catalogue_from_dataset",
    "query_texts",
    "read_catalogue",
    "read_reviews",
    "review_frame",
    "reviews_from_dataset",
]
