"""The one rank path: candidates → features → scores → rules → order → popularity top-up → pins.

:class:`RankState` is what that path reads of a fitted model, each fitted user's seen items
included (not the interaction log), and it declares its user rows: a batch's shard can carry only
its users' rows and a cluster's worker hold the rest once (:mod:`shortlist.pipeline.user_rows`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from shortlist.features.pipeline import FeaturePipeline
from shortlist.features.profile import UserHistory
from shortlist.pipeline.item_rules import ItemRules
from shortlist.pipeline.ranked import Ranked, best_per_user
from shortlist.pipeline.stage1 import Stage1
from shortlist.pipeline.widen import rank_widening, widened
from shortlist.ranking.base import Ranker
from shortlist.retrieval.base import check_k, history_row
from shortlist.retrieval.popularity import Popularity
from shortlist.retrieval.topk import rows_of


@dataclass(frozen=True)
class RankState:
    """A fitted model's rank path: its stage 1, features, ranker (None: fusion order), popularity
    fallback, and ``seen``, a binary (fitted users × items) matrix of what each user has seen (no
    entries where repeats are allowed: then only its rows are counted). Users from ``n_users`` on
    are unknown: they get the popular list."""

    USER_ROWS: ClassVar[tuple[str, ...]] = ("stage", "features", "fallback", "seen")

    stage: Stage1
    features: FeaturePipeline
    ranker: Ranker | None
    fallback: Popularity
    seen: sp.csr_matrix
    allow_repeats: bool

    @property
    def n_users(self) -> int:
        return int(self.seen.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.seen.shape[1])

    def rank(self, users: np.ndarray, k: int, *, rules: ItemRules, history: UserHistory | None = None,
             failed: list[str] | None = None) -> Ranked:
        """Each of ``users``' (distinct ids) top-``k`` items under ``rules``; lists the rules leave
        short are ranked again from a wider candidate pool. ``history``: rank for this one explicit
        history instead. ``failed``: leave out sources that raise, naming them there."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        k = check_k(k, self.n_items)
        ranked = rank_widening(lambda shard, factor: self._rank(shard, k, history, rules, factor, failed is not None),
                               users, k, rules)
        if failed is not None:
            failed.extend(name for name in ranked.failed if name not in failed)
        return ranked

    def _rank(self, users: np.ndarray, k: int, history: UserHistory | None, rules: ItemRules, factor: int,
              tolerant: bool) -> Ranked:
        """One pass of :meth:`rank` over a candidate pool ``factor`` times the usual."""
        stage = widened(self.stage, factor, self.n_items)
        failed: list[str] | None = [] if tolerant else None
        t0 = time.perf_counter()
        exclude = not self.allow_repeats
        if history is None:
            tops = stage.topk(users, exclude_seen=exclude, failed=failed)
        else:
            tops = stage.topk_for_history(history.items, timestamps=history.timestamps, exclude_seen=exclude,
                                          failed=failed, weights=history.weights)
        union = stage.candidates(users, tops)
        if history is None:  # users without a fitted history have nothing to rank: popularity alone
            union = union.take(np.flatnonzero(union.users < self.n_users))
        t1 = time.perf_counter()
        X = self.features.matrix(union, history=history) if self.ranker is not None and len(union) else None
        t2 = time.perf_counter()
        scores = self.ranker.predict(X).astype(np.float32) if self.ranker is not None and X is not None else \
            -union.best_rank().astype(np.float32)
        scores = rules.boost(union.items, scores)
        lists = best_per_user(union, scores, users, k, keep=rules.keep(union, scores))
        seen = self._seen(users, history) if exclude else None
        assert self.fallback.ranking_ is not None
        items, top_scores, rows = rules.pin(rules.top_up(lists, self.fallback.ranking_, self.n_items, seen), seen)
        stages = {"retrieval": t1 - t0, "features": t2 - t1, "ranking": time.perf_counter() - t2}
        return Ranked(users, items, top_scores, rows, union, X, tuple(failed or ()), stages)

    def _seen(self, users: np.ndarray, history: UserHistory | None) -> sp.csr_matrix:
        """The seen items of each ranked row: the fitted users' rows, or the one explicit history's."""
        if history is not None:
            return history_row(history.items, self.n_items)
        return rows_of(self.seen, users)
