"""Amazon product metadata (2018 ``meta_*.json`` / 2023 ``meta_*.jsonl``) → a clean item catalogue.

Every clean-up is counted in the report's notes (they change catalogue rows, not interactions):
duplicated metadata lines, repeated item ids, markup-fragment titles set to null, junk prices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from shortlist.data.report import CleaningReport
from shortlist.errors import EmptyInputError, MissingColumnError
from shortlist.schema import BRAND, CATEGORY, DESCRIPTION, ITEM_ID, PRICE, TITLE

from ._io import decode_json_lines, first_json_keys, read_lines
from ._text import clean_text, join_text_list, junk_mask, parse_price

AmazonFormat = Literal["2018", "2023"]
FEATURES = "features"
MAIN_CATEGORY = "main_category"

# canonical name → source field, per release
_META_FIELDS: dict[AmazonFormat, dict[str, str]] = {
    "2018": {
        ITEM_ID: "asin", TITLE: "title", DESCRIPTION: "description", FEATURES: "feature",
        BRAND: "brand", CATEGORY: "category", PRICE: "price", MAIN_CATEGORY: "main_cat",
    },
    "2023": {
        ITEM_ID: "parent_asin", TITLE: "title", DESCRIPTION: "description", FEATURES: "features",
        BRAND: "store", CATEGORY: "categories", PRICE: "price", MAIN_CATEGORY: "main_category",
    },
}  # fmt: skip
_LIST_FIELDS = (DESCRIPTION, FEATURES, CATEGORY)


def detect_meta_format(keys: list[str], *, path: Path) -> AmazonFormat:
    if "asin" in keys:
        return "2018"
    if "parent_asin" in keys:
        return "2023"
    raise MissingColumnError(
        str(path),
        "asin",
        keys,
        hint="Amazon metadata needs 'asin' (2018) or 'parent_asin' (2023) on every line",
    )


def load_amazon_meta(path: Path, *, report: CleaningReport | None = None) -> pl.DataFrame:
    """Read and clean an Amazon metadata file into canonical item columns.

    Columns: ``item_id``, ``title``, ``description`` (list joined, HTML stripped), ``features``
    (bullets joined with ``" | "``), ``brand`` (2023: ``store``), ``category`` (path joined with
    ``" > "``), ``price`` (Float64) and ``main_category``.
    """
    report = report if report is not None else CleaningReport(str(path))
    lines = read_lines(path)
    fields = _META_FIELDS[detect_meta_format(first_json_keys(lines, path=path), path=path)]
    dup = ~lines.is_first_distinct()
    _note(report, path, int(dup.sum()), "exact duplicate metadata lines dropped")
    lines = lines.filter(~dup)
    schema = {
        src: pl.List(pl.Utf8()) if canon in _LIST_FIELDS else pl.Utf8() for canon, src in fields.items()
    }
    raw = decode_json_lines(lines, schema, path=path).rename({src: canon for canon, src in fields.items()})

    ids = raw.get_column(ITEM_ID).str.strip_chars()
    no_id = ids.is_null() | (ids == "")
    _note(report, path, int(no_id.sum()), f"metadata lines without {fields[ITEM_ID]!r} dropped")
    raw = raw.with_columns(ids.alias(ITEM_ID)).filter(~no_id)
    repeated = ~raw.get_column(ITEM_ID).is_first_distinct()
    _note(report, path, int(repeated.sum()), "repeated item ids with different metadata (kept the first)")
    raw = raw.filter(~repeated)
    if raw.height == 0:
        raise EmptyInputError(str(path), "item metadata")

    title = raw.get_column(TITLE)
    junk = junk_mask(title)
    _note(report, path, int(junk.sum()), "titles that are scraped HTML fragments set to null")
    price, n_junk_price = parse_price(raw.get_column(PRICE))
    _note(report, path, n_junk_price, "prices that are not prices (scraped CSS/HTML) set to null")
    return pl.DataFrame(
        {
            ITEM_ID: raw.get_column(ITEM_ID),
            TITLE: clean_text(title.set(junk, None)),
            DESCRIPTION: clean_text(join_text_list(raw.get_column(DESCRIPTION), separator=" ")),
            FEATURES: clean_text(join_text_list(raw.get_column(FEATURES), separator=" | ")),
            BRAND: clean_text(raw.get_column(BRAND)),
            CATEGORY: clean_text(join_text_list(raw.get_column(CATEGORY), separator=" > ")),
            PRICE: price,
            MAIN_CATEGORY: clean_text(raw.get_column(MAIN_CATEGORY)),
        }
    )


def _note(report: CleaningReport, path: Path, n: int, what: str) -> None:
    if n:
        report.note(f"{path.name}: {n:,} {what}")
