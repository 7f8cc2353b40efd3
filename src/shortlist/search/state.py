"""What a search index holds for one set of reviews: documents, BM25, vectors and item statistics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from shortlist.errors import ConfigError
from shortlist.retrieval.content.encoders import Encoder
from shortlist.schema import ITEM_ID
from shortlist.search.dense import DenseRetriever
from shortlist.search.documents import DOCUMENT, item_documents
from shortlist.search.keywords import review_keywords
from shortlist.search.lexical import BM25
from shortlist.search.stats import ItemStats, item_stats

logger = logging.getLogger(__name__)


@dataclass
class SearchState:
    """Documents (row = position) and everything built over them."""

    catalogue: pl.DataFrame
    documents: pl.DataFrame  # item_id, document
    bm25: BM25
    dense: DenseRetriever
    stats: ItemStats

    @property
    def n_docs(self) -> int:
        return self.documents.height

    def positions(self, item_ids: pl.Series) -> np.ndarray:
        """Document position of each item id (-1 for items without a document)."""
        lookup = self.documents.select(ITEM_ID, pl.int_range(pl.len(), dtype=pl.Int64).alias("pos"))
        frame = pl.DataFrame({ITEM_ID: item_ids.cast(pl.Utf8)})
        pos = frame.join(lookup, on=ITEM_ID, how="left", maintain_order="left").get_column("pos")
        return pos.fill_null(-1).to_numpy().astype(np.int64)


def build_documents(catalogue: pl.DataFrame, reviews: pl.DataFrame | None, *, keywords: int) -> pl.DataFrame:
    """Item documents with the top ``keywords`` review phrases of each item (none when 0)."""
    kw = review_keywords(reviews, top_n=keywords) if reviews is not None and keywords > 0 else None
    docs = item_documents(catalogue, kw)
    if docs.height == 0:
        raise ConfigError("no item has any text to search (title, description, features, category, brand "
                          "or review keywords)")
    return docs


def build_state(catalogue: pl.DataFrame, reviews: pl.DataFrame | None, encoder: Encoder, *, store: str,
                keywords: int, memo: dict[str, np.ndarray] | None = None) -> SearchState:
    """Documents from ``catalogue`` and ``reviews``, their BM25 index, vectors and statistics."""
    docs = build_documents(catalogue, reviews, keywords=keywords)
    texts = docs.get_column(DOCUMENT).to_list()
    bm25 = BM25().fit(texts)
    dense = DenseRetriever(encoder, store=store).fit(texts, memo=memo)
    logger.info("search state: %d documents", docs.height)
    return SearchState(catalogue=catalogue, documents=docs, bm25=bm25, dense=dense,
                       stats=item_stats(docs, catalogue, reviews))
