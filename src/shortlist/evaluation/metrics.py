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
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from shortlist.errors import ConfigError, DataValidationError

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("recall", "precision", "ndcg", "map", "mrr", "hitrate", "mpr", "coverage")
#: Metrics defined per user (coverage is a property of the whole recommendation set).
PER_USER: tuple[str, ...] = METRICS[:-1]
#: Metrics where a smaller value is better (used by reports to pick the best model).
LOWER_IS_BETTER: frozenset[str] = frozenset({"mpr"})

Matrix = np.ndarray
_BUFFER_CELLS = 1 << 21  # dense lookup buffer size for the hit matrix: small enough to stay in cache


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


class _Hits:
    """The hit matrix of the evaluated users and the cumulative quantities metrics are built from."""

    def __init__(self, hit: Matrix, n_rel: np.ndarray, n_valid: np.ndarray, users: np.ndarray) -> None:
        self.hit, self.n_rel, self.n_valid, self.users = hit, n_rel, n_valid, users

    @cached_property
    def rank(self) -> np.ndarray:  # 1-based rank of each column
        return np.arange(1, self.hit.shape[1] + 1, dtype=np.float64)

    @cached_property
    def cum_hits(self) -> Matrix:
        return np.cumsum(self.hit, axis=1, dtype=np.int64)

    @cached_property
    def cum_dcg(self) -> Matrix:
        return np.cumsum(self.hit / np.log2(self.rank + 1.0), axis=1)

    @cached_property
    def ideal_dcg(self) -> np.ndarray:  # ideal_dcg[j] = IDCG with j + 1 relevant items
        return np.cumsum(1.0 / np.log2(self.rank + 1.0))

    @cached_property
    def cum_ap(self) -> Matrix:  # running sum of precision@r at hit ranks r
        return np.cumsum(np.where(self.hit, self.cum_hits / self.rank, 0.0), axis=1)

    @cached_property
    def cum_pos(self) -> Matrix:  # running sum of 0-based positions of hits
        return np.cumsum(np.where(self.hit, self.rank - 1.0, 0.0), axis=1)

    @cached_property
    def first_hit(self) -> np.ndarray:  # 0-based column of the first hit; L when there is none
        first = np.argmax(self.hit, axis=1)
        return np.where(self.hit.any(axis=1), first, self.hit.shape[1])


# Each metric maps (hits, ks, n_items) to a (n_evaluated, len(ks)) float matrix.
_MetricFn = Callable[[_Hits, np.ndarray, int], Matrix]


def _hits_at(h: _Hits, ks: np.ndarray) -> Matrix:
    if ks.size > 4 or "cum_hits" in h.__dict__:
        return h.cum_hits[:, ks - 1]
    # A few Ks (e.g. candidate recall@300): counting is cheaper than a full cumsum.
    return np.stack([np.count_nonzero(h.hit[:, :k], axis=1) for k in ks], axis=1)


def _recall(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return _hits_at(h, ks) / h.n_rel[:, None]


def _precision(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return _hits_at(h, ks) / ks[None, :]


def _ndcg(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
    ideal = h.ideal_dcg[np.minimum(h.n_rel[:, None], ks[None, :]) - 1]
    return h.cum_dcg[:, ks - 1] / ideal


def _map(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return h.cum_ap[:, ks - 1] / np.minimum(h.n_rel[:, None], ks[None, :])


def _mrr(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
    first = h.first_hit[:, None]
    return np.where(first < ks[None, :], 1.0 / (first + 1.0), 0.0)


def _hitrate(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
    return (_hits_at(h, ks) > 0).astype(np.float64)


def _mpr(h: _Hits, ks: np.ndarray, n_items: int) -> Matrix:
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
    hits, ks_arr, n_cat = _prepare(recs, targets, ks=ks, n_items=n_items)
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
    hits, ks_arr, n_cat = _prepare(recs, targets, ks=ks, n_items=n_items)
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
    hits, ks_arr, n_cat = _prepare(recs, targets, ks=ks, n_items=n_items)
    return _means(name, hits, recs, ks_arr, n_cat)


def _means(name: str, hits: _Hits, recs: np.ndarray, ks: np.ndarray, n_items: int) -> np.ndarray:
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


def _check_ks(ks: Sequence[int] | range, width: int) -> np.ndarray:
    ks_list = [ks] if isinstance(ks, int) else list(ks)
    bad = [k for k in ks_list if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1]
    if bad or not ks_list:
        raise ConfigError(f"ks must be a non-empty list of positive integers, got {ks_list!r}.")
    too_big = [int(k) for k in ks_list if k > width]
    if too_big:
        raise ConfigError(
            f"K={too_big} exceeds the {width} recommendations per user; pass ks ≤ {width} "
            f"or retrieve more items per user."
        )
    return np.asarray(list(dict.fromkeys(int(k) for k in ks_list)), dtype=np.int64)


def _prepare(
    recs: np.ndarray,
    targets: sp.spmatrix | sp.sparray,
    *,
    ks: Sequence[int] | range,
    n_items: int | None,
) -> tuple[_Hits, np.ndarray, int]:
    """Validate inputs and build the hit matrix of the evaluated users over the first max(ks) ranks."""
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise DataValidationError(
            f"recs must be a 2-d integer matrix (n_users, K), got shape {recs.shape} and dtype {recs.dtype}."
        )
    if not sp.issparse(targets):
        raise DataValidationError(f"targets must be a scipy.sparse matrix, got {type(targets).__name__}.")
    t = sp.csr_matrix(targets, copy=True)
    t.eliminate_zeros()
    t.sum_duplicates()  # canonical form: sorted, unique column indices per row
    if t.shape[0] != recs.shape[0]:
        raise DataValidationError(
            f"recs has {recs.shape[0]} rows but targets has {t.shape[0]}; rows must be aligned per user."
        )
    n_cat = t.shape[1] if n_items is None else int(n_items)
    if n_cat < t.shape[1] or n_cat < 1:
        raise ConfigError(f"n_items={n_items} is smaller than the {t.shape[1]} target columns.")
    ks_arr = _check_ks(ks, recs.shape[1])
    r = recs[:, : int(ks_arr.max())]
    if r.size and (r.min() < -1 or r.max() >= n_cat):
        raise DataValidationError(
            f"recs holds item ids outside [0, {n_cat}) other than the -1 padding "
            f"(min {r.min()}, max {r.max()}); pass n_items or map ids to internal indices."
        )
    valid = r >= 0
    if not valid.all() and np.any(valid[:, 1:] & ~valid[:, :-1]):
        raise DataValidationError("recs has -1 padding before a real item; padding must be at the row end.")
    n_rel_all = np.diff(t.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    if users.size < t.shape[0]:
        r, valid, t = r[users], valid[users], t[users]
    hit = _hit_matrix(t, r, n_cat)
    if not valid.all():  # a -1 pad reads a neighbouring buffer cell; mask it out
        hit &= valid
    hits = _Hits(hit, n_rel_all[users].astype(np.int64), valid.sum(axis=1), users.astype(np.int64))
    return hits, ks_arr, n_cat


def _hit_matrix(targets: sp.csr_matrix, recs: np.ndarray, n_items: int) -> Matrix:
    """``hit[u, j]`` = whether ``recs[u, j]`` is among row u's targets (canonical CSR, ids < n_items).

    Scatters a block of users' targets into a reused dense boolean buffer and gathers at the
    recommended ids: one flat ``take`` per block, bounded memory. Blocks, not users, are iterated
    (a handful for typical catalogues); this is several times faster than a global searchsorted.
    """
    n_users = recs.shape[0]
    hit = np.zeros(recs.shape, dtype=bool)
    if n_users == 0 or recs.shape[1] == 0:
        return hit
    indices, width = targets.indices, n_items
    if _BUFFER_CELLS // n_items < 64:
        # Large catalogue: only items that are someone's target can be hits, so re-index onto those
        # (plus one never-set column for every other item, padding included) to keep blocks large.
        cols, indices = np.unique(targets.indices, return_inverse=True)
        lookup = np.full(n_items + 1, cols.size, dtype=np.int64)
        lookup[cols] = np.arange(cols.size)
        recs, width = lookup[recs], cols.size + 1
    block = int(np.clip(_BUFFER_CELLS // width, 1, n_users))
    buf = np.zeros(block * width, dtype=bool)
    offsets = np.arange(block, dtype=np.int64) * width
    n_rel = np.diff(targets.indptr)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        lo, hi = targets.indptr[start], targets.indptr[stop]
        cells = np.repeat(offsets[: stop - start], n_rel[start:stop]) + indices[lo:hi]
        buf[cells] = True
        np.take(buf, offsets[: stop - start, None] + recs[start:stop], out=hit[start:stop])
        buf[cells] = False
    return hit
