"""Validate and normalise raw interaction / item frames into the canonical schema.

Every problem is either a typed error that names the input, the column and the fix, or — where
the caller asked for it — a counted clean-up recorded in a :class:`CleaningReport`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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
    BASKET,
    EVENT,
    ITEM_ID,
    OPTIONAL_INTERACTION_DTYPES,
    PRICE,
    REQUIRED_INTERACTION_COLUMNS,
    TIMESTAMP,
    USER_ID,
    WEIGHT,
)

DuplicatePolicy = Literal["drop", "keep", "error"]
_DROP_HINT = "drop_invalid=True / --drop-invalid drops them with a count"
# Suffix of the baskets made for rows without one; a "#" never ends an id from a real basket column's
# owner-made ids in practice, and the user@timestamp part keeps them apart from each other.
_OWN_BASKET = "#own"


def apply_column_map(
    df: pl.DataFrame, columns: Mapping[str, str] | None, *, source: str, optional: Collection[str] = ()
) -> pl.DataFrame:
    """Rename source columns to canonical names; ``columns`` maps canonical → source name.

    A mapping that names a column the frame lacks is an error, except for the canonical names in
    ``optional``, which apply only where the frame has the column (a mapping shared between the
    interactions and a catalogue: ``item_id=sku`` maps the catalogue's ``sku`` if it has one).
    """
    columns = {c: theirs for c, theirs in (columns or {}).items() if c not in optional or theirs in df.columns}
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


#: Optional numeric columns whose negative values are invalid (a weight or a price below zero).
_NON_NEGATIVE = frozenset({WEIGHT, PRICE})
#: Optional numeric columns where a missing value is invalid (every row needs a weight).
_NOT_NULL = frozenset({WEIGHT})


def _clean_optional(df: pl.DataFrame, *, source: str, drop_invalid: bool, report: CleaningReport) -> pl.DataFrame:
    """Cast the optional canonical columns; invalid numbers (not numeric, NaN/inf, negative weights or
    prices, missing weights) raise ColumnTypeError, or are dropped and counted with ``drop_invalid``."""
    for col, dtype in OPTIONAL_INTERACTION_DTYPES.items():
        if col not in df.columns:
            continue
        s = df.get_column(col)
        if not dtype.is_numeric():
            text = s.cast(pl.Utf8)
            df = df.with_columns(text.str.to_lowercase() if col == EVENT else text)
            continue
        cast = s.cast(dtype, strict=False)
        bad = (cast.is_null() & s.is_not_null()) | ~cast.is_finite().fill_null(True)
        if col in _NON_NEGATIVE:
            bad = bad | (cast < 0).fill_null(False)
        if col in _NOT_NULL:
            bad = bad | cast.is_null()
        df = df.with_columns(cast)
        if bad.any():
            if not drop_invalid:
                expected = "a finite non-negative number" if col in _NON_NEGATIVE else "a finite number"
                raise ColumnTypeError(
                    source, col, f"{expected} ({dtype})", f"{int(bad.sum()):,} invalid value(s)",
                    s.filter(bad).head(5).to_list(), fix=f"fix or remove those rows ({_DROP_HINT})",
                )
            report.drop(f"invalid {col} (not a finite{' non-negative' if col in _NON_NEGATIVE else ''} number)",
                        int(bad.sum()))
            df = df.filter(~bad)
    return df


def _fill_baskets(df: pl.DataFrame, *, source: str, report: CleaningReport) -> pl.DataFrame:
    """Rows without a basket get their own: one basket per (user, timestamp), recorded in the report,
    so no consumer ever sees a null basket."""
    if BASKET not in df.columns:
        return df
    basket = normalize_ids(df.get_column(BASKET), source=source)
    missing = basket.is_null()
    n_missing = int(missing.sum())
    if n_missing:
        own = df.select(pl.format("{}@{}{}", USER_ID, TIMESTAMP, pl.lit(_OWN_BASKET))).to_series()
        basket = basket.zip_with(~missing, own)
        report.note(f"{source}: {n_missing:,} row(s) without a {BASKET}: each (user, timestamp) made its own basket")
    return df.with_columns(basket.alias(BASKET))


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
    df = _clean_optional(df, source=source, drop_invalid=drop_invalid, report=report)
    if WEIGHT not in df.columns:
        df = df.with_columns(pl.lit(1.0, pl.Float32).alias(WEIGHT))
    df = _fill_baskets(df, source=source, report=report)
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
