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
from shortlist.errors import (
    ColumnTypeError,
    DuplicateRowsError,
    EmptyInputError,
    InvalidIdError,
    MissingColumnError,
    TimestampParseError,
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
TimestampUnit = Literal["auto", "s", "ms", "us", "ns"]

_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)
_UNIT_DIVISOR = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


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


def parse_timestamps(s: pl.Series, *, unit: TimestampUnit = "auto") -> pl.Series:
    """Epoch seconds (``Int64``) from numbers, datetimes or ISO-like strings; unparsable → null."""
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Int64)
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is None:
            s = s.dt.replace_time_zone("UTC")
        return s.dt.epoch("s").cast(pl.Int64)
    if s.dtype.is_numeric():
        f = s.cast(pl.Float64)
        if unit == "auto":
            med = f.drop_nulls().abs().median()
            mag = float(med) if isinstance(med, int | float) else 0.0
            unit = "ns" if mag > 1e17 else "us" if mag > 1e14 else "ms" if mag > 1e11 else "s"
        f = f.fill_nan(None)
        return (f / _UNIT_DIVISOR[unit]).floor().cast(pl.Int64)
    text = s.cast(pl.Utf8).str.strip_chars()
    numeric = text.cast(pl.Float64, strict=False)
    if numeric.null_count() == text.null_count():  # all numbers stored as text
        return parse_timestamps(numeric, unit=unit)
    frame = pl.DataFrame({"t": text})
    attempts = []
    for fmt in _DATETIME_FORMATS:
        parsed = pl.col("t").str.strptime(pl.Datetime("us"), fmt, strict=False)
        if "%z" in fmt:
            parsed = parsed.dt.convert_time_zone("UTC")
        else:
            parsed = parsed.dt.replace_time_zone("UTC")
        attempts.append(parsed.dt.epoch("s"))
    return frame.select(pl.coalesce(attempts).cast(pl.Int64)).to_series().rename(s.name)


def normalise_timestamps(
    df: pl.DataFrame, *, source: str, unit: TimestampUnit, drop_invalid: bool, report: CleaningReport
) -> pl.DataFrame:
    raw = df.get_column(TIMESTAMP)
    ts = parse_timestamps(raw, unit=unit)
    bad = ts.is_null()
    n_bad = int(bad.sum())
    if n_bad:
        if not drop_invalid:
            examples = raw.filter(bad).head(5).to_list()
            raise TimestampParseError(source, TIMESTAMP, n_bad, examples)
        report.drop(f"null or unparsable {TIMESTAMP}", n_bad)
    return df.with_columns(ts.alias(TIMESTAMP)).filter(~bad)


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
