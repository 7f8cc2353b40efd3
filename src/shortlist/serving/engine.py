"""``Engine``: one loaded two-stage model as a request adapter — external ids in, the model's one
rank path (:meth:`TwoStageRecommender.rank`) for a shard of one, a JSON-ready answer out.

Everything model-specific the service needs lives here (id maps, titles, the model), so a model
reload swaps one object. A source that raises is left out and named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shortlist.data.events import event_codes, event_strengths
from shortlist.errors import ConfigError, ModelLoadError, RulesError
from shortlist.features.profile import UserHistory
from shortlist.pipeline.artifacts import read_manifest, sha256_file
from shortlist.pipeline.item_rules import ItemRules, model_catalogue
from shortlist.pipeline.ranked import Ranked
from shortlist.pipeline.rules import Rules
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.retrieval.base import Warmable
from shortlist.schema import ITEM, TITLE, USER
from shortlist.serving.drift import DriftMonitor

logger = logging.getLogger(__name__)
FALLBACK = "fallback_popular"
#: Sources whose lists are not about the given item (left out of "similar items").
NOT_SIMILARITY = ("popular", "popular_recent", "repurchase")


@dataclass
class Answer:
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
    """Per-request answers from one loaded :class:`TwoStageRecommender`."""

    def __init__(self, model: TwoStageRecommender, *, directory: Path, manifest: dict[str, Any],
                 explain_top: int = 5, rules: Rules | None = None) -> None:
        if model.stage1_ is None or model.history_ is None or model.fallback_ is None:
            raise ModelLoadError(f"{directory}: the model is not fitted")
        self.model, self.directory, self.manifest, self.explain_top = model, directory, manifest, explain_top
        self.version = sha256_file(directory / "manifest.json")[:12]
        hist = model.history_
        self.users, self.items, self.n_items = hist.users, hist.items, hist.n_items
        self.end_ts = int(hist.time_span()[1])
        self.user_lengths = np.bincount(hist.frame.get_column(USER).to_numpy(), minlength=hist.n_users)
        self.item_counts = np.bincount(hist.frame.get_column(ITEM).to_numpy(), minlength=self.n_items)
        self.item_ext = np.array(self.items.ids.to_list(), dtype=object)  # external ids by index
        self.titles = _catalogue_column(model, TITLE, self.n_items)
        self.catalogue = model_catalogue(model)  # what request rules are resolved against
        try:
            self.default_rules = ItemRules() if rules is None else ItemRules.compile(rules, self.catalogue)
        except RulesError as e:
            raise ModelLoadError(f"{directory}: the server's --rules do not fit this model: {e}") from e
        self.feature_names = list(model.feature_names)
        resolved = model.resolved_ or model.config
        self.event_weights, self.event_types = dict(resolved.event_weights), tuple(resolved.event_types or ())
        self.drift: DriftMonitor | None = None
        model.stage1_.warm()  # per-request indexes some sources build once (user-kNN's neighbour graph)
        if isinstance(model.ranker_, LGBMRanker):  # machine-code trees with the `fast` extra (LightGBM without)
            model.ranker_.compile()

    @classmethod
    def load(cls, directory: Path, *, drift_users: int = 300, drift_threshold: float = 0.2, seed: int = 0,
             max_candidates: int | None = None, explain_top: int = 5, rules: Rules | None = None) -> Engine:
        """Load and verify (checksums, a smoke request) a model directory; build the drift reference
        from ``drift_users`` sampled training users' candidate features. ``max_candidates``: rank at
        most this many candidates a request (default: the model's own). ``rules``: the server's
        default rules, compiled against this model's catalogue (a rule it cannot answer fails the load)."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest.get("kind") != "two_stage":
            raise ModelLoadError(f"{directory}: `shortlist serve` needs a two-stage model (kind "
                                 f"{manifest.get('kind')!r}); fit one with the default config")
        model = TwoStageRecommender.load(directory)
        if max_candidates is not None:
            if max_candidates < 1:
                raise ConfigError(f"max_candidates must be >= 1, got {max_candidates}")
            assert model.stage1_ is not None
            model.stage1_.max_candidates = max_candidates
        engine = cls(model, directory=directory, manifest=manifest, explain_top=explain_top, rules=rules)
        if engine.users.ids.len():
            engine.recommend_user(0, 5)  # fails here, before the swap, if the model cannot serve
            engine.drift = engine._drift_reference(drift_users, drift_threshold, seed)
        return engine

    def _drift_reference(self, n_users: int, threshold: float, seed: int) -> DriftMonitor | None:
        if self.model.ranker_ is None:
            return None
        n = self.users.ids.len()
        users = np.sort(np.random.default_rng(seed).choice(n, size=min(n_users, n), replace=False)).astype(np.int64)
        X = self.model.rank(users, 10).features
        return None if X is None else DriftMonitor(self.feature_names, X, threshold=threshold)

    # --- descriptions ----------------------------------------------------------------------------
    def item_info(self, item: int) -> dict[str, Any]:
        """The catalogue row of an item (external id, text attributes, price) and its popularity."""
        row: dict[str, Any] = {"item_id": self.items.external([item]).item()}
        if self.model.items_ is not None:
            f = self.model.items_.frame.filter(pl.col(ITEM) == item).drop(ITEM)
            if f.height:
                row.update({k: v for k, v in f.row(0, named=True).items() if v is not None})
        fb = self.model.fallback_
        assert fb is not None and fb.scores_ is not None and fb.ranking_ is not None
        row["popularity"] = float(fb.scores_[item])
        at = np.flatnonzero(fb.ranking_ == item)
        row["popularity_rank"] = int(at[0]) + 1 if len(at) else None
        row["interactions"] = int(self.item_counts[item])
        return row

    def index_stats(self) -> dict[str, Any]:
        """Users and items in the model, and each source's class and what it can do."""
        out: dict[str, Any] = {"n_users": int(self.users.ids.len()), "n_items": int(self.n_items),
                               "n_interactions": int(self.item_counts.sum()), "sources": {}}
        stage = self.model.stage1_
        assert stage is not None
        sims = stage.similarities()
        for name, src in stage.sources.items():
            info: dict[str, Any] = {"class": type(src).__name__, "warmable": isinstance(src, Warmable)}
            if name in sims:
                info["similarity_nnz"] = int(sims[name].nnz)
            out["sources"][name] = info
        return out

    def top_features(self, n: int) -> list[dict[str, Any]]:
        imp = self.model.importance()
        return imp.sort("gain", descending=True).head(n).to_dicts() if imp.height else []

    # --- lookups ---------------------------------------------------------------------------------
    def user_index(self, user_id: str) -> int | None:
        return self.users.get(user_id)

    def item_index(self, item_id: str) -> int | None:
        return self.items.get(item_id)

    def item_indices(self, item_ids: list[str]) -> np.ndarray:
        idx = [self.items.get(i) for i in item_ids]
        return np.array([i for i in idx if i is not None], dtype=np.int64)

    # --- recommendation: the model's rank path for a shard of one ----------------------------------
    def recommend_user(self, user: int, k: int, *, rules: ItemRules | None = None, explain: bool = False,
                       history: UserHistory | None = None) -> Answer:
        """A user's top-``k`` (an unknown user's ``user`` is past the fitted ones: the popular list).
        ``rules``: the request's business rules (``None``: the server's); ``history``: the user's
        history as the feature store holds it (``None``: the model's own copy)."""
        return self._answer(user, k, rules, explain, history)

    def recommend_history(self, history: UserHistory, k: int, *, user: int | None = None,
                          rules: ItemRules | None = None, explain: bool = False) -> Answer:
        """Top-``k`` for an explicit history (a user's history plus online events, or a session):
        candidates from each source's fold-in path, user and pair features from the history."""
        return self._answer(self.users.ids.len() if user is None else user, k, rules, explain, history)

    def popular(self, k: int, *, rules: ItemRules | None = None) -> Answer:
        """The popular list (within the rules): what a user the model does not know gets."""
        return self._answer(int(self.users.ids.len()), k, rules, False, None)

    def user_history(self, user: int | None) -> UserHistory:
        """A user's fitted history (prices and baskets included); empty for an unknown user."""
        if user is None:
            return UserHistory(np.zeros(0, np.int64), np.zeros(0, np.int64))
        return self.model.user_history(user)

    def with_events(self, base: UserHistory, items: np.ndarray, timestamps: np.ndarray,
                    events: list[str]) -> UserHistory:
        """``base`` followed by online events (known items), each weighed by the model's event
        weights as the fit weighed its rows (:mod:`shortlist.data.events`; weight 0: left out, as in
        the fit) and coded by the model's event types for the per-event features."""
        strength = event_strengths(events, self.event_weights, source="online events")
        keep = strength > 0
        return base.extend(np.asarray(items)[keep], np.asarray(timestamps)[keep], weights=strength[keep],
                           events=event_codes([e for e, k in zip(events, keep, strict=True) if k], self.event_types))

    def similar(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Items most like ``item``: the stage-1 union for a one-item history, in fusion order."""
        stage = self.model.stage1_
        assert stage is not None
        tops = stage.topk_for_history(np.array([item]), timestamps=np.array([self.end_ts]), exclude_seen=True,
                                      failed=[], skip=NOT_SIMILARITY, depth=k + 1)
        union = stage.candidates(np.array([-1]), tops)
        keep = np.flatnonzero(union.items != item)[:k]
        assert union.fused is not None
        return union.items[keep], union.fused[keep].astype(np.float64)

    def _answer(self, user: int, k: int, rules: ItemRules | None, explain: bool,
                history: UserHistory | None) -> Answer:
        failed: list[str] = []
        rules = self.default_rules if rules is None else rules
        ranked = self.model.rank(np.array([user], np.int64), k, history=history, rules=rules, failed=failed)
        valid = ranked.items[0] >= 0
        items, scores, rows = ranked.items[0][valid], ranked.scores[0][valid].astype(np.float64), ranked.rows[0][valid]
        contrib = self._explain(ranked, rows) if explain else None
        return Answer(items=items, scores=scores, sources=self._sources(ranked, items, rows),
                      n_candidates=len(ranked.union), failed_sources=failed, contributions=contrib,
                      features=ranked.features, stages=dict(ranked.stages))

    def _sources(self, ranked: Ranked, items: np.ndarray, rows: np.ndarray) -> list[dict[str, float]]:
        """Each listed item's score from every source that proposed it (a filled-in item: the fallback's)."""
        fb = self.model.fallback_
        assert fb is not None and fb.scores_ is not None
        names = ranked.union.sources
        scored = iter(np.round(ranked.union.scores[:, rows[rows >= 0]].astype(np.float64), 6).T.tolist())
        out = []
        for item, row in zip(items.tolist(), rows.tolist(), strict=True):
            if row < 0:
                out.append({FALLBACK: float(fb.scores_[item])})
                continue
            out.append({s: v for s, v in zip(names, next(scored), strict=True) if v == v})  # NaN: not proposed
        return out

    def _explain(self, ranked: Ranked, rows: np.ndarray) -> list[list[tuple[str, float]]] | None:
        if ranked.features is None or not isinstance(self.model.ranker_, LGBMRanker):
            return None
        scored = rows[rows >= 0]
        contrib = np.asarray(self.model.contributions(ranked.features[scored]))[:, : len(self.feature_names)]
        top = np.argsort(-np.abs(contrib), axis=1)[:, : self.explain_top]
        return [[(self.feature_names[j], float(contrib[r, j])) for j in top[r]] for r in range(len(scored))]


def _catalogue_column(model: TwoStageRecommender, column: str, n_items: int) -> np.ndarray | None:
    if model.items_ is None or not model.items_.has(column):
        return None
    values = model.items_.aligned(column).cast(pl.Utf8).to_list()
    return np.array(values[:n_items] + [None] * max(0, n_items - len(values)), dtype=object)


__all__ = ["Answer", "Engine"]
