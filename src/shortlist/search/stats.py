"""Item statistics from the reviews, aligned to document positions: the re-ranker's item features.

Everything is computed from the reviews handed in (the training period), relative to their last
timestamp, so a statistic never sees the queries it helps to rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shortlist.schema import ITEM_ID, PRICE, RATING, SECONDS_PER_DAY, TIMESTAMP
from shortlist.search.data import CATALOGUE_COLUMNS

#: The share of the latest reviews counted as "recent".
RECENT_SHARE = 0.2
STAT_NAMES: tuple[str, ...] = (
    "log_reviews", "log_recent_reviews", "popularity_rank", "mean_rating", "days_since_last_review",
    "days_since_first_review", "price", "log_document_chars", "has_catalogue_text",
)


@dataclass(frozen=True)
class ItemStats:
    """(n_docs × len(STAT_NAMES)) float32 matrix and the documents ordered by popularity."""

    matrix: np.ndarray
    popular: np.ndarray  # document positions, most reviewed first (ties: most recent, then position)

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, STAT_NAMES.index(name)]


def _per_item(reviews: pl.DataFrame, recent_from: int) -> pl.DataFrame:
    return reviews.group_by(ITEM_ID).agg(
        pl.len().alias("n"),
        (pl.col(TIMESTAMP) >= recent_from).sum().alias("recent"),
        pl.col(RATING).mean().alias("rating"),
        pl.col(TIMESTAMP).max().alias("last"),
        pl.col(TIMESTAMP).min().alias("first"),
    )


def item_stats(documents: pl.DataFrame, catalogue: pl.DataFrame, reviews: pl.DataFrame | None) -> ItemStats:
    """Statistics for each document row (``item_id, document``), from ``reviews`` and the catalogue."""
    docs = documents.select(ITEM_ID, pl.col("document").str.len_chars().alias("chars"))
    price = catalogue.select(ITEM_ID, pl.col(PRICE)) if PRICE in catalogue.columns else None
    text_cols = [c for c in CATALOGUE_COLUMNS if c != PRICE and c in catalogue.columns]
    has_text = catalogue.select(ITEM_ID, pl.any_horizontal([pl.col(c).is_not_null() for c in text_cols])
                                .alias("has_text") if text_cols else pl.lit(False).alias("has_text"))
    table = docs.join(has_text, on=ITEM_ID, how="left", maintain_order="left")
    if price is not None:
        table = table.join(price, on=ITEM_ID, how="left", maintain_order="left")
    if reviews is not None and reviews.height:
        ts = reviews.get_column(TIMESTAMP).sort()
        end = int(ts[-1])
        recent_from = int(ts[int(len(ts) * (1 - RECENT_SHARE))]) if len(ts) > 1 else end
        table = table.join(_per_item(reviews, recent_from), on=ITEM_ID, how="left", maintain_order="left")
    else:
        end = 0
    n = len(table)

    def col(name: str, default: float = np.nan) -> np.ndarray:
        if name not in table.columns:
            return np.full(n, default, dtype=np.float64)
        return table.get_column(name).cast(pl.Float64).fill_null(default).to_numpy()

    count, last = col("n", 0.0), col("last")
    popular = np.lexsort((np.arange(n), -np.nan_to_num(last, nan=-np.inf), -count))
    pop_rank = np.empty(n, dtype=np.float64)
    pop_rank[popular] = np.arange(1, n + 1)
    matrix = np.column_stack([
        np.log1p(count), np.log1p(col("recent", 0.0)), pop_rank, col("rating"),
        (end - last) / SECONDS_PER_DAY, (end - col("first")) / SECONDS_PER_DAY, col(PRICE),
        np.log1p(col("chars", 0.0)), col("has_text", 0.0),
    ]).astype(np.float32)
    return ItemStats(matrix=matrix, popular=popular.astype(np.int64))
