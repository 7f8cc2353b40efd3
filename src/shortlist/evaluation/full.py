"""The full evaluation: baselines, every stage-1 source alone, the candidate union, and the
two-stage model, with candidate recall per source — all fitted on the same training split and all
ranked by the code that serves (the model's stage 1 and its rank path)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from shortlist.config import TwoStageConfig
from shortlist.data.catalogue import Items
from shortlist.data.split import Split
from shortlist.evaluation.evaluate import DEFAULT_METRICS, MODEL, EvaluationResult, evaluate, score_rankings
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.baseline import make_baseline
from shortlist.pipeline.ranked import best_per_user
from shortlist.pipeline.stage1 import Stage1
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.retrieval.union import CandidateUnion
from shortlist.schema import SECONDS_PER_DAY, TIMESTAMP

logger = logging.getLogger(__name__)
RECALL_AT = (50, 100, 200, 300)


def evaluate_full(
    split: Split,
    *,
    items: Items | None = None,
    ks: Sequence[int] = (5, 10, 20),
    config: TwoStageConfig | None = None,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> tuple[EvaluationResult, pl.DataFrame, TwoStageRecommender]:
    """Returns (models × metrics, candidate recall per source and for the union, the fitted model).
    ``config``'s target and repeats are set from the split."""
    step = on_step or (lambda _: None)
    users, targets = split.test_users, split.targets()[split.test_users]
    depth = max(max(ks), 50)
    baselines = ["popular"] + (["repurchase_then_popular"] if split.repeats else [])
    step("baselines")
    base = evaluate({f"baseline:{n}": make_baseline(n) for n in baselines}, split, ks=ks, depth=depth)

    step("two-stage model")
    cfg = dataclasses.replace(config or TwoStageConfig(), target=target_for(split), allow_repeats=split.repeats,
                              seed=seed)
    t0 = time.perf_counter()
    model = TwoStageRecommender(cfg).fit(split.train, items=items, rng=np.random.default_rng(seed))
    fit_s = time.perf_counter() - t0
    stage = model.stage1_
    assert stage is not None
    step("candidates")
    t0 = time.perf_counter()
    deep = stage.topk(users, exclude_seen=not split.repeats, depth=max(RECALL_AT))
    union = stage.candidates(users, {n: (i[:, :stage.per_source], s[:, :stage.per_source]) for n, (i, s) in deep.items()})
    cand_s = time.perf_counter() - t0
    rankings = {f"source:{n}": items_[:, :depth] for n, (items_, _) in deep.items()}
    recall_rows = [{"candidates": n, **_recalls(items_, targets)} for n, (items_, _) in deep.items()]
    union_m = _ordered(union, users, stage.max_candidates, union.fused)
    recall_rows.append({"candidates": f"union (≤{stage.max_candidates})", **_recalls(union_m, targets)})
    sources_scored = score_rankings(rankings, split, ks=ks, metrics=DEFAULT_METRICS)
    best_source = sources_scored.best(f"ndcg@{ks[len(ks) // 2]}").removeprefix("source:")
    rankings = {f"union:{best_source}-order": _best_source_order(union, users, depth, stage, best_source)}
    step("re-ranking")
    t0 = time.perf_counter()
    rankings["two_stage"] = model.rank(users, depth).items
    rank_s = time.perf_counter() - t0
    rest = score_rankings(rankings, split, ks=ks, metrics=DEFAULT_METRICS,
                          extra={"two_stage": {"fit_s": round(fit_s, 2), "rank_s": round(rank_s + cand_s, 2)}})
    table = pl.concat([base.table, sources_scored.table, rest.table], how="diagonal_relaxed")
    curves = {m: {**base.curves[m], **sources_scored.curves[m], **rest.curves[m]} for m in base.curves}
    result = EvaluationResult(table, curves, len(users), split.protocol, meta={**base.meta, "best_source": best_source})
    return result, pl.DataFrame(recall_rows), model


def target_for(split: Split) -> str:
    """The two-stage target that matches a split: each user's next interaction for leave-last-out,
    a random share for a random holdout, else the next N days, N the test period's length."""
    name, _, _ = split.protocol.partition(":")
    if name in ("days", "random"):
        return split.protocol
    if name == "quantile":
        ts = split.test.frame.get_column(TIMESTAMP)
        span_days = (int(ts.max()) - int(ts.min()) + 1) / SECONDS_PER_DAY  # type: ignore[arg-type]
        return f"days:{max(1.0, math.ceil(span_days * 100) / 100):g}"
    return "last"


def _ordered(union: CandidateUnion, users: np.ndarray, width: int, scores: np.ndarray | None) -> np.ndarray:
    """The union as a (users × width) ranking by ``scores`` (ties: lower item id)."""
    assert scores is not None
    return best_per_user(union, scores, users, width)[0]


def _best_source_order(union: CandidateUnion, users: np.ndarray, width: int, stage: Stage1, best: str) -> np.ndarray:
    """The union in the best single source's order, then by the best rank any source gave."""
    j = stage.names.index(best)
    scores = -(union.ranks[j].astype(np.float64) * 1e6 + union.best_rank())
    return _ordered(union, users, width, scores)


def _recalls(matrix: np.ndarray, targets: Any) -> dict[str, float]:
    ks = [n for n in RECALL_AT if n <= matrix.shape[1]]
    out = compute_metrics(matrix, targets, ks=ks, metrics=("recall",))
    return {f"recall@{n}": out.get(f"recall@{n}", float("nan")) for n in RECALL_AT}


__all__ = ["MODEL", "evaluate_full", "target_for"]
