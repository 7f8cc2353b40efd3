"""The search re-ranker: LightGBM lambdarank over the candidates' features, one group per query.

It learns from labelled queries (a review's text, its item the one relevant answer) whose
features were built from an index that did not see them. The earlier three quarters of those
queries train, the latest quarter chooses the number of rounds, then all of them train again for
that many rounds (``LGBMRanker(refit=True)``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from shortlist.errors import DataValidationError
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.search.candidates import Candidates

logger = logging.getLogger(__name__)

#: Settings for a few thousand small query groups with one relevant item each.
RANKER_PARAMS: dict[str, Any] = {
    "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 20,
    "feature_fraction": 0.8, "bagging_fraction": 0.5, "lambda_l2": 10.0, "eval_at": (10, 5, 20),
    "early_stopping_rounds": 30, "min_rounds": 30, "refit": True,
}
MIN_LABELLED_QUERIES = 8
_VALID_SHARE = 0.25


class TooFewQueriesError(DataValidationError):
    """Too few labelled queries (with their item among the candidates) to train the re-ranker."""


def labels_for(cands: Candidates, targets: np.ndarray) -> np.ndarray:
    """1 where a candidate is its query's target document position, else 0 (float32)."""
    return (cands.pos == targets[cands.query]).astype(np.float32)


def _rows(cands: Candidates, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y-mask rows, group sizes) of the queries in ``keep`` (sorted query rows)."""
    mask = np.isin(cands.query, keep)
    sizes = np.bincount(cands.query[mask], minlength=int(cands.query.max()) + 1)
    return cands.features[mask], mask, sizes[sizes > 0]


def train_reranker(cands: Candidates, targets: np.ndarray, *, feature_names: list[str], seed: int = 0,
                   params: dict[str, Any] | None = None) -> tuple[LGBMRanker, dict[str, Any]]:
    """Fit the re-ranker on labelled candidates; returns it and its training summary.

    ``targets[q]`` is query q's relevant document position (-1: not in the index). Queries whose
    target is not among their candidates teach nothing and are left out (counted).
    """
    y = labels_for(cands, targets)
    hit = np.bincount(cands.query, weights=y, minlength=len(targets)) > 0
    usable = np.flatnonzero(hit)
    summary: dict[str, Any] = {"label_queries": len(targets),
                               "target_in_index": int((targets >= 0).sum()),
                               "target_in_candidates": int(usable.size)}
    if usable.size < MIN_LABELLED_QUERIES:
        raise TooFewQueriesError(
            f"the re-ranker needs at least {MIN_LABELLED_QUERIES} labelled queries whose item is among the "
            f"candidates, got {usable.size} of {len(targets)}. Fix: pass more reviews, or index without the "
            f"re-ranker (--no-rerank)")
    cut = round(usable.size * (1 - _VALID_SHARE))
    train_q, valid_q = usable[:cut], usable[cut:]
    X, mask, group = _rows(cands, train_q)
    valid = None
    if valid_q.size:
        Xv, mask_v, group_v = _rows(cands, valid_q)
        valid = (Xv, y[mask_v], group_v)
    ranker = LGBMRanker(seed=seed, **{**RANKER_PARAMS, **(params or {})})
    ranker.fit(X, y[mask], group, feature_names=feature_names, valid=valid)
    summary.update({k: v for k, v in ranker.metrics_.items() if isinstance(v, int | float)})
    summary["candidate_recall"] = round(usable.size / max(len(targets), 1), 4)
    logger.info("search re-ranker: %s", summary)
    return ranker, summary
