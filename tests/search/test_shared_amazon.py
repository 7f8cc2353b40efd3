"""The two Amazon 2018 categories of ../shared/data as search inputs (skipped when absent).

The full evaluation (fine-tuning, two indexes) takes too long for the suite on a CPU; it is
``benchmarks/bench_search.py`` (results in benchmarks/RESULTS.md). This checks the inputs, the
split and the lexical baseline on the real files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shortlist.data.loaders import load_named
from shortlist.search.data import catalogue_from_dataset, query_texts, reviews_from_dataset
from shortlist.search.lexical import BM25
from shortlist.search.split import split_by_time
from shortlist.search.state import build_documents

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CASES = [("amazon-gift-cards", "amazon18-gift-cards", 1547, 1547, 2972),
         ("amazon-magazine-subs", "amazon18-magazine-subs", 2320, 2325, 2333)]


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(("name", "folder", "n_catalogue", "n_documents", "n_reviews"), CASES)
def test_amazon_search_inputs_and_bm25(name, folder, n_catalogue, n_documents, n_reviews) -> None:
    if not (SHARED_DATA / folder).exists():
        pytest.skip(f"shared data {folder!r} not available")
    ds = load_named(name, search_dirs=[SHARED_DATA])
    catalogue, reviews = catalogue_from_dataset(ds), reviews_from_dataset(ds)
    assert (catalogue.height, reviews.height) == (n_catalogue, n_reviews)
    train, valid, test = split_by_time(reviews, (0.8, 0.1, 0.1))
    assert train.height + valid.height + test.height == n_reviews
    assert train.get_column("timestamp").max() <= valid.get_column("timestamp").min()
    assert valid.get_column("timestamp").max() <= test.get_column("timestamp").min()
    # the whole catalogue, plus reviewed items missing from the metadata (documents from their keywords)
    docs = build_documents(catalogue, train, keywords=10)
    assert docs.height == n_documents
    bm25 = BM25().fit(docs.get_column("document").to_list())
    pos, _ = bm25.search(query_texts(test), 10)
    target = docs.with_row_index("pos").join(test.select("item_id").with_row_index("q"), on="item_id")
    hits = np.zeros(test.height, dtype=bool)
    q, p = target.get_column("q").to_numpy(), target.get_column("pos").to_numpy()
    hits[q] = (pos[q] == p[:, None]).any(axis=1)
    assert 0.0 < hits.mean() < 1.0  # the lexical baseline finds some test items and misses others
    assert pl.Series(query_texts(test)).str.len_chars().max() > 0
