"""Generic loaders: any CSV / TSV / Parquet / JSON(L) file (or folder of part files), gzipped or not."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from shortlist.data.catalogue import ITEMS_MAP_HINT, flatten_text_columns
from shortlist.data.containers import Dataset, build_dataset
from shortlist.data.ids import normalize_ids
from shortlist.data.validate import DuplicatePolicy, TimestampUnit, apply_column_map
from shortlist.errors import ColumnTypeError, ConfigError, EmptyInputError, InvalidIdError, MissingColumnError
from shortlist.schema import ITEM_ID, ITEM_TEXT_COLUMNS, PRICE, USER_ID

from ._io import (
    SUFFIX_FORMATS,
    InputNotFoundError,
    UnreadableFileError,
    base_suffix,
    glob_parts,
    is_glob,
    read_table,
    require_path,
)


def read_frame(
    path: Path | str,
    *,
    format: str | None = None,
    string_columns: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Read a table file, or every part file of one format in a folder (Spark/Hive style) or matching a
    glob pattern (``logs/*.parquet``), as-is."""
    p = require_path(path, what="input")
    if p.is_file():
        return read_table(p, fmt=format, string_columns=string_columns)
    parts = sorted(
        f
        for f in (p.iterdir() if p.is_dir() else glob_parts(p))
        if f.is_file() and not f.name.startswith((".", "_")) and base_suffix(f) in SUFFIX_FORMATS
    )
    if not parts:
        raise InputNotFoundError(
            p, "the folder has no table files", fix=f"put files ending in {', '.join(SUFFIX_FORMATS)} there"
        )
    kinds = {SUFFIX_FORMATS[base_suffix(f)] for f in parts}
    if len(kinds) > 1 and format is None:
        raise UnreadableFileError(
            p, f"the folder mixes formats {sorted(kinds)}", fix="keep one format per folder"
        )
    frames = [read_table(f, fmt=format, string_columns=string_columns) for f in parts]
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise UnreadableFileError(p, f"the part files have different columns ({exc})") from exc

#: Canonical columns a catalogue can have, and so the entries of an interactions mapping it takes.
CATALOGUE_COLUMNS = frozenset({ITEM_ID, PRICE, *ITEM_TEXT_COLUMNS})


def load_items(
    path: Path | str,
    *,
    columns: Mapping[str, str] | None = None,
    format: str | None = None,
    shared: bool = False,
) -> pl.DataFrame:
    """Read an item catalogue into canonical columns (``item_id`` + title/description/... + attributes).

    ``columns`` maps canonical → source names, e.g. ``{"item_id": "sku", "title": "name"}``.
    ``shared``: ``columns`` is the interactions' mapping, so only its catalogue entries apply, and
    those the catalogue shares with the interactions (item id, price) only where the file has the column.
    The frame is ready for :func:`~shortlist.data.build_dataset`.
    """
    source = str(path)
    if shared:
        columns = {c: theirs for c, theirs in (columns or {}).items() if c in CATALOGUE_COLUMNS}
    id_col = (columns or {}).get(ITEM_ID, ITEM_ID)
    df = read_frame(path, format=format, string_columns=(id_col,))
    if df.height == 0:
        raise EmptyInputError(source, "items")
    df = apply_column_map(df, columns, source=source, optional=(ITEM_ID, PRICE) if shared else ())
    if ITEM_ID not in df.columns:
        raise MissingColumnError(source, ITEM_ID, df.columns, hint=ITEMS_MAP_HINT)
    df = flatten_text_columns(df).with_columns(normalize_ids(df.get_column(ITEM_ID), source=source))
    if PRICE in df.columns:
        raw = df.get_column(PRICE)
        price = raw.cast(pl.Float64, strict=False)
        bad = price.is_null() & raw.is_not_null()
        if bad.any():
            raise ColumnTypeError(
                source, PRICE, "a number", str(raw.dtype), raw.filter(bad).head(5).to_list()
            )
        df = df.with_columns(price)
    return df


def load_user_ids(path: Path | str, *, format: str | None = None) -> pl.Series:
    """The ``user_id`` column of a users file (CSV / TSV / Parquet / JSON(L), gzipped or not), normalised
    by :func:`~shortlist.data.ids.normalize_ids`, unique, in file order.

    An empty file or a file without rows raises EmptyInputError; null or empty ids InvalidIdError.
    """
    source = str(path)
    df = read_frame(require_path(path, what="users file"), format=format, string_columns=(USER_ID,))
    if USER_ID not in df.columns:
        raise MissingColumnError(
            source, USER_ID, df.columns, hint="give the file a user_id column (a first line `user_id` in a CSV)"
        )
    if df.height == 0:
        raise EmptyInputError(source, "users")
    ids = normalize_ids(df.get_column(USER_ID), source=source)
    if ids.null_count():
        rows = ids.is_null().arg_true().head(5).to_list()
        raise InvalidIdError(source, USER_ID, ids.null_count(), rows, fix="remove or fill those rows of the users file")
    return ids.rename(USER_ID).unique(maintain_order=True)


def load_dataset(
    interactions_path: Path | str,
    items_path: Path | str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    items_columns: Mapping[str, str] | None = None,
    format: str | None = None,
    items_format: str | None = None,
    name: str | None = None,
    repeats: bool = False,
    timestamp_unit: TimestampUnit = "auto",
    drop_invalid: bool = False,
    duplicates: DuplicatePolicy = "drop",
) -> Dataset:
    """Load an interactions file (+ optional item catalogue) in any supported format into a Dataset.

    ``columns`` / ``items_columns`` map canonical → source names. Without ``items_columns``,
    ``columns`` also applies to the catalogue, where it has the named column (``item_id=sku`` maps
    both files' ``sku``). Ids are read as text so ``"007"`` stays ``"007"``; every removed row is
    counted in ``dataset.report``.
    """
    path = require_path(interactions_path)
    cmap = _interactions_map(columns, has_catalogue=items_path is not None)
    raw = read_frame(path, format=format, string_columns=(cmap.get(USER_ID, USER_ID), cmap.get(ITEM_ID, ITEM_ID)))
    items = None
    if items_path is not None:
        shared = items_columns is None
        items = load_items(items_path, columns=columns if shared else items_columns, format=items_format,
                           shared=shared)
        if shared and PRICE in cmap and cmap[PRICE] not in raw.columns and PRICE in items.columns:
            del cmap[PRICE]  # a catalogue price column, mapped there
    return build_dataset(
        raw,
        items,
        name=name or _dataset_name(path),
        source=str(path),
        items_source=str(items_path) if items_path is not None else "<items>",
        repeats=repeats,
        columns=cmap or None,
        timestamp_unit=timestamp_unit,
        drop_invalid=drop_invalid,
        duplicates=duplicates,
    )


def _interactions_map(columns: Mapping[str, str] | None, *, has_catalogue: bool) -> dict[str, str]:
    """The entries of a shared column mapping that apply to the interactions (not the catalogue's text)."""
    text_map = sorted(f"{c}={theirs}" for c, theirs in (columns or {}).items() if c in ITEM_TEXT_COLUMNS)
    if text_map and not has_catalogue:
        raise ConfigError(f"the column mapping {', '.join(text_map)} is for a catalogue, but no catalogue was given")
    return {c: theirs for c, theirs in (columns or {}).items() if c not in ITEM_TEXT_COLUMNS}


def load_interactions(
    path: Path | str,
    *,
    columns: Mapping[str, str] | None = None,
    format: str | None = None,
    name: str | None = None,
    repeats: bool = False,
    timestamp_unit: TimestampUnit = "auto",
    drop_invalid: bool = False,
    duplicates: DuplicatePolicy = "drop",
) -> Dataset:
    """Load an interactions file (no catalogue); see :func:`load_dataset`."""
    return load_dataset(
        path,
        None,
        columns=columns,
        format=format,
        name=name,
        repeats=repeats,
        timestamp_unit=timestamp_unit,
        drop_invalid=drop_invalid,
        duplicates=duplicates,
    )


def _dataset_name(path: Path) -> str:
    if is_glob(path):  # logs/*.parquet: the folder's name
        path = path.parent
    name = path.name
    for suffix in reversed(path.suffixes):
        name = name.removesuffix(suffix)
    return name or path.name
