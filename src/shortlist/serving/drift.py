"""Training/serving skew: each feature's distribution at serving time against a reference.

The reference is the feature matrix of a sample of training users' candidates, built offline by
the same pipeline when the model loads. Each feature is cut into quantile bins of the reference
(plus one bin for missing values); serving rows are counted into the same bins, and the
population stability index ``PSI = Σ (p - q) ln(p / q)`` compares the two. PSI above the
threshold (0.2 by the usual rule of thumb) flags the feature as drifted.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

EPS = 1e-4


class DriftMonitor:
    """Vectorised bin counting for every feature at once; :meth:`observe` is cheap per request."""

    def __init__(self, names: list[str], reference: np.ndarray, *, n_bins: int = 10, threshold: float = 0.2,
                 min_rows: int = 5_000) -> None:
        self.names, self.threshold, self.n_bins, self.min_rows = list(names), threshold, n_bins, min_rows
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[1] != len(self.names):
            raise ValueError(f"reference must be (rows × {len(self.names)}), got {ref.shape}")
        qs = np.linspace(0, 1, n_bins + 1)[1:-1]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing features: no edges
            edges = np.nanquantile(np.where(np.isfinite(ref), ref, np.nan), qs, axis=0).T if len(ref) else \
                np.full((len(self.names), len(qs)), np.nan)
        # Repeated edges (a feature with few distinct values) collapse: pad them with +inf.
        edges = np.where(np.isnan(edges), np.inf, edges)
        dup = np.zeros_like(edges, dtype=bool)
        dup[:, 1:] = edges[:, 1:] == edges[:, :-1]
        self.edges = np.where(dup, np.inf, edges)
        self.reference_rows = len(ref)
        self.ref_counts = self._count(ref)
        self.counts = np.zeros_like(self.ref_counts)
        self.rows = 0
        self._lock = threading.Lock()

    def _count(self, X: np.ndarray) -> np.ndarray:
        n_f, width = len(self.names), self.n_bins + 1
        if not len(X):
            return np.zeros((n_f, width), dtype=np.int64)
        bins = (X[:, :, None] > self.edges[None, :, :]).sum(axis=2)
        bins[~np.isfinite(X)] = self.n_bins  # missing values get their own bin
        flat = bins + np.arange(n_f)[None, :] * width
        return np.bincount(flat.ravel(), minlength=n_f * width).reshape(n_f, width)

    def observe(self, X: np.ndarray) -> None:
        counts = self._count(np.asarray(X, dtype=np.float64))
        with self._lock:
            self.counts += counts
            self.rows += len(X)

    def psi(self) -> np.ndarray:
        """PSI per feature (0 while nothing has been observed)."""
        with self._lock:
            counts, rows = self.counts.copy(), self.rows
        if rows == 0 or self.reference_rows == 0:
            return np.zeros(len(self.names))
        p = np.maximum(self.ref_counts / self.ref_counts.sum(axis=1, keepdims=True), EPS)
        q = np.maximum(counts / counts.sum(axis=1, keepdims=True), EPS)
        return ((q - p) * np.log(q / p)).sum(axis=1)

    def drifted(self, psi: np.ndarray) -> np.ndarray:
        """Features over the threshold, once ``min_rows`` serving rows make the estimate worth trusting
        (a handful of requests from one user always looks "drifted")."""
        return (psi > self.threshold) & (self.rows >= self.min_rows)

    def report(self, top: int = 10) -> dict[str, object]:
        psi = self.psi()
        order = np.argsort(-psi)
        flags = self.drifted(psi)
        drifted = [self.names[j] for j in order if flags[j]]
        return {
            "method": "PSI over reference quantile bins (+ a missing-value bin)",
            "threshold": self.threshold, "reference_rows": self.reference_rows, "serving_rows": self.rows,
            "min_serving_rows": self.min_rows, "enough_data": self.rows >= self.min_rows,
            "drifted": drifted, "top": {self.names[j]: round(float(psi[j]), 4) for j in order[:top]},
        }
