"""Vectorised clean-up of scraped text: HTML tags and entities, junk fragments, price strings."""

from __future__ import annotations

import html

import polars as pl

_TAG = r"<[^<>]*>"
_OPEN_TAG_TAIL = r"<[^<>]*$"  # an unclosed tag cut off at the end of the value
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});"
#: A value that is markup rather than text: it starts inside/at a tag, or ends with a tag's tail.
JUNK_MARKUP = r'^\s*<|["\']\s*/?>\s*$'
_PRICE = r"^\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)(?:\s*-\s*\$?\s*[0-9][0-9,]*(?:\.[0-9]+)?)?$"
_MISSING = ("", "none", "null", "nan", "n/a")


def unescape_entities(s: pl.Series) -> pl.Series:
    """Decode HTML entities (``&amp;``, ``&#39;``, ``&ndash;``...) in a string Series.

    Only the *distinct* entity tokens are decoded in Python (a handful), then replaced in one
    vectorised ``replace_many`` pass.
    """
    tokens = s.str.extract_all(_ENTITY).explode().drop_nulls().unique().to_list()
    mapping = {t: html.unescape(t) for t in tokens}
    mapping = {k: v for k, v in mapping.items() if k != v}
    return s.str.replace_many(mapping) if mapping else s


def clean_text(s: pl.Series) -> pl.Series:
    """Strip HTML tags, decode entities, collapse whitespace; empty results become null."""
    out = s.cast(pl.Utf8).str.replace_all(_TAG, " ").str.replace_all(_OPEN_TAG_TAIL, " ")
    out = unescape_entities(out)
    out = out.str.replace_all(_TAG, " ")  # tags that were entity-escaped (&lt;br&gt;)
    out = out.str.replace_all(r"\s+", " ").str.strip_chars()
    return out.set(out == "", None) if out.len() else out


def join_text_list(s: pl.Series, *, separator: str) -> pl.Series:
    """Join a ``List(Utf8)`` Series into one string per row (null for null/empty lists)."""
    joined = s.list.eval(pl.element().filter(pl.element().str.strip_chars() != "")).list.join(separator)
    return joined.set(joined == "", None) if joined.len() else joined


def junk_mask(s: pl.Series) -> pl.Series:
    """True where a value is a scraped markup fragment (``<span class="..."``), not text."""
    return s.str.contains(JUNK_MARKUP).fill_null(False)


def parse_price(s: pl.Series) -> tuple[pl.Series, int]:
    """Prices as Float64 from numbers or strings like ``"$25.00"`` / ``"$10 - $50"`` (low end).

    Returns the parsed Series and how many non-empty values were junk (set to null).
    """
    if s.dtype.is_numeric():
        f = s.cast(pl.Float64)
        bad = ~f.is_finite().fill_null(True) | (f < 0).fill_null(False)
        return f.set(bad, None), int(bad.sum())
    text = s.cast(pl.Utf8).str.strip_chars()
    missing = text.is_null() | text.str.to_lowercase().is_in(_MISSING)
    value = text.str.extract(_PRICE, 1).str.replace_all(",", "").cast(pl.Float64, strict=False)
    junk = ~missing & value.is_null()
    return value, int(junk.sum())
