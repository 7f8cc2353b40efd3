"""Immutable containers over columnar frames: ``Interactions``, ``Items`` and their ``Dataset``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.catalogue import Items, clean_catalogue
from shortlist.data.ids import IdMap
from shortlist.data.report import CleaningReport
from shortlist.data.validate import DuplicatePolicy, TimestampUnit, validate_interactions
from shortlist.errors import EmptyInputError, MissingColumnError
from shortlist.schema import BASKET, ITEM, ITEM_ID, TIMESTAMP, USER, USER_ID, WEIGHT

T = TypeVar("T")


class Interactions:
    """A read-only log of (user, item, timestamp, weight, ...) with dense internal ids.

    ``frame`` has Int32 ``user``/``item`` columns indexing :attr:`users` / :attr:`items`, Int64
    ``timestamp`` (epoch seconds), Float32 ``weight`` and any optional canonical columns, in input
    order. Subsets made by :meth:`with_frame` / :meth:`filter` share the id maps, so indices stay
    comparable across splits.
    """

    __slots__ = ("_frame", "_memo", "has_time", "items", "users")

    def __init__(self, frame: pl.DataFrame, users: IdMap, items: IdMap, *, has_time: bool = True) -> None:
        for col in (USER, ITEM, TIMESTAMP, WEIGHT):
            if col not in frame.columns:
                raise MissingColumnError("Interactions", col, frame.columns)
        self._frame = frame
        self.users = users
        self.items = items
        self._memo: dict[Hashable, Any] = {}
        #: False when ``timestamp`` only orders rows (a log without times): time protocols refuse it.
        self.has_time = has_time

    def cached(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``'s result, built once per log and ``key`` (the log is read-only, so anything
        derived from it alone stays valid). Sources fitted on one log share e.g. its binary matrix
        instead of each building it. Results must not be modified: matrices are made read-only."""
        if key not in self._memo:  # two threads may both build it: the same value, the last one kept
            self._memo[key] = build()
        value: T = self._memo[key]
        return value

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        df: pl.DataFrame,
        *,
        source: str = "<interactions>",
        columns: Mapping[str, str] | None = None,
        timestamp_unit: TimestampUnit = "auto",
        drop_invalid: bool = False,
        duplicates: DuplicatePolicy = "drop",
        items: IdMap | None = None,
        users: IdMap | None = None,
    ) -> Interactions:
        """Validate a raw frame with external ids and map it to internal ids.

        Pass ``items``/``users`` to extend existing id maps (ids already known keep their index).
        """
        clean, _ = validate_interactions(
            df,
            source=source,
            columns=columns,
            timestamp_unit=timestamp_unit,
            drop_invalid=drop_invalid,
            duplicates=duplicates,
        )
        return cls.from_clean(clean, users=users, items=items)

    @classmethod
    def from_clean(
        cls,
        clean: pl.DataFrame,
        *,
        users: IdMap | None = None,
        items: IdMap | None = None,
        has_time: bool = True,
    ) -> Interactions:
        """Map an already validated frame (external ``user_id``/``item_id``) to internal ids."""
        u = clean.get_column(USER_ID)
        i = clean.get_column(ITEM_ID)
        users = users.extend(u.unique(maintain_order=True)) if users else IdMap.from_values(u)
        items = items.extend(i.unique(maintain_order=True)) if items else IdMap.from_values(i)
        frame = clean.with_columns(users.index(u).alias(USER), items.index(i).alias(ITEM)).drop(USER_ID, ITEM_ID)
        ordered = [USER, ITEM, TIMESTAMP, WEIGHT]
        return cls(frame.select(ordered + [c for c in frame.columns if c not in ordered]), users, items, has_time=has_time)

    def with_frame(self, frame: pl.DataFrame) -> Interactions:
        """Same id maps over another frame (a subset, re-weighted copy, ...)."""
        return Interactions(frame, self.users, self.items, has_time=self.has_time)

    def filter(self, predicate: pl.Expr | pl.Series) -> Interactions:
        return self.with_frame(self._frame.filter(predicate))

    # --- views ---------------------------------------------------------------------------------
    @property
    def frame(self) -> pl.DataFrame:
        return self._frame

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return self._frame.height

    def __repr__(self) -> str:
        return (
            f"Interactions({len(self):,} rows, {self.n_users:,} users, {self.n_items:,} items, "
            f"columns={self._frame.columns})"
        )

    def column(self, name: str) -> np.ndarray:
        return self._frame.get_column(name).to_numpy()

    def time_span(self) -> tuple[int, int]:
        """(first, last) timestamp in epoch seconds."""
        if not len(self):
            raise EmptyInputError("Interactions", "interactions")
        ts = self._frame.get_column(TIMESTAMP)
        return int(ts.min()), int(ts.max())  # type: ignore[arg-type]

    def basket_size(self) -> float:
        """Median interactions per basket (0 without a basket column): how many items arrive together."""
        if BASKET not in self._frame.columns or not len(self):
            return 0.0
        median = self._frame.group_by(BASKET).len().get_column("len").median()
        return float(median) if isinstance(median, int | float) else 0.0

    def active_users(self) -> np.ndarray:
        """Internal ids of users with at least one interaction, sorted."""
        return np.unique(self.column(USER)).astype(np.int32)

    def to_csr(self, *, values: str | None = None, binary: bool = False) -> sp.csr_matrix:
        """A (n_users × n_items) CSR matrix; repeated pairs are summed (counts, or ``values``).

        The binary matrix is built once per log and shared, read-only (copy it to change it)."""
        if binary and values is None:
            return self.cached("csr:binary", lambda: read_only(self._csr(None, binary=True)))
        return self._csr(values, binary=binary)

    def _csr(self, values: str | None, *, binary: bool) -> sp.csr_matrix:
        rows, cols = self.column(USER), self.column(ITEM)
        data = np.ones(len(rows), np.float32) if values is None else self.column(values).astype(np.float32)
        m = sp.csr_matrix((data, (rows, cols)), shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def fingerprint(self) -> str:
        """SHA-256 over the canonical columns and id maps: identical data ⇒ identical fingerprint."""
        h = hashlib.sha256()
        for col in (USER, ITEM, TIMESTAMP, WEIGHT):
            h.update(np.ascontiguousarray(self.column(col)).tobytes())
        for ids in (self.users.ids, self.items.ids):
            h.update("\x1f".join(ids.to_list()).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """Interactions, an optional item catalogue, and what loading removed."""

    interactions: Interactions
    items: Items | None = None
    name: str = "dataset"
    report: CleaningReport = field(default_factory=lambda: CleaningReport("dataset"))
    repeats: bool = False  # whether re-consuming an item is normal in this domain (retail: yes)

    @property
    def has_time(self) -> bool:
        """Whether the interactions carry real times (time protocols need them)."""
        return self.interactions.has_time

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {self.interactions!r}, items={self.items!r})"


def build_dataset(
    interactions: pl.DataFrame,
    items: pl.DataFrame | None = None,
    *,
    name: str = "dataset",
    source: str = "<interactions>",
    items_source: str = "<items>",
    report: CleaningReport | None = None,
    repeats: bool = False,
    columns: Mapping[str, str] | None = None,
    timestamp_unit: TimestampUnit = "auto",
    drop_invalid: bool = False,
    duplicates: DuplicatePolicy = "drop",
    has_time: bool = True,
) -> Dataset:
    """Validate raw frames and build a :class:`Dataset` with one shared item id map.

    Items seen in interactions come first (order of first appearance), then catalogue-only items,
    so a catalogue never changes the indices of interacted items. ``has_time=False``: the
    ``timestamp`` column only orders the rows (see :attr:`Interactions.has_time`).
    """
    clean, report = validate_interactions(
        interactions,
        source=source,
        columns=columns,
        timestamp_unit=timestamp_unit,
        drop_invalid=drop_invalid,
        duplicates=duplicates,
        report=report,
    )
    cat: Items | None = None
    item_map = IdMap.from_values(clean.get_column(ITEM_ID))
    if items is not None:
        items = clean_catalogue(items, source=items_source, report=report)
        item_map = item_map.extend(items.get_column(ITEM_ID).to_list())
    inter = Interactions.from_clean(clean, items=item_map, has_time=has_time)
    if items is not None:
        cat = Items.from_frame(items, inter.items, source=items_source)
    return Dataset(inter, cat, name=name, report=report, repeats=repeats)


def read_only(m: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` with its arrays marked read-only (a shared, cached matrix: writing to it raises)."""
    m.sort_indices()  # canonical first: scipy sorts in place on demand, which a read-only array refuses
    for a in (m.data, m.indices, m.indptr):
        a.flags.writeable = False
    return m
