"""Learned fusion: how the union orders its candidates, fitted on a label window.

Plain reciprocal-rank fusion scores ``Σ_s w_s / (k0 + rank_s)``. The learned fusion adds, per source,
a bonus for proposing the item at all, and a per-item prior (log popularity from the generator's
popularity sources), all fitted by one weighted logistic regression on the label window's candidates:
is this (user, item) a label? Each row weighs ``1 / labels of its user``, so the fit optimises the
per-user recall the union is judged by. The result is a flat ``{key: coefficient}`` mapping — the
same JSON-able "fusion weights" a model saves — with keys

- ``<source>``: the coefficient on ``1 / (k0 + rank)`` (what plain RRF weights);
- ``<source>@present``: the bonus for being proposed by that source;
- ``@prior:<name>``: the coefficient on the item prior ``<name>``.

Why: sources overlap (item-kNN and co-visitation mostly re-propose what transition and EASE find),
so equal or recall-proportional RRF weights count the same evidence several times and crowd out
complementary sources; the presence bonuses learn how much each source adds beyond the others, and
the popularity prior separates the long tail of single-source proposals. Measured by
``benchmarks/bench_sources.py`` (fusion learned on the most recent training window, applied to the
test period; union ≤ 300): Online Retail (days:14, repeats) recall@300 0.686 with equal RRF
-> 0.701; MovieLens 100K (leave-last-out) 0.846 -> 0.857, with recall@50 0.423 -> 0.509. (The full
evaluation reported 0.689 / 0.858 with the previous recall-proportional weights.) Replayed one
window earlier (learned on the window before, scored on the most recent one), recall-proportional
weights -> learned: Online Retail 0.681 -> 0.712, MovieLens 100K 0.879 -> 0.889.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from scipy.optimize import minimize

from shortlist.schema import ITEM, MISSING_RANK, USER

PRESENT = "@present"
PRIOR = "@prior:"
#: Fewer label pairs among the candidates than this and the window says too little to fit on.
MIN_POSITIVES = 20
#: Rows the regression sees at most: all positives, then a fixed-seed sample of negatives (re-weighted).
MAX_ROWS = 200_000
L2 = 1.0  # ridge on standardised coefficients (sklearn's C = 1)


def is_learned(weights: Mapping[str, float] | None) -> bool:
    """Whether ``weights`` is a learned fusion (presence bonuses / priors), not plain RRF weights."""
    return bool(weights) and any(k.endswith(PRESENT) or k.startswith(PRIOR) for k in weights or {})


def presence_bonus(weights: Mapping[str, float] | None, sources: Sequence[str]) -> list[tuple[int, float]]:
    """(source position, bonus) for every source with a learned presence bonus."""
    w = weights or {}
    return [(j, float(w[s + PRESENT])) for j, s in enumerate(sources) if s + PRESENT in w]


def prior_terms(weights: Mapping[str, float] | None,
                priors: Mapping[str, np.ndarray] | None) -> list[tuple[str, float]]:
    """(prior name, coefficient) for every learned prior the generator can supply."""
    w, p = weights or {}, priors or {}
    return [(k[len(PRIOR):], float(v)) for k, v in w.items() if k.startswith(PRIOR) and k[len(PRIOR):] in p]


def prior_values(prior: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``prior[item]`` as float64 (0 for ids outside the array)."""
    items = np.asarray(items, dtype=np.int64)
    inside = (items >= 0) & (items < len(prior))
    return np.where(inside, prior[np.where(inside, items, 0)], 0.0).astype(np.float64)


def learn_fusion(
    frame: pl.DataFrame,
    sources: Sequence[str],
    labels: pl.DataFrame,
    *,
    priors: Mapping[str, np.ndarray] | None = None,
    k0: float = 30.0,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> dict[str, float] | None:
    """Fusion coefficients from a union ``frame`` (``<source>_rank`` columns) and its window's
    ``labels`` (user, item); ``None`` when the candidates hold fewer than :data:`MIN_POSITIVES` labels
    (or nothing but labels)."""
    from shortlist.retrieval.union import rank_col

    pairs = labels.select(pl.col(USER).cast(pl.Int32), pl.col(ITEM).cast(pl.Int32)).unique()
    per_user = pairs.group_by(USER).len("_n")
    f = (frame.select(USER, ITEM, *[rank_col(s) for s in sources])
         .join(per_user, on=USER, how="inner")
         .join(pairs.with_columns(pl.lit(True).alias("_y")), on=[USER, ITEM], how="left"))
    y = f.get_column("_y").fill_null(False).to_numpy()
    n_pos = int(y.sum())
    if n_pos < MIN_POSITIVES or n_pos == len(y):
        return None
    keep_p = min(1.0, max_rows / max(len(y) - n_pos, 1))
    keep = y | (np.random.default_rng(seed).random(len(y)) < keep_p)
    weight = (1.0 / f.get_column("_n").to_numpy().astype(np.float64)) * np.where(y, 1.0, 1.0 / keep_p)
    ranks = [f.get_column(rank_col(s)).to_numpy()[keep].astype(np.float64) for s in sources]
    prior_names = sorted(priors or {})
    items = f.get_column(ITEM).to_numpy()[keep]
    cols = ([1.0 / (k0 + r) for r in ranks] + [(r < MISSING_RANK).astype(np.float64) for r in ranks]
            + [prior_values((priors or {})[p], items) for p in prior_names])
    coef = _logistic(np.column_stack(cols), y[keep].astype(np.float64), weight[keep])
    keys = list(sources) + [s + PRESENT for s in sources] + [PRIOR + p for p in prior_names]
    return {k: float(f"{c:.6g}") for k, c in zip(keys, coef, strict=True)}


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
