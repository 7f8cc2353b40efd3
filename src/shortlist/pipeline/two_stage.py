"""``TwoStageRecommender``: candidate sources → features → LightGBM lambdarank → top-k.

Fit discipline: label windows are cut from the training data; for each, the sources and feature
statistics are fitted on the history before the window only, candidates are labelled from the
window, and the ranker learns from them. Then the sources and statistics are refitted on all the
training data for inference. Nothing after a window's start is visible while building it.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.config import TwoStageConfig, derive
from shortlist.data.containers import Interactions, Items, read_only
from shortlist.data.events import weigh
from shortlist.errors import NotFittedError
from shortlist.features.pipeline import FeaturePipeline
from shortlist.features.profile import UserHistory
from shortlist.pipeline.external import internal_users, to_external
from shortlist.pipeline.item_rules import ItemRules, item_rules
from shortlist.pipeline.labels import Target, iter_label_windows
from shortlist.pipeline.options import check_options
from shortlist.pipeline.parallel import map_shards
from shortlist.pipeline.progress import Progress, silent
from shortlist.pipeline.rank_state import RankState
from shortlist.pipeline.ranked import Ranked
from shortlist.pipeline.rules import Rules
from shortlist.pipeline.shard_tasks import RecommendShared, candidates_shard, recommend_shard, request_shards
from shortlist.pipeline.stage1 import Stage1, prepare_catalogue
from shortlist.pipeline.training import learn_window_fusion, require_cluster_for, train_ranker, window_frame, window_users
from shortlist.pipeline.user_rows import item_side
from shortlist.ranking.base import Ranker, ranker_kind
from shortlist.retrieval.base import CandidateSource
from shortlist.retrieval.popularity import Popularity

logger = logging.getLogger(__name__)


class TwoStageRecommender:
    """The full model: ``fit(history, items=..., rng=...)``, then :meth:`recommend` or :meth:`rank`.

    Options are a :class:`~shortlist.config.TwoStageConfig` (``config``), or its fields as keyword
    arguments (which override ``config``'s). ``sources`` may also hold unfitted source objects (each
    fit works on a copy, under the object's ``name``) and ``ranker`` an unfitted ranker object::

        TwoStageRecommender(sources=[ALS(factors=32, name="als32"), "itemknn"], ranker=LGBMRanker(num_leaves=31))
    """

    name = "two_stage"

    def __init__(self, config: TwoStageConfig | None = None, **options: Any) -> None:
        sources = options.get("sources")
        self.prototypes: dict[str, CandidateSource] = {s.name: s for s in sources or () if not isinstance(s, str)}
        if sources is not None:
            options["sources"] = [s if isinstance(s, str) else s.name for s in sources]
        self.ranker_prototype: Ranker | None = None
        if options.get("ranker") is not None and not isinstance(options["ranker"], str):
            self.ranker_prototype = options["ranker"]
            options["ranker"] = ranker_kind(options["ranker"])
        base = (config or TwoStageConfig()).to_json()
        self.config = TwoStageConfig.from_json({**base, **options}) if options else (config or TwoStageConfig())
        c = self.config
        check_options(c.ranker, c.ranker_params, [s for s in c.sources or () if s not in self.prototypes],
                      c.source_params)
        self.resolved_: TwoStageConfig | None = None
        self.stage1_: Stage1 | None = None
        self.features_: FeaturePipeline | None = None
        self.ranker_: Ranker | None = None
        self.history_: Interactions | None = None
        self.items_: Items | None = None
        self.fallback_: Popularity | None = None
        self.metrics_: dict[str, Any] = {}

    @property
    def target(self) -> Target:
        return Target.parse(self.config.target)

    @property
    def allow_repeats(self) -> bool:
        return self.config.allow_repeats

    # --- fit -----------------------------------------------------------------------------------
    def fit(self, history: Interactions, *, items: Items | None = None, rng: np.random.Generator | None = None,
            progress: Progress = silent) -> Self:
        """Label windows → their training rows → the ranker → sources and statistics refitted on
        everything. Windows are built one at a time, so memory follows one window's sample.
        ``progress(step, done, total)`` hears of each window's sources and training shards."""
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.config.seed) if rng is None else rng
        raw, history = history, weigh(history, self.config.event_weights)  # strengths: every count reads them
        if self.config.ranker == "lightgbm-dask":
            require_cluster_for(self.config.ranker)  # before any source is fitted
        cfg = derive(self.config, history, items)
        assert cfg.n_windows is not None
        windows = iter_label_windows(history, self.target, n_windows=cfg.n_windows, repeats=cfg.allow_repeats,
                                     event_weights=cfg.event_weights)
        seeds = rng.integers(2**63, size=2 * cfg.n_windows + 2)
        catalogue = prepare_catalogue(cfg, history, items, prototypes=self.prototypes)
        fusion, frames, stats = None, [], {}
        for w, window in enumerate(windows):
            progress(f"sources of {window.name}", 0, 1)
            stage = Stage1.fit(cfg, window.history, items=items, catalogue=catalogue, prototypes=self.prototypes,
                               rng=np.random.default_rng(seeds[2 * w]))
            sample_rng = np.random.default_rng(seeds[2 * w + 1])
            users = window_users(window, cfg, sample_rng)
            if fusion is None:  # the most recent window teaches the union its fusion
                fusion = learn_window_fusion(stage, window, users, exclude_seen=not cfg.allow_repeats, rng=sample_rng)
            stage.fusion = fusion
            features = self._features(stage, window.history, items, cfg)
            frames.append(window_frame(stage, features, window, users, w, cfg, progress))
            stats[window.name] = frames[-1].stats
            names, categorical = features.names, features.categorical
            del stage, features, window
        t_windows = time.perf_counter()
        ranker, ranker_metrics = (train_ranker(frames, names, categorical, cfg, np.random.default_rng(seeds[-2]),
                                               prototype=self.ranker_prototype) if frames else (None, {}))
        del frames
        if ranker is None:
            warnings.warn("too little data to train the ranker: recommendations come from the candidate "
                          "union in fusion order", RuntimeWarning, stacklevel=2)
        t_ranker = time.perf_counter()
        progress("sources of the whole history", 0, 1)
        stage = Stage1.fit(cfg, history, items=items, catalogue=catalogue, prototypes=self.prototypes,
                           rng=np.random.default_rng(seeds[-1]))
        if fusion is not None:
            stage.fusion = fusion
        self.resolved_, self.stage1_, self.ranker_ = cfg, stage, ranker
        self.features_ = self._features(stage, history, items, cfg).warm()
        self.history_, self.items_ = raw, items  # as given: a refit or an update weighs it again
        self.fallback_ = Popularity(name="fallback_popular").fit(history)
        self.metrics_ = {"target": str(self.target), "windows": list(stats), "window_stats": stats,
                         "candidate_recall": {n: s["recall"]["union"] for n, s in stats.items()},
                         "fusion": stage.fusion.to_json(), **ranker_metrics,
                         "timings": {"windows_s": round(t_windows - t0, 2), "ranker_s": round(t_ranker - t_windows, 2),
                                     "final_refit_s": round(time.perf_counter() - t_ranker, 2),
                                     "total_s": round(time.perf_counter() - t0, 2),
                                     "source_fit_s": dict(stage.fit_seconds)}}
        logger.info("fit in %.1fs: %s", time.perf_counter() - t0, self.metrics_["timings"])
        return self

    def _features(self, stage: Stage1, history: Interactions, items: Items | None, cfg: TwoStageConfig) -> FeaturePipeline:
        return FeaturePipeline(sources=stage.names, reference=self.target.reference,  # type: ignore[arg-type]
                               similarities=stage.similarities(), embeddings=stage.embeddings(),
                               event_types=cfg.event_types or ()).fit(history, items=items)

    # --- the one rank path ---------------------------------------------------------------------
    def _fitted(self) -> tuple[Stage1, FeaturePipeline, Interactions, Popularity]:
        if self.stage1_ is None or self.features_ is None or self.history_ is None or self.fallback_ is None:
            raise NotFittedError(type(self).__name__)
        return self.stage1_, self.features_, self.history_, self.fallback_

    def rank_state(self) -> RankState:
        """What the rank path reads of this model (the fitted users' seen items, not the log; none
        where repeats are allowed, as nothing is excluded then)."""
        stage, features, fitted, fallback = self._fitted()
        seen = fitted.cached("csr:none", lambda: read_only(sp.csr_matrix((fitted.n_users, fitted.n_items),
                                                                          dtype=np.float32))) \
            if self.allow_repeats else fitted.to_csr(binary=True)
        return RankState(stage, features, self.ranker_, fallback, seen, self.allow_repeats)

    def rank(self, users: np.ndarray, k: int, *, history: UserHistory | None = None,
             rules: Rules | ItemRules | None = None, failed: list[str] | None = None) -> Ranked:
        """Each of ``users``' (internal ids; distinct) top-``k`` items: candidates → features → scores
        → rules → order → popularity top-up → pins. A user unknown at fit time gets the popular list.
        ``history``: rank for this one explicit history instead (``users`` holds one id: the user's,
        or a new id for an anonymous session). ``rules``: business rules (filters, boosts, a cap per
        category, pins: :mod:`shortlist.pipeline.rules`); lists they leave short are ranked again
        from a wider candidate budget. ``failed``: leave out sources that raise, naming them there."""
        return self.rank_state().rank(users, k, rules=item_rules(self, rules), history=history, failed=failed)

    # --- recommendations -----------------------------------------------------------------------
    def recommend(self, user_ids: Sequence[str | int] | pl.Series, k: int, *,
                  rules: Rules | ItemRules | None = None) -> pl.DataFrame:
        """``user_id, item_id, rank, score`` rows: at most ``k`` per user, every user present (users
        unknown at fit time get the popular list; score null where popularity filled a list in).
        ``rules``: business rules, as in :meth:`rank`."""
        return pl.concat(list(self.recommend_batches(user_ids, k, rules=rules)), how="vertical_relaxed")

    def recommend_batches(self, user_ids: Sequence[str | int] | pl.Series | None, k: int, *,
                          progress: Progress = silent, rules: Rules | ItemRules | None = None,
                          shard_users: int | None = None, step: str = "recommending") -> Iterator[pl.DataFrame]:
        """:meth:`recommend` a shard of users at a time (``None``: every user of the fit; shards of
        ``shard_users``, by default the config's), so a caller can stream the rows out: memory
        follows the shard, not the number of users. Shards run through
        :func:`~shortlist.pipeline.parallel.map_shards` (``config.n_jobs`` threads, or a cluster's
        workers), each with its users' rows of the rank state and the item side shared."""
        fitted, state = self._fitted()[2], self.rank_state()
        ext, internal = internal_users(fitted.users.ids if user_ids is None else user_ids, fitted.users)
        shared = RecommendShared(item_side(state), k, item_rules(self, rules), fitted.items, self.config.shard_users)
        shards = request_shards(state, state.n_users, ext, internal, shard_users or self.config.shard_users)
        yield from map_shards(recommend_shard, shared, shards, step=step, progress=progress, n_jobs=self.config.n_jobs)

    def candidate_batches(self, user_ids: Sequence[str | int] | pl.Series, *,
                          progress: Progress = silent) -> Iterator[pl.DataFrame]:
        """Stage 1 alone, a shard at a time: each user's fused candidate union with every source's score
        and rank (``user_id, item_id, n_sources, <source>_score, <source>_rank, ..., fused_score``)."""
        stage, _, fitted, _ = self._fitted()  # stage 1 alone: its shards carry no feature or seen-item rows
        ext, internal = internal_users(user_ids, fitted.users)
        yield from map_shards(candidates_shard, (item_side(stage), fitted.items, self.allow_repeats),
                              request_shards(stage, fitted.n_users, ext, internal, self.config.shard_users),
                              step="candidates", progress=progress, n_jobs=self.config.n_jobs)

    @property
    def n_users(self) -> int:
        """Users the model was fitted on."""
        return self._fitted()[2].n_users

    def recommend_for_history(self, item_ids: Sequence[str | int], k: int, *,
                              timestamps: Sequence[int] | None = None) -> pl.DataFrame:
        """``item_id, rank, score`` for an ad-hoc history (an anonymous or new user's session): the
        same sources (their fold-in path) and features as a known user's, over the session. Items
        unknown to the model are ignored (logged)."""
        from shortlist.pipeline.session import session_history

        _, _, fitted, _ = self._fitted()
        history = session_history(fitted, item_ids, timestamps)
        ranked = self.rank(np.array([fitted.n_users], np.int64), k, history=history).to_frame()
        return to_external(ranked, pl.Series([fitted.n_users], dtype=pl.Int32), pl.Series(["session"]),
                           fitted.items).drop("user_id")

    def user_history(self, user: int) -> UserHistory:
        """A known user's (internal id) fitted history, in history order; empty for an unknown user."""
        return self._fitted()[1].user_history(user)

    @property
    def feature_names(self) -> list[str]:
        return self._fitted()[1].names

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contributions to each row's score (LightGBM ``pred_contrib``): rows × (features
        + 1), the last column the bias; a row sums to its score."""
        from shortlist.ranking.lgbm import LGBMRanker

        if not isinstance(self.ranker_, LGBMRanker):
            raise NotFittedError("a LightGBM ranker (contributions)")
        return self.ranker_.contributions(X)

    def importance(self) -> pl.DataFrame:
        if self.ranker_ is None:
            return pl.DataFrame({"name": [], "gain": [], "split": []})
        return self.ranker_.importance()

    # --- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        from shortlist.pipeline.persist import save_two_stage

        return save_two_stage(self, directory)

    @classmethod
    def load(cls, directory: Path | str) -> TwoStageRecommender:
        from shortlist.pipeline.persist import load_two_stage

        return load_two_stage(directory)

