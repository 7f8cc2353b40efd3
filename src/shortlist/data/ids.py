"""External ↔ internal id maps: ids are mapped once, at the boundary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from shortlist.schema import ID_DTYPE


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

    def get(self, external: str | int) -> int | None:
        """Index of one external id (a JSON int and its string form are the same id)."""
        if self._lookup is None:
            self._lookup = {v: i for i, v in enumerate(self._ids.to_list())}
        return self._lookup.get(str(external))

    def extend(self, new: Iterable[str]) -> IdMap:
        """A new map with the unknown ids of ``new`` appended (existing indices unchanged)."""
        s = pl.Series("id", list(new), pl.Utf8)
        unknown = s.filter(~s.is_in(self._ids.implode())).unique(maintain_order=True)
        return IdMap(pl.concat([self._ids, unknown])) if len(unknown) else self
