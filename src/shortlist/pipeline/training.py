"""The ranker's training set, built shard by shard from the label windows.

A window's users (a seeded sample above the row budget) go through the same candidate and feature
path as a request, a shard at a time; each shard keeps its positives, its hardest negatives and a
sample of the rest, so memory follows the sample, not the window.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from shortlist.config import TwoStageConfig
from shortlist.errors import ConfigError
from shortlist.features.pipeline import FeaturePipeline
from shortlist.pipeline.labels import LabelWindow
from shortlist.pipeline.negatives import sample_rows
from shortlist.pipeline.parallel import map_shards, map_shards_kept, mapper_client, user_shards
from shortlist.pipeline.progress import Progress, silent
from shortlist.pipeline.stage1 import Stage1
from shortlist.pipeline.user_rows import UsersWithRows, for_users, item_side, shards_with_rows
from shortlist.ranking.base import Ranker
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.ranking.xgb import XGBRanker
from shortlist.retrieval.fusion import Fusion, learn_fusion, recall_fusion
from shortlist.retrieval.union import CandidateUnion, TopK
from shortlist.schema import ITEM, LABEL, USER

logger = logging.getLogger(__name__)
MIN_RANKER_GROUPS = 20
#: Users the fusion is learned on at most: the regression samples its rows anyway, and the union of
#: every source's full lists is the largest structure of a fit.
FUSION_USERS = 2_000


@dataclass
class WindowFrame:
    """A window's kept training rows: features, graded labels, and the (user, window) group of each.
    With ``ranker = "lightgbm-dask"`` the feature rows stay on the cluster's workers: ``X`` is empty
    and ``parts`` holds each shard's future and its row count, in the order of ``y`` and ``group``."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    parts: list[tuple[Any, int]] = field(default_factory=list)
    dropped_groups: int = 0  # groups without a positive the workers dropped before keeping the rows


def window_users(window: LabelWindow, config: TwoStageConfig, rng: np.random.Generator) -> np.ndarray:
    """The window's label users, a seeded sample of them where all would pass the row budget."""
    users = np.unique(window.labels.get_column(USER).to_numpy()).astype(np.int64)
    assert config.n_windows is not None and config.max_candidates is not None
    budget = max(1, config.max_train_rows // (config.n_windows * config.max_candidates))
    if len(users) > budget:
        users = np.sort(rng.choice(users, size=budget, replace=False))
    return users


def learn_window_fusion(stage: Stage1, window: LabelWindow, users: np.ndarray, *, exclude_seen: bool,
                        rng: np.random.Generator) -> Fusion:
    """The fusion learned on a window's users (a seeded sample of :data:`FUSION_USERS` at most): a
    logistic regression on their candidates, or recall-proportional weights where the candidates
    hold too few labels."""
    if len(users) > FUSION_USERS:
        users = np.sort(rng.choice(users, size=FUSION_USERS, replace=False))
    u = stage.candidates(users, stage.topk(users, exclude_seen=exclude_seen), fused=False)
    lu, li = (window.labels.get_column(c).to_numpy().astype(np.int64) for c in (USER, ITEM))
    return learn_fusion(u, lu, li, priors=stage.priors()) or recall_fusion(u, lu, li)


@dataclass(frozen=True)
class WindowShared:
    """What every shard of a window reads (sent once to each worker of a cluster): the item side of
    the window's fitted stage 1 and features (a shard brings its users' rows), its labels as sorted
    (user, item) keys with their grades, its number."""

    stage: Stage1
    features: FeaturePipeline
    keys: np.ndarray
    grades: np.ndarray
    index: int
    config: TwoStageConfig


@dataclass
class ShardRows:
    """One shard's kept rows and its counts (candidate rows, positives found, labels each source proposed)."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    rows: int
    found: int
    per_source: np.ndarray
    dropped_groups: int = 0


def window_frame(stage: Stage1, features: FeaturePipeline, window: LabelWindow, users: np.ndarray, index: int,
                 config: TwoStageConfig, progress: Progress = silent) -> WindowFrame:
    """The window's training rows, shard by shard (through the current shard mapper: this process or
    a cluster's workers); ``index`` numbers the window (groups stay distinct)."""
    labels = window.labels
    keys = _keys(labels.get_column(USER).to_numpy(), labels.get_column(ITEM).to_numpy())
    grades = labels.get_column(LABEL).to_numpy().astype(np.float32)
    order = np.argsort(keys)
    fitted = (stage, features)
    shared = WindowShared(*item_side(fitted), keys[order], grades[order], index, config)
    shards = shards_with_rows(fitted, user_shards(users, config.shard_users) if len(users) else [])
    step = f"training rows of {window.name}"
    kept: list[Any] = []
    if config.ranker == "lightgbm-dask":  # the feature rows stay on the workers; their labels and groups come here
        require_cluster_for(config.ranker)
        kept, parts = _unzip(map_shards_kept(shard_ranker_rows, shared, shards, without_features, step=step,
                                             progress=progress, n_jobs=config.n_jobs))
    else:
        parts = list(map_shards(shard_rows, shared, shards, step=step, progress=progress, n_jobs=config.n_jobs))
    rows, found = sum(p.rows for p in parts), sum(p.found for p in parts)
    per_source = np.sum([p.per_source for p in parts], axis=0) if parts else np.zeros(len(stage.names), np.int64)
    n_labels = int(np.isin(labels.get_column(USER).to_numpy(), users).sum())
    recall = {"union": found / max(n_labels, 1),
              **{s: int(h) / max(n_labels, 1) for s, h in zip(stage.names, per_source, strict=True)}}
    stats = {"users": len(users), "rows": rows, "positives": found, "labels": n_labels, "recall": recall}
    logger.info("window %s: %d users, %d candidate rows, union recall %.3f", window.name, len(users), rows,
                recall["union"])
    if not parts:
        return WindowFrame(np.zeros((0, len(features.names)), np.float32), np.zeros(0, np.float32),
                           np.zeros(0, np.int64), stats)
    return WindowFrame(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]),
                       np.concatenate([p.group for p in parts]), stats,
                       [(h, len(p.y)) for h, p in zip(kept, parts, strict=True)] if kept else [],
                       sum(p.dropped_groups for p in parts))


def shard_ranker_rows(shared: WindowShared, shard: UsersWithRows) -> ShardRows:
    """:func:`shard_rows` less the groups without a positive (the ranker drops them): what a worker
    keeps of a shard for ``lightgbm-dask``."""
    rows = shard_rows(shared, shard)
    keep = np.isin(rows.group, rows.group[rows.y > 0])
    dropped = len(np.unique(rows.group[~keep]))
    return ShardRows(rows.X[keep], rows.y[keep], rows.group[keep], rows.rows, rows.found, rows.per_source, dropped)


def without_features(rows: ShardRows) -> ShardRows:
    """A shard's rows without their feature matrix (what a cluster's worker sends back when it keeps them)."""
    return ShardRows(rows.X[:0], rows.y, rows.group, rows.rows, rows.found, rows.per_source, rows.dropped_groups)


def require_cluster_for(ranker: str) -> None:
    """:class:`ConfigError` unless shards run on a Dask cluster (``ranker`` trains there)."""
    if mapper_client() is None:
        raise ConfigError(f"ranker {ranker!r} trains on a Dask cluster's workers: run with --scheduler (or inside "
                          "shortlist.distributed.on_cluster), or use ranker = 'lightgbm'")


def _unzip(pairs: Iterator[tuple[Any, ShardRows]]) -> tuple[list[Any], list[ShardRows]]:
    handles, rows = [], []
    for handle, row in pairs:
        handles.append(handle)
        rows.append(row)
    return handles, rows


def shard_rows(shared: WindowShared, shard: UsersWithRows) -> ShardRows:
    """One shard of a window's users: their fused candidates, labelled, sampled, as feature rows.
    The stage and features answer for the shard's users as rows ``0..n-1``; labels, sampling and
    groups read their ids."""
    stage, features = for_users((shared.stage, shared.features), shard.rows)
    stage, config = replace(stage, user_ids=shard.ids), shared.config
    tops = stage.topk(shard.local, exclude_seen=not config.allow_repeats)
    per_source = _source_hits(shard.users, tops, stage.names, shared.keys)
    u = stage.candidates(shard.local, tops)
    ids = replace(u, users=shard.ids[u.users])
    y = _labels_of(ids, shared.keys, shared.grades)
    keep = sample_rows(ids, y, config)
    return ShardRows(features.matrix(u.take(keep)), y[keep], ids.users[keep] + (shared.index << 32),
                     len(u), int((y > 0).sum()), per_source)


def train_ranker(frames: list[WindowFrame], names: list[str], categorical: list[str], config: TwoStageConfig,
                 rng: np.random.Generator, *, prototype: Ranker | None = None) -> tuple[Ranker | None, dict[str, Any]]:
    """The ranker fitted on the windows' rows (groups without a positive dropped), early-stopped on a
    user-grouped validation share; ``None`` with too few groups. The feature rows are gathered once
    into the training and the validation matrix: no intermediate copies of the whole set."""
    y_all = np.concatenate([f.y for f in frames]) if frames else np.zeros(0, np.float32)
    group_all = np.concatenate([f.group for f in frames]) if frames else np.zeros(0, np.int64)
    idx = np.flatnonzero(np.isin(group_all, np.unique(group_all[y_all > 0])))
    idx = idx[np.argsort(group_all[idx], kind="stable")]  # rows grouped, in the windows' order within a group
    group = group_all[idx]
    n_groups = len(np.unique(group))
    dropped = len(np.unique(group_all)) - n_groups + sum(f.dropped_groups for f in frames)
    metrics: dict[str, Any] = {"groups_kept": n_groups, "groups_dropped_no_positive": dropped}
    if n_groups < MIN_RANKER_GROUPS:
        return None, metrics
    if config.ranker == "lightgbm-dask":
        from shortlist.distributed.ranker import train_on_workers

        trained, more = train_on_workers(frames, names, categorical, config, rng, prototype=prototype)
        return trained, {**metrics, **more}
    valid = _valid_groups(group, config.valid_share, rng)
    ranker: Ranker
    if prototype is not None:
        ranker = copy.deepcopy(prototype)
    elif config.ranker == "xgboost":
        ranker = XGBRanker(seed=config.seed, **config.ranker_params)
    else:
        ranker = LGBMRanker(seed=config.seed, categorical=categorical, **config.ranker_params)
    train = (_gather(frames, idx[~valid]), y_all[idx[~valid]], group_sizes(group[~valid]))
    held = (_gather(frames, idx[valid]), y_all[idx[valid]], group_sizes(group[valid])) if valid.any() else None
    ranker.fit(*train, feature_names=names, valid=held)
    metrics["ranker"] = {**ranker.metrics_, "train_rows": len(train[1]), "valid_rows": 0 if held is None else len(held[1])}
    return ranker, metrics


def _gather(frames: list[WindowFrame], rows: np.ndarray) -> np.ndarray:
    """Feature rows ``rows`` (indices into the frames one after another), in that order, C-contiguous."""
    ends = np.cumsum([len(f.y) for f in frames])
    which = np.searchsorted(ends, rows, side="right")
    out = np.empty((len(rows), frames[0].X.shape[1]), dtype=np.float32)
    for w, f in enumerate(frames):
        at = np.flatnonzero(which == w)
        if len(at):
            out[at] = f.X[rows[at] - (ends[w] - len(f.y))]
    return out


def _keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return (np.asarray(users, np.int64) << 32) | np.asarray(items, np.int64)


def _labels_of(u: CandidateUnion, keys: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """Each union row's label grade (0: not a label); ``keys`` sorted, ``grades`` aligned."""
    hit, pos = _sorted_lookup(_keys(u.users, u.items), keys)
    return np.where(hit, grades[pos] if len(keys) else 0.0, 0.0).astype(np.float32)


def _source_hits(users: np.ndarray, tops: Mapping[str, TopK], names: Sequence[str], keys: np.ndarray) -> np.ndarray:
    """Labels each source proposed (its distinct (user, item) pairs among ``keys``) in a shard's top-k
    matrices, read straight from them: the unbudgeted union of every source is never built."""
    hits = np.zeros(len(names), np.int64)
    for j, name in enumerate(names):
        if name not in tops:
            continue
        items = tops[name][0]
        valid = items >= 0
        pairs = _keys(np.broadcast_to(users[:, None], items.shape)[valid], items[valid])
        hits[j] = len(np.unique(pairs[_sorted_lookup(pairs, keys)[0]]))  # a source repeating a pair counts once
    return hits


def _sorted_lookup(values: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each of ``values`` is in ``sorted_keys`` and where, by binary search (no sort of
    ``values``); the positions of misses are meaningless."""
    at = np.minimum(np.searchsorted(sorted_keys, values), max(len(sorted_keys) - 1, 0))
    hit = (sorted_keys[at] == values) if len(sorted_keys) else np.zeros(len(values), bool)
    return hit, at


def _valid_groups(group: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Rows whose group falls in the validation share (no user straddles the split)."""
    uniq = np.unique(group)
    n_valid = round(len(uniq) * share)
    if n_valid < 2 or len(uniq) - n_valid < 2:
        return np.zeros(len(group), dtype=bool)
    return np.isin(group, rng.choice(uniq, size=n_valid, replace=False))


def group_sizes(group: np.ndarray) -> np.ndarray:
    """Sizes of consecutive runs of equal (sorted) group ids."""
    if not len(group):
        return np.zeros(0, np.int64)
    return np.diff(np.flatnonzero(np.r_[True, group[1:] != group[:-1], True]))
