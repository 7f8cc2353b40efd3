"""``SearchIndex``: free text → items, by BM25, dense vectors, their fusion, or the re-ranker.

Fit discipline (as for recommendations): the reviews are split by time into a history and the
latest ``holdout`` share. Documents (with review keywords), BM25, vectors and item statistics are
built from the history; the held-out reviews are queries whose features the re-ranker learns
from. Then everything is rebuilt from all the reviews for searching.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Self, get_args

import numpy as np
import polars as pl

from shortlist.errors import ConfigError, NotFittedError
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.retrieval.content.encoders import Encoder, resolve_encoder
from shortlist.schema import ITEM_ID, RANK, SCORE, TITLE
from shortlist.search.affinity import AFFINITY_FEATURES, RecommenderAffinity
from shortlist.search.candidates import FEATURE_NAMES, Candidates, gather
from shortlist.search.data import query_texts
from shortlist.search.dense import check_store
from shortlist.search.hybrid import rrf_score
from shortlist.search.personal import personal_training_set, with_affinity
from shortlist.search.rerank import train_reranker
from shortlist.search.split import holdout_split
from shortlist.search.state import SearchState, build_state

logger = logging.getLogger(__name__)

Mode = Literal["auto", "dense", "bm25", "hybrid", "reranked", "popular"]
MODES: tuple[str, ...] = get_args(Mode)
QUERY = "query"
_BLOCK = 256  # queries per block: bounds the (queries × documents) BM25 score matrix


@dataclass(frozen=True)
class SearchOptions:
    """How an index is built: encoder spec, vector store, candidate depths, keywords, re-ranker."""

    encoder: str = "minilm"
    store: str = "numpy"
    depth: int = 100
    popular: int = 100
    keywords: int = 10
    holdout: float = 0.1
    rerank: bool = True
    seed: int = 0
    ranker_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_store(self.store)
        if self.depth < 1 or self.popular < 0 or self.keywords < 0:
            raise ConfigError(f"search options need depth >= 1, popular >= 0, keywords >= 0; got "
                              f"{self.depth}, {self.popular}, {self.keywords}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"holdout must be a fraction in (0, 1), got {self.holdout}")


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}. Fix: use one of {', '.join(MODES)}.")
    return mode  # type: ignore[return-value]


def top_per_query(query: np.ndarray, pos: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Indices of each query's top ``k`` rows by score (ties: lower position), grouped by query."""
    order = np.lexsort((pos, -score, query))
    q = query[order]
    starts = np.searchsorted(q, q, side="left")
    return order[np.arange(order.size) - starts < k]


class SearchIndex:
    """Build with :meth:`fit`, query with :meth:`search`; save/load via :mod:`shortlist.search.persist`."""

    def __init__(self, options: SearchOptions | None = None, *, encoder: Encoder | None = None) -> None:
        self.options = options or SearchOptions()
        self.encoder = encoder or resolve_encoder(self.options.encoder)
        self.state_: SearchState | None = None
        self.ranker_: LGBMRanker | None = None
        self.personal_ = False
        self.recommender_: str | None = None  # a loaded personalised index: where its recommender was
        self.metrics_: dict[str, Any] = {}

    @property
    def feature_names(self) -> list[str]:
        """The re-ranker's features (with the user affinity ones for a personalised index)."""
        return list(FEATURE_NAMES) + (list(AFFINITY_FEATURES) if self.personal_ else [])

    def fit(self, catalogue: pl.DataFrame, reviews: pl.DataFrame | None = None, *,
            label_reviews: pl.DataFrame | None = None, affinity: RecommenderAffinity | None = None) -> Self:
        """Index ``catalogue`` (+ ``reviews``); train the re-ranker when there are reviews.

        ``label_reviews``: the re-ranker's queries, given explicitly (they must follow ``reviews``
        in time); without them the latest ``options.holdout`` share of ``reviews`` is used.
        ``affinity``: personalise the re-ranker with the user's recommendations (see
        :mod:`shortlist.search.affinity`); the recommender must not have seen those queries.
        """
        opts = self.options
        memo: dict[str, np.ndarray] = {}
        self.ranker_, self.metrics_, self.personal_ = None, {"options": asdict(opts)}, affinity is not None
        if reviews is not None and opts.rerank:
            history, label = (reviews, label_reviews) if label_reviews is not None else \
                holdout_split(reviews, opts.holdout)
            state = build_state(catalogue, history, self.encoder, store=opts.store, keywords=opts.keywords, memo=memo)
            cands = self._candidates(state, query_texts(label))
            targets = state.positions(label.get_column(ITEM_ID))
            if affinity is not None:
                cands, targets = personal_training_set(cands, targets, label, state, affinity)
            self.ranker_, self.metrics_["ranker"] = train_reranker(
                cands, targets, feature_names=self.feature_names, seed=opts.seed, params=opts.ranker_params)
            reviews = pl.concat([history, label], how="vertical_relaxed")
        elif affinity is not None:
            raise ConfigError("personalised search needs the re-ranker: pass reviews and keep it on")
        self.state_ = build_state(catalogue, reviews, self.encoder, store=opts.store, keywords=opts.keywords,
                                  memo=memo)
        self.metrics_["documents"] = self.state_.n_docs
        return self

    def _state(self) -> SearchState:
        if self.state_ is None:
            raise NotFittedError("SearchIndex")
        return self.state_

    def _candidates(self, state: SearchState, queries: list[str], *, popular: int | None = None) -> Candidates:
        opts = self.options
        return gather(queries, bm25=state.bm25, dense=state.dense, stats=state.stats, depth=opts.depth,
                      popular=opts.popular if popular is None else popular)

    def item_titles(self) -> pl.DataFrame:
        """``item_id, title`` of every document: the catalogue title, else the document's start."""
        state = self._state()
        docs = state.documents.select(ITEM_ID, pl.col("document").str.slice(0, 80).alias("excerpt"))
        if TITLE in state.catalogue.columns:
            docs = docs.join(state.catalogue.select(ITEM_ID, TITLE), on=ITEM_ID, how="left", maintain_order="left")
        else:
            docs = docs.with_columns(pl.lit(None, pl.Utf8).alias(TITLE))
        return docs.select(ITEM_ID, pl.coalesce(TITLE, "excerpt").alias(TITLE))

    def resolve_mode(self, mode: str) -> Mode:
        mode = check_mode(mode)
        if mode == "auto":
            return "reranked" if self.ranker_ is not None else "hybrid"
        if mode == "reranked" and self.ranker_ is None:
            raise ConfigError("this index has no re-ranker (it was built without reviews or with --no-rerank). "
                              "Fix: use --mode hybrid, dense or bm25, or index with --reviews")
        return mode

    def search(self, queries: list[str], k: int = 10, *, mode: str = "auto", users: list[str | None] | None = None,
               affinity: RecommenderAffinity | None = None) -> pl.DataFrame:
        """``query, item_id, rank, score``: up to ``k`` items per query (row number in ``queries``).

        A query can get fewer than ``k`` rows (BM25 finds only documents sharing a word with it).
        ``users`` (one per query, ``None`` for anonymous) with ``affinity`` personalise the
        re-ranked mode of a personalised index.
        """
        if k < 1:
            raise ConfigError(f"k must be a positive integer, got {k}")
        resolved = self.resolve_mode(mode)
        if users is not None and (len(users) != len(queries) or affinity is None or not self.personal_):
            raise ConfigError("users need one entry per query, an affinity, and an index built with a recommender "
                              "(`shortlist search index --model DIR`)")
        parts = [self._search_block(queries[s:s + _BLOCK], k, resolved, offset=s,
                                    users=None if users is None else users[s:s + _BLOCK], affinity=affinity)
                 for s in range(0, len(queries), _BLOCK)]
        state = self._state()
        frame = pl.DataFrame({QUERY: np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64),
                              "pos": np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64),
                              SCORE: np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)})
        frame = frame.with_columns(pl.int_range(pl.len()).over(QUERY).add(1).cast(pl.Int32).alias(RANK))
        ids = state.documents.get_column(ITEM_ID).gather(frame.get_column("pos"))
        return frame.with_columns(ids.alias(ITEM_ID)).select(QUERY, ITEM_ID, RANK, SCORE)

    def _search_block(self, queries: list[str], k: int, mode: Mode, *, offset: int, users: list[str | None] | None,
                      affinity: RecommenderAffinity | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        state = self._state()
        n_q = len(queries)
        if mode in ("dense", "bm25", "popular"):
            if mode == "dense":
                pos, score = state.dense.search(state.dense.encode(queries), k)
            elif mode == "bm25":
                pos, score = state.bm25.search(queries, k)
            else:
                top = state.stats.popular[:k]
                pos = np.broadcast_to(top, (n_q, top.size))
                score = np.broadcast_to(-np.arange(1, top.size + 1, dtype=np.float32), pos.shape)
            rows, cols = np.nonzero(pos >= 0)
            return rows + offset, pos[rows, cols], score[rows, cols].astype(np.float32)
        cands = self._candidates(state, queries, popular=0 if mode == "hybrid" else None)
        if mode == "hybrid":
            score = rrf_score(cands.feature("dense_rank"), cands.feature("bm25_rank"))
        else:
            assert self.ranker_ is not None
            if self.personal_:
                cands = with_affinity(cands, state, users or [None] * n_q, affinity)
            score = self.ranker_.predict(cands.features)
        keep = top_per_query(cands.query, cands.pos, score, k)
        return cands.query[keep] + offset, cands.pos[keep], score[keep].astype(np.float32)
