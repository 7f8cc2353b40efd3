"""Back across the boundary: internal frames to external ids."""

from __future__ import annotations

import polars as pl

from shortlist.data.containers import Interactions
from shortlist.schema import ITEM, ITEM_ID, USER, USER_ID


def export_interactions(data: Interactions) -> pl.DataFrame:
    """The interactions with external ``user_id``/``item_id`` columns (canonical, re-loadable)."""
    f = data.frame
    return f.with_columns(
        data.users.external(f.get_column(USER)).alias(USER_ID),
        data.items.external(f.get_column(ITEM)).alias(ITEM_ID),
    ).select([USER_ID, ITEM_ID, *[c for c in f.columns if c not in (USER, ITEM)]])
