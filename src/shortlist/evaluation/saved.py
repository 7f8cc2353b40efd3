"""Scoring saved models on one held-out split — the offline side of an A/B test.

Each model is fitted elsewhere (``shortlist split`` writes the training part, ``shortlist fit`` fits
each variant on it), so this module's first duty is to refuse a model that has seen the test data:
a model whose history reaches into the test period of a time split, or holds more of the test
interactions than the split's own training part does (an interaction logged twice may sit on both
sides honestly), is a :class:`~shortlist.errors.LeakageError`. The models then rank the same test
users through their one rank path and are scored by the same metrics, beside the popularity
baseline fitted on the training part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from shortlist.data.export import export_interactions
from shortlist.data.split import Split
from shortlist.errors import LeakageError
from shortlist.evaluation.evaluate import DEFAULT_METRICS, EvaluationResult, evaluate, score_rankings
from shortlist.pipeline.baseline import make_baseline
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.schema import ITEM_ID, RANK, TIMESTAMP, USER_ID

logger = logging.getLogger(__name__)
TIME_PROTOCOLS = ("days", "quantile")
_KEYS = [USER_ID, ITEM_ID, TIMESTAMP]


def check_unseen(name: str, model: TwoStageRecommender, split: Split) -> None:
    """Refuse ``model`` if it was fitted on any of ``split``'s test data (see the module docstring)."""
    history = model.history_
    assert history is not None
    if split.protocol.partition(":")[0] in TIME_PROTOCOLS and len(split.test):
        start = int(split.test.frame.get_column(TIMESTAMP).min())  # type: ignore[arg-type]
        end = int(history.time_span()[1])
        if end >= start:
            raise LeakageError(f"variant {name}: its model was fitted on data up to {_day(end)}, into the test "
                               f"period of {split.protocol} (from {_day(start)}); fit it on the training part: "
                               f"shortlist split --protocol {split.protocol} --out SPLIT, then shortlist fit "
                               f"--interactions SPLIT/train.parquet")
    test = export_interactions(split.test).select(_KEYS).unique()
    seen = _overlap(test, export_interactions(history).select(_KEYS))
    allowed = _overlap(test, export_interactions(split.train).select(_KEYS))
    if seen > allowed:
        raise LeakageError(f"variant {name}: its model's history holds {seen:,} of the {test.height:,} test "
                           f"interactions (the split's training part holds {allowed:,}); it was fitted on the test "
                           f"data. Fit it on the training part of the same split (shortlist split --protocol "
                           f"{split.protocol}, then shortlist fit --interactions SPLIT/train.parquet)")


def _overlap(test: pl.DataFrame, other: pl.DataFrame) -> int:
    return test.join(other.unique(), on=_KEYS, how="inner").height


def _day(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def rankings_of(model: TwoStageRecommender, split: Split, depth: int) -> np.ndarray:
    """``model``'s top-``depth`` lists for ``split``'s test users as split-internal item ids
    (users × depth, -1 where a list is short or names an item the split does not know)."""
    users = split.train.users.external(split.test_users)
    recs = model.recommend(users, depth).select(USER_ID, ITEM_ID, RANK)
    row = pl.DataFrame({USER_ID: users, "_row": np.arange(len(users))})
    recs = recs.join(row, on=USER_ID, how="inner")
    recs = recs.with_columns(split.train.items.index(recs.get_column(ITEM_ID)).alias("_item"))
    out = np.full((len(users), depth), -1, np.int64)
    rows, ranks = recs.get_column("_row").to_numpy(), recs.get_column(RANK).to_numpy() - 1
    out[rows, ranks] = recs.get_column("_item").fill_null(-1).to_numpy()
    return out


def evaluate_saved(models: Mapping[str, TwoStageRecommender], split: Split, *, ks: Sequence[int] = (10,),
                   metrics: Sequence[str] = DEFAULT_METRICS) -> EvaluationResult:
    """Each model (checked with :func:`check_unseen`) and the popularity baseline on ``split``."""
    for name, model in models.items():
        check_unseen(name, model, split)
        if model.allow_repeats != split.repeats:
            logger.warning("variant %s was fitted with allow_repeats=%s, the split has repeats=%s",
                           name, model.allow_repeats, split.repeats)
    depth = max(max(ks), 50)
    base = evaluate({"baseline:popular": make_baseline("popular")}, split, ks=ks, metrics=metrics, depth=depth)
    rankings, timings = {}, {}
    for name, model in models.items():
        t0 = time.perf_counter()
        rankings[f"variant:{name}"] = rankings_of(model, split, depth)
        timings[f"variant:{name}"] = {"rank_s": round(time.perf_counter() - t0, 2)}
    scored = score_rankings(rankings, split, ks=ks, metrics=metrics, extra=timings)
    table = pl.concat([base.table, scored.table], how="diagonal_relaxed")
    curves = {m: {**base.curves[m], **scored.curves[m]} for m in base.curves}
    return EvaluationResult(table, curves, scored.n_users, split.protocol, meta=dict(base.meta))


__all__ = ["check_unseen", "evaluate_saved", "rankings_of"]
