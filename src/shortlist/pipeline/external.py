"""Crossing the id boundary for recommendations: external user ids in, external rows out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from shortlist.data.ids import IdMap
from shortlist.retrieval.candidates import Candidates
from shortlist.schema import ITEM, ITEM_ID, RANK, SCORE, USER, USER_ID


def internal_users(user_ids: Sequence[str | int] | pl.Series, users: IdMap) -> tuple[pl.Series, pl.Series]:
    """(unique external ids in request order, internal ids); unknown users get ids past the map."""
    ext = (user_ids.cast(pl.Utf8) if isinstance(user_ids, pl.Series)
           else pl.Series(USER_ID, [str(u) for u in user_ids], pl.Utf8)).rename(USER_ID)
    ext = ext.unique(maintain_order=True)
    idx = users.index(ext)
    fill = pl.int_range(len(users), len(users) + len(ext), eager=True).cast(pl.Int32)
    return ext, idx.fill_null(fill)


def to_external(cands: Candidates, internal: pl.Series, ext: pl.Series, items: IdMap) -> pl.DataFrame:
    """``user_id, item_id, rank, score`` rows in request order, ranks 1-based per user."""
    lookup = pl.DataFrame({USER: internal, USER_ID: ext, "_o": np.arange(len(ext))})
    f = cands.frame.join(lookup, on=USER, how="inner")
    f = f.with_columns(items.external(f.get_column(ITEM)).alias(ITEM_ID))
    return f.sort(["_o", RANK]).select(USER_ID, ITEM_ID, RANK, SCORE)
