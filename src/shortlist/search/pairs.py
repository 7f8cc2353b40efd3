"""Training pairs for the encoder: (query → item document) from training reviews only.

Query types: ``review`` (the review's text), ``keywords`` (the review's top TF-IDF phrases, like
words a customer would type) or ``both``. Optional hard negatives: for each pair, the documents
of other items the base encoder ranks highest for its query, never the same item and never a
document identical to the positive one.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

import numpy as np
import polars as pl

from shortlist.errors import ConfigError, DataValidationError
from shortlist.index import VectorIndex
from shortlist.retrieval.content.encoders import Encoder
from shortlist.schema import ITEM_ID
from shortlist.search.data import REVIEW_TEXT
from shortlist.search.dense import encode_texts
from shortlist.search.documents import DOCUMENT
from shortlist.search.keywords import top_phrases

logger = logging.getLogger(__name__)

QueryType = Literal["review", "keywords", "both"]
QUERY_TYPES: tuple[str, ...] = get_args(QueryType)
ANCHOR, POSITIVE = "anchor", "positive"
QUERY_KEYWORDS = 5


def check_query_type(query_type: str) -> QueryType:
    if query_type not in QUERY_TYPES:
        raise ConfigError(f"unknown query type {query_type!r}. Fix: use one of {', '.join(QUERY_TYPES)}.")
    return query_type  # type: ignore[return-value]


def review_queries(reviews: pl.DataFrame, query_type: str) -> pl.DataFrame:
    """``item_id, anchor``: one query per review (two for ``both``); empty queries are dropped."""
    query_type = check_query_type(query_type)
    text = reviews.get_column(REVIEW_TEXT).fill_null("").to_list()
    parts = []
    if query_type in ("review", "both"):
        parts.append(pl.DataFrame({ITEM_ID: reviews.get_column(ITEM_ID), ANCHOR: text}))
    if query_type in ("keywords", "both"):
        phrases = [", ".join(p) for p in top_phrases(text, top_n=QUERY_KEYWORDS)]
        parts.append(pl.DataFrame({ITEM_ID: reviews.get_column(ITEM_ID), ANCHOR: phrases}))
    queries = pl.concat(parts)
    return queries.filter(pl.col(ANCHOR).str.strip_chars() != "")


def training_pairs(reviews: pl.DataFrame, documents: pl.DataFrame, *, query_type: str = "review") -> pl.DataFrame:
    """``item_id, anchor, positive``: each review's query with its item's document.

    Reviews with no text and reviews of items without a document are left out (logged).
    """
    queries = review_queries(reviews, query_type)
    pairs = queries.join(documents.rename({DOCUMENT: POSITIVE}), on=ITEM_ID, how="inner", maintain_order="left")
    dropped = queries.height - pairs.height
    if dropped:
        logger.info("training pairs: %d queries of items without a document left out", dropped)
    if pairs.height == 0:
        raise DataValidationError("no training pair: no review with text belongs to an item with a document. "
                                  "Fix: check that the reviews' item ids match the catalogue's")
    return pairs


def add_hard_negatives(pairs: pl.DataFrame, documents: pl.DataFrame, encoder: Encoder, *, n: int,
                       memo: dict[str, np.ndarray] | None = None) -> pl.DataFrame:
    """``pairs`` with columns ``negative_1..n``: per query, the ``n`` distinct document texts the
    encoder ranks highest, skipping its positive (so never the query's own item, nor an item whose
    document is word for word the same)."""
    if n < 1:
        raise ConfigError(f"hard negatives: n must be positive, got {n}")
    texts = np.asarray(documents.get_column(DOCUMENT).unique(maintain_order=True).to_list(), dtype=object)
    if len(texts) <= n:
        raise DataValidationError(f"hard negatives: {n} asked but only {len(texts)} distinct documents")
    index = VectorIndex(backend="numpy", metric="ip").build(encode_texts(encoder, texts.tolist(), memo))
    pos, _ = index.search(encode_texts(encoder, pairs.get_column(ANCHOR).to_list(), memo), n + 1)
    positive = pairs.get_column(POSITIVE).to_numpy().astype(object)
    ok = (pos >= 0) & (texts[np.maximum(pos, 0)] != positive[:, None])
    slot = np.cumsum(ok, axis=1)  # the j-th usable column of each row is where ok and slot == j
    chosen = [pos[np.arange(len(pos)), np.argmax(ok & (slot == j), axis=1)] for j in range(1, n + 1)]
    return pairs.with_columns([pl.Series(f"negative_{j}", texts[c].tolist(), dtype=pl.Utf8)
                               for j, c in enumerate(chosen, start=1)])
