"""Typed exceptions. Each message says what was wrong, in which input, and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import get_close_matches


class ShortlistError(Exception):
    """Base class of every error shortlist raises on purpose."""


class DataValidationError(ShortlistError, ValueError):
    """Input data does not have the shape or content shortlist needs."""


class EmptyInputError(DataValidationError):
    def __init__(self, source: str, what: str = "interactions") -> None:
        super().__init__(f"{source}: the {what} input has no rows; pass a file with at least one row.")


class MissingColumnError(DataValidationError):
    def __init__(self, source: str, column: str, available: Sequence[str], *, hint: str = "") -> None:
        near = get_close_matches(column, list(available), n=1, cutoff=0.5)
        did_you_mean = f" Did you mean {near[0]!r}?" if near else ""
        fix = hint or (
            f"rename the column to {column!r} or pass a column mapping "
            f"(e.g. --map {column}=<your column>)"
        )
        super().__init__(
            f"{source}: required column {column!r} is missing (found: {', '.join(map(repr, available))})."
            f"{did_you_mean} Fix: {fix}."
        )
        self.source, self.column = source, column


class ColumnTypeError(DataValidationError):
    def __init__(
        self, source: str, column: str, expected: str, got: str, examples: Sequence[object] = (), *, fix: str = ""
    ) -> None:
        ex = f" Offending values: {list(examples)[:5]!r}." if examples else ""
        fix = fix or f"convert the column to {expected} or drop the bad rows"
        super().__init__(f"{source}: column {column!r} must be {expected}, got {got}.{ex} Fix: {fix}.")
        self.source, self.column = source, column


class InvalidIdError(DataValidationError):
    def __init__(self, source: str, column: str, n_bad: int, rows: Sequence[int], *, fix: str = "") -> None:
        fix = fix or ("remove those rows or fill the ids (pass drop_invalid=True / --drop-invalid to drop them "
                      "with a count)")
        super().__init__(
            f"{source}: column {column!r} has {n_bad} null or empty id(s) (first rows: {list(rows)[:5]}). Fix: {fix}."
        )
        self.source, self.column, self.n_bad = source, column, n_bad


class IdValueError(DataValidationError):
    def __init__(self, value: object) -> None:
        super().__init__(
            f"{value!r} is not a valid id. Fix: pass a non-empty string or an integer "
            f"(integral floats such as 12346.0 are read as 12346)."
        )
        self.value = value


class TimestampParseError(DataValidationError):
    def __init__(self, source: str, column: str, n_bad: int, examples: Sequence[object]) -> None:
        super().__init__(
            f"{source}: column {column!r} has {n_bad} value(s) that are not timestamps "
            f"(examples: {list(examples)[:5]!r}). Fix: use epoch seconds (integer) or ISO 8601 "
            f"date-times such as '2011-12-09 12:50:00'."
        )
        self.source, self.column, self.n_bad = source, column, n_bad


class ImplausibleTimestampsError(DataValidationError):
    """Timestamps that parse but are not plausible dates: mixed units, out-of-range dates, day numbers."""

    def __init__(self, source: str, column: str, what: str, fix: str) -> None:
        super().__init__(f"{source}: column {column!r} {what}. Fix: {fix}.")
        self.source, self.column = source, column


class DuplicateRowsError(DataValidationError):
    def __init__(self, source: str, n_dup: int, keys: Sequence[str]) -> None:
        super().__init__(
            f"{source}: {n_dup} duplicate row(s) on ({', '.join(keys)}). "
            f"Fix: de-duplicate the file, or use duplicates='drop' (the default) to drop them with a count."
        )
        self.source, self.n_dup = source, n_dup


class UnsupportedFormatError(DataValidationError):
    def __init__(self, source: str, suffix: str, supported: Sequence[str]) -> None:
        super().__init__(
            f"{source}: unsupported file type {suffix!r}; supported: {', '.join(supported)}. "
            f"Fix: convert the file or give it the right extension."
        )


class ConfigError(ShortlistError, ValueError):
    """A configuration value or option is invalid."""


class UnknownEventError(DataValidationError):
    """The log has event types the model's event weights do not name (``[events] weights``)."""

    def __init__(self, source: str, unknown: dict[str, int], known: Sequence[str]) -> None:
        listed = ", ".join(f"{e!r} ({n:,} rows)" for e, n in list(unknown.items())[:10])
        example = ", ".join(f"{e} = 1" for e in list(unknown)[:3] if e != "<missing>")
        super().__init__(
            f"{source}: event type(s) without a weight: {listed}; the weights name {', '.join(map(repr, known))}. "
            f"Fix: give every event type a weight in the config's [events] table (e.g. weights = {{{example or 'view = 1'}, "
            f"...}}; 0 ignores an event), or map the events to named ones, or drop the rows."
        )
        self.source, self.unknown = source, unknown


class NoTimestampsError(ConfigError):
    """A time protocol or target was asked of data whose timestamps only order the rows."""

    def __init__(self, dataset: str, protocol: str, works: str) -> None:
        super().__init__(
            f"{dataset} has no timestamps (its time column only orders the rows), so the time protocol "
            f"{protocol!r} cannot split it honestly; llo, llo:N, days:N and quantile:Q all need times. "
            f"Fix: use {works.partition(':')[0]}:Q, a seeded random holdout of a fraction Q of each user's "
            f"interactions (e.g. --protocol {works})."
        )
        self.dataset, self.protocol = dataset, protocol


class RulesError(ConfigError):
    """Business rules that cannot be applied: a bad value, or a rule the model's catalogue cannot
    answer (a category rule without a category column). ``field`` names the offending rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"rules: {field}: {message}")
        self.field, self.message = field, message


class LeakageError(ConfigError):
    """An evaluation would score a model on data it was fitted on."""


class UpdateError(ShortlistError, ValueError):
    """An incremental update that cannot be made: the model or the new log does not fit it."""


class NotFittedError(ShortlistError, RuntimeError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not fitted yet; call fit(...) first.")


class UnknownDatasetError(ShortlistError, KeyError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        near = get_close_matches(name, list(known), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        super().__init__(f"unknown dataset {name!r}; known: {', '.join(known)}.{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatasetNotFoundError(ShortlistError, FileNotFoundError):
    def __init__(self, name: str, looked_in: Sequence[str], fix: str) -> None:
        super().__init__(f"dataset {name!r} not found (looked in: {', '.join(looked_in)}). Fix: {fix}.")


class DownloadError(ShortlistError, OSError):
    """A download failed or its checksum did not match."""


class ModelLoadError(ShortlistError, OSError):
    """A saved model directory is missing files, corrupt, or from an incompatible version."""


class OutputPathError(ShortlistError, OSError):
    """An output path would overwrite or delete something shortlist did not create."""


class DependencyMissingError(ShortlistError, ImportError):
    def __init__(self, package: str, extra: str, what: str) -> None:
        super().__init__(
            f"{what} needs the optional package {package!r}. Fix: pip install 'shortlist[{extra}]'."
        )
        self.package, self.extra = package, extra


class DistributedError(ShortlistError, RuntimeError):
    """A step mapped over a Dask cluster could not finish: a worker died more often than Dask
    allows, or the scheduler went away. Nothing was written (outputs are renamed into place whole)."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(
            f"the Dask cluster failed during {step!r}: {type(cause).__name__}: {cause}. Nothing was written. "
            f"Fix: look at the workers' logs (a worker killed for memory needs a larger --memory-limit, or a "
            f"smaller [model] shard_users), then run the command again."
        )
        self.step, self.cause = step, cause
