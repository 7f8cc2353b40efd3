"""``evaluate()``: fit each model on the training part of a split, rank for test users, score.

Evaluation data never touches fitting: models see ``split.train`` only, and rankings are full
(every catalogue item can be ranked; no sampled negatives).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from shortlist.data.split import Split
from shortlist.evaluation.metrics import compute_metrics, metric_curve
from shortlist.retrieval.base import CandidateSource

logger = logging.getLogger(__name__)

DEFAULT_METRICS = ("ndcg", "recall", "precision", "map", "mrr", "hitrate", "coverage")
CURVE_METRICS = ("ndcg", "recall")
MODEL = "model"


ModelFactory = Callable[[], CandidateSource]


@dataclass
class EvaluationResult:
    """Models × metrics, curves of metric@K for plots, and the context needed to read them."""

    table: pl.DataFrame
    curves: dict[str, dict[str, list[float]]]
    n_users: int
    protocol: str
    meta: dict[str, Any] = field(default_factory=dict)
    rankings: dict[str, np.ndarray] = field(default_factory=dict)

    def best(self, metric: str) -> str:
        """Name of the model with the highest ``metric``."""
        row = self.table.sort(metric, descending=True, nulls_last=True).row(0, named=True)
        return str(row[MODEL])


def score_rankings(
    rankings: Mapping[str, np.ndarray],
    split: Split,
    *,
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] = DEFAULT_METRICS,
    extra: Mapping[str, Mapping[str, float]] | None = None,
) -> EvaluationResult:
    """Score precomputed rankings (rows aligned to ``split.test_users``)."""
    users = split.test_users
    targets = split.targets()[users]
    n_items = split.train.n_items
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, list[float]]] = {m: {} for m in CURVE_METRICS}
    for name, recs in rankings.items():
        row: dict[str, Any] = {MODEL: name, **compute_metrics(recs, targets, ks=ks, metrics=metrics, n_items=n_items)}
        row.update((extra or {}).get(name, {}))
        rows.append(row)
        for m in CURVE_METRICS:
            curves[m][name] = metric_curve(recs, targets, metric=m, n_items=n_items).tolist()
    return EvaluationResult(pl.DataFrame(rows), curves, len(users), split.protocol, rankings=dict(rankings))


def evaluate(
    models: Mapping[str, CandidateSource | ModelFactory],
    split: Split,
    *,
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] = DEFAULT_METRICS,
    depth: int | None = None,
    exclude_seen: bool | None = None,
    seed: int = 0,
    on_model: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Fit every model on ``split.train``, rank ``depth`` items for each test user, and score.

    ``exclude_seen`` defaults to ``not split.repeats`` (seen items are not recommended unless
    re-consumption counts as a hit). Timings are wall-clock seconds.
    """
    depth = depth or max(max(ks), 50)
    exclude = (not split.repeats) if exclude_seen is None else exclude_seen
    users = split.test_users
    rankings: dict[str, np.ndarray] = {}
    timings: dict[str, dict[str, float]] = {}
    for name, spec in models.items():
        if on_model is not None:
            on_model(name)
        model = spec if isinstance(spec, CandidateSource) else spec()
        t0 = time.perf_counter()
        model.fit(split.train, rng=np.random.default_rng(seed))
        t1 = time.perf_counter()
        rankings[name] = model.topk(users, depth, exclude_seen=exclude)[0]
        t2 = time.perf_counter()
        timings[name] = {"fit_s": round(t1 - t0, 3), "rank_s": round(t2 - t1, 3)}
        logger.info("%s: fit %.2fs, rank %.2fs", name, t1 - t0, t2 - t1)
    result = score_rankings(rankings, split, ks=ks, metrics=metrics, extra=timings)
    result.meta.update({
        "protocol": split.protocol,
        "repeats": split.repeats,
        "exclude_seen": exclude,
        "n_test_users": len(users),
        "n_train_rows": len(split.train),
        "n_test_rows": len(split.test),
        "n_items": split.train.n_items,
        "split_removed": dict(split.counts),
    })
    return result
