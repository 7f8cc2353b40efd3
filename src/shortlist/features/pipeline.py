"""``FeaturePipeline``: every stage-2 feature of a candidate union, through one code path for the
label windows, batch recommend and a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.base import FeatureBuilder, FeatureRows
from shortlist.features.conversion import EventFeatures, event_feature_names
from shortlist.features.item import ITEM_FEATURES, ItemFeatures
from shortlist.features.pair import PAIR_FEATURES, PairFeatures
from shortlist.features.profile import UserHistory
from shortlist.features.similarity import DENSE_ITEM_TABLE_CELLS, SIMILARITY_FEATURES, SimilarityFeatures
from shortlist.features.stats import HistoryStats
from shortlist.features.user import USER_FEATURES, UserFeatures
from shortlist.retrieval.topk import rows_or
from shortlist.retrieval.union import FUSED, CandidateUnion, rank_col, score_col
from shortlist.schema import N_SOURCES

MAX_CATEGORICAL_LEVELS = 64
#: Candidate rows computed at once: keeps each builder's temporaries in cache.
CHUNK_ROWS = 8_192
#: When features are computed: at each user's last activity, or at the history's end for everyone.
Reference = Literal["user", "global"]


class FeaturePipeline:
    """Source scores/ranks + item, user, pair and embedding-similarity features, and per-event
    features where ``event_types`` names two or more types (:mod:`shortlist.features.conversion`).

    ``fit`` learns statistics from a history; :meth:`matrix` maps a fused
    :class:`~shortlist.retrieval.union.CandidateUnion` to a (rows × :attr:`names`) float32 matrix.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("builders", "stats_")

    def __init__(self, *, sources: Sequence[str], reference: Reference = "user",
                 similarities: Mapping[str, sp.csr_matrix] | None = None,
                 embeddings: Mapping[str, np.ndarray] | None = None, event_types: Sequence[str] = ()) -> None:
        self.sources, self.reference = list(sources), reference
        self.event_types = tuple(event_types) if len(event_types) > 1 else ()
        self.builders: list[FeatureBuilder] = [
            ItemFeatures(), UserFeatures(), PairFeatures(similarities=similarities or {}),
            SimilarityFeatures(embeddings=embeddings or {})]
        if self.event_types:
            self.builders.append(EventFeatures(self.event_types))
        self.source_names = [c for s in self.sources for c in (score_col(s), rank_col(s))] + [N_SOURCES, FUSED]
        self.names = self.source_names + [n for b in self.builders for n in b.names]
        self.stats_: HistoryStats | None = None

    @property
    def categorical(self) -> list[str]:
        """Features LightGBM should treat as categories (few enough levels to be worth it)."""
        if self.stats_ is not None and 2 <= self.stats_.n_categories <= MAX_CATEGORICAL_LEVELS:
            return ["item_category"]
        return []

    def descriptions(self) -> dict[str, str]:
        """One line per feature, in :attr:`names` order."""
        out: dict[str, str] = {}
        for s in self.sources:
            out[score_col(s)] = f"score the {s} source gave the item (null: not proposed)"
            out[rank_col(s)] = f"rank of the item in the {s} source's list (100000: not proposed)"
        out[N_SOURCES] = "number of sources that proposed the item"
        out[FUSED] = "the stage-1 fusion score (the union's order)"
        out.update(ITEM_FEATURES)
        out.update(USER_FEATURES)
        out.update(PAIR_FEATURES)
        pair, sim = self.builders[2], self.builders[3]
        for name in pair.names[len(PAIR_FEATURES):]:
            table, n = name.rsplit("_last", 1)
            out[name] = f"sum of {table} similarity between the item and the user's last {n} items"
        for name in sim.names:
            table, kind = name.rsplit("_sim_", 1)
            out[name] = f"{table} vectors: {SIMILARITY_FEATURES['sim_' + kind]}"
        out.update(event_feature_names(self.event_types))
        return {n: out[n] for n in self.names}

    def fit(self, history: Interactions, *, items: Items | None = None) -> Self:
        stats = HistoryStats.build(history, items, event_types=self.event_types)
        for builder in self.builders:
            builder.fit(stats, history, items=items)
        self.stats_ = stats
        return self

    def matrix(self, union: CandidateUnion, *, history: UserHistory | None = None) -> np.ndarray:
        """(rows × features) float32 for a fused union: user and pair features from the fitted
        history (users as in the union), or — with ``history`` — from that one explicit history for
        every row (a user's history plus events since the fit, or an anonymous session; item
        statistics stay the fit's, and events after the fit's end count as at its end)."""
        st = self._stats()
        n = len(union)
        if history is None:
            profiles, rows = st.profiles_of(union.users)
            ref = self.reference_times(union.users)
        else:
            profiles, rows = st.profile_of(history), np.zeros(n, np.int64)
            ref = np.full(n, int(profiles.last[0]) if self.reference == "user" else st.end_ts, np.int64)
        if list(union.sources) != self.sources:
            raise ValueError(f"the union's sources {list(union.sources)} are not the pipeline's {self.sources}")
        X = np.empty((n, len(self.names)), dtype=np.float32, order="F")
        s = len(self.sources)
        X[:, 0:2 * s:2], X[:, 1:2 * s:2] = union.scores.T, union.ranks.T
        X[:, 2 * s] = union.n_sources
        X[:, 2 * s + 1] = np.nan if union.fused is None else union.fused
        col = {name: j for j, name in enumerate(self.names)}
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            chunk = FeatureRows(profiles, rows[lo:hi], union.items[lo:hi], ref[lo:hi])
            for builder in self.builders:
                for name, values in builder.compute(chunk).items():
                    X[lo:hi, col[name]] = values
        return X

    def reference_times(self, users: np.ndarray) -> np.ndarray:
        """Per-row reference time: the user's last activity (``"user"``) or the history end (``"global"``)."""
        st = self._stats()
        users = np.asarray(users, dtype=np.int64)
        if self.reference == "global":
            return np.full(len(users), st.end_ts, dtype=np.int64)
        return rows_or(st.last, users, st.end_ts)

    def warm(self) -> Self:
        """Build the lookup tables requests use (dense similarity and cosine tables) now, so the
        first request after a fit or load is as fast as the rest."""
        pair, sim = self.builders[2], self.builders[3]
        assert isinstance(pair, PairFeatures) and isinstance(sim, SimilarityFeatures)
        for name in pair.similarities:
            pair.table(name)
        for name, v in sim.embeddings.items():
            if len(v) ** 2 <= DENSE_ITEM_TABLE_CELLS:
                sim.table(name, v)
        return self

    def user_history(self, user: int) -> UserHistory:
        """A known user's fitted history (internal ids, history order); empty for an unknown user."""
        return self._stats().user_history(user)

    def _stats(self) -> HistoryStats:
        if self.stats_ is None:
            raise NotFittedError("FeaturePipeline")
        return self.stats_
