"""``FeaturePipeline``: every stage-2 feature, built through one code path for training and serving."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import NotFittedError
from shortlist.features.item import ITEM_FEATURES, ItemFeatures
from shortlist.features.pair import PAIR_FEATURES, PairFeatures
from shortlist.features.profile import UserHistory, UserProfiles
from shortlist.features.similarity import (
    DENSE_ITEM_TABLE_CELLS,
    SIMILARITY_FEATURES,
    CosineTables,
    SimilarityFeatures,
)
from shortlist.features.stats import HistoryStats
from shortlist.features.user import USER_FEATURES, UserFeatures
from shortlist.retrieval.union import FUSED, rank_col, score_col
from shortlist.schema import ITEM, N_SOURCES, USER

#: A candidate union: a frame, or (one request's) its columns as numpy arrays, NaN where it holds null.
CandidateTable = pl.DataFrame | Mapping[str, np.ndarray]


def column(candidates: CandidateTable, name: str) -> np.ndarray:
    """One column of a candidate union as numpy (a frame's nulls as NaN, as ``to_numpy`` gives them)."""
    if isinstance(candidates, pl.DataFrame):
        return candidates.get_column(name).to_numpy()
    return np.asarray(candidates[name])


REF_TS = "ref_ts"
MAX_CATEGORICAL_LEVELS = 64


class FeaturePipeline:
    """Source scores/ranks + item, user, pair and embedding-similarity features.

    ``fit`` learns statistics from a history; ``transform`` maps a candidate union (with ``ref_ts``:
    the time features are computed at, per row) to a float32 frame with exactly :attr:`names`.
    """

    def __init__(
        self,
        *,
        sources: Sequence[str],
        similarities: Mapping[str, sp.csr_matrix] | None = None,
        embeddings: Mapping[str, np.ndarray] | None = None,
        shared_tables: CosineTables | None = None,
    ) -> None:
        """``shared_tables``: cosine tables shared with the other pipelines of a fit (see
        :class:`~shortlist.features.similarity.CosineTables`)."""
        self.sources = list(sources)
        self.item = ItemFeatures()
        self.user = UserFeatures()
        self.pair = PairFeatures(similarities=similarities or {})
        self.sim = SimilarityFeatures(embeddings=embeddings or {}, shared=shared_tables)
        self.source_names = [c for s in self.sources for c in (score_col(s), rank_col(s))] + [N_SOURCES, FUSED]
        self.names = self.source_names + self.item.names + self.user.names + self.pair.names + self.sim.names
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
        out[FUSED] = "reciprocal-rank fusion of the sources' ranks (the stage-1 order)"
        out.update(ITEM_FEATURES)
        out.update(USER_FEATURES)
        out.update(PAIR_FEATURES)
        for name in self.pair.names[len(PAIR_FEATURES):]:
            sim, n = name.rsplit("_last", 1)
            out[name] = f"sum of {sim} similarity between the item and the user's last {n} items"
        for name in self.sim.names:
            table, kind = name.rsplit("_sim_", 1)
            out[name] = f"{table} vectors: {SIMILARITY_FEATURES['sim_' + kind]}"
        return {n: out[n] for n in self.names}

    def fit(self, history: Interactions, *, items: Items | None = None) -> Self:
        stats = HistoryStats.build(history, items)
        for builder in (self.item, self.user, self.pair, self.sim):
            builder.fit_stats(stats, history, items=items)
        self.stats_ = stats
        return self

    def reference_times(self, users: np.ndarray, *, mode: str) -> np.ndarray:
        """Per-row reference time: the user's last activity (``"user"``) or the history end (``"global"``)."""
        if self.stats_ is None:
            raise NotFittedError("FeaturePipeline")
        st = self.stats_
        users = np.asarray(users, dtype=np.int64)
        if mode == "global":
            return np.full(len(users), st.end_ts, dtype=np.int64)
        known = (users >= 0) & (users < st.n_users)
        return np.where(known, st.user_last[np.where(known, users, 0)], st.end_ts)

    def transform(self, candidates: pl.DataFrame) -> pl.DataFrame:
        """The features of a candidate union with ``ref_ts`` as a float32 frame with :attr:`names`."""
        return pl.from_numpy(self.matrix(candidates), schema=self.names, orient="row")

    def matrix(self, candidates: CandidateTable, *, ref_ts: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`transform`, as a (rows × features) float32 array: the fast path for small requests.

        ``candidates``: a frame, or its columns as numpy arrays (a request's, NaN for null);
        ``ref_ts`` (per row) replaces the candidates' ``ref_ts`` column.
        """
        st = self._stats()
        users = column(candidates, USER).astype(np.int64)
        ref = column(candidates, REF_TS) if ref_ts is None else ref_ts
        return self._assemble(candidates, st.profiles, users, np.asarray(ref, dtype=np.int64))

    def matrix_for_history(self, candidates: CandidateTable, history: UserHistory, *, mode: str) -> np.ndarray:
        """Features of one user's candidates, with user and pair features from an explicit ``history``.

        ``history`` is the user's whole history (e.g. :meth:`user_history` plus events that arrived
        since, or an anonymous session); item statistics stay those of the fit. The reference time
        is the history's last event (``mode="user"``) or the fit's end (``"global"``); events later
        than the fit's end count as at its end. For a known user's own training history the result
        equals :meth:`matrix` exactly. The ``user`` column of ``candidates`` is ignored.
        """
        st = self._stats()
        profile = st.profile_of(history)
        ref_ts = int(profile.last[0]) if mode == "user" else st.end_ts
        n = len(column(candidates, ITEM))
        return self._assemble(candidates, profile, np.zeros(n, np.int64), np.full(n, ref_ts, np.int64))

    def warm(self) -> Self:
        """Build the lookup tables requests use (dense similarity and cosine tables, sorted recent
        items) now, so the first request after a fit or load is as fast as the rest."""
        self._prepare(self._stats().profiles)
        self.sim.shared = None  # its tables are built: let go of the fit's shared store
        return self

    def _prepare(self, profiles: UserProfiles) -> None:
        """Build the lazily made tables :meth:`_assemble` reads for ``profiles`` (once, here: chunks
        filled by parallel threads would otherwise each build the ones not there yet)."""
        for name in self.pair.similarities:
            self.pair._similarity(name)
        for n in self.pair.last_n:
            profiles.recent_sorted(n)
        for name, v in self.sim.embeddings.items():
            if len(v) ** 2 <= DENSE_ITEM_TABLE_CELLS:
                self.sim._table(name, v)

    def user_history(self, user: int) -> UserHistory:
        """A known user's fitted history (internal ids, history order); empty for an unknown user."""
        return self._stats().user_history(user)

    def _stats(self) -> HistoryStats:
        if self.stats_ is None:
            raise NotFittedError("FeaturePipeline")
        return self.stats_

    def _assemble(self, candidates: CandidateTable, profiles: UserProfiles, rows: np.ndarray,
                  ref: np.ndarray) -> np.ndarray:
        items = column(candidates, ITEM).astype(np.int64)
        X = np.empty((len(items), len(self.names)), dtype=np.float32, order="F")
        for j, name in enumerate(self.source_names):  # column by column: no query plan per request
            # numpy converts on assignment (ranks and counts are exact in float32; nulls arrive as NaN)
            X[:, j] = column(candidates, name)
        col = {name: j for j, name in enumerate(self.names)}

        def fill(lo: int) -> None:
            hi = min(lo + CHUNK_ROWS, len(items))
            r, i, t = rows[lo:hi], items[lo:hi], ref[lo:hi]
            for part in (self.item.compute(i, t), self.user.compute(profiles, r, t),
                         self.pair.compute(profiles, r, i, t), self.sim.compute(profiles, r, i)):
                for name, values in part.items():
                    X[lo:hi, col[name]] = values

        # Every feature of a row depends on that row alone, so chunks give the same values as one
        # pass; they keep temporaries in cache, and two threads share them (numpy releases the GIL).
        starts = range(0, len(items), CHUNK_ROWS)
        if len(starts) > 1:
            self._prepare(profiles)
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(fill, starts))
        elif len(items):
            fill(0)
        return X


CHUNK_ROWS = 8_192


def with_reference_times(candidates: pl.DataFrame, pipeline: FeaturePipeline, *, mode: str) -> pl.DataFrame:
    ref = pipeline.reference_times(candidates.get_column(USER).to_numpy(), mode=mode)
    return candidates.with_columns(pl.Series(REF_TS, ref))
