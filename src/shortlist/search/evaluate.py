"""Offline evaluation of text search: reviews split by time, the latest reviews' texts are the queries.

The protocol: reviews split 80/10/10 by time. The encoder is fine-tuned on the first part (the
second scores it); each index is built from the first part with the second as the re-ranker's
queries, then rebuilt from both; the third part's texts are the test queries and each one's item
its single relevant answer. Every row of the table is one search mode of one index, run through
:meth:`SearchIndex.search` exactly as ``shortlist search batch`` runs it. A query whose item has no
document counts as a miss; queries without text are left out (counted in ``meta``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.errors import ConfigError
from shortlist.evaluation.metrics import compute_metrics, metric_curve
from shortlist.schema import ITEM_ID, RANK
from shortlist.search.data import REVIEW_TEXT, query_texts
from shortlist.search.finetune import FinetuneConfig, finetune
from shortlist.search.index import QUERY, SearchIndex, SearchOptions
from shortlist.search.rerank import TooFewQueriesError
from shortlist.search.split import split_by_time

logger = logging.getLogger(__name__)

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50, 100)
MODEL = "model"
#: (row name, index, mode): which index ("base" or "tuned") and search mode gives each row.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("popularity", "base", "popular"), ("bm25", "base", "bm25"), ("base encoder", "base", "dense"),
    ("fine-tuned encoder", "tuned", "dense"), ("hybrid", "tuned", "hybrid"),
    ("re-ranked (base encoder)", "base", "reranked"), ("re-ranked", "tuned", "reranked"),
)


@dataclass
class SearchEvaluation:
    """Models × Recall@K / MRR@max(K), recall curves for plots, and what the run did."""

    table: pl.DataFrame
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    importance: pl.DataFrame | None = None


def _targets(index: SearchIndex, test: pl.DataFrame) -> tuple[sp.csr_matrix, int]:
    """One target per query; items without a document point at an extra column nothing recommends."""
    state = index._state()
    pos = state.positions(test.get_column(ITEM_ID))
    n = state.n_docs
    cols = np.where(pos >= 0, pos, n)
    rows = np.arange(len(pos))
    return sp.csr_matrix((np.ones(len(pos), np.float32), (rows, cols)), shape=(len(pos), n + 1)), n + 1


def _recs(index: SearchIndex, queries: list[str], k: int, mode: str) -> np.ndarray:
    found = index.search(queries, k, mode=mode)
    recs = np.full((len(queries), k), -1, dtype=np.int64)
    pos = index._state().positions(found.get_column(ITEM_ID))
    recs[found.get_column(QUERY).to_numpy(), found.get_column(RANK).to_numpy() - 1] = pos
    return recs


def score_rows(indexes: dict[str, SearchIndex], test: pl.DataFrame, ks: Sequence[int]
               ) -> tuple[pl.DataFrame, dict[str, dict[str, list[float]]]]:
    """The results table and recall@K curves of every row of :data:`ROWS` whose index is given."""
    queries, k_max = query_texts(test), max(ks)
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, list[float]]] = {"recall": {}}
    for name, which, mode in ROWS:
        index = indexes.get(which)
        if index is None or (mode == "reranked" and index.ranker_ is None):
            continue
        targets, n_items = _targets(index, test)
        recs = _recs(index, queries, k_max, mode)
        m = compute_metrics(recs, targets, ks=ks, metrics=("recall", "mrr"), n_items=n_items)
        rows.append({MODEL: name, **{f"recall@{k}": m[f"recall@{k}"] for k in ks}, f"mrr@{k_max}": m[f"mrr@{k_max}"]})
        curves["recall"][name] = metric_curve(recs, targets, metric="recall", n_items=n_items).tolist()
    return pl.DataFrame(rows), curves


def _fit(options: SearchOptions, catalogue: pl.DataFrame, train: pl.DataFrame, valid: pl.DataFrame,
         meta: dict[str, Any], which: str) -> SearchIndex:
    """An index with its re-ranker, or without one (noted in ``meta``) when the validation
    reviews are too few to train it."""
    try:
        index = SearchIndex(options).fit(catalogue, train, label_reviews=valid)
    except TooFewQueriesError as e:
        logger.warning("%s index: no re-ranker (%s)", which, e)
        meta[f"ranker_{which}"] = f"not trained: {e}"
        return SearchIndex(replace(options, rerank=False)).fit(catalogue, pl.concat([train, valid]))
    meta[f"ranker_{which}"] = index.metrics_.get("ranker", {})
    return index


def _finetune(catalogue: pl.DataFrame, train: pl.DataFrame, valid: pl.DataFrame, out: Path, config: FinetuneConfig,
              meta: dict[str, Any]) -> Path:
    """Fine-tune on ``train`` (validated on ``valid``) into ``out``; the run's summary goes to ``meta``."""
    result = finetune(catalogue, train, valid, out, config)
    meta["finetune"] = {k: v for k, v in result.to_dict().items() if k != "evaluations"}
    meta["finetune_validation"] = {f"step {e['step']}": {m: e[m] for m in ("recall@10", "mrr@100") if m in e}
                                   for e in result.evaluations}
    return result.model_dir


def evaluate_search(
    catalogue: pl.DataFrame,
    reviews: pl.DataFrame,
    *,
    options: SearchOptions | None = None,
    base_encoder: str = "minilm",
    tuned_encoder: str | Path | None = None,
    finetune_out: Path | None = None,
    finetune_config: FinetuneConfig | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> SearchEvaluation:
    """Split, fine-tune (unless ``tuned_encoder`` is given; into ``finetune_out``), index, score.

    Without ``tuned_encoder`` and ``finetune_out`` the fine-tuned rows are skipped.
    """
    if not ks or min(ks) < 1:
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")
    opts = options or SearchOptions()
    train, valid, test = split_by_time(reviews, fractions)
    has_text = test.get_column(REVIEW_TEXT).fill_null("").str.strip_chars() != ""
    meta: dict[str, Any] = {"reviews": reviews.height, "train_reviews": train.height, "valid_reviews": valid.height,
                            "test_reviews": test.height, "test_queries_without_text": int((~has_text).sum()),
                            "catalogue_items": catalogue.height}
    test = test.filter(has_text)
    seconds: dict[str, float] = {}
    if tuned_encoder is None and finetune_out is not None:
        start = time.perf_counter()
        config = finetune_config or FinetuneConfig(base_model=base_encoder)
        tuned_encoder = _finetune(catalogue, train, valid, finetune_out, config, meta)
        seconds["finetune"] = round(time.perf_counter() - start, 1)
    indexes: dict[str, SearchIndex] = {}
    for which, encoder in (("base", base_encoder), ("tuned", tuned_encoder)):
        if encoder is None:
            continue
        start = time.perf_counter()
        indexes[which] = _fit(replace(opts, encoder=str(encoder)), catalogue, train, valid, meta, which)
        seconds[f"index_{which}"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    table, curves = score_rows(indexes, test, ks)
    seconds["search"] = round(time.perf_counter() - start, 1)
    meta.update(test_queries=test.height, documents=next(iter(indexes.values()))._state().n_docs, seconds=seconds)
    last = indexes.get("tuned") or indexes.get("base")
    importance = last.ranker_.importance() if last is not None and last.ranker_ is not None else None
    return SearchEvaluation(table=table, curves=curves, meta=meta, importance=importance)
