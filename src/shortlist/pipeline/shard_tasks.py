"""The per-shard tasks of batch recommendation and candidate export: module-level functions of
(shared model, shard), so :func:`~shortlist.pipeline.parallel.map_shards` can run them on threads or
send them to a cluster's workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from shortlist.pipeline.external import to_external
from shortlist.pipeline.item_rules import ItemRules
from shortlist.pipeline.parallel import user_shards
from shortlist.schema import ITEM, ITEM_ID, USER, USER_ID

if TYPE_CHECKING:
    from shortlist.pipeline.two_stage import TwoStageRecommender

Shard = tuple[pl.Series, np.ndarray]  # a shard's external ids and their internal ids (past the fit's: unknown)


def shards_of(ext: pl.Series, internal: pl.Series, size: int) -> list[Shard]:
    """Consecutive shards of ``size`` users (at least one, maybe empty)."""
    return list(zip(user_shards(ext, size), user_shards(internal.to_numpy().astype(np.int64), size), strict=True))


def recommend_shard(shared: tuple[TwoStageRecommender, int, ItemRules], shard: Shard) -> pl.DataFrame:
    """One shard's ``user_id, item_id, rank, score`` rows in the shard's order (the model's rank path)."""
    model, k, rules = shared
    ext, internal = shard
    assert model.history_ is not None
    ranked = model.rank(internal, k, rules=rules).to_frame()
    return to_external(ranked, pl.Series(internal), ext, model.history_.items)


def candidates_shard(model: TwoStageRecommender, shard: Shard) -> pl.DataFrame:
    """One shard's fused stage-1 union (``user_id, item_id, n_sources, <source>_score, ...``)."""
    ext, internal = shard
    stage = model.stage1_
    assert stage is not None and model.history_ is not None
    union = stage.candidates(internal, stage.topk(internal, exclude_seen=not model.allow_repeats)).to_frame()
    union = union.join(pl.DataFrame({USER: internal, USER_ID: ext}), on=USER, how="inner", maintain_order="left")
    union = union.with_columns(model.history_.items.external(union.get_column(ITEM)).alias(ITEM_ID))
    return union.select(USER_ID, ITEM_ID, pl.exclude(USER, ITEM, USER_ID, ITEM_ID))
