"""Validate and normalise raw interaction / item frames into the canonical schema.

Every problem is either a typed error that names the input, the column and the fix, or — where
the caller asked for it — a counted clean-up recorded in a :class:`CleaningReport`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import polars as pl

from shortlist.data.ids import normalize_ids
from shortlist.data.report import CleaningReport
from shortlist.data.timestamps import TimestampUnit, clean_timestamps
from shortlist.errors import (
    ColumnTypeError,
    DuplicateRowsError,
    EmptyInputError,
    InvalidIdError,
    MissingColumnError,
)
from shortlist.schema import (
    ITEM_ID,
    OPTIONAL_INTERACTION_DTYPES,
    PRICE,
    REQUIRED_INTERACTION_COLUMNS,
    TIMESTAMP,
    USER_ID,
    WEIGHT,
)

DuplicatePolicy = Literal["drop", "keep", "error"]


def apply_column_map(df: pl.DataFrame, columns: Mapping[str, str] | None, *, source: str) -> pl.DataFrame:
    """Rename source columns to canonical names; ``columns`` maps canonical → source name."""
    if not columns:
        return df
    for canonical, theirs in columns.items():
        if theirs not in df.columns:
            raise MissingColumnError(
                source, theirs, df.columns, hint=f"the mapping {canonical}={theirs} names a column the file lacks"
            )
    renames = {theirs: canonical for canonical, theirs in columns.items() if theirs != canonical}
    clashing = [c for c in renames.values() if c in df.columns and c not in renames]
    return df.drop(clashing).rename(renames)


def normalise_ids(
    df: pl.DataFrame, column: str, *, source: str, drop_invalid: bool, report: CleaningReport
) -> pl.DataFrame:
    """Normalise an id column by :func:`~shortlist.data.ids.normalize_ids` (``17850.0`` → ``"17850"``);
    null/empty ids error or are dropped with a count."""
    s = normalize_ids(df.get_column(column), source=source)
    bad = s.is_null()
    n_bad = int(bad.sum())
    df = df.with_columns(s.alias(column))
    if n_bad:
        if not drop_invalid:
            rows = bad.arg_true().head(5).to_list()
            raise InvalidIdError(source, column, n_bad, rows)
        report.drop(f"null or empty {column}", n_bad)
        df = df.filter(~bad)
    return df


def normalise_timestamps(
    df: pl.DataFrame, *, source: str, unit: TimestampUnit, drop_invalid: bool, report: CleaningReport
) -> pl.DataFrame:
    """``timestamp`` as Int64 epoch seconds (see :mod:`shortlist.data.timestamps`)."""
    return clean_timestamps(
        df, TIMESTAMP, theirs=TIMESTAMP, source=source, unit=unit, drop_invalid=drop_invalid, report=report
    )


def _cast_optional(df: pl.DataFrame, *, source: str) -> pl.DataFrame:
    for col, dtype in OPTIONAL_INTERACTION_DTYPES.items():
        if col not in df.columns:
            continue
        s = df.get_column(col)
        if dtype.is_numeric():
            cast = s.cast(dtype, strict=False)
            bad = cast.is_null() & s.is_not_null()
            if cast.dtype.is_float():
                bad = bad | ~cast.is_finite().fill_null(True)
            if bad.any():
                examples = s.filter(bad).head(5).to_list()
                raise ColumnTypeError(source, col, f"a finite number ({dtype})", str(s.dtype), examples)
            df = df.with_columns(cast)
        else:
            cast = s.cast(pl.Utf8)
            df = df.with_columns(cast.str.to_lowercase() if col == "event" else cast)
    return df


def validate_interactions(
    df: pl.DataFrame,
    *,
    source: str = "<interactions>",
    columns: Mapping[str, str] | None = None,
    timestamp_unit: TimestampUnit = "auto",
    drop_invalid: bool = False,
    duplicates: DuplicatePolicy = "drop",
    report: CleaningReport | None = None,
) -> tuple[pl.DataFrame, CleaningReport]:
    """Check and normalise a raw interactions frame into the canonical external schema.

    Returns a frame with ``user_id``/``item_id`` (Utf8), ``timestamp`` (Int64 epoch seconds),
    ``weight`` (Float32, 1.0 when absent) and any optional canonical columns, in input order,
    plus the report of what was removed. Extra columns are kept.
    """
    report = report or CleaningReport(source)
    if not report.n_input:
        report.n_input = df.height
    if df.height == 0:
        raise EmptyInputError(source)
    df = apply_column_map(df, columns, source=source)
    for col in REQUIRED_INTERACTION_COLUMNS:
        if col not in df.columns:
            raise MissingColumnError(source, col, df.columns)
    for col in (USER_ID, ITEM_ID):
        df = normalise_ids(df, col, source=source, drop_invalid=drop_invalid, report=report)
    df = normalise_timestamps(df, source=source, unit=timestamp_unit, drop_invalid=drop_invalid, report=report)
    df = _cast_optional(df, source=source)
    if WEIGHT not in df.columns:
        df = df.with_columns(pl.lit(1.0, pl.Float32).alias(WEIGHT))
    if PRICE in df.columns and (df.get_column(PRICE) < 0).any():
        n_neg = int((df.get_column(PRICE) < 0).sum())
        raise ColumnTypeError(source, PRICE, "a non-negative price", f"{n_neg} negative value(s)")
    if duplicates != "keep":
        dup = ~df.select(pl.struct(pl.all()).is_first_distinct()).to_series()
        n_dup = int(dup.sum())
        if n_dup and duplicates == "error":
            raise DuplicateRowsError(source, n_dup, df.columns)
        if n_dup:
            report.drop("exact duplicate rows", n_dup)
            df = df.filter(~dup)
    if df.height == 0:
        raise EmptyInputError(source, "interactions (after cleaning)")
    return df, report
