"""Embedding similarity of a candidate item to the user's history (two-tower, content, ALS, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import polars as pl

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.stats import HistoryStats, recent_items
from shortlist.schema import ITEM, USER

SIMILARITY_FEATURES: dict[str, str] = {
    "sim_mean": "cosine of the item to the recency-weighted mean vector of the user's last 50 items",
    "sim_last1": "cosine of the item to the user's last item",
    "sim_max10": "highest cosine of the item to any of the user's last 10 items",
}


def _normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norms, 1e-12)).astype(np.float32)


class SimilarityFeatures:
    """``<name>_sim_mean``, ``<name>_sim_last1``, ``<name>_sim_max10`` for each item-vector table.

    Vectors are compared by cosine whatever metric trained them: the features measure closeness to
    the history, and the source's own score column already carries its trained similarity.
    """

    def __init__(self, *, embeddings: Mapping[str, np.ndarray], history_len: int = 50, decay: float = 0.9) -> None:
        self.embeddings = {k: _normalise(np.asarray(v, dtype=np.float32)) for k, v in embeddings.items()}
        self.history_len, self.decay = history_len, decay
        self.names = [f"{k}_{f}" for k in self.embeddings for f in SIMILARITY_FEATURES]
        self.recent_: np.ndarray | None = None
        self.user_mean_: dict[str, np.ndarray] | None = None

    def fit(self, history: Interactions, *, items: Items | None = None) -> Self:
        return self.fit_stats(HistoryStats.build(history, items), history, items=items)

    def fit_stats(self, stats: HistoryStats, history: Interactions, *, items: Items | None = None) -> Self:
        recent = recent_items(stats, self.history_len)
        w = (self.decay ** np.arange(self.history_len, dtype=np.float32))[None, :] * (recent >= 0)
        self.user_mean_ = {}
        for name, v in self.embeddings.items():
            safe = np.where(recent >= 0, recent, 0)
            mean = np.einsum("uj,ujd->ud", w, v[safe]) if len(v) else np.zeros((stats.n_users, 0), np.float32)
            self.user_mean_[name] = _normalise(mean)
        self.recent_ = recent[:, :10]
        return self

    def transform(self, candidates: pl.DataFrame) -> pl.DataFrame:
        if self.recent_ is None or self.user_mean_ is None:
            raise NotFittedError("SimilarityFeatures")
        u = candidates.get_column(USER).to_numpy().astype(np.int64)
        i = candidates.get_column(ITEM).to_numpy().astype(np.int64)
        n_users = self.recent_.shape[0]
        out: dict[str, np.ndarray] = {}
        for name, v in self.embeddings.items():
            ok = (u >= 0) & (u < n_users) & (i >= 0) & (i < len(v))
            us, is_ = np.where(ok, u, 0), np.where(ok, i, 0)
            iv = v[is_]
            out[f"{name}_sim_mean"] = np.where(ok, np.einsum("rd,rd->r", self.user_mean_[name][us], iv), np.nan)
            rec = self.recent_[us]
            best = np.full(len(u), -np.inf, np.float32)
            first = np.full(len(u), np.nan, np.float32)
            for j in range(rec.shape[1]):  # ten positions, each vectorised over all rows
                h = rec[:, j]
                s = np.einsum("rd,rd->r", v[np.maximum(h, 0)], iv)
                s = np.where(h >= 0, s, -np.inf)
                best = np.maximum(best, s)
                if j == 0:
                    first = np.where(h >= 0, s, np.nan)
            out[f"{name}_sim_last1"] = np.where(ok, first, np.nan)
            out[f"{name}_sim_max10"] = np.where(ok & np.isfinite(best), best, np.nan)
        return pl.DataFrame({k: v.astype(np.float32) for k, v in out.items()})
