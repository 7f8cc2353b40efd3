"""Checks that run before :func:`~shortlist.data.validate.validate_interactions` so that errors
name the column as it is called *in the file* (``unixReviewTime``, ``CustomerID``), not its
canonical name."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from shortlist.data.ids import normalize_ids
from shortlist.data.report import CleaningReport
from shortlist.data.timestamps import TimestampUnit, clean_timestamps
from shortlist.errors import InvalidIdError
from shortlist.schema import TIMESTAMP


def check_ids(
    df: pl.DataFrame,
    columns: Mapping[str, str],
    *,
    source: str,
    drop_invalid: bool,
    report: CleaningReport,
) -> pl.DataFrame:
    """Normalise the ids in ``columns`` (canonical → name in the file) by
    :func:`~shortlist.data.ids.normalize_ids`; null/empty ids error, or are dropped with a count."""
    for canonical, theirs in columns.items():
        s = normalize_ids(df.get_column(canonical), source=source)
        df = df.with_columns(s.alias(canonical))
        bad = s.is_null()
        n_bad = int(bad.sum())
        if not n_bad:
            continue
        if not drop_invalid:
            raise InvalidIdError(source, theirs, n_bad, bad.arg_true().head(5).to_list())
        report.drop(f"null or empty {theirs}", n_bad)
        df = df.filter(~bad)
    return df


def check_timestamps(
    df: pl.DataFrame,
    theirs: str,
    *,
    source: str,
    unit: TimestampUnit,
    drop_invalid: bool,
    report: CleaningReport,
    epoch: bool = False,
) -> pl.DataFrame:
    """Parse ``timestamp`` (called ``theirs`` in the file) to Int64 epoch seconds; bad values error
    or are dropped with a count. Afterwards the column is in seconds whatever ``unit`` was.

    ``epoch=True``: the field is documented as an epoch number, so one stray text value must not
    make the whole column be parsed as date strings.
    """
    raw = df.get_column(TIMESTAMP)
    values = raw.cast(pl.Float64, strict=False) if epoch and raw.dtype == pl.Utf8 else None
    return clean_timestamps(
        df, TIMESTAMP, theirs=theirs, source=source, unit=unit, drop_invalid=drop_invalid, report=report,
        values=values,
    )
