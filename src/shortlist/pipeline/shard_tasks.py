"""The per-shard tasks of batch recommendation and candidate export: module-level functions of
(shared item side, shard), so :func:`~shortlist.pipeline.parallel.map_shards` can run them on
threads or send them to a cluster's workers. A shard carries its users' rows of what its task reads
(the model's rank state, or stage 1 alone: :mod:`shortlist.pipeline.user_rows`); the item side is
shared."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from shortlist.data.ids import IdMap
from shortlist.pipeline.external import to_external
from shortlist.pipeline.item_rules import ItemRules
from shortlist.pipeline.parallel import user_shards
from shortlist.pipeline.rank_state import RankState
from shortlist.pipeline.stage1 import Stage1
from shortlist.pipeline.user_rows import Lazy, UsersWithRows, for_users, with_rows
from shortlist.schema import ITEM, ITEM_ID, USER, USER_ID


@dataclass(frozen=True)
class RequestShard:
    """A shard of requested users: their external ids and their rows (users past the fit's are
    unknown: they carry no row)."""

    ext: pl.Series
    users: UsersWithRows


def request_shards(obj: Any, n_users: int, ext: pl.Series, internal: pl.Series, size: int) -> Lazy[RequestShard]:
    """Consecutive shards of ``size`` requested users (at least one, maybe empty), each cut with its
    users' rows of ``obj`` (fitted on ``n_users`` users) when the mapper takes it: the rank state
    to recommend, stage 1 alone for candidates."""
    shards = list(zip(user_shards(ext, size), user_shards(internal.to_numpy().astype(np.int64), size), strict=True))
    return Lazy(partial(_cut, obj, n_users), shards)


def _cut(obj: Any, n_users: int, shard: tuple[pl.Series, np.ndarray]) -> RequestShard:
    ext, internal = shard
    return RequestShard(ext, with_rows(obj, internal, n_users))


def shard_stage(side: Stage1, users: UsersWithRows) -> Stage1:
    """``side`` (stage 1's item side) answering for the shard's users as ``users.local``."""
    return replace(for_users(side, users.rows), user_ids=users.ids)


def shard_state(side: RankState, users: UsersWithRows) -> RankState:
    """``side`` (the rank state's item side) answering for the shard's users as ``users.local``."""
    state = for_users(side, users.rows)
    return replace(state, stage=replace(state.stage, user_ids=users.ids))


@dataclass(frozen=True)
class RecommendShared:
    """What every shard of a batch recommendation reads: the rank state's item side, ``k``, the
    compiled rules, the item ids, and how many users the rank path takes at a time."""

    side: RankState
    k: int
    rules: ItemRules
    items: IdMap
    rank_users: int


def recommend_shard(shared: RecommendShared, shard: RequestShard) -> pl.DataFrame:
    """One shard's ``user_id, item_id, rank, score`` rows in the shard's order (the rank path, on
    ``rank_users`` of them at a time: a large export part costs one such slice's candidates)."""
    state, local = shard_state(shared.side, shard.users), shard.users.local
    ranked = [state.rank(part, shared.k, rules=shared.rules).to_frame()
              for part in user_shards(local, shared.rank_users)]
    return to_external(pl.concat(ranked), pl.Series(local), shard.ext, shared.items)


def candidates_shard(shared: tuple[Stage1, IdMap, bool], shard: RequestShard) -> pl.DataFrame:
    """One shard's fused stage-1 union (``user_id, item_id, n_sources, <source>_score, ...``);
    ``shared``: stage 1's item side, the item ids, whether repeats are allowed."""
    side, items, allow_repeats = shared
    stage, local = shard_stage(side, shard.users), shard.users.local
    union = stage.candidates(local, stage.topk(local, exclude_seen=not allow_repeats)).to_frame()
    union = union.join(pl.DataFrame({USER: local, USER_ID: shard.ext}), on=USER, how="inner", maintain_order="left")
    union = union.with_columns(items.external(union.get_column(ITEM)).alias(ITEM_ID))
    return union.select(USER_ID, ITEM_ID, pl.exclude(USER, ITEM, USER_ID, ITEM_ID))
