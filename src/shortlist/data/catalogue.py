"""Item catalogues: the :class:`Items` container, cleaning raw catalogue frames, and the one reading of
an item's categories.

A catalogue's text columns are ``Utf8`` display strings whatever the file held: list values (JSON
``"category": ["Books", "Fiction"]``) are joined with ``" | "``, nested lists (Amazon 2014's list of
category paths) with ``" > "`` inside and ``" | "`` between, objects become their JSON text. An
item's *set* of categories is read from that string by :func:`category_lists`, used by every feature
and filter: ``"|"`` separates categories (MovieLens ``Crime|Thriller``, joined lists) and a
hierarchical path ``"A > B > C"`` puts the item in each of A, B and C.
"""

from __future__ import annotations

import polars as pl

from shortlist.data.ids import IdMap, normalize_ids
from shortlist.data.report import CleaningReport
from shortlist.errors import DataValidationError, EmptyInputError, MissingColumnError
from shortlist.schema import CATEGORY, ID_DTYPE, ITEM, ITEM_ID, ITEM_TEXT_COLUMNS, PRICE

LIST_SEPARATOR = " | "
PATH_SEPARATOR = " > "
_JSON_LIST = r"^\s*\[.*\]\s*$"


class Items:
    """An item catalogue aligned to an interactions id map: one row per catalogued item.

    ``frame`` has the Int32 ``item`` column plus any of title, description, category, brand, price
    and free attributes. Items in the id map without a catalogue row have no row here.
    """

    __slots__ = ("_frame", "ids")

    def __init__(self, frame: pl.DataFrame, ids: IdMap) -> None:
        if ITEM not in frame.columns:
            raise MissingColumnError("Items", ITEM, frame.columns)
        self._frame = frame.sort(ITEM)
        self.ids = ids

    @classmethod
    def from_frame(cls, df: pl.DataFrame, ids: IdMap, *, source: str = "<items>") -> Items:
        """Map a catalogue with an external ``item_id`` column onto ``ids`` (which must hold every id)."""
        if df.height == 0:
            raise EmptyInputError(source, "items")
        if ITEM_ID not in df.columns:
            raise MissingColumnError(source, ITEM_ID, df.columns)
        idx = ids.index(df.get_column(ITEM_ID).cast(pl.Utf8))
        if idx.null_count():
            raise DataValidationError(f"{source}: {idx.null_count()} catalogue ids are not in the id map")
        return cls(df.with_columns(idx.alias(ITEM)).drop(ITEM_ID), ids)

    @property
    def frame(self) -> pl.DataFrame:
        return self._frame

    def __len__(self) -> int:
        return self._frame.height

    def __repr__(self) -> str:
        return f"Items({len(self):,} rows, columns={self._frame.columns})"

    def has(self, column: str) -> bool:
        return column in self._frame.columns

    def aligned(self, column: str) -> pl.Series:
        """``column`` as a Series of length ``len(ids)`` indexed by internal item id (null where absent)."""
        full = pl.DataFrame({ITEM: pl.int_range(len(self.ids), eager=True, dtype=ID_DTYPE)})
        return full.join(self._frame.select(ITEM, column), on=ITEM, how="left").sort(ITEM).get_column(column)

    def category_lists(self) -> pl.Series:
        """Each item's set of categories as a ``List(Utf8)`` Series indexed by internal item id (empty
        where the item has no category or no catalogue row); see :func:`~shortlist.data.catalogue.category_lists`."""
        if not self.has(CATEGORY):
            return pl.Series(CATEGORY, [[]] * len(self.ids), pl.List(pl.Utf8))
        return category_lists(self.aligned(CATEGORY))

    def category_sets(self) -> list[frozenset[str]]:
        """Each item's set of categories, indexed by internal item id (A > B paths count as A and B)."""
        return [frozenset(c) for c in self.category_lists().to_list()]


def clean_catalogue(df: pl.DataFrame, *, source: str, report: CleaningReport) -> pl.DataFrame:
    """Catalogue rows with normalised ``item_id`` (see :func:`~shortlist.data.ids.normalize_ids`), flat
    text columns and a price that is a finite non-negative number or null (metadata may be partial);
    rows without an id and repeated ids (the first row wins) are dropped; every change is noted."""
    if df.height == 0:
        raise EmptyInputError(source, "items")
    if ITEM_ID not in df.columns:
        raise MissingColumnError(source, ITEM_ID, df.columns, hint=ITEMS_MAP_HINT)
    ids = normalize_ids(df.get_column(ITEM_ID), source=source)
    df = flatten_text_columns(df.with_columns(ids.alias(ITEM_ID)))
    bad = ids.is_null()
    if bad.any():
        report.note(f"{source}: dropped {int(bad.sum())} catalogue rows with a null or empty item_id")
        df = df.filter(~bad)
    dup = ~df.get_column(ITEM_ID).is_first_distinct()
    if dup.any():
        report.note(f"{source}: {int(dup.sum())} repeated catalogue rows for the same item_id; kept the first")
        df = df.filter(~dup)
    return _clean_price(df, source=source, report=report)


def _clean_price(df: pl.DataFrame, *, source: str, report: CleaningReport) -> pl.DataFrame:
    if PRICE not in df.columns or not df.schema[PRICE].is_numeric():
        return df
    price = df.get_column(PRICE).cast(pl.Float64)
    bad = (~price.is_finite() | (price < 0)).fill_null(False)
    if bad.any():
        report.note(f"{source}: {int(bad.sum())} catalogue prices that are NaN, infinite or negative set to null")
    return df.with_columns(price.set(bad, None))


#: How to fix a catalogue column that is missing, for MissingColumnError.
ITEMS_MAP_HINT = (
    "rename the catalogue column, or map it (items_columns={'item_id': 'sku'}; on the command line "
    "--items-map item_id=sku, or --map, which also applies to the catalogue where it has that column)"
)


def flatten_text_columns(df: pl.DataFrame) -> pl.DataFrame:
    """The known text columns as ``Utf8``, and every list or object column (any attribute) as text:
    lists joined with ``" | "``, nested lists as ``" > "`` paths, objects as JSON; empty → null."""
    out = []
    for name, dtype in df.schema.items():
        s = df.get_column(name)
        if isinstance(dtype, pl.List | pl.Array):
            out.append(_join_lists(s))
        elif isinstance(dtype, pl.Struct):
            out.append(s.struct.json_encode().set(s.is_null(), None))
        elif name in ITEM_TEXT_COLUMNS:
            out.append(_decode_json_lists(s.cast(pl.Utf8)))
    return df.with_columns(out) if out else df


def _join_lists(s: pl.Series) -> pl.Series:
    if isinstance(s.dtype, pl.Array):
        s = s.arr.to_list()
    while isinstance(s.dtype, pl.List) and isinstance(s.dtype.inner, pl.List | pl.Array):
        s = s.list.eval(pl.element().list.eval(pl.element().cast(pl.Utf8).str.strip_chars()).list.join(PATH_SEPARATOR))
    if isinstance(s.dtype, pl.List) and isinstance(s.dtype.inner, pl.Struct):
        s = s.list.eval(pl.element().struct.json_encode())
    joined = s.list.eval(pl.element().cast(pl.Utf8)).list.eval(
        pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != "")
    ).list.join(LIST_SEPARATOR)
    return joined.set(joined == "", None) if joined.len() else joined


def _decode_json_lists(s: pl.Series) -> pl.Series:
    """Text values that are JSON arrays (a JSON file mixing list and string values) joined like lists."""
    looks = s.str.contains(_JSON_LIST).fill_null(False)
    if not looks.any():
        return s
    try:
        decoded = s.filter(looks).str.json_decode(pl.List(pl.Utf8))
    except pl.exceptions.PolarsError:
        return s  # not JSON after all: keep the text as written
    return s.scatter(looks.arg_true(), _join_lists(decoded))


def category_lists(values: pl.Series) -> pl.Series:
    """Each value's categories as a ``List(Utf8)`` (unique, in order; empty for null): ``"|"`` separates
    categories and a path ``"A > B > C"`` is the categories A, B and C."""
    text = values.cast(pl.Utf8).str.replace_all(">", "|", literal=True)
    stripped = pl.element().str.strip_chars()
    parts = text.str.split("|").list.eval(stripped.filter(stripped != ""))
    return parts.list.unique(maintain_order=True).fill_null(pl.lit([], pl.List(pl.Utf8))).rename(values.name)


def category_set(value: str | None) -> frozenset[str]:
    """One category value's set of categories, by :func:`category_lists`."""
    return frozenset(category_lists(pl.Series([value], dtype=pl.Utf8))[0].to_list())
