"""Item documents: one labelled text per item, ``[Title] … [Category] … [Review keywords] …``.

Fields come from the catalogue (title, category, brand, features, description, and the optional
LLM summary and keywords) and the review keywords. Each field is cleaned and capped; the most
telling fields come first, so an encoder's truncation cuts the long description, not the title or
the keywords. Items without any text get
no document (counted in the log); items with reviews but no catalogue row get one from their
keywords alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from shortlist.errors import ConfigError
from shortlist.retrieval.content.text import clean_field, truncate
from shortlist.schema import BRAND, CATEGORY, DESCRIPTION, ITEM_ID, TITLE
from shortlist.search.data import FEATURES, LLM_KEYWORDS, SUMMARY
from shortlist.search.keywords import KEYWORDS

logger = logging.getLogger(__name__)

DOCUMENT = "document"


@dataclass(frozen=True)
class DocumentField:
    """One labelled part of a document: the catalogue column, its label and its length cap (chars)."""

    column: str
    label: str
    max_chars: int


#: The fields of a document, in order.
DEFAULT_FIELDS: tuple[DocumentField, ...] = (
    DocumentField(TITLE, "Title", 200),
    DocumentField(CATEGORY, "Category", 160),
    DocumentField(BRAND, "Brand", 80),
    DocumentField(SUMMARY, "Summary", 300),
    DocumentField(KEYWORDS, "Review keywords", 240),
    DocumentField(LLM_KEYWORDS, "Keywords", 200),
    DocumentField(FEATURES, "Features", 300),
    DocumentField(DESCRIPTION, "Description", 600),
)


def _labelled(values: pl.Series, field: DocumentField) -> pl.Series:
    text = truncate(clean_field(values).fill_null(""), field.max_chars)
    return pl.select(pl.when(text.str.len_chars() > 0).then(pl.lit(f"[{field.label}] ") + text)).to_series()


def item_documents(
    catalogue: pl.DataFrame,
    keywords: pl.DataFrame | None = None,
    *,
    fields: tuple[DocumentField, ...] = DEFAULT_FIELDS,
) -> pl.DataFrame:
    """``item_id, document`` for every catalogue item (and reviewed item) that has any text.

    Catalogue items come first in catalogue order, then reviewed items missing from it. A field
    the catalogue lacks is skipped; keyword lists are joined with commas.
    """
    if not fields:
        raise ConfigError("a document needs at least one field")
    table = catalogue.select(ITEM_ID, *[f.column for f in fields if f.column in catalogue.columns and
                                         f.column != KEYWORDS])
    if keywords is not None and keywords.height:
        kw = keywords.select(ITEM_ID, pl.col(KEYWORDS).list.join(", "))
        table = table.join(kw, on=ITEM_ID, how="full", coalesce=True, maintain_order="left")
    parts = [_labelled(table.get_column(f.column), f) for f in fields if f.column in table.columns]
    if not parts:
        raise ConfigError(f"the catalogue has none of the document fields {[f.column for f in fields]}")
    doc = pl.select(pl.concat_str(parts, separator=" ", ignore_nulls=True)).to_series().fill_null("")
    out = pl.DataFrame({ITEM_ID: table.get_column(ITEM_ID), DOCUMENT: doc})
    empty = out.get_column(DOCUMENT).str.len_chars() == 0
    if empty.any():
        logger.info("documents: %d items have no text and are not searchable", int(empty.sum()))
    return out.filter(~empty)
