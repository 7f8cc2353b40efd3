"""How the union orders its candidates: reciprocal-rank fusion, learned on a label window.

Plain reciprocal-rank fusion scores ``Σ_s w_s / (k0 + rank_s)``. The learned fusion adds, per source,
a bonus for proposing the item at all, and per-item priors (log popularity of the stage's popularity
sources), all fitted by one weighted logistic regression on a training label window's candidates:
is this (user, item) a label? Each row weighs ``1 / labels of its user``, so the fit optimises the
per-user recall the union is judged by. Sources overlap (item-kNN and co-visitation mostly re-propose
what transition finds), so equal weights count the same evidence several times; presence bonuses learn
what each source adds beyond the others, and the prior separates the long tail of single proposals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize

from shortlist.schema import MISSING_RANK

if TYPE_CHECKING:
    from shortlist.retrieval.union import CandidateUnion

#: Fewer label pairs among the candidates than this and the window says too little to fit on.
MIN_POSITIVES = 20
#: Rows the regression sees at most: all positives, then a fixed-seed sample of negatives (re-weighted).
MAX_ROWS = 200_000
L2 = 1.0  # ridge on standardised coefficients (sklearn's C = 1)
#: Rows scored at once (the terms of a chunk are held together: ~30 float64 rows each).
FUSION_CHUNK = 65_536


@dataclass(frozen=True)
class Fusion:
    """``Σ_s weights[s] / (k0 + rank_s) + Σ_s presence[s]·[s proposed it] + Σ_p priors[p]·prior_p(item)``,
    plus 1 for each ``priority`` source that proposed the item (its items come first). A source
    without a weight weighs 1."""

    weights: Mapping[str, float] = field(default_factory=dict)
    presence: Mapping[str, float] = field(default_factory=dict)
    priors: Mapping[str, float] = field(default_factory=dict)
    priority: tuple[str, ...] = ()
    k0: float = 30.0

    @property
    def learned(self) -> bool:
        return bool(self.presence or self.priors)

    def score(self, ranks: np.ndarray, items: np.ndarray, sources: Sequence[str],
              prior_values: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fusion score (float64) of rows given their ranks (sources × rows, ``MISSING_RANK`` where
        a source did not propose the row's item), summed term by term in a fixed order: a row's score
        depends on that row alone, whatever the shard."""
        fused = np.zeros(ranks.shape[1])
        for lo in range(0, ranks.shape[1], FUSION_CHUNK):
            hi = lo + FUSION_CHUNK
            part = fused[lo:hi]
            for term in self._terms(ranks[:, lo:hi], items[lo:hi], sources, prior_values):
                part += term  # one term at a time: numpy's sum may pair them up, by the shard's shape
        return fused

    def _terms(self, ranks: np.ndarray, items: np.ndarray, sources: Sequence[str],
               prior_values: Mapping[str, np.ndarray]) -> np.ndarray:
        """The score's terms (terms × rows) in summation order: each source's weighted reciprocal
        rank, the presence bonuses, the priors, the priority bonuses."""
        weights = np.array([float(self.weights.get(s, 1.0)) for s in sources])
        rows = [weights[:, None] / (self.k0 + ranks.astype(np.float64))]
        proposed = ranks < MISSING_RANK
        bonus = [j for j, s in enumerate(sources) if s in self.presence]
        if bonus:
            values = np.array([float(self.presence[sources[j]]) for j in bonus])
            rows.append(np.where(proposed[bonus], values[:, None], 0.0))
        rows += [(coef * item_values(prior_values[name], items))[None] for name, coef in self.priors.items()
                 if name in prior_values]
        first = [j for j, s in enumerate(sources) if s in self.priority]
        if first:
            rows.append(np.where(proposed[first], 1.0, 0.0))
        return np.concatenate(rows)

    def to_json(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "presence": dict(self.presence), "priors": dict(self.priors),
                "priority": list(self.priority), "k0": self.k0}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Fusion:
        return cls(dict(d.get("weights", {})), dict(d.get("presence", {})), dict(d.get("priors", {})),
                   tuple(d.get("priority", ())), float(d.get("k0", 30.0)))


def item_values(values: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``values[item]`` as float64 (0 for ids outside the array)."""
    items = np.asarray(items, dtype=np.int64)
    inside = (items >= 0) & (items < len(values))
    return np.where(inside, values[np.where(inside, items, 0)], 0.0).astype(np.float64)


def label_mask(u: CandidateUnion, label_users: np.ndarray, label_items: np.ndarray) -> np.ndarray:
    """Whether each union row's (user, item) is among the labels."""
    width = int(max(u.items.max(initial=-1), np.max(label_items, initial=-1))) + 1
    keys = np.unique(np.asarray(label_users, np.int64) * width + np.asarray(label_items, np.int64))
    return np.isin(u.users * width + u.items, keys)


def learn_fusion(u: CandidateUnion, label_users: np.ndarray, label_items: np.ndarray, *,
                 priors: Mapping[str, np.ndarray] | None = None, k0: float = 30.0, max_rows: int = MAX_ROWS,
                 seed: int = 0) -> Fusion | None:
    """The fusion fitted on a window's candidates ``u`` and its labels; ``None`` when the candidates
    hold fewer than :data:`MIN_POSITIVES` labels (or nothing but labels)."""
    labelled_users, per_user = np.unique(np.asarray(label_users, np.int64)[_distinct_pairs(label_users, label_items)],
                                         return_counts=True)
    u = u.take(np.flatnonzero(np.isin(u.users, labelled_users)))  # rows of users with labels only
    y = label_mask(u, label_users, label_items)
    n_pos = int(y.sum())
    if n_pos < MIN_POSITIVES or n_pos == len(y):
        return None
    n_labels = per_user[np.searchsorted(labelled_users, u.users)]
    keep_p = min(1.0, max_rows / max(len(y) - n_pos, 1))
    keep = y | (np.random.default_rng(seed).random(len(y)) < keep_p)
    weight = (1.0 / n_labels.astype(np.float64)) * np.where(y, 1.0, 1.0 / keep_p)
    ranks = u.ranks[:, keep].astype(np.float64)
    prior_names = sorted(priors or {})
    cols = ([1.0 / (k0 + r) for r in ranks] + [(r < MISSING_RANK).astype(np.float64) for r in ranks]
            + [item_values((priors or {})[p], u.items[keep]) for p in prior_names])
    coef = _logistic(np.column_stack(cols), y[keep].astype(np.float64), weight[keep])
    s = len(u.sources)

    def rounded(values: np.ndarray, names: Sequence[str]) -> dict[str, float]:
        return {n: float(f"{c:.6g}") for n, c in zip(names, values, strict=True)}

    return Fusion(rounded(coef[:s], u.sources), rounded(coef[s:2 * s], u.sources),
                  rounded(coef[2 * s:], prior_names), k0=k0)


def recall_fusion(u: CandidateUnion, label_users: np.ndarray, label_items: np.ndarray, *, depth: int = 100) -> Fusion:
    """Plain fusion weights where a window has too few labels to learn from: each source's recall
    within its first ``depth`` entries, scaled to mean 1 (a floor keeps every source in play)."""
    y = label_mask(u, label_users, label_items)
    total = max(int(_distinct_pairs(label_users, label_items).sum()), 1)
    raw = {s: max(int((y & (u.ranks[j] <= depth)).sum()) / total, 1e-3) for j, s in enumerate(u.sources)}
    mean = sum(raw.values()) / max(len(raw), 1)
    return Fusion({s: round(v / mean, 4) for s, v in raw.items()})


def _distinct_pairs(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence of each (user, item) pair."""
    keys = np.asarray(users, np.int64) * (int(np.max(items, initial=0)) + 1) + np.asarray(items, np.int64)
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    return first


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted L2 logistic regression on standardised columns; coefficients on the raw columns
    (the intercept is dropped: it orders nothing)."""
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mu) / sd
    w = w * (len(w) / w.sum())

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = z @ theta[:-1] + theta[-1]
        nll = float(np.sum(w * (np.logaddexp(0.0, t) - y * t))) + 0.5 * L2 * float(theta[:-1] @ theta[:-1])
        g = w * (1.0 / (1.0 + np.exp(-t)) - y)
        return nll, np.concatenate([z.T @ g + L2 * theta[:-1], [g.sum()]])

    res = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(res.x[:-1] / sd)
