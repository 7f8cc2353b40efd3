"""Top-K ranking metrics, vectorised over users: the hit matrix is built once, metrics come from cumsums.

Inputs
------
``recs``: int matrix (n_users, L) of item ids in rank order (best first), padded at the end of a row
with ``-1`` where a model returned fewer than L items. Items are assumed to occur at most once per row
(not checked, for speed; a repeated item would be counted as two hits).
``targets``: sparse matrix (n_users, n_target_items), rows aligned with ``recs``; every stored non-zero
is a relevant item (binary relevance). Users whose row is empty are excluded from every average; the
number of users evaluated is reported by :func:`per_user_metrics`.

Definitions (``hits@K`` = relevant items among the first K; ``R`` = number of relevant items)
------------------------------------------------------------------------------------------------
- recall@K    = hits@K / R
- precision@K = hits@K / K  (padding counts as a miss)
- ndcg@K      = DCG@K / IDCG@K, gains 1, discount 1/log2(rank+1), ideal over min(R, K) hits
- map@K       = sum over hit ranks r ≤ K of precision@r, divided by min(R, K)
- mrr@K       = 1 / rank of the first hit if it is within K, else 0
- hitrate@K   = 1 if hits@K > 0 else 0
- mpr@K       = mean over relevant items of position / (n_items - 1), positions 0-based in the full
  catalogue ranking whose head is the first K recommendations; an item not in that head gets the
  expected position of a random ordering of the unranked remainder, the mid-point
  (n_ranked + n_items - 1) / 2. Lower is better; a random ranking scores 0.5.
- coverage@K  = distinct items recommended in the top K of evaluated users / n_items (not per user)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shortlist.errors import ConfigError
from shortlist.evaluation.hits import Hits, Matrix, prepare

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("recall", "precision", "ndcg", "map", "mrr", "hitrate", "mpr", "coverage")
#: Metrics defined per user (coverage is a property of the whole recommendation set).
PER_USER: tuple[str, ...] = METRICS[:-1]
#: Metrics where a smaller value is better (used by reports to pick the best model).
LOWER_IS_BETTER: frozenset[str] = frozenset({"mpr"})



@dataclass(frozen=True)
class PerUserMetrics:
    """Per-user metric values for the evaluated users (those with at least one target)."""

    values: dict[str, np.ndarray]  # "ndcg@10" -> float64 array of shape (n_users,)
    users: np.ndarray  # row indices into recs/targets of the evaluated users

    @property
    def n_users(self) -> int:
        return int(self.users.size)

    def means(self) -> dict[str, float]:
        """Mean of each metric over the evaluated users (NaN when no user was evaluated)."""
        n = self.n_users
        return {name: float(v.sum() / n) if n else float("nan") for name, v in self.values.items()}


# Each metric maps (hits, ks, n_items) to a (n_evaluated, len(ks)) float matrix.
_MetricFn = Callable[[Hits, np.ndarray, int], Matrix]


def _hits_at(h: Hits, ks: np.ndarray) -> Matrix:
    if ks.size > 4 or "cum_hits" in h.__dict__:
        return h.cum_hits[:, ks - 1]
    # A few Ks (e.g. candidate recall@300): counting is cheaper than a full cumsum.
    return np.stack([np.count_nonzero(h.hit[:, :k], axis=1) for k in ks], axis=1)


def _recall(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return _hits_at(h, ks) / h.n_rel[:, None]


def _precision(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return _hits_at(h, ks) / ks[None, :]


def _ndcg(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    ideal = h.ideal_dcg[np.minimum(h.n_rel[:, None], ks[None, :]) - 1]
    return h.cum_dcg[:, ks - 1] / ideal


def _map(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return h.cum_ap[:, ks - 1] / np.minimum(h.n_rel[:, None], ks[None, :])


def _mrr(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    first = h.first_hit[:, None]
    return np.where(first < ks[None, :], 1.0 / (first + 1.0), 0.0)


def _hitrate(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return (_hits_at(h, ks) > 0).astype(np.float64)


def _mpr(h: Hits, ks: np.ndarray, n_items: int) -> Matrix:
    n_ranked = np.minimum(h.n_valid[:, None], ks[None, :])
    missed = h.n_rel[:, None] - _hits_at(h, ks)
    mid = (n_ranked + (n_items - 1)) / 2.0
    positions = h.cum_pos[:, ks - 1] + missed * mid
    return positions / (h.n_rel[:, None] * max(n_items - 1, 1))


_PER_USER_FNS: dict[str, _MetricFn] = {
    "recall": _recall,
    "precision": _precision,
    "ndcg": _ndcg,
    "map": _map,
    "mrr": _mrr,
    "hitrate": _hitrate,
    "mpr": _mpr,
}


def per_user_metrics(
    recs: np.ndarray,
    targets: sp.spmatrix | sp.sparray,
    *,
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] = PER_USER,
    n_items: int | None = None,
) -> PerUserMetrics:
    """Per-user values of each metric@K for the users with at least one target.

    ``coverage`` is accepted but skipped (it is not defined per user); see :func:`compute_metrics`.
    ``n_items`` is the catalogue size (default ``targets.shape[1]``), used by MPR and coverage.
    """
    names = _check_metrics(metrics)
    hits, ks_arr, n_cat = prepare(recs, targets, ks=ks, n_items=n_items)
    values: dict[str, np.ndarray] = {}
    for name in names:
        if name == "coverage":
            continue
        matrix = _PER_USER_FNS[name](hits, ks_arr, n_cat)
        for j, k in enumerate(ks_arr):
            values[f"{name}@{k}"] = np.ascontiguousarray(matrix[:, j], dtype=np.float64)
    return PerUserMetrics(values=values, users=hits.users)


def compute_metrics(
    recs: np.ndarray,
    targets: sp.spmatrix | sp.sparray,
    *,
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] = METRICS,
    n_items: int | None = None,
) -> dict[str, float]:
    """Mean of each metric@K over the users with at least one target, keyed like ``"ndcg@10"``.

    Keys are ordered metric-major, then by K in the order given. Means are NaN when no user has a
    target. ``coverage@K`` is computed over the evaluated users' recommendations.
    """
    names = _check_metrics(metrics)
    hits, ks_arr, n_cat = prepare(recs, targets, ks=ks, n_items=n_items)
    if hits.users.size == 0:
        logger.warning("no user has a target; every per-user metric is NaN")
    out: dict[str, float] = {}
    for name in names:
        means = _means(name, hits, np.asarray(recs), ks_arr, n_cat)
        out.update({f"{name}@{k}": float(m) for k, m in zip(ks_arr, means, strict=True)})
    return out


def metric_curve(
    recs: np.ndarray,
    targets: sp.spmatrix | sp.sparray,
    *,
    metric: str,
    n_items: int | None = None,
) -> np.ndarray:
    """Mean ``metric@K`` for every K = 1 .. recs.shape[1] (index i holds K = i + 1), for plots."""
    (name,) = _check_metrics([metric])
    recs = np.asarray(recs)
    ks = range(1, recs.shape[1] + 1) if recs.ndim == 2 else range(1, 2)  # _prepare rejects bad shapes
    hits, ks_arr, n_cat = prepare(recs, targets, ks=ks, n_items=n_items)
    return _means(name, hits, recs, ks_arr, n_cat)


def _means(name: str, hits: Hits, recs: np.ndarray, ks: np.ndarray, n_items: int) -> np.ndarray:
    """Mean of one metric at each K over the evaluated users (coverage: over their recommendations)."""
    if name == "coverage":
        return _coverage(recs[hits.users], ks, n_items)
    n = hits.users.size
    return _PER_USER_FNS[name](hits, ks, n_items).sum(axis=0) / n if n else np.full(ks.size, np.nan)


def candidate_recall(recs: np.ndarray, targets: sp.spmatrix | sp.sparray, n: int) -> float:
    """Recall@n of a candidate list: the per-user fraction of targets found in the top n, averaged."""
    return compute_metrics(recs, targets, ks=(n,), metrics=("recall",))[f"recall@{n}"]


def _coverage(recs: np.ndarray, ks: np.ndarray, n_items: int) -> np.ndarray:
    """Fraction of the catalogue appearing in the top K of any row, for each K."""
    head = recs[:, : int(ks.max())]
    valid = head >= 0
    first_col = np.full(n_items, head.shape[1], dtype=np.int64)  # best column each item reaches
    cols = np.broadcast_to(np.arange(head.shape[1], dtype=np.int64), head.shape)
    np.minimum.at(first_col, head[valid], cols[valid])
    return np.searchsorted(np.sort(first_col), ks, side="left") / n_items


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    names = [m.lower() for m in metrics]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        what = f"unknown metric(s) {unknown}" if unknown else "no metric requested"
        raise ConfigError(f"{what}; valid metrics: {', '.join(METRICS)}.")
    return list(dict.fromkeys(names))
