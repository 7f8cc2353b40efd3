"""Timestamps to epoch seconds: ISO 8601 text, datetimes, and numbers whose unit is decided per column.

A numeric column's unit is never guessed from one statistic. Under ``unit="auto"`` every value must
be a plausible date (1990-01-01 up to the end of next year) in one epoch unit — seconds, milliseconds,
microseconds or nanoseconds — and that unit is used. Otherwise the column is read as calendar
integers (``YYYYMMDD``, ``YYYYMMDDhhmm``, ``YYYYMMDDhhmmss``) when most values are such dates, or
as relative time (seconds from an arbitrary origin) when every value is too small to be a date in any
unit; anything else — mixed units, dates outside the plausible range, day numbers — is a typed error
with examples and the fix, or, with ``drop_invalid``, rows dropped with a count. An explicit unit
is taken as given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from shortlist.data.report import CleaningReport
from shortlist.errors import ImplausibleTimestampsError, TimestampParseError
from shortlist.schema import SECONDS_PER_DAY

TimestampUnit = Literal["auto", "s", "ms", "us", "ns", "D"]

#: Seconds per unit of each explicit unit (``D``: days since 1970-01-01).
SECONDS_PER_UNIT: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "D": float(SECONDS_PER_DAY)}
_EPOCH_UNITS = {"s": "epoch seconds", "ms": "epoch milliseconds", "us": "epoch microseconds",
                "ns": "epoch nanoseconds"}  # fmt: skip
EARLIEST_PLAUSIBLE = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
#: Below this no value is a date after 1973 in any epoch unit: such a column is relative time.
RELATIVE_LIMIT = 100_000_000
_CALENDAR_FORMATS = ("%Y%m%d", "%Y%m%d%H%M", "%Y%m%d%H%M%S")
# Spreadsheet serial dates count days from 1899-12-30.
_SPREADSHEET_EPOCH_DAYS = -25_569
_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)


def latest_plausible(today: dt.date | None = None) -> dt.datetime:
    """The first instant after next year: later timestamps are not real events."""
    year = (today or dt.datetime.now(dt.UTC).date()).year
    return dt.datetime(year + 2, 1, 1, tzinfo=dt.UTC)


@dataclass
class TimestampReading:
    """A column read as epoch seconds. Null seconds are unparsable (or null) values; ``invalid`` rows
    parsed but are not plausible timestamps, for the reason ``error`` states."""

    seconds: pl.Series  # Int64 epoch seconds; null where unparsable or invalid
    invalid: pl.Series  # Boolean: implausible rows (raise ``error`` or drop them)
    reason: str = ""
    error: Exception | None = None
    notes: list[str] = field(default_factory=list)


def parse_timestamps(s: pl.Series, *, unit: TimestampUnit = "auto") -> pl.Series:
    """Epoch seconds (``Int64``) from numbers, datetimes or ISO-like strings; unparsable or implausible
    values → null (see :func:`read_timestamps` for the reasons)."""
    return read_timestamps(s, unit=unit).seconds


def read_timestamps(
    s: pl.Series, *, unit: TimestampUnit = "auto", source: str = "<timestamps>", column: str = "timestamp"
) -> TimestampReading:
    """Read ``s`` as epoch seconds and say which rows are implausible, with errors naming ``source``."""
    if s.dtype == pl.Date:
        return _valid(s.cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Int64))
    if isinstance(s.dtype, pl.Datetime):
        utc = s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s
        return _valid(utc.dt.epoch("s").cast(pl.Int64))
    if s.dtype.is_numeric():
        return _numbers(s.cast(pl.Float64).fill_nan(None), unit, raw=s, source=source, column=column)
    text = s.cast(pl.Utf8).str.strip_chars()
    numeric = text.cast(pl.Float64, strict=False)
    if numeric.null_count() == text.null_count():  # all numbers stored as text
        return _numbers(numeric.fill_nan(None), unit, raw=s, source=source, column=column)
    return _valid(_parse_text(text))


def _valid(seconds: pl.Series) -> TimestampReading:
    return TimestampReading(seconds, pl.Series("invalid", [False] * len(seconds), pl.Boolean))


def _parse_text(text: pl.Series) -> pl.Series:
    """ISO 8601 (``T`` or space, fractional seconds, ``Z`` or ``±hh:mm`` offsets) and a few common forms."""
    frame = pl.DataFrame({"t": text.str.replace(r"[zZ]$", "+00:00")})
    attempts = []
    for fmt in _DATETIME_FORMATS:
        parsed = pl.col("t").str.strptime(pl.Datetime("us"), fmt, strict=False)
        parsed = parsed.dt.convert_time_zone("UTC") if "%z" in fmt else parsed.dt.replace_time_zone("UTC")
        attempts.append(parsed.dt.epoch("s"))
    return frame.select(pl.coalesce(attempts).cast(pl.Int64)).to_series().rename(text.name)


def _numbers(
    f: pl.Series, unit: TimestampUnit, *, raw: pl.Series, source: str, column: str
) -> TimestampReading:
    if unit != "auto":
        return _valid(_scaled(f, unit))
    values = f.drop_nulls()
    if values.len() == 0:
        return _valid(_scaled(f, "s"))
    bands = _unit_bands(f)
    full = [u for u, band in bands.items() if band.sum() == values.len()]
    if full:
        return _valid(_scaled(f, full[0]))
    calendar = _calendar(f)
    if calendar.is_not_null().sum() * 2 >= values.len():
        reading = _valid(calendar)
        reading.notes.append(f"{column!r} read as calendar integers (YYYYMMDD[hhmm[ss]])")
        return reading
    if values.min() >= 0 and values.max() < RELATIVE_LIMIT:  # type: ignore[operator]
        return _relative(f, values, source=source, column=column)
    return _implausible(f, bands, raw=raw, source=source, column=column)


def _scaled(f: pl.Series, unit: str) -> pl.Series:
    """Epoch seconds of numbers in ``unit``; values beyond Int64 become null (unparsable)."""
    return (f * SECONDS_PER_UNIT[unit]).floor().cast(pl.Int64, strict=False)


def _unit_bands(f: pl.Series) -> dict[str, pl.Series]:
    """Per epoch unit, the rows that are plausible dates in that unit (the ranges do not overlap)."""
    lo, hi = EARLIEST_PLAUSIBLE.timestamp(), latest_plausible().timestamp()
    out = {}
    for u in _EPOCH_UNITS:
        sec = f * SECONDS_PER_UNIT[u]
        out[u] = ((sec >= lo) & (sec < hi)).fill_null(False)
    return out


def _calendar(f: pl.Series) -> pl.Series:
    """Epoch seconds of values that are calendar integers such as 20110412; null elsewhere."""
    integral = f.set(f != f.floor(), None)
    text = integral.cast(pl.Int64, strict=False).cast(pl.Utf8)
    attempts = [text.str.strptime(pl.Datetime("us"), fmt, strict=False) for fmt in _CALENDAR_FORMATS]
    parsed = pl.DataFrame({str(i): a for i, a in enumerate(attempts)}).select(pl.coalesce(pl.all())).to_series()
    return parsed.dt.replace_time_zone("UTC").dt.epoch("s").cast(pl.Int64)


def _relative(f: pl.Series, values: pl.Series, *, source: str, column: str) -> TimestampReading:
    """Small numbers: day numbers are an error (they would be minutes as seconds), the rest relative seconds."""
    lo, hi = EARLIEST_PLAUSIBLE.timestamp() / SECONDS_PER_DAY, latest_plausible().timestamp() / SECONDS_PER_DAY
    days = values.is_between(lo, hi, closed="left").all()
    serial = (values + _SPREADSHEET_EPOCH_DAYS).is_between(lo, hi, closed="left").all()
    if days or serial:
        what = "days since 1970-01-01" if days else "spreadsheet serial dates (days since 1899-12-30)"
        error = ImplausibleTimestampsError(
            source, column,
            f"holds numbers {_range(values)} that look like {what}, not timestamps (examples: {_ex(values)})",
            "convert them to dates or epoch seconds; pass timestamp_unit='D' (--timestamp-unit D) if they count "
            "days since 1970-01-01, or timestamp_unit='s' if they really are seconds",
        )
        invalid = f.is_not_null()
        return TimestampReading(_scaled(f, "s").set(invalid, None), invalid, "day numbers in", error)
    reading = _valid(_scaled(f, "s"))
    reading.notes.append(
        f"{column!r} values {_range(values)} are not dates in any epoch unit: read as seconds from an arbitrary "
        f"origin (pass real dates to use calendar time windows)"
    )
    return reading


def _implausible(
    f: pl.Series, bands: dict[str, pl.Series], *, raw: pl.Series, source: str, column: str
) -> TimestampReading:
    counts = {u: int(b.sum()) for u, b in bands.items() if b.any()}
    best = max(counts, key=lambda u: counts[u]) if counts else "s"
    invalid = ~bands[best] & f.is_not_null()
    latest = (latest_plausible() - dt.timedelta(days=1)).date().isoformat()
    if len(counts) > 1:
        parts = ", ".join(f"{n:,} look like {_EPOCH_UNITS[u]} (e.g. {_ex(raw.filter(bands[u]))})"
                          for u, n in counts.items())
        error = ImplausibleTimestampsError(
            source, column, f"mixes timestamp units: {parts}",
            f"convert the column to one unit (epoch seconds or ISO 8601 dates), or drop the rows in the minority "
            f"unit (drop_invalid=True / --drop-invalid keeps the {_EPOCH_UNITS[best]})",
        )
        return TimestampReading(_scaled(f, best).set(invalid, None), invalid, "minority-unit values in", error)
    bad = raw.filter(invalid)
    shown = ", ".join(f"{v!r} → {_date(x, best)}" for v, x in zip(bad.head(3).to_list(),
                                                                      f.filter(invalid).head(3).to_list(), strict=True))
    error = ImplausibleTimestampsError(
        source, column,
        f"has {int(invalid.sum()):,} value(s) that are no plausible date as {_EPOCH_UNITS[best]} "
        f"(from 1990-01-01 to {latest}): {shown}",
        "convert the column to epoch seconds or ISO 8601 dates (YYYYMMDD integers are read as dates), pass the "
        "unit explicitly (timestamp_unit= / --timestamp-unit), or drop those rows (drop_invalid=True / "
        "--drop-invalid)",
    )
    return TimestampReading(_scaled(f, best).set(invalid, None), invalid, "implausible dates in", error)


def _range(values: pl.Series) -> str:
    lo, hi = values.min(), values.max()
    return f"{float(lo):g}..{float(hi):g}"  # type: ignore[arg-type]


def _ex(values: pl.Series) -> str:
    return ", ".join(repr(v) for v in values.head(3).to_list())


def _date(value: float, unit: str) -> str:
    seconds = value * SECONDS_PER_UNIT[unit]
    if not np.isfinite(seconds) or abs(seconds) > 1e11:
        return "out of range"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date().isoformat()


def clean_timestamps(
    df: pl.DataFrame,
    column: str,
    *,
    theirs: str,
    source: str,
    unit: TimestampUnit,
    drop_invalid: bool,
    report: CleaningReport,
    values: pl.Series | None = None,
) -> pl.DataFrame:
    """Replace ``column`` (called ``theirs`` in the file) by Int64 epoch seconds; invalid rows raise the
    reading's typed error, or are dropped and counted when ``drop_invalid``. ``values``: what to parse
    instead of the column itself (e.g. an epoch field coerced to numbers)."""
    raw = df.get_column(column)
    reading = read_timestamps(raw if values is None else values, unit=unit, source=source, column=theirs)
    unparsable = reading.seconds.is_null() & ~reading.invalid
    n_unparsable, n_invalid = int(unparsable.sum()), int(reading.invalid.sum())
    if n_unparsable and not drop_invalid:
        raise TimestampParseError(source, theirs, n_unparsable, raw.filter(unparsable).head(5).to_list())
    if n_invalid and not drop_invalid and reading.error is not None:
        raise reading.error
    for note in reading.notes:
        report.note(f"{source}: {note}")
    report.drop(f"null or unparsable {theirs}", n_unparsable)
    report.drop(f"{reading.reason} {theirs}", n_invalid)
    return df.with_columns(reading.seconds.alias(column)).filter(reading.seconds.is_not_null())
