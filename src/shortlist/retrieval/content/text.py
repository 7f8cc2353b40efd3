"""Item text for content embeddings: catalogue fields cleaned and joined into one string per item."""

from __future__ import annotations

import polars as pl

from shortlist.data.containers import Items
from shortlist.schema import BRAND, CATEGORY, DESCRIPTION, TITLE

#: Fields in the order they are joined: the most telling first, so truncation cuts the least useful.
TEXT_FIELDS: tuple[str, ...] = (TITLE, BRAND, CATEGORY, DESCRIPTION)
DEFAULT_MAX_CHARS = 512  # ~128 word pieces: enough for a title + category + the description's start


def clean_field(s: pl.Series) -> pl.Series:
    """One catalogue field as clean text: list separators become commas, whitespace collapses,
    trailing full stops go (the joiner adds its own); empty values become null."""
    if isinstance(s.dtype, pl.List):
        s = s.cast(pl.List(pl.Utf8)).list.join(", ")
    out = s.cast(pl.Utf8).str.replace_all(r"\s*[|;]\s*", ", ").str.replace_all(r"\s+", " ")
    return _nullify(out.str.strip_chars().str.strip_chars_end(" .,"))


def _nullify(s: pl.Series) -> pl.Series:
    return pl.select(pl.when(s.str.len_chars() > 0).then(s)).to_series().alias(s.name)


def truncate(s: pl.Series, max_chars: int) -> pl.Series:
    """Cut strings longer than ``max_chars`` at the last space before the limit (hard cut if none)."""
    head = s.str.slice(0, max_chars)
    cut = head.str.replace(r"\s+\S*$", "")
    long = s.str.len_chars() > max_chars
    return pl.select(pl.when(long & (cut.str.len_chars() > 0)).then(cut).otherwise(head)).to_series()


def item_texts(items: Items | None, n_items: int, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """One text per internal item id ``0..n_items-1``: ``"title. brand. category. description"``.

    Missing fields are skipped; items without a catalogue row (or with no text at all) get ``""``.
    """
    if items is None or n_items == 0:
        return [""] * n_items
    fields = [clean_field(items.aligned(c)) for c in TEXT_FIELDS if items.has(c)]
    if not fields:
        return [""] * n_items
    joined = pl.select(pl.concat_str(fields, separator=". ", ignore_nulls=True)).to_series().fill_null("")
    joined = truncate(joined, max_chars)
    texts: list[str] = joined.to_list()
    if len(texts) >= n_items:
        return texts[:n_items]
    return texts + [""] * (n_items - len(texts))
