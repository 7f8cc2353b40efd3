"""The ranker trained where its rows are (``ranker = "lightgbm-dask"``): LightGBM's Dask ranker over
the shards' feature rows, left on the workers that built them, for training sets larger than one
machine. LightGBM's Dask training has no early stopping (LightGBM #3712, #4493), so the number of
rounds is chosen first by the usual early-stopped fit on a seeded sample of shards gathered here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shortlist.config import TwoStageConfig
from shortlist.distributed.mapper import cluster_failure
from shortlist.errors import DistributedError
from shortlist.pipeline.parallel import mapper_client
from shortlist.pipeline.training import WindowFrame, require_cluster_for, train_ranker
from shortlist.ranking.base import Ranker
from shortlist.ranking.lgbm import LGBMRanker

if TYPE_CHECKING:
    from distributed import Client

#: LightGBM parameters the Dask ranker sets itself (threads per worker) or that only the sample's
#: early stopping reads (its NDCG cut-offs).
_LOCAL_ONLY = ("metric", "eval_at", "num_threads")


@dataclass(frozen=True)
class _Part:
    """One shard's rows on a worker: its future, and which of its rows train (groups with a positive)."""

    handle: Any
    rows: np.ndarray
    y: np.ndarray
    sizes: np.ndarray


def train_on_workers(frames: list[WindowFrame], names: list[str], categorical: list[str], config: TwoStageConfig,
                     rng: np.random.Generator, *, prototype: Ranker | None = None) -> tuple[Ranker | None, dict[str, Any]]:
    """The ranker trained by ``lightgbm.dask.DaskLGBMRanker`` on every kept row of ``frames`` (groups
    without a positive dropped; a shard never splits a user's group), for the number of rounds that
    early stopping chose on a sample of about ``config.ranker_sample_rows`` rows. ``None`` when the
    sample holds too few groups."""
    require_cluster_for(config.ranker)
    client = mapper_client()
    assert client is not None
    parts = [p for f in frames for p in _parts(f)]
    try:
        local, metrics = _rounds_on_sample(client, parts, names, categorical, config, rng, prototype)
        if local is None:
            return None, metrics
        rounds = int(local.metrics_["best_iteration"])
        booster, workers = _fit_on_workers(client, parts, names, categorical, local, rounds)
    except Exception as e:
        if cluster_failure(e):
            raise DistributedError("ranker training (lightgbm-dask)", e) from e
        raise
    local.booster_ = booster
    local.metrics_ = {**local.metrics_, "best_iteration": rounds, "train_rows": int(sum(len(p.y) for p in parts)),
                      "valid_rows": 0, "dask_workers": workers}
    metrics["ranker"] = {**metrics["ranker"], **local.metrics_}
    return local, metrics


def _parts(frame: WindowFrame) -> list[_Part]:
    """A window's parts, each with the rows of its groups that hold a positive (rows of a group are
    consecutive within a shard)."""
    out, lo = [], 0
    for handle, n in frame.parts:
        y, group = frame.y[lo:lo + n], frame.group[lo:lo + n]
        rows = np.flatnonzero(np.isin(group, np.unique(group[y > 0])))
        lo += n
        if len(rows):
            g = group[rows]
            sizes = np.diff(np.flatnonzero(np.r_[True, g[1:] != g[:-1], True]))
            out.append(_Part(handle, rows, y[rows], sizes))
    return out


def _rounds_on_sample(client: Client, parts: Sequence[_Part], names: list[str], categorical: list[str],
                      config: TwoStageConfig, rng: np.random.Generator,
                      prototype: Ranker | None) -> tuple[LGBMRanker | None, dict[str, Any]]:
    """The early-stopped LightGBM fit on a seeded sample of whole shards (about
    ``config.ranker_sample_rows`` rows), gathered to this process."""
    order = rng.permutation(len(parts))
    sizes = np.array([len(parts[i].y) for i in order], np.int64)
    chosen = np.sort(order[: max(1, int(np.searchsorted(np.cumsum(sizes), config.ranker_sample_rows)) + 1)])
    gathered = client.gather([parts[i].handle for i in chosen])
    sample = [WindowFrame(rows.X, rows.y, rows.group) for rows in gathered]
    del gathered
    ranker, metrics = train_ranker(sample, names, categorical, replace(config, ranker="lightgbm"), rng,
                                   prototype=prototype)
    metrics["rounds_sample"] = {"shards": len(chosen), "rows": int(sum(len(f.y) for f in sample))}
    assert ranker is None or isinstance(ranker, LGBMRanker)
    return ranker, metrics


def _fit_on_workers(client: Client, parts: Sequence[_Part], names: list[str], categorical: list[str],
                    local: LGBMRanker, rounds: int) -> tuple[Any, int]:
    """``rounds`` of LightGBM's Dask ranker over the parts where they are, with ``local``'s
    parameters; the booster, and the number of workers that trained."""
    import dask.array as da
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMRanker

    width = len(names)
    X = da.concatenate([da.from_delayed(client.submit(_take_rows, p.handle, p.rows, pure=False), (len(p.rows), width),
                                        dtype=np.float32) for p in parts])
    y = da.from_array(np.concatenate([p.y for p in parts]), chunks=((*(len(p.y) for p in parts),),))
    group = da.from_array(np.concatenate([p.sizes for p in parts]), chunks=((*(len(p.sizes) for p in parts),),))
    params = {k: v for k, v in local.params().items() if k not in _LOCAL_ONLY}
    model = DaskLGBMRanker(client=client, n_estimators=rounds, **params)
    with warnings.catch_warnings():  # the wrapper always passes n_jobs; the Dask ranker uses each worker's threads
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
        model.fit(X, y, group=group, feature_name=names, categorical_feature=[c for c in categorical if c in names])
    workers = len(client.scheduler_info()["workers"])
    return lgb.Booster(model_str=model.booster_.model_to_string()), workers


def _take_rows(rows: Any, at: np.ndarray) -> np.ndarray:
    """A shard's feature rows ``at`` (run on the worker that holds them)."""
    return np.ascontiguousarray(rows.X[at], dtype=np.float32)
