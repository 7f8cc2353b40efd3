"""The full evaluation: baselines, every stage-1 source alone, the candidate union, and the
two-stage model, with candidate recall per source — all fitted on the same training split."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from shortlist.data.containers import Items
from shortlist.data.split import Split
from shortlist.evaluation.evaluate import DEFAULT_METRICS, MODEL, EvaluationResult, evaluate, score_rankings
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.baseline import make_baseline
from shortlist.pipeline.ranked import rank_by_score
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.retrieval.union import best_rank, rank_col
from shortlist.schema import SECONDS_PER_DAY, TIMESTAMP

logger = logging.getLogger(__name__)
RECALL_AT = (50, 100, 200, 300)


def evaluate_full(
    split: Split,
    *,
    items: Items | None = None,
    ks: Sequence[int] = (5, 10, 20),
    model_params: dict[str, Any] | None = None,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> tuple[EvaluationResult, pl.DataFrame, TwoStageRecommender]:
    """Returns (models × metrics, candidate recall per source and for the union, the fitted model)."""
    step = on_step or (lambda _: None)
    exclude = not split.repeats
    users = split.test_users
    targets = split.targets()[users]
    depth = max(max(ks), 50)
    baselines = ["popular"] + (["repurchase_then_popular"] if split.repeats else [])
    step("baselines")
    base = evaluate({f"baseline:{n}": make_baseline(n) for n in baselines}, split, ks=ks, depth=depth)

    step("two-stage model")
    params = {"target": target_for(split),
              "allow_repeats": split.repeats, "seed": seed, **(model_params or {})}
    t0 = time.perf_counter()
    model = TwoStageRecommender(**params).fit(split.train, items=items, rng=np.random.default_rng(seed))
    fit_s = time.perf_counter() - t0
    gen = model.generator_
    assert gen is not None
    step("candidates")
    t0 = time.perf_counter()
    parts = gen.retrieve_all(users, exclude_seen=exclude)
    cands = gen.combine(parts)
    cand_s = time.perf_counter() - t0
    rankings: dict[str, np.ndarray] = {}
    recall_rows = []
    deep = {n: gen.sources_[n].retrieve(users, max(RECALL_AT), exclude_seen=exclude) for n in gen.sources_}
    for name, c in deep.items():
        m = c.to_matrix(users, max(RECALL_AT))
        rankings[f"source:{name}"] = m[:, :depth]
        recall_rows.append({"candidates": name, **_recalls(m, targets)})
    union_m = _union_matrix(cands, users, gen.max_candidates)
    recall_rows.append({"candidates": f"union (≤{gen.max_candidates})", **_recalls(union_m, targets)})
    sources_scored = score_rankings(rankings, split, ks=ks, metrics=DEFAULT_METRICS)
    best_source = sources_scored.best(f"ndcg@{ks[len(ks) // 2]}").removeprefix("source:")
    order_scores = -cands.get_column(rank_col(best_source)).to_numpy().astype(np.float32) * 1e6 \
        - _best_rank(cands, list(gen.sources_))
    rankings = {f"union:{best_source}-order": rank_by_score(cands, order_scores, depth, "union").to_matrix(users, depth)}
    step("re-ranking")
    t0 = time.perf_counter()
    ranked = model.retrieve(users, depth, exclude_seen=exclude)
    rank_s = time.perf_counter() - t0
    rankings["two_stage"] = ranked.to_matrix(users, depth)
    rest = score_rankings(rankings, split, ks=ks, metrics=DEFAULT_METRICS,
                          extra={"two_stage": {"fit_s": round(fit_s, 2), "rank_s": round(rank_s + cand_s, 2)}})
    table = pl.concat([base.table, sources_scored.table, rest.table], how="diagonal_relaxed")
    curves = {m: {**base.curves[m], **sources_scored.curves[m], **rest.curves[m]} for m in base.curves}
    result = EvaluationResult(table, curves, len(users), split.protocol, meta={**base.meta, "best_source": best_source})
    return result, pl.DataFrame(recall_rows), model


def target_for(split: Split) -> str:
    """The two-stage target that matches a split: each user's next interaction for leave-last-out
    (and splits without a time window), else the next N days, N the test period's length."""
    name, _, _ = split.protocol.partition(":")
    if name == "days":
        return split.protocol
    if name == "quantile":
        ts = split.test.frame.get_column(TIMESTAMP)
        span_days = (int(ts.max()) - int(ts.min()) + 1) / SECONDS_PER_DAY  # type: ignore[arg-type]
        return f"days:{max(1.0, math.ceil(span_days * 100) / 100):g}"
    return "last"


def _recalls(matrix: np.ndarray, targets: Any) -> dict[str, float]:
    width = matrix.shape[1]
    ks = [n for n in RECALL_AT if n <= width]
    out = compute_metrics(matrix, targets, ks=ks, metrics=("recall",))
    return {f"recall@{n}": out.get(f"recall@{n}", float("nan")) for n in RECALL_AT}


def _best_rank(cands: pl.DataFrame, sources: list[str]) -> np.ndarray:
    return best_rank(cands, sources).to_numpy().astype(np.float32)


def _union_matrix(cands: pl.DataFrame, users: np.ndarray, width: int) -> np.ndarray:
    """The union as a ranking (its own best-rank order), ``width`` wide, for candidate recall."""
    scores = -cands.select(pl.int_range(pl.len()).over("user")).to_series().to_numpy().astype(np.float32)
    return rank_by_score(cands, scores, width, "union").to_matrix(users, width)


__all__ = ["MODEL", "evaluate_full"]
