"""``TwoStageRecommender``: candidate sources → features → LightGBM lambdarank → top-k.

Fit discipline: label windows are cut from the training data; for each, sources and feature
statistics are fitted on the history before the window only, candidates are labelled from the
window, and the ranker learns from them. Then sources and statistics are refitted on all the
training data for inference. Nothing after a window's start is visible while building it.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError, NotFittedError
from shortlist.features.pipeline import FeaturePipeline
from shortlist.features.profile import UserHistory
from shortlist.features.similarity import CosineTables
from shortlist.pipeline.external import internal_users, to_external
from shortlist.pipeline.labels import LabelWindow, Target, label_windows
from shortlist.pipeline.options import check_options
from shortlist.pipeline.ranked import rank_by_score, top_up
from shortlist.pipeline.sources import CandidateGenerator, VectorCache, default_source_names, has_text
from shortlist.ranking.dataset import (
    BEST_RANK,
    GROUP,
    ROW,
    drop_groups_without_positives,
    sample_negatives,
    split_groups,
    to_training_rows,
)
from shortlist.ranking.lgbm import LGBMRanker, XGBRanker
from shortlist.retrieval.base import check_k
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.popularity import Popularity
from shortlist.retrieval.union import best_rank, rank_col
from shortlist.schema import ITEM, LABEL, MISSING_RANK, USER

logger = logging.getLogger(__name__)
MIN_RANKER_GROUPS = 20


def fit_threads(tasks: int) -> int:
    """Threads for a fit's independent source fits: one per task, at most one per CPU core
    (``SHORTLIST_FIT_THREADS`` overrides; 1 fits them one after another, with the same result)."""
    env = os.environ.get("SHORTLIST_FIT_THREADS", "").strip()
    if env and (not env.isdigit() or int(env) < 1):
        raise ConfigError(f"SHORTLIST_FIT_THREADS={env!r}: expected a positive whole number of threads "
                          "(1 fits the stages one after another); unset it to use one thread per CPU core")
    cap = int(env) if env else (os.cpu_count() or 1)
    return max(1, min(tasks, cap))


class TwoStageRecommender:
    """The full model. ``fit(history, items=..., rng=...)`` then ``retrieve(users, k)``.

    ``target``: ``"last"`` (predict each user's next interaction: stacked label depths) or
    ``"days:N"`` (predict the next N days: stacked windows). ``sources=None`` picks the default set
    for the data. ``n_windows`` label windows are stacked; ``max_negatives`` negatives per group
    are kept (the ``hard_negatives`` best-ranked always).
    """

    name = "two_stage"

    def __init__(
        self,
        *,
        target: str = "last",
        allow_repeats: bool = False,
        sources: Sequence[str] | None = None,
        source_params: Mapping[str, Mapping[str, Any]] | None = None,
        per_source: int = 300,
        max_candidates: int | None = None,
        n_windows: int | None = None,
        max_negatives: int | None = 250,
        hard_negatives: int = 50,
        valid_share: float = 0.15,
        ranker: str = "lightgbm",
        ranker_params: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.target = Target.parse(target)
        if max_candidates is not None and max_candidates < 1:
            raise ConfigError(f"max_candidates must be a positive number of candidates a user (or None for the "
                              f"target's default), got {max_candidates}")
        self.allow_repeats = allow_repeats
        self.sources = list(sources) if sources is not None else None
        self.source_params = {k: dict(v) for k, v in (source_params or {}).items()}
        self.per_source, self.max_candidates = per_source, max_candidates
        self.n_windows, self.max_negatives, self.hard_negatives = n_windows, max_negatives, hard_negatives
        self.valid_share, self.ranker, self.ranker_params, self.seed = valid_share, ranker, dict(ranker_params or {}), seed
        check_options(self.ranker, self.ranker_params, self.sources, self.source_params)
        self.generator_: CandidateGenerator | None = None
        self.features_: FeaturePipeline | None = None
        self.ranker_: LGBMRanker | XGBRanker | None = None
        self.metrics_: dict[str, Any] = {}
        self.history_: Interactions | None = None
        self.items_: Items | None = None
        self.fingerprint_: str | None = None
        self.fallback_: Popularity | None = None
        self.source_weights_: dict[str, float] | None = None

    @property
    def candidates_count(self) -> int:
        """Candidates kept a user (``max_candidates``; default 200 for ``last``, 100 for ``days:N``).

        With one label a user (``last``) the union's recall bounds NDCG: MovieLens 100K NDCG@10 over
        seeds 0-4 0.1269 mean at 200 (0.1240-0.1308), 0.1225 at 100 (two seeds under 0.12). With a
        window of labels (and repeats) the best of the union is enough, and half the rows to
        retrieve, featurise and rank: Online Retail 0.3922 mean at 100 (0.3904-0.3938) as at 200
        (0.3901-0.3953), the fit ~3.5 s shorter.
        """
        if self.max_candidates is not None:
            return self.max_candidates
        return 200 if self.target.kind == "last" else 100

    @property
    def windows_count(self) -> int:
        """Label windows to stack: 3 label depths for ``last``, 2 windows for ``days:N`` (default)."""
        if self.n_windows is not None:
            return self.n_windows
        return 3 if self.target.kind == "last" else 2

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), saved in the manifest."""
        return {
            "target": str(self.target), "allow_repeats": self.allow_repeats, "sources": self.sources,
            "source_params": self.source_params, "per_source": self.per_source,
            "max_candidates": self.max_candidates, "n_windows": self.n_windows,
            "max_negatives": self.max_negatives, "hard_negatives": self.hard_negatives,
            "valid_share": self.valid_share, "ranker": self.ranker, "ranker_params": self.ranker_params,
            "seed": self.seed,
        }

    # --- fit ---------------------------------------------------------------------------------------
    def _generator(self, history: Interactions, items: Items | None = None) -> CandidateGenerator:
        names = self.sources or default_source_names(n_items=history.n_items, repeats=self.allow_repeats,
                                                     has_text=has_text(items))
        return CandidateGenerator(names, per_source=self.per_source, max_candidates=self.candidates_count,
                                  overrides=self.source_params)

    def _features(self, gen: CandidateGenerator, history: Interactions, items: Items | None,
                  tables: CosineTables | None = None) -> FeaturePipeline:
        return FeaturePipeline(sources=list(gen.sources_), similarities=gen.similarities(),
                               embeddings=gen.embeddings(), shared_tables=tables).fit(history, items=items)

    def fit(self, history: Interactions, *, items: Items | None = None, rng: np.random.Generator | None = None) -> Self:
        t_start = time.perf_counter()
        rng = np.random.default_rng(self.seed) if rng is None else rng
        windows = label_windows(history, self.target, n_windows=self.windows_count, repeats=self.allow_repeats)
        self.source_weights_ = None
        vectors = VectorCache()  # catalogue-only item vectors, shared by every fit below
        tables = CosineTables()  # and their cosine tables, shared by the feature pipelines
        self._window_seconds: dict[str, dict[str, float]] = {}
        self._window_stats: dict[str, dict[str, Any]] = {}
        # Every stage draws from its own generator, seeded here in a fixed order: the model does not
        # depend on which thread runs what first, nor on how many threads there are (tested).
        seeds = rng.integers(2**63, size=len(windows) + 2)
        window_rngs = [np.random.default_rng(s) for s in seeds[:len(windows)]]
        ranker_rng, final_rng = np.random.default_rng(seeds[-2]), np.random.default_rng(seeds[-1])
        # Sources of each window and of the final refit are independent fits: run them side by side
        # (sparse products, sorts, ALS and polars release the GIL for most of their time). BLAS runs
        # one thread a call meanwhile: OpenBLAS splits a call by how busy it is, and a product's last
        # bits with it, so EASE, ALS and content scores would depend on which fits overlapped.
        pool = ThreadPoolExecutor(max_workers=fit_threads(len(windows) + 1), thread_name_prefix="shortlist-fit")
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                # The catalogue encoding (content vectors) starts first, beside the first window's other sources.
                pool.submit(self._generator(history, items).encode_catalogue, history, items, vectors)
                retrieving = [pool.submit(self._window_candidates, win, items, r, vectors)
                              for win, r in zip(windows, window_rngs, strict=True)]
                final = pool.submit(self._final_fit, history, items, final_rng, vectors, tables)
                # The most recent window teaches the union its weights as soon as it is retrieved (the
                # others may still be fitting); then each window's frame is queued once it is ready.
                framing = []
                for g, (win, retrieval) in enumerate(zip(windows, retrieving, strict=True)):
                    gen, unioned = retrieval.result()
                    if g == 0:
                        self.source_weights_ = gen.learn_weights(None, win.labels, unioned=unioned)
                    framing.append(pool.submit(self._window_frame, win, g, gen, unioned, items, tables))
                    del gen, unioned
                del retrieving  # each window's sources go once its frame is built
                framed = [f.result() for f in framing]
                del framing
                generator, features, t_final = final.result()
        finally:  # on an error (or an interrupt) queued fits are dropped; running ones finish first
            pool.shutdown(wait=True, cancel_futures=True)
        t_ranker = time.perf_counter()
        matrices = [X for X, _, _, _ in framed]
        metas, offset = [], 0
        for X, meta, _, _ in framed:
            metas.append(meta.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + offset).alias(ROW)))
            offset += len(X)
        names, categorical = (framed[-1][2].names, framed[-1][2].categorical) if framed else ([], [])
        self.metrics_ = {"target": str(self.target), "windows": [w.name for w in windows],
                         "candidate_recall": {w.name: r for w, (_, _, _, r) in zip(windows, framed, strict=True)},
                         "window_stats": {w.name: self._window_stats[w.name] for w in windows}}
        del framed, tables  # the windows' pipelines and tables (the final one keeps its own)
        self.ranker_ = self._train_ranker(matrices, metas, names, categorical, ranker_rng) if metas else None
        if self.ranker_ is None:
            warnings.warn("too little data to train the ranker: recommendations come from the candidate "
                          "union in best-rank order", RuntimeWarning, stacklevel=2)
        self.generator_, self.features_ = generator, features
        self.generator_.weights = self.source_weights_
        self.metrics_["source_weights"] = self.source_weights_
        self.history_, self.items_, self.fingerprint_ = history, items, history.fingerprint()
        self.fallback_ = Popularity(name="fallback_popular").fit(history)
        self.metrics_["timings"] = {"total_s": round(time.perf_counter() - t_start, 2),
                                    "windows_and_final_refit_s": round(t_ranker - t_start, 2),
                                    "ranker_s": round(time.perf_counter() - t_ranker, 2),
                                    "final_refit_s": round(t_final, 2),
                                    "windows_s": self._window_seconds,
                                    "source_fit_s": dict(self.generator_.fit_seconds_)}
        return self

    def _final_fit(self, history: Interactions, items: Items | None, rng: np.random.Generator,
                   vectors: VectorCache, tables: CosineTables) -> tuple[CandidateGenerator, FeaturePipeline, float]:
        """Sources and feature statistics refitted on all the training data (for inference), and
        the seconds it took."""
        t0 = time.perf_counter()
        gen = self._generator(history, items).fit(history, items=items, rng=rng, vector_cache=vectors)
        return gen, self._features(gen, history, items, tables).warm(), time.perf_counter() - t0

    def _window_candidates(self, win: LabelWindow, items: Items | None, rng: np.random.Generator,
                           vectors: VectorCache) -> tuple[CandidateGenerator, pl.DataFrame]:
        """One window's sources, fitted on its history, and the union of their candidates for its users."""
        t0 = time.perf_counter()
        gen = self._generator(win.history, items).fit(win.history, items=items, rng=rng, vector_cache=vectors)
        t1 = time.perf_counter()
        users = np.unique(win.labels.get_column(USER).to_numpy())
        unioned = gen.union_tops(users, gen.topk_all(users, exclude_seen=not self.allow_repeats))
        self._window_seconds[win.name] = {"sources_fit": round(t1 - t0, 2), "retrieve_union": round(time.perf_counter() - t1, 2)}
        return gen, unioned

    def _window_frame(self, win: LabelWindow, g: int, gen: CandidateGenerator, unioned: pl.DataFrame,
                      items: Items | None, tables: CosineTables) -> tuple[np.ndarray, pl.DataFrame, FeaturePipeline, float]:
        """One window's feature matrix and, row for row, its best rank, label and group."""
        t0 = time.perf_counter()
        gen.weights = self.source_weights_
        cands = gen.combine(unioned=unioned)
        feats = self._features(gen, win.history, items, tables)
        X = feats.matrix(cands, ref_ts=feats.reference_times(cands.get_column(USER).to_numpy(),
                                                             mode=self.target.reference))
        self._window_seconds[win.name]["combine_features"] = round(time.perf_counter() - t0, 2)
        labelled = cands.select(USER, ITEM).join(win.labels, on=[USER, ITEM], how="left", maintain_order="left")
        y = labelled.get_column(LABEL).fill_null(0.0)
        best = best_rank(cands, list(gen.sources_)).alias(BEST_RANK).to_frame()
        found = int((y > 0).sum())
        recall = found / max(win.labels.height, 1)
        logger.info("window %s: %d candidate rows, recall %.3f", win.name, len(cands), recall)
        self._window_stats[win.name] = {
            "rows": len(cands), "positives": found, "labels": win.labels.height,
            "recall": {"union": recall, **_source_recalls(unioned, win.labels, list(gen.sources_))}}
        meta = pl.concat([best, pl.DataFrame({LABEL: y, GROUP: cands.get_column(USER).cast(pl.Int64) + g * (1 << 32)})],
                         how="horizontal")
        return X, meta, feats, recall

    def _train_ranker(self, matrices: list[np.ndarray], metas: list[pl.DataFrame], names: list[str],
                      categorical: list[str], rng: np.random.Generator) -> LGBMRanker | XGBRanker | None:
        data, dropped = drop_groups_without_positives(pl.concat(metas))
        n_groups = data.get_column(GROUP).n_unique()
        self.metrics_.update({"groups_kept": n_groups, "groups_dropped_no_positive": dropped})
        if n_groups < MIN_RANKER_GROUPS:
            return None
        data = sample_negatives(data, max_negatives=self.max_negatives, hard=self.hard_negatives, rng=rng)
        is_valid = split_groups(data.get_column(GROUP).to_numpy(), valid_share=self.valid_share, rng=rng)
        X = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
        matrices.clear()  # the windows' matrices are no longer needed
        train = to_training_rows(data.filter(~pl.Series(is_valid)), X)
        valid = to_training_rows(data.filter(pl.Series(is_valid)), X) if is_valid.any() else None
        del X
        ranker: LGBMRanker | XGBRanker
        if self.ranker == "xgboost":
            ranker = XGBRanker(seed=self.seed, **self.ranker_params)
        else:
            ranker = LGBMRanker(seed=self.seed, categorical=categorical, **self.ranker_params)
        t0 = time.perf_counter()
        ranker.fit(train.X, train.y, train.group_sizes, feature_names=names,
                   valid=(valid.X, valid.y, valid.group_sizes) if valid is not None else None)
        self.metrics_["ranker"] = {**ranker.metrics_, "train_rows": len(train.y),
                                   "valid_rows": 0 if valid is None else len(valid.y),
                                   "fit_s": round(time.perf_counter() - t0, 2)}
        return ranker

    # --- inference ---------------------------------------------------------------------------------
    def _check(self) -> tuple[CandidateGenerator, FeaturePipeline]:
        if self.generator_ is None or self.features_ is None:
            raise NotFittedError(type(self).__name__)
        return self.generator_, self.features_

    def score_candidates(self, cands: pl.DataFrame, *, history: UserHistory | None = None) -> np.ndarray:
        """Ranker scores for a candidate union (or, without a ranker, minus the best rank).

        ``history``: score one user's candidates against an explicit history instead of the fitted
        one (see :meth:`features_for`). Per-request cost on Online Retail: ~1-2 ms for 300 rows.
        """
        gen, _ = self._check()
        if self.ranker_ is None:
            return -best_rank(cands, list(gen.sources_)).to_numpy().astype(np.float32)
        return self.ranker_.predict(self.features_for(cands, history=history))

    def features_for(self, cands: pl.DataFrame, *, history: UserHistory | None = None) -> np.ndarray:
        """The ranker's input for a candidate union: (rows × :attr:`feature_names`) float32.

        Without ``history``, user and pair features come from the fitted history (users as in the
        ``user`` column). With ``history`` (all rows one user's), they are recomputed from it: pass
        :meth:`user_history` extended with events that arrived since the fit
        (``history.extend(items, timestamps)``), or an anonymous session. Item statistics always
        come from the fit; events later than the fit's end count as at its end. A known user's own
        :meth:`user_history` gives exactly the features of the fitted path.
        """
        _, feats = self._check()
        if history is None:
            ref = feats.reference_times(cands.get_column(USER).to_numpy(), mode=self.target.reference)
            return feats.matrix(cands, ref_ts=ref)
        return feats.matrix_for_history(cands, history, mode=self.target.reference)

    def contributions(self, cands: pl.DataFrame, *, history: UserHistory | None = None) -> np.ndarray:
        """Per-feature contributions to each row's score (LightGBM ``pred_contrib``): rows ×
        (features + 1), the last column the bias; a row sums to its :meth:`score_candidates` score."""
        if not isinstance(self.ranker_, LGBMRanker):
            raise NotFittedError("a LightGBM ranker (contributions)")
        return self.ranker_.contributions(self.features_for(cands, history=history))

    @property
    def feature_names(self) -> list[str]:
        return self._check()[1].names

    def user_history(self, user: int) -> UserHistory:
        """A known user's (internal id) fitted history, in history order; empty for an unknown user."""
        return self._check()[1].user_history(user)

    def retrieve(self, users: np.ndarray, k: int, *, exclude_seen: bool | None = None) -> Candidates:
        """Top-``k`` re-ranked items per user (internal ids)."""
        gen, _ = self._check()
        assert self.history_ is not None
        k = check_k(k, self.history_.n_items)
        exclude = (not self.allow_repeats) if exclude_seen is None else exclude_seen
        cands = gen.generate(np.asarray(users, dtype=np.int64), exclude_seen=exclude,
                             threads=fit_threads(len(gen.sources_)))
        return rank_by_score(cands, self.score_candidates(cands), k, self.name)

    def recommend(self, user_ids: Sequence[str | int] | pl.Series, k: int) -> pl.DataFrame:
        """``user_id, item_id, rank, score`` rows: at most ``k`` per user, every user present.

        Users unknown at fit time get the popularity fallback; short lists are topped up from it.
        """
        if self.history_ is None or self.fallback_ is None:
            raise NotFittedError(type(self).__name__)
        k = check_k(k, self.history_.n_items)
        ext, internal = internal_users(user_ids, self.history_.users)
        u = internal.to_numpy().astype(np.int64)
        exclude = not self.allow_repeats
        known = u[u < self.history_.n_users]  # the others have no history to rank for: popularity alone
        ranked = top_up(self.retrieve(known, k), self.fallback_.retrieve(u, k, exclude_seen=exclude), k, self.name)
        return to_external(ranked, internal, ext, self.history_.items)

    def recommend_for_history(
        self, item_ids: Sequence[str | int], k: int, *, timestamps: Sequence[int] | None = None
    ) -> pl.DataFrame:
        """``item_id, rank, score`` for an ad-hoc history (an anonymous or new user's session).

        Candidates come from each source's fold-in path (``retrieve_for_history``); features are
        built by the same pipeline as in training, over the history extended with the session.
        Items unknown to the model are ignored (logged).
        """
        from shortlist.pipeline.session import recommend_for_session

        if self.history_ is None:
            raise NotFittedError(type(self).__name__)
        return recommend_for_session(self, item_ids, check_k(k, self.history_.n_items), timestamps=timestamps)

    def save(self, directory: Path | str) -> Path:
        from shortlist.pipeline.persist import save_two_stage

        return save_two_stage(self, directory)

    @classmethod
    def load(cls, directory: Path | str) -> TwoStageRecommender:
        from shortlist.pipeline.persist import load_two_stage

        return load_two_stage(directory)

    def importance(self) -> pl.DataFrame:
        if self.ranker_ is None:
            return pl.DataFrame({"name": [], "gain": [], "split": []})
        return self.ranker_.importance()


def _source_recalls(unioned: pl.DataFrame, labels: pl.DataFrame, sources: list[str]) -> dict[str, float]:
    """Each source's recall of a window's labels: the share of (user, item) labels it proposed
    within its own list, before the union's budget cut."""
    pairs = labels.select(pl.col(USER).cast(pl.Int32), pl.col(ITEM).cast(pl.Int32)).unique()
    hit = unioned.select(pl.col(USER).cast(pl.Int32), pl.col(ITEM).cast(pl.Int32),
                         *[pl.col(rank_col(s)) for s in sources]).join(pairs, on=[USER, ITEM], how="inner")
    total = max(pairs.height, 1)
    return {s: int((hit.get_column(rank_col(s)) < MISSING_RANK).sum()) / total for s in sources}
