"""The lexical baseline: Okapi BM25 over item documents (``bm25s``), English stop words and stems.

``bm25s`` and ``PyStemmer`` are the optional extra ``shortlist[search]``. The index is rebuilt
from the documents when a search index is loaded (it is cheap, and nothing is unpickled).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Self

import numpy as np

from shortlist.errors import ConfigError, DependencyMissingError, NotFittedError
from shortlist.retrieval.topk import topk_dense

logger = logging.getLogger(__name__)

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyMissingError(package, "search", "BM25 search") from exc


class BM25:
    """Okapi BM25 (Lucene variant, ``k1``, ``b``) over tokenised, stop-worded, stemmed documents."""

    def __init__(self, *, k1: float = 1.5, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = k1, b
        self._retriever: Any = None
        self._stemmer: Any = None
        self.n_docs_ = 0

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Lower-cased words of 2+ characters, English stop words removed, Snowball-stemmed."""
        bm25s = _import("bm25s", "bm25s")
        if self._stemmer is None:
            self._stemmer = _import("Stemmer", "PyStemmer").Stemmer("english")
        tokens: list[list[str]] = bm25s.tokenize(texts, lower=True, token_pattern=_TOKEN_PATTERN, stopwords="en",
                                                 stemmer=self._stemmer, return_ids=False, show_progress=False)
        return tokens

    def fit(self, documents: list[str]) -> Self:
        """Index ``documents`` (position = document id)."""
        bm25s = _import("bm25s", "bm25s")
        if not documents:
            raise ConfigError("BM25 needs at least one document")
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        retriever.index(self.tokenize(documents), show_progress=False)
        self._retriever, self.n_docs_ = retriever, len(documents)
        return self

    def score_queries(self, queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n_queries × n_docs) float32 BM25 scores, and each query's number of indexed words.

        A query with no indexed word scores 0 everywhere."""
        if self._retriever is None:
            raise NotFittedError("BM25")
        out = np.zeros((len(queries), self.n_docs_), dtype=np.float32)
        counts = np.zeros(len(queries), dtype=np.float32)
        vocab = self._retriever.vocab_dict
        for row, tokens in enumerate(self.tokenize(queries)):
            known = [t for t in tokens if t in vocab]  # words the catalogue never uses score nothing
            counts[row] = len(known)
            if known:
                out[row] = self._retriever.get_scores(known)
        return out, counts

    def scores(self, queries: list[str]) -> np.ndarray:
        """(n_queries × n_docs) float32 BM25 scores (see :meth:`score_queries`)."""
        return self.score_queries(queries)[0]

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` document positions and scores per query (score desc, ties by position; documents
        scoring 0 are not returned: -1 / -inf padding)."""
        scores = self.scores(queries)
        scores[scores <= 0] = -np.inf
        return topk_dense(scores, k)
