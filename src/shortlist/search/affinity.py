"""Personalised search: a user's affinity for each candidate, from the recommender's public API.

The affinity of (user, item) is the item's rank in the user's top-``depth`` recommendations
(``recommend(user_ids, k)`` of a fitted model; missing when the item is not among them or the
query names no user). The re-ranker learns from it when an index is built with a recommender.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import polars as pl

from shortlist.errors import ConfigError
from shortlist.schema import ITEM_ID, RANK, USER_ID

logger = logging.getLogger(__name__)

AFFINITY_FEATURES: tuple[str, ...] = ("user_rec_rank",)
DEFAULT_DEPTH = 200


class Recommends(Protocol):
    """Any fitted recommender: ``user_id, item_id, rank, score`` rows for the users asked."""

    def recommend(self, user_ids: Any, k: int) -> pl.DataFrame: ...


class RecommenderAffinity:
    """The rank of each candidate in its query's user's recommendations."""

    def __init__(self, model: Recommends, *, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ConfigError(f"affinity depth must be positive, got {depth}")
        self.model, self.depth = model, depth

    def training_end(self) -> int | None:
        """The last timestamp the recommender was fitted on, when the model tells (two-stage models do)."""
        history = getattr(self.model, "history_", None)
        return int(history.time_span()[1]) if history is not None else None

    def features(self, users: Sequence[str | None], query: np.ndarray, item_ids: pl.Series) -> np.ndarray:
        """(n × 1) float32: candidate i's rank in ``users[query[i]]``'s recommendations (NaN if absent)."""
        named = sorted({u for u in users if u})
        out = np.full((len(query), 1), np.nan, dtype=np.float32)
        if not named or not len(query):
            return out
        recs = self.model.recommend(pl.Series(USER_ID, named, dtype=pl.Utf8), self.depth)
        recs = recs.select(pl.col(USER_ID).cast(pl.Utf8), pl.col(ITEM_ID).cast(pl.Utf8), pl.col(RANK).cast(pl.Float32))
        cands = pl.DataFrame({USER_ID: pl.Series([users[q] for q in query], dtype=pl.Utf8), ITEM_ID: item_ids})
        joined = cands.join(recs, on=[USER_ID, ITEM_ID], how="left", maintain_order="left")
        out[:, 0] = joined.get_column(RANK).fill_null(np.nan).to_numpy()
        return out
