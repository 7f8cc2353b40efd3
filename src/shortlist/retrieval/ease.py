"""EASE (Steck 2019): a closed-form item-item linear model, ``B = -P / diag(P)`` with ``P = (XᵀX + λI)⁻¹``.

Memory: fitting holds one dense ``n_items²`` Gram matrix (float64 up to 20,000 items, float32
above) and the saved model is the dense ``n_items²`` float32 ``B`` (1.6 GB at 20,000 items), so
catalogues beyond ``max_items`` are refused; use ALS or the two-tower source for those.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.linalg
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.retrieval.base import State, check_k, csr_from_arrays, csr_to_arrays, require_fitted
from shortlist.retrieval.topk import rows_of, topk_dense
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, WEIGHT

logger = logging.getLogger(__name__)

#: λ for binary data: its optimum does not grow with the data size (see benchmarks/RESULTS.md; Steck
#: reports 200-1000 on ML-20M, Netflix, MSD), so the default is a constant, not a multiple of the Gram.
DEFAULT_L2 = 400.0
FLOAT64_MAX_ITEMS = 1_000  # above this the Gram is inverted in float32: faster, the same top lists
_CHUNK_CELLS = 1 << 24  # scores per retrieval chunk (64 MB of float32)


def profile_matrix(
    frame: pl.DataFrame,
    shape: tuple[int, int],
    *,
    binary: bool,
    half_life_days: float | None,
    now: int | None,
) -> sp.csr_matrix:
    """User×item profile values: the strongest row's weight (``binary``: 1 in an unweighted log) or
    ``log1p`` of the summed weight, times recency decay; pairs of weight 0 are left out.

    Decay is ``exp(-ln2 · age / half_life)`` with age from the pair's latest interaction to ``now``.
    """
    value = pl.col(WEIGHT).max() if binary else pl.col(WEIGHT).sum().log1p()
    pairs = frame.group_by(USER, ITEM).agg(value.cast(pl.Float64).alias("v"), pl.col(TIMESTAMP).max())
    pairs = pairs.filter(pl.col("v") > 0)
    v = pairs.get_column("v").to_numpy().copy()
    if half_life_days is not None and now is not None:
        age = np.maximum(now - pairs.get_column(TIMESTAMP).to_numpy(), 0) / SECONDS_PER_DAY
        v *= np.exp(-math.log(2.0) / half_life_days * age)
    m = sp.csr_matrix(
        (v.astype(np.float32), (pairs.get_column(USER).to_numpy(), pairs.get_column(ITEM).to_numpy())),
        shape=shape,
    )
    m.sort_indices()
    return m


def ease_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """The EASE item-item matrix (zero diagonal, float32) for a user×item matrix ``x``."""
    p = _inverse(x, l2)
    # P is symmetric, so its transpose is P too: read the Fortran-ordered result as the C-ordered
    # array retrieval wants (a sparse row times B), instead of copying 4 n² bytes into C order
    # (~0.25 s at 3,659 items). The inverse leaves P_ij and P_ji a rounding apart at most.
    p = p.T
    p /= -np.diag(p)  # B_ij = -P_ij / P_jj, in place
    np.fill_diagonal(p, 0.0)
    return p.astype(np.float32, copy=False)


#: SciPy 1.17 and later take the matrix's structure (``assume_a``); older ones invert by LU.
_INV_TAKES_STRUCTURE = "assume_a" in inspect.signature(scipy.linalg.inv).parameters


def _inverse(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """``(XᵀX + λI)⁻¹`` in place of the Gram (one n² buffer, Fortran-ordered). The Gram plus λI is
    symmetric positive definite: SciPy ≥ 1.17 told so inverts by Cholesky without its structure
    check (~0.07 s of ~0.55 at 3,659 items; the same result as its own detection). Should float32
    rounding break definiteness, the general inverse of a fresh Gram."""
    if not _INV_TAKES_STRUCTURE:
        return scipy.linalg.inv(_regularised_gram(x, l2), overwrite_a=True, check_finite=False)
    try:
        return scipy.linalg.inv(_regularised_gram(x, l2), overwrite_a=True, check_finite=False, assume_a="pos")
    except np.linalg.LinAlgError:
        return scipy.linalg.inv(_regularised_gram(x, l2), overwrite_a=True, check_finite=False, assume_a="general")


def _regularised_gram(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """``XᵀX + λI`` dense, Fortran-ordered (LAPACK's layout), float64 up to
    :data:`FLOAT64_MAX_ITEMS` items and float32 above."""
    n = x.shape[1]
    dtype = np.float64 if n <= FLOAT64_MAX_ITEMS else np.float32
    # The Gram is symmetric, so its transpose is a free Fortran-ordered view.
    gram: np.ndarray = np.asarray((x.T @ x).astype(dtype).toarray().T, order="F")
    gram.flat[:: n + 1] += l2
    return gram


class EASE:
    """Embarrassingly Shallow Autoencoder: ``scores = x_u · B`` with a learned item-item ``B``.

    ``l2="auto"`` uses λ = 400 × the mean squared profile value (exactly 400 for binary data, and
    scaled down with the values when ``half_life_days`` or ``binary=False`` shrink them).
    ``half_life_days`` decays old user-item pairs in both the Gram and the query; it helps where
    tastes drift. Off by default; the two-stage model turns it on where items come in baskets
    (``shortlist.config.data_source_params``).
    Users without history (or unknown at fit time) get no candidates.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("profiles_",)

    def __init__(
        self,
        *,
        l2: float | Literal["auto"] = "auto",
        max_items: int = 50_000,
        binary: bool = True,
        half_life_days: float | None = None,
        name: str = "ease",
    ) -> None:
        if l2 != "auto" and (isinstance(l2, bool) or not isinstance(l2, int | float) or l2 <= 0):
            raise ConfigError(f"l2 must be a positive number or 'auto', got {l2!r}")
        if max_items < 1:
            raise ConfigError(f"max_items must be positive, got {max_items}")
        if half_life_days is not None and half_life_days <= 0:
            raise ConfigError(f"half_life_days must be positive, got {half_life_days}")
        self.l2 = l2
        self.max_items = max_items
        self.binary = binary
        self.half_life_days = half_life_days
        self.name = name
        self.weights_: np.ndarray | None = None
        self.profiles_: sp.csr_matrix | None = None
        self.active_: np.ndarray | None = None
        self.l2_: float | None = None

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        if history.n_items > self.max_items:
            raise ConfigError(
                f"EASE needs a dense {history.n_items:,}² item-item matrix; the catalogue exceeds "
                f"max_items={self.max_items:,}. Fix: use the ALS or two-tower source for large "
                f"catalogues, filter rare items, or raise max_items if you have the memory."
            )
        x = profile_matrix(history.frame, (history.n_users, history.n_items), binary=self.binary,
                           half_life_days=self.half_life_days, now=history.time_span()[1])
        if self.l2 != "auto":
            l2 = float(self.l2)
        else:
            l2 = DEFAULT_L2 * float(np.mean(np.square(x.data, dtype=np.float64))) if x.nnz else DEFAULT_L2
        logger.info("EASE: %d items, %d pairs, l2=%.4g", x.shape[1], x.nnz, l2)
        self._set(ease_weights(x, l2), x, l2)
        return self

    def _set(self, weights: np.ndarray, profiles: sp.csr_matrix, l2: float) -> None:
        # C order: a sparse row times a Fortran-ordered B would copy all of B on every call.
        self.weights_, self.profiles_, self.l2_ = np.ascontiguousarray(weights), profiles, l2
        self.active_ = np.diff(profiles.tocsc().indptr) > 0  # items never seen are never proposed

    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "weights_")
        assert self.profiles_ is not None
        users = np.asarray(users, dtype=np.int64)
        return self._score_rows(rows_of(self.profiles_, users), k, exclude_seen)

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for an ad-hoc history (user id -1); decay is relative to its latest timestamp.
        ``weights``: each event's strength (default 1), read as :func:`profile_matrix` reads the log's."""
        check_k(k)
        require_fitted(self, "weights_")
        assert self.weights_ is not None
        n_items = self.weights_.shape[0]
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        known = (items >= 0) & (items < n_items)
        uniq, inv = np.unique(items[known], return_inverse=True)
        w = np.ones(len(items)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        if self.binary:  # the strongest event of each item, as in profile_matrix
            v = np.zeros(len(uniq), np.float64)
            np.maximum.at(v, inv, w[known])
        else:
            v = np.log1p(np.bincount(inv, weights=w[known], minlength=len(uniq)))
        if self.half_life_days is not None and timestamps is not None and len(uniq):
            ts = np.asarray(timestamps, np.int64).reshape(-1)[known]
            last = np.full(len(uniq), np.iinfo(np.int64).min, np.int64)
            np.maximum.at(last, inv, ts)
            age = np.maximum(int(ts.max()) - last, 0) / SECONDS_PER_DAY
            v *= np.exp(-math.log(2.0) / self.half_life_days * age)
        x = sp.csr_matrix((v.astype(np.float32), uniq, np.array([0, len(uniq)])), shape=(1, n_items))
        x.eliminate_zeros()
        return self._score_rows(x, k, exclude_seen)

    def _score_rows(self, x: sp.csr_matrix, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of ``x @ B`` in row chunks (bounded memory); empty rows yield no candidates."""
        assert self.weights_ is not None and self.active_ is not None
        n_items = self.weights_.shape[0]
        chunk = max(1, _CHUNK_CELLS // max(n_items, 1))
        out_items = np.full((x.shape[0], k), -1, np.int64)
        out_scores = np.full((x.shape[0], k), -np.inf, np.float32)
        for start in range(0, x.shape[0], chunk):
            xc = x if x.shape[0] <= chunk else x[start:start + chunk]
            scores = np.asarray(xc @ self.weights_, dtype=np.float32)
            scores[:, ~self.active_] = -np.inf
            scores[np.diff(xc.indptr) == 0] = -np.inf
            stop = start + xc.shape[0]
            out_items[start:stop], out_scores[start:stop] = topk_dense(scores, k, exclude=xc if exclude_seen else None)
        return out_items, out_scores

    def get_state(self) -> State:
        require_fitted(self, "weights_")
        assert self.weights_ is not None and self.profiles_ is not None
        params: dict[str, Any] = {
            "l2": self.l2, "max_items": self.max_items, "binary": self.binary,
            "half_life_days": self.half_life_days, "name": self.name, "l2_": self.l2_,
        }
        return params, {"weights": self.weights_, **csr_to_arrays("profiles", self.profiles_)}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        obj = cls(l2=params["l2"], max_items=params["max_items"], binary=params["binary"],
                  half_life_days=params["half_life_days"], name=params["name"])
        obj._set(np.asarray(arrays["weights"], dtype=np.float32), csr_from_arrays("profiles", arrays),
                 float(params["l2_"]))
        return obj
