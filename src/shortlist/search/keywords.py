"""Review keywords per item: the TF-IDF top phrases of each item's reviews, extracted locally.

Each item's reviews (title and text) are one document; a phrase (one or two words, English stop
words removed) scores high when it is frequent in that item's reviews and rare in the others'.
Only the reviews handed in are read, so a caller passes the training-period reviews.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from shortlist.errors import ConfigError
from shortlist.schema import ITEM_ID
from shortlist.search.data import REVIEW_TEXT, REVIEW_TITLE

logger = logging.getLogger(__name__)

KEYWORDS = "keywords"
DEFAULT_TOP_N = 10
_TOKEN = r"(?u)\b[^\W\d_][^\W_]+\b"  # a word of 2+ characters starting with a letter (no bare numbers)
_TEXT = "__text"


def item_review_texts(reviews: pl.DataFrame) -> pl.DataFrame:
    """``item_id, __text``: each item's review titles and texts joined, items in first-seen order."""
    text = pl.concat_str([pl.col(REVIEW_TITLE).fill_null(""), pl.col(REVIEW_TEXT).fill_null("")], separator=". ")
    return (reviews.select(pl.col(ITEM_ID), text.alias(_TEXT))
            .group_by(ITEM_ID, maintain_order=True).agg(pl.col(_TEXT).str.join(" ")))


def top_phrases(texts: list[str], *, top_n: int = DEFAULT_TOP_N, max_ngram: int = 2) -> list[list[str]]:
    """The ``top_n`` TF-IDF phrases of each text (IDF over ``texts``), best first; ties by the
    phrase's alphabetical order, so the result is deterministic. A text without any phrase gets []."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if top_n < 1 or max_ngram < 1:
        raise ConfigError(f"keywords need top_n >= 1 and max_ngram >= 1, got {top_n}, {max_ngram}")
    out: list[list[str]] = [[] for _ in texts]
    if not texts:
        return out
    vectorizer = TfidfVectorizer(stop_words="english", ngram_range=(1, max_ngram), token_pattern=_TOKEN,
                                 sublinear_tf=True, lowercase=True, dtype=np.float32)
    try:
        weights = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no phrase at all (only stop words, numbers or punctuation)
        logger.warning("keywords: the texts have no phrase to extract")
        return out
    weights.sort_indices()
    rows = np.repeat(np.arange(weights.shape[0]), np.diff(weights.indptr))
    order = np.lexsort((weights.indices, -weights.data, rows))  # per row: weight desc, then phrase
    rank = np.arange(order.size) - weights.indptr[rows[order]]
    keep = order[rank < top_n]
    picked = pl.DataFrame({"row": rows[keep], KEYWORDS: vectorizer.get_feature_names_out()[weights.indices[keep]]})
    for row, phrases in picked.group_by("row", maintain_order=True).agg(pl.col(KEYWORDS)).iter_rows():
        out[row] = phrases
    return out


def review_keywords(reviews: pl.DataFrame, *, top_n: int = DEFAULT_TOP_N, max_ngram: int = 2) -> pl.DataFrame:
    """``item_id, keywords`` (a list of phrases, best first) for every item whose reviews have one."""
    per_item = item_review_texts(reviews)
    phrases = top_phrases(per_item.get_column(_TEXT).to_list(), top_n=top_n, max_ngram=max_ngram)
    out = pl.DataFrame({ITEM_ID: per_item.get_column(ITEM_ID), KEYWORDS: phrases},
                       schema={ITEM_ID: pl.Utf8, KEYWORDS: pl.List(pl.Utf8)})
    return out.filter(pl.col(KEYWORDS).list.len() > 0)
