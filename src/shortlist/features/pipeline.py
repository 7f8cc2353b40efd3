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
from shortlist.features.similarity import SIMILARITY_FEATURES, SimilarityFeatures
from shortlist.features.stats import HistoryStats
from shortlist.features.user import USER_FEATURES, UserFeatures
from shortlist.retrieval.union import FUSED, rank_col, score_col
from shortlist.schema import N_SOURCES, USER

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
    ) -> None:
        self.sources = list(sources)
        self.item = ItemFeatures()
        self.user = UserFeatures()
        self.pair = PairFeatures(similarities=similarities or {})
        self.sim = SimilarityFeatures(embeddings=embeddings or {})
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
        if self.stats_ is None:
            raise NotFittedError("FeaturePipeline")
        parts = [candidates.select([pl.col(c).cast(pl.Float32) for c in self.source_names])]
        # Two threads (numpy and scipy release the GIL in their kernels): pair+user beside item+sim.
        with ThreadPoolExecutor(max_workers=2) as pool:
            pair_user = pool.submit(lambda: [self.pair.transform(candidates), self.user.transform(candidates)])
            item_sim = [self.item.transform(candidates), self.sim.transform(candidates)]
            pair, user = pair_user.result()
        parts += [item_sim[0], user, pair, item_sim[1]]
        out = pl.concat(parts, how="horizontal")
        return out.select(self.names)


def with_reference_times(candidates: pl.DataFrame, pipeline: FeaturePipeline, *, mode: str) -> pl.DataFrame:
    ref = pipeline.reference_times(candidates.get_column(USER).to_numpy(), mode=mode)
    return candidates.with_columns(pl.Series(REF_TS, ref))
