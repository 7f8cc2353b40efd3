"""ALS's least-squares solves: the exact fold-in of confidence rows into user factors, and
``implicit``'s alternating sweeps (from random factors, or warm from given ones).

Kept apart from :mod:`shortlist.retrieval.als` (the candidate source: confidence, retrieval,
persistence) so each stays small; the source calls these and nothing else does.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

_FOLD_CELLS = 1 << 24  # (rows × factors²) floats per fold-in chunk


def fold_in(conf: sp.csr_matrix, item_factors: np.ndarray, regularization: float, *,
            gram: np.ndarray | None = None) -> np.ndarray:
    """Exact user factors for confidence rows: ``(YᵀY + Yᵀ(C−I)Y + λI)⁻¹ YᵀC·1`` (batched solves).

    ``gram``: ``YᵀY + λI`` (float64) when the caller has it; computing it costs most of a single fold-in.
    """
    y = item_factors.astype(np.float64, copy=False)
    d = y.shape[1]
    base = y.T @ y + regularization * np.eye(d) if gram is None else gram
    if conf.shape[0] == 1:  # one history (serving): two small products instead of per-item outer products
        cols, c1 = conf.indices, conf.data.astype(np.float64)
        yc = y[cols]
        a1 = base + (yc.T * (c1 - 1.0)) @ yc
        return np.linalg.solve(a1, yc.T @ c1)[None].astype(np.float32)
    out = np.zeros((conf.shape[0], d), dtype=np.float32)
    chunk = max(1, _FOLD_CELLS // (d * d * 8))
    for start in range(0, conf.shape[0], chunk):
        c = conf[start:start + chunk]
        cols = np.unique(c.indices)
        sub = c[:, cols]
        # Σ_i (c_ui − 1) y_i y_iᵀ for all rows at once: a sparse (rows × items) times (items × d²).
        outer = np.einsum("if,ig->ifg", y[cols], y[cols]).reshape(len(cols), d * d)
        extra = sp.csr_matrix((sub.data - 1.0, sub.indices, sub.indptr), shape=sub.shape) @ outer
        a = base[None] + extra.reshape(-1, d, d)
        rhs = sub @ y[cols]
        out[start:start + c.shape[0]] = np.linalg.solve(a, rhs[..., None])[..., 0]
    return out


def train_als(conf: sp.csr_matrix, *, factors: int, regularization: float, iterations: int, seed: int,
           num_threads: int, use_gpu: bool | None, init: tuple[np.ndarray, np.ndarray] | None = None,
           ) -> tuple[np.ndarray, np.ndarray]:
    """``implicit`` ALS on a confidence matrix, from ``init`` factors (exact CPU solves) if given; numpy out."""
    import implicit.gpu

    gpu = implicit.gpu.HAS_CUDA if use_gpu is None else use_gpu
    # implicit parallelises over users itself; a threaded BLAS underneath only oversubscribes.
    with threadpool_limits(limits=1, user_api="blas"):
        if gpu:
            from implicit.gpu.als import AlternatingLeastSquares as GpuALS

            model: Any = GpuALS(factors=factors, regularization=regularization, alpha=1.0,
                                iterations=iterations, random_state=seed)
        else:
            from implicit.cpu.als import AlternatingLeastSquares as CpuALS

            model = CpuALS(factors=factors, regularization=regularization, alpha=1.0, iterations=iterations,
                           num_threads=num_threads, random_state=seed, use_cg=init is None)
        if init is not None:
            wrap = implicit.gpu.Matrix if gpu else np.ascontiguousarray
            model.user_factors, model.item_factors = (wrap(np.asarray(a, dtype=np.float32)) for a in init)
        model.fit(conf, show_progress=False)
        if gpu:
            model = model.to_cpu()
    logger.info("ALS: %d users x %d items, %d factors, gpu=%s", *conf.shape, factors, gpu)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)
