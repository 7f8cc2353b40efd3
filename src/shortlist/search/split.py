"""Reviews split by time: consecutive parts of the time-ordered log (e.g. 80/10/10)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from shortlist.errors import ConfigError, DataValidationError
from shortlist.schema import TIMESTAMP

_ROW = "__row"


def split_by_time(reviews: pl.DataFrame, fractions: Sequence[float]) -> list[pl.DataFrame]:
    """Consecutive parts of ``reviews`` ordered by time (ties keep input order), sized by ``fractions``.

    ``fractions`` must be positive and sum to 1; part sizes are rounded cumulative row counts, so
    they add up to the number of reviews. Every part must get at least one review.
    """
    f = np.asarray(list(fractions), dtype=np.float64)
    if f.size < 2 or (f <= 0).any() or not np.isclose(f.sum(), 1.0):
        raise ConfigError(f"split fractions must be two or more positive numbers summing to 1, got {list(fractions)}")
    n = reviews.height
    bounds = np.rint(np.cumsum(f) * n).astype(np.int64)
    bounds[-1] = n
    starts = np.concatenate(([0], bounds[:-1]))
    if (bounds - starts < 1).any():
        raise DataValidationError(
            f"{n} reviews cannot be split {list(fractions)} with at least one review a part; "
            f"pass more reviews or other fractions")
    ordered = reviews.with_row_index(_ROW).sort([TIMESTAMP, _ROW]).drop(_ROW)
    return [ordered.slice(int(a), int(b - a)) for a, b in zip(starts, bounds, strict=True)]


def holdout_split(reviews: pl.DataFrame, holdout: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(earlier, latest) reviews: the last ``holdout`` fraction by time is held out."""
    if not 0 < holdout < 1:
        raise ConfigError(f"holdout must be a fraction in (0, 1), got {holdout}")
    early, late = split_by_time(reviews, (1 - holdout, holdout))
    return early, late
