"""Free-text search over a catalogue: item documents, BM25, dense vectors, fusion and a re-ranker.

A query (keywords, or a review's text) is answered from item documents built from the catalogue
and the items' review keywords: BM25 (``bm25s``), a sentence-transformer (the bundled MiniLM,
any local model, or one fine-tuned here on the catalogue's reviews), their reciprocal rank
fusion, and a LightGBM lambdarank re-ranker over text scores, ranks and item statistics.
"""

from __future__ import annotations

from shortlist.search.documents import DOCUMENT, item_documents
from shortlist.search.evaluate import SearchEvaluation, evaluate_search
from shortlist.search.finetune import FinetuneConfig, FinetuneResult, finetune
from shortlist.search.index import MODES, SearchIndex, SearchOptions
from shortlist.search.keywords import review_keywords
from shortlist.search.lexical import BM25
from shortlist.search.persist import load_index, save_index
from shortlist.search.split import holdout_split, split_by_time

__all__ = [
    "BM25",
    "DOCUMENT",
    "MODES",
    "FinetuneConfig",
    "FinetuneResult",
    "SearchEvaluation",
    "SearchIndex",
    "SearchOptions",
    "evaluate_search",
    "finetune",
    "holdout_split",
    "item_documents",
    "load_index",
    "review_keywords",
    "save_index",
    "split_by_time",
]
