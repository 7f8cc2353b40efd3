"""Crossing the id boundary for recommendations: external user ids in, external rows out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from shortlist.data.ids import IdMap, normalize_ids
from shortlist.errors import IdValueError
from shortlist.schema import ITEM, ITEM_ID, RANK, SCORE, USER, USER_ID


def requested_users(user_ids: Sequence[str | int] | pl.Series) -> pl.Series:
    """The unique requested ids in request order, normalised by :func:`~shortlist.data.ids.normalize_ids`
    (so ``12346``, ``12346.0`` and ``"12346.0"`` are one user); a null or empty id raises IdValueError."""
    ext = normalize_ids(user_ids, source="users").rename(USER_ID)
    if ext.null_count():
        raw = user_ids if isinstance(user_ids, pl.Series) else pl.Series(list(user_ids), strict=False)
        raise IdValueError(raw.gather(ext.is_null().arg_true().head(1))[0])
    return ext.unique(maintain_order=True)


def unknown_users(user_ids: Sequence[str | int] | pl.Series, users: IdMap) -> pl.Series:
    """The requested users (normalised, unique, in request order) that ``users`` does not know: those
    the model answers with its popularity fallback."""
    ext = requested_users(user_ids)
    return ext.filter(users.index(ext).is_null())


def internal_users(user_ids: Sequence[str | int] | pl.Series, users: IdMap) -> tuple[pl.Series, pl.Series]:
    """(unique normalised external ids in request order, internal ids); unknown users get ids past the map."""
    ext = requested_users(user_ids)
    idx = users.index(ext)
    fill = pl.int_range(len(users), len(users) + len(ext), eager=True).cast(pl.Int32)
    return ext, idx.fill_null(fill)


def to_external(ranked: pl.DataFrame, internal: pl.Series, ext: pl.Series, items: IdMap) -> pl.DataFrame:
    """``user_id, item_id, rank, score`` rows in request order, ranks 1-based per user, from internal
    ``user, item, rank, score`` rows."""
    lookup = pl.DataFrame({USER: internal.cast(pl.Int64), USER_ID: ext, "_o": np.arange(len(ext))})
    f = ranked.with_columns(pl.col(USER).cast(pl.Int64)).join(lookup, on=USER, how="inner")
    f = f.with_columns(items.external(f.get_column(ITEM)).alias(ITEM_ID))
    return f.sort(["_o", RANK]).select(USER_ID, ITEM_ID, RANK, SCORE)
