"""External ids: the one normalisation every input goes through, and the external ↔ internal id maps.

Ids are normalised and mapped once, at the boundary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from shortlist.errors import ColumnTypeError, IdValueError
from shortlist.schema import ID_DTYPE

# A digit string with an all-zero fraction ("12346.0", "-5.00"), as CSV exports of float id columns write them.
_INTEGRAL_LITERAL = r"^([+-]?[0-9]+)\.0*$"
_INT64_LIMIT = 2.0**63


def normalize_ids(values: pl.Series | Sequence[object], *, source: str = "<ids>") -> pl.Series:
    """External ids as canonical strings (``Utf8``); missing values (null, empty, NaN, inf) become null.

    The rule, the same for every input (CSV, Parquet, JSON; interactions, catalogue, users files,
    HTTP requests), so one id is spelled one way whatever carried it:

    * integers → their decimal string (``12346`` → ``"12346"``);
    * integral floats → the integer's string (``12346.0`` → ``"12346"``); other floats keep their
      shortest decimal form (``1.5`` → ``"1.5"``);
    * strings are stripped of surrounding whitespace, and a string that is an integral float literal
      loses its zero fraction (``"12346.0"`` → ``"12346"``, ``"007.0"`` → ``"007"``); any other string
      is kept as written (``"007"`` stays ``"007"``, ``"1.50"`` stays ``"1.50"``).

    Booleans and nested values are not ids: :class:`~shortlist.errors.ColumnTypeError`.
    """
    s = values if isinstance(values, pl.Series) else _text_series(values)
    if s.dtype == pl.Boolean or s.dtype.is_nested():
        raise ColumnTypeError(source, s.name or "id", "text or integer ids", str(s.dtype), s.head(3).to_list())
    if s.dtype.is_float():
        finite = s.is_finite().fill_null(False)
        integral = finite & (s == s.round(0)) & (s.abs() < _INT64_LIMIT)
        as_int = s.set(~integral, None).cast(pl.Int64).cast(pl.Utf8)
        s = as_int.zip_with(integral, s.set(~finite, None).cast(pl.Utf8))
    text = s.cast(pl.Utf8).str.strip_chars().str.replace(_INTEGRAL_LITERAL, "${1}")
    return text.set(text == "", None) if len(text) else text


def normalize_id(value: object) -> str:
    """One external id (an HTTP request's, a CLI argument's) by the :func:`normalize_ids` rule.

    Raises :class:`~shortlist.errors.IdValueError` for a value that is no id (null, empty, NaN, a bool).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise IdValueError(value)
    out = normalize_ids([value])[0]
    if out is None:
        raise IdValueError(value)
    return str(out)


def _text_series(values: Sequence[object]) -> pl.Series:
    """Python scalars as text, integral floats as integers (as the Series path spells them)."""
    text: list[str | None] = []
    for v in values:  # request-sized lists: files and frames take the vectorised path
        if isinstance(v, bool) or (v is not None and not isinstance(v, str | int | float)):
            raise IdValueError(v)
        if isinstance(v, float):
            v = None if not math.isfinite(v) else int(v) if v.is_integer() and abs(v) < _INT64_LIMIT else v
        text.append(None if v is None else str(v))
    return pl.Series("id", text, pl.Utf8)


class IdMap:
    """An immutable bijection between external string ids and dense ``Int32`` indices.

    The index of an id is its position in :attr:`ids` (order of first appearance).
    """

    __slots__ = ("_ids", "_lookup")

    def __init__(self, ids: pl.Series) -> None:
        ids = ids.cast(pl.Utf8).rename("id")
        if ids.null_count():
            raise ValueError("IdMap ids must not be null")
        if ids.n_unique() != len(ids):
            raise ValueError("IdMap ids must be unique")
        self._ids = ids
        self._lookup: dict[str, int] | None = None

    @classmethod
    def from_values(cls, *values: pl.Series) -> IdMap:
        """Unique ids of ``values`` (concatenated), in order of first appearance."""
        parts = [v.cast(pl.Utf8).rename("id") for v in values]
        return cls(pl.concat(parts).unique(maintain_order=True) if parts else pl.Series("id", [], pl.Utf8))

    @property
    def ids(self) -> pl.Series:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids.equals(other._ids)

    __hash__ = None  # type: ignore[assignment]

    def index(self, external: pl.Series | Sequence[str]) -> pl.Series:
        """Internal indices of ``external`` ids (``Int32``); unknown ids map to null."""
        s = external if isinstance(external, pl.Series) else pl.Series("id", list(external), pl.Utf8)
        return s.cast(pl.Utf8).replace_strict(
            self._ids, pl.int_range(len(self._ids), eager=True), default=None, return_dtype=ID_DTYPE
        )

    def external(self, index: np.ndarray | pl.Series | Sequence[int]) -> pl.Series:
        """External ids of internal indices."""
        idx = index.to_numpy() if isinstance(index, pl.Series) else np.asarray(index, dtype=np.int64)
        return self._ids.gather(idx)

    def get(self, external: str | int | float) -> int | None:
        """Index of one external id, normalised by :func:`normalize_id` (``12346``, ``12346.0`` and
        ``"12346.0"`` are the same id); unknown or invalid ids give None."""
        if self._lookup is None:
            self._lookup = {v: i for i, v in enumerate(self._ids.to_list())}
        if isinstance(external, str) and external in self._lookup:  # already canonical: the common case
            return self._lookup[external]
        try:
            return self._lookup.get(normalize_id(external))
        except IdValueError:
            return None

    def extend(self, new: Iterable[str]) -> IdMap:
        """A new map with the unknown ids of ``new`` appended (existing indices unchanged)."""
        s = pl.Series("id", list(new), pl.Utf8)
        unknown = s.filter(~s.is_in(self._ids.implode())).unique(maintain_order=True)
        return IdMap(pl.concat([self._ids, unknown])) if len(unknown) else self
