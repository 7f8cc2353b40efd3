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
from shortlist.pipeline.training import WindowFrame, group_sizes, require_cluster_for, train_ranker
from shortlist.ranking.base import Ranker
from shortlist.ranking.lgbm import LGBMRanker

if TYPE_CHECKING:
    from distributed import Client, Future

#: LightGBM parameters the Dask ranker sets itself (threads per worker) or that only the sample's
#: early stopping reads (its NDCG cut-offs).
_LOCAL_ONLY = ("metric", "eval_at", "num_threads")


@dataclass(frozen=True)
class _Part:
    """One shard's training rows, held by a worker (groups without a positive already dropped there):
    where they are, and their labels and (user, window) groups, here."""

    kept: Future
    y: np.ndarray
    group: np.ndarray


def train_on_workers(frames: list[WindowFrame], names: list[str], categorical: list[str], config: TwoStageConfig,
                     rng: np.random.Generator, *, prototype: Ranker | None = None) -> tuple[Ranker | None, dict[str, Any]]:
    """The ranker trained by ``lightgbm.dask.DaskLGBMRanker`` on every kept row of ``frames`` (a
    shard never splits a user's group), for the number of rounds early stopping chose on a seeded
    sample of whole shards (about ``config.ranker_sample_rows`` rows) gathered here; the sample's
    fit is reported under ``rounds_sample``. ``None`` when the sample holds too few groups."""
    require_cluster_for(config.ranker)
    client = mapper_client()
    assert client is not None
    parts = [p for f in frames for p in _parts(f)]
    try:
        local, sample = _rounds_on_sample(client, parts, names, categorical, config, rng, prototype)
        if local is None:
            return None, {"rounds_sample": sample}
        rounds = int(local.metrics_["best_iteration"])
        booster, workers = _fit_on_workers(client, parts, names, categorical, local, rounds)
    except Exception as e:
        if cluster_failure(e):
            raise DistributedError("ranker training (lightgbm-dask)", e) from e
        raise
    chosen_on = {f"sample_{k}": v for k, v in local.metrics_.items()
                 if k.startswith(("train_", "valid_", "ndcg")) and isinstance(v, int | float)}
    local.booster_ = booster
    local.metrics_ = {"best_iteration": rounds, "train_rows": int(sum(len(p.y) for p in parts)), "valid_rows": 0,
                      "dask_workers": workers, **chosen_on,
                      "valid_curve": local.metrics_.get("valid_curve", {})}  # the sample's: it chose the rounds
    return local, {"ranker": local.metrics_, "rounds_sample": sample}


def _parts(frame: WindowFrame) -> list[_Part]:
    """A window's shards with rows, in order (``frame.y`` and ``frame.group`` are theirs one after another)."""
    out, lo = [], 0
    for kept, n in frame.parts:
        if n:
            out.append(_Part(kept, frame.y[lo:lo + n], frame.group[lo:lo + n]))
        lo += n
    return out


def _rounds_on_sample(client: Client, parts: Sequence[_Part], names: list[str], categorical: list[str],
                      config: TwoStageConfig, rng: np.random.Generator,
                      prototype: Ranker | None) -> tuple[LGBMRanker | None, dict[str, Any]]:
    """The early-stopped LightGBM fit on a seeded sample of whole shards, the fewest whose rows reach
    ``config.ranker_sample_rows`` (all of them if fewer), gathered to this process; and its metrics."""
    order = rng.permutation(len(parts))
    sizes = np.array([len(parts[i].y) for i in order], np.int64)
    chosen = np.sort(order[: int(np.searchsorted(np.cumsum(sizes), config.ranker_sample_rows)) + 1])
    gathered = client.gather([parts[i].kept for i in chosen])
    sample = [WindowFrame(rows.X, rows.y, rows.group) for rows in gathered]
    del gathered
    ranker, metrics = train_ranker(sample, names, categorical, replace(config, ranker="lightgbm"), rng,
                                   prototype=prototype)
    assert ranker is None or isinstance(ranker, LGBMRanker)
    return ranker, {"shards": len(chosen), "rows": int(sum(len(f.y) for f in sample)), **metrics}


def _fit_on_workers(client: Client, parts: Sequence[_Part], names: list[str], categorical: list[str],
                    local: LGBMRanker, rounds: int) -> tuple[Any, int]:
    """``rounds`` of LightGBM's Dask ranker over the parts where they are (features, labels and group
    sizes each taken on the worker holding the shard), with ``local``'s parameters; the booster, and
    the number of workers holding rows."""
    import dask.array as da
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMRanker

    def chunk(fn: Any, part: _Part, shape: tuple[int, ...], dtype: Any) -> Any:
        return da.from_delayed(client.submit(fn, part.kept, pure=False), shape, dtype=dtype)

    X = da.concatenate([chunk(_features, p, (len(p.y), len(names)), np.float32) for p in parts])
    y = da.concatenate([chunk(_labels, p, (len(p.y),), np.float32) for p in parts])
    group = da.concatenate([chunk(_group_sizes, p, (len(group_sizes(p.group)),), np.int64) for p in parts])
    params = {k: v for k, v in local.params().items() if k not in _LOCAL_ONLY}
    model = DaskLGBMRanker(client=client, n_estimators=rounds, **params)
    with warnings.catch_warnings():  # the wrapper always passes n_jobs; the Dask ranker uses each worker's threads
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
        model.fit(X, y, group=group, feature_name=names, categorical_feature=[c for c in categorical if c in names])
    holders = {w for ws in client.who_has([p.kept for p in parts]).values() for w in ws}
    return lgb.Booster(model_str=model.booster_.model_to_string()), len(holders)


def _features(rows: Any) -> np.ndarray:
    """A kept shard's feature rows (on the worker that holds them; no copy)."""
    return np.ascontiguousarray(rows.X, dtype=np.float32)


def _labels(rows: Any) -> np.ndarray:
    return np.asarray(rows.y, dtype=np.float32)


def _group_sizes(rows: Any) -> np.ndarray:
    """A kept shard's query group sizes (a group's rows are consecutive within a shard)."""
    return group_sizes(rows.group).astype(np.int64)
