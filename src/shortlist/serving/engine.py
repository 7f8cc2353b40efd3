"""``Engine``: one loaded two-stage model turned into per-request answers.

Everything model-specific the service needs lives here (id maps, titles, the candidate sources,
the feature pipeline and the ranker), so a model reload swaps one object. Candidates and features
come from the same code as offline (`CandidateGenerator.topk_all` / `fuse_tops`,
`TwoStageRecommender.features_for`, the ranker); a source that raises is skipped and named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shortlist.errors import ConfigError, ModelLoadError
from shortlist.features.profile import UserHistory
from shortlist.pipeline.artifacts import read_manifest, sha256_file
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.retrieval.union import FUSED, rank_col, score_col
from shortlist.schema import CATEGORY, ITEM, TITLE, USER
from shortlist.serving.drift import DriftMonitor

logger = logging.getLogger(__name__)
FALLBACK = "fallback_popular"


@dataclass
class Ranked:
    """A request's answer in internal ids, before it becomes JSON."""

    items: np.ndarray
    scores: np.ndarray  # NaN: filled from the popularity fallback, never scored by the ranker
    sources: list[dict[str, float]]
    n_candidates: int
    fallback: str | None = None
    failed_sources: list[str] = field(default_factory=list)
    contributions: list[list[tuple[str, float]]] | None = None
    features: np.ndarray | None = None  # the candidates' feature matrix (for drift accounting)
    stages: dict[str, float] = field(default_factory=dict)


class Engine:
    """Per-request recommendation logic over one loaded :class:`TwoStageRecommender`."""

    def __init__(self, model: TwoStageRecommender, *, directory: Path, manifest: dict[str, Any]) -> None:
        if model.generator_ is None or model.features_ is None or model.history_ is None or model.fallback_ is None:
            raise ModelLoadError(f"{directory}: the model is not fitted")
        self.model, self.directory, self.manifest = model, directory, manifest
        self.version = sha256_file(directory / "manifest.json")[:12]
        self.gen, self.feats, self.ranker = model.generator_, model.features_, model.ranker_
        hist = model.history_
        self.users, self.items = hist.users, hist.items
        self.n_items = hist.n_items
        self.exclude_seen = not model.allow_repeats
        self.end_ts = int(hist.time_span()[1])
        self.user_lengths = np.bincount(hist.frame.get_column(USER).to_numpy(), minlength=hist.n_users)
        self.item_counts = np.bincount(hist.frame.get_column(ITEM).to_numpy(), minlength=self.n_items)
        self.item_ext = np.array(self.items.ids.to_list(), dtype=object)  # external ids by index, no polars per request
        self.titles = _catalogue_column(model, TITLE, self.n_items)
        self.categories = _catalogue_column(model, CATEGORY, self.n_items)
        fb = model.fallback_
        assert fb.ranking_ is not None and fb.scores_ is not None
        self.popular = fb.ranking_.astype(np.int64)
        self.feature_names = list(self.feats.names)
        self.drift: DriftMonitor | None = None
        self.gen.warm()  # per-request indexes some sources build once (user-kNN's neighbour graph)
        if isinstance(self.ranker, LGBMRanker):  # machine-code trees with the `fast` extra (LightGBM without)
            self.ranker.compile()

    @classmethod
    def load(cls, directory: Path, *, drift_users: int = 300, drift_threshold: float = 0.2, seed: int = 0,
             max_candidates: int | None = None) -> Engine:
        """Load and verify (checksums, a smoke request) a model directory; build the drift reference
        from ``drift_users`` sampled training users' candidate features. ``max_candidates``: rank at
        most this many candidates a request (default: the model's own)."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest.get("kind") != "two_stage":
            raise ModelLoadError(f"{directory}: `shortlist serve` needs a two-stage model (kind "
                                 f"{manifest.get('kind')!r}); fit one with the default config")
        engine = cls(TwoStageRecommender.load(directory), directory=directory, manifest=manifest)
        if max_candidates is not None:
            if max_candidates < 1:
                raise ConfigError(f"max_candidates must be >= 1, got {max_candidates}")
            engine.gen.max_candidates = max_candidates
        if engine.users.ids.len():
            engine.recommend_user(0, 5)  # fails here, before the swap, if the model cannot serve
            engine.drift = engine._drift_reference(drift_users, drift_threshold, seed)
        return engine

    def _drift_reference(self, n_users: int, threshold: float, seed: int) -> DriftMonitor | None:
        if self.ranker is None:
            return None
        rng = np.random.default_rng(seed)
        n = self.users.ids.len()
        users = np.sort(rng.choice(n, size=min(n_users, n), replace=False)).astype(np.int64)
        X = self.model.features_for(self.gen.generate(users, exclude_seen=self.exclude_seen))
        return DriftMonitor(self.feature_names, X, threshold=threshold)

    # --- descriptions ----------------------------------------------------------------------------
    def item_info(self, item: int) -> dict[str, Any]:
        """The catalogue row of an item (external id, text attributes, price) and its popularity."""
        row: dict[str, Any] = {"item_id": self.items.external([item]).item()}
        if self.model.items_ is not None:
            f = self.model.items_.frame.filter(pl.col(ITEM) == item).drop(ITEM)
            if f.height:
                row.update({k: v for k, v in f.row(0, named=True).items() if v is not None})
        fb = self.model.fallback_
        assert fb is not None and fb.scores_ is not None
        row["popularity"] = float(fb.scores_[item])
        at = np.flatnonzero(self.popular == item)
        row["popularity_rank"] = int(at[0]) + 1 if len(at) else None
        row["interactions"] = int(self.item_counts[item])
        return row

    def index_stats(self) -> dict[str, Any]:
        """Users and items in the model, and what each source holds (its class and learned arrays)."""
        out: dict[str, Any] = {"n_users": int(self.users.ids.len()), "n_items": int(self.n_items),
                               "n_interactions": int(self.item_counts.sum()), "sources": {}}
        for name, src in self.gen.sources_.items():
            info: dict[str, Any] = {"class": type(src).__name__}
            index = getattr(src, "index_", None)
            if index is not None:
                info["vector_index"] = {"backend": index.backend_, "n_items": index.n_items, "dim": index.dim,
                                        "metric": index.metric}
            sim = getattr(src, "sim_", None)
            if sim is not None:
                info["similarity_nnz"] = int(sim.nnz)
            out["sources"][name] = info
        return out

    def top_features(self, n: int) -> list[dict[str, Any]]:
        imp = self.model.importance()
        if not imp.height:
            return []
        return imp.sort("gain", descending=True).head(n).to_dicts()

    # --- lookups ---------------------------------------------------------------------------------
    def user_index(self, user_id: str) -> int | None:
        return self.users.get(user_id)

    def item_index(self, item_id: str) -> int | None:
        return self.items.get(item_id)

    def item_indices(self, item_ids: list[str]) -> np.ndarray:
        idx = [self.items.get(i) for i in item_ids]
        return np.array([i for i in idx if i is not None], dtype=np.int64)

    def category_mask(self, categories: list[str]) -> np.ndarray:
        if self.categories is None:
            raise LookupError("categories")
        return np.isin(self.categories, np.array(categories, dtype=object))

    # --- recommendation --------------------------------------------------------------------------
    def recommend_user(self, user: int, k: int, *, allowed: np.ndarray | None = None, explain: bool = False,
                       history: UserHistory | None = None) -> Ranked:
        """A known user's top-``k``. ``allowed``: boolean item mask; ``history``: the user's history as
        the feature store holds it (``None``: the model's own copy)."""
        t0 = time.perf_counter()
        users = np.array([user], dtype=np.int64)
        failed: list[str] = []
        cands = self.gen.fuse_tops_columns(users, self.gen.topk_all(users, exclude_seen=self.exclude_seen,
                                                                     failed=failed))
        return self._finish(cands, failed, history, k, allowed, explain, t0,
                            seen=lambda: self.model.user_history(user).items)

    def recommend_history(self, history: UserHistory, k: int, *, user: int | None = None,
                          allowed: np.ndarray | None = None, explain: bool = False) -> Ranked:
        """Top-``k`` for an explicit history (a user's history plus online events, or a session):
        candidates from each source's fold-in path, user and pair features from the history."""
        t0 = time.perf_counter()
        items, ts = history.items.astype(np.int64), history.timestamps.astype(np.int64)
        failed: list[str] = []
        tops = self.gen.topk_for_history(items, timestamps=ts, exclude_seen=self.exclude_seen, failed=failed)
        uid = self.users.ids.len() if user is None else user
        return self._finish(self.gen.fuse_tops_columns(np.array([uid]), tops), failed, history, k, allowed, explain,
                            t0, seen=lambda: items)

    def user_history(self, user: int | None) -> UserHistory:
        """A user's fitted history (prices and baskets included); empty for an unknown user."""
        if user is None:
            return UserHistory(np.zeros(0, np.int64), np.zeros(0, np.int64))
        return self.model.user_history(user)

    def similar(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items most like ``item``: the stage-1 union for a one-item history, in fusion order."""
        one = np.array([item], dtype=np.int64)
        ts = np.array([self.end_ts], dtype=np.int64)
        tops = self.gen.topk_for_history(one, timestamps=ts, exclude_seen=True, k=k + 1, failed=[],
                                         skip=("popular", "popular_recent", "repurchase"))
        cands = self.gen.fuse_tops(np.array([-1]), tops)
        cands = cands.filter(pl.col(ITEM) != item).head(k)
        return cands.get_column(ITEM).to_numpy().astype(np.int64), cands.get_column(FUSED).to_numpy()

    def popular_fill(self, k: int, *, exclude: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        """Most popular items not in ``exclude`` (and within ``allowed``), at most ``k``."""
        mask = np.ones(self.n_items, dtype=bool)
        mask[exclude[(exclude >= 0) & (exclude < self.n_items)]] = False
        if allowed is not None:
            mask &= allowed
        order = self.popular[mask[self.popular]]
        return order[:k]

    def fallback_sources(self, items: np.ndarray) -> list[dict[str, float]]:
        """The popularity fallback's score for items it filled in (never scored by the ranker)."""
        fb = self.model.fallback_
        assert fb is not None and fb.scores_ is not None
        return [{FALLBACK: float(fb.scores_[i])} for i in items]

    # --- internals -------------------------------------------------------------------------------
    def _finish(self, cands: dict[str, np.ndarray], failed: list[str], history: UserHistory | None, k: int,
                allowed: np.ndarray | None, explain: bool, t0: float, *, seen: Callable[[], np.ndarray]) -> Ranked:
        """Score and order the candidates (:meth:`CandidateGenerator.fuse_tops_columns`); ``seen``
        gives the user's items when a short list needs topping up."""
        t1 = time.perf_counter()
        items = cands[ITEM].astype(np.int64)
        n_cands = len(items)
        X = None
        if n_cands and self.ranker is not None:
            X = self._features(cands, history)
        t2 = time.perf_counter()
        if X is not None and self.ranker is not None:
            scores = self.ranker.predict(X).astype(np.float64)
        else:  # minus the best rank any source gave (as TwoStageRecommender.score_candidates)
            ranks = [cands[rank_col(s)] for s in self.gen.sources_]
            scores = -np.min(ranks, axis=0).astype(np.float64) if ranks else np.zeros(n_cands)
        keep = np.ones(len(items), dtype=bool) if allowed is None else allowed[items]
        idx = np.flatnonzero(keep)
        order = idx[np.lexsort((items[idx], -scores[idx]))][:k]
        out_items, out_scores = items[order], scores[order]
        t3 = time.perf_counter()
        contrib = None
        if explain and X is not None and len(order) and isinstance(self.ranker, LGBMRanker):
            contrib = self._explain(X[order])
        source_scores = self._source_scores(cands, order)
        if len(out_items) < k:  # top up from popularity, flagged by a NaN score
            fill = self.popular_fill(k - len(out_items), exclude=np.concatenate(
                [out_items, seen() if self.exclude_seen else np.zeros(0, np.int64)]), allowed=allowed)
            out_items = np.concatenate([out_items, fill])
            out_scores = np.concatenate([out_scores, np.full(len(fill), np.nan)])
            source_scores += self.fallback_sources(fill)
        return Ranked(items=out_items, scores=out_scores, sources=source_scores, n_candidates=n_cands,
                      failed_sources=failed, contributions=contrib, features=X,
                      stages={"retrieval": t1 - t0, "features": t2 - t1, "ranking": t3 - t2})

    def _features(self, cands: dict[str, np.ndarray], history: UserHistory | None) -> np.ndarray:
        """``TwoStageRecommender.features_for`` on a request's candidate columns (the same pipeline
        calls, without a frame): the fitted history's features, or ``history``'s."""
        mode = self.model.target.reference
        if history is None:
            ref = self.feats.reference_times(cands[USER], mode=mode)
            return self.feats.matrix(cands, ref_ts=ref)
        return self.feats.matrix_for_history(cands, history, mode=mode)

    def _source_scores(self, cands: dict[str, np.ndarray], order: np.ndarray) -> list[dict[str, float]]:
        names = list(self.gen.sources_)
        if not len(order):
            return []
        block = np.empty((len(order), len(names)), np.float64)
        for j, s in enumerate(names):
            block[:, j] = cands[score_col(s)][order]
        rows = np.round(block, 6).tolist()  # NaN (not proposed) stays NaN: v == v drops it
        return [{s: v for s, v in zip(names, row, strict=True) if v == v} for row in rows]

    def _explain(self, X: np.ndarray) -> list[list[tuple[str, float]]]:
        assert isinstance(self.ranker, LGBMRanker)
        contrib = np.asarray(self.ranker.contributions(X))[:, : len(self.feature_names)]
        top = np.argsort(-np.abs(contrib), axis=1)[:, :5]
        return [[(self.feature_names[j], float(contrib[r, j])) for j in top[r]] for r in range(len(X))]


def _catalogue_column(model: TwoStageRecommender, column: str, n_items: int) -> np.ndarray | None:
    if model.items_ is None or not model.items_.has(column):
        return None
    values = model.items_.aligned(column).cast(pl.Utf8).to_list()
    return np.array(values[:n_items] + [None] * max(0, n_items - len(values)), dtype=object)


__all__ = ["Engine", "Ranked"]
