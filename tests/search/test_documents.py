"""Search inputs: catalogue and review frames, the time split, review keywords, item documents."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from shortlist.errors import ConfigError, DataValidationError, MissingColumnError
from shortlist.search.data import catalogue_frame, read_catalogue, read_reviews, review_frame
from shortlist.search.documents import item_documents
from shortlist.search.keywords import review_keywords, top_phrases
from shortlist.search.split import holdout_split, split_by_time


def test_split_by_time_sizes_order_and_ties() -> None:
    reviews = review_frame(pl.DataFrame({"item_id": list("abcdefghij"), "timestamp": [5, 1, 1, 3, 2, 9, 9, 4, 8, 7],
                                         "review_text": ["x"] * 10}))
    train, valid, test = split_by_time(reviews, (0.8, 0.1, 0.1))
    # ties (1, 1 and 9, 9) keep the input order
    assert train.get_column("item_id").to_list() == list("bcedhaji")
    assert valid.get_column("item_id").to_list() == ["f"]
    assert test.get_column("item_id").to_list() == ["g"]
    early, late = holdout_split(reviews, 0.3)
    assert (early.height, late.height) == (7, 3)
    assert late.get_column("timestamp").to_list() == [8, 9, 9]


@pytest.mark.parametrize("fractions", [(0.5,), (0.5, 0.6), (1.2, -0.2), (0.0, 1.0)])
def test_split_rejects_bad_fractions(reviews: pl.DataFrame, fractions: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="fractions"):
        split_by_time(reviews, fractions)


def test_split_needs_a_review_per_part() -> None:
    two = review_frame(pl.DataFrame({"item_id": ["a", "b"], "timestamp": [1, 2], "review_text": ["x", "y"]}))
    with pytest.raises(DataValidationError, match="at least one review a part"):
        split_by_time(two, (0.8, 0.1, 0.1))


def test_top_phrases_are_deterministic_and_skip_stop_words_and_numbers() -> None:
    texts = ["great green tea, green tea every morning", "strong coffee 2024", "the and of"]
    phrases = top_phrases(texts, top_n=3)
    assert phrases[0] == ["green", "green tea", "tea"]
    assert phrases[1] == ["coffee", "strong", "strong coffee"]
    assert phrases[2] == []


def test_review_keywords_per_item(reviews: pl.DataFrame) -> None:
    kw = review_keywords(reviews, top_n=2)
    assert kw.get_column("item_id").to_list() == ["tea", "coffee", "yoga", "bike", "novel"]
    assert kw.filter(pl.col("item_id") == "bike").get_column("keywords").item().to_list() == ["helmet", "bike"]
    with pytest.raises(ConfigError):
        review_keywords(reviews, top_n=0)


def test_item_documents_layout(catalogue: pl.DataFrame) -> None:
    keywords = pl.DataFrame({"item_id": ["tea", "ghost"], "keywords": [["green tea", "calm"], ["spooky"]]})
    docs = item_documents(catalogue, keywords)
    # "plain" has no text at all and is left out; "ghost" has reviews but no catalogue row
    assert docs.get_column("item_id").to_list() == ["tea", "coffee", "yoga", "bike", "novel", "ghost"]
    tea = docs.filter(pl.col("item_id") == "tea").get_column("document").item()
    assert tea == ("[Title] Green tea leaves [Category] Grocery > Tea [Brand] Leafy [Review keywords] green tea, calm "
                   "[Description] Loose leaf green tea from Japan")
    assert docs.filter(pl.col("item_id") == "ghost").get_column("document").item() == "[Review keywords] spooky"


def test_catalogue_frame_cleans_messy_ids() -> None:
    raw = pl.DataFrame({"item_id": [7, 7, None, 8], "title": ["a", "dup", "x", None], "price": ["1.5", "2", "3", None]})
    cat = catalogue_frame(raw.with_columns(pl.col("price").cast(pl.Float64)))
    assert cat.get_column("item_id").to_list() == ["7", "8"]
    assert cat.get_column("title").to_list() == ["a", None]
    with pytest.raises(MissingColumnError):
        catalogue_frame(pl.DataFrame({"sku": ["a"]}))


def _jsonl_gz(path, rows) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def test_reads_amazon_2018_files(tmp_path) -> None:
    meta = tmp_path / "meta_Toys.json.gz"
    _jsonl_gz(meta, [{"asin": "A1", "title": "Kite &amp; string", "description": ["<b>Flies</b> high"],
                      "feature": ["red"], "category": ["Toys", "Outdoor"], "price": "$5.00", "brand": "Sky"},
                     {"asin": "A2", "title": '<span class="a-size-medium"', "description": [], "feature": [],
                      "category": ["Toys"], "price": "", "brand": ""}])
    reviews = tmp_path / "Toys_5.json.gz"
    _jsonl_gz(reviews, [{"reviewerID": "u1", "asin": "A1", "overall": 5.0, "unixReviewTime": 100,
                         "reviewText": "  flies well  ", "summary": "Great"},
                        {"reviewerID": "u2", "asin": "A2", "overall": 3.0, "unixReviewTime": 50}])
    cat = read_catalogue(meta)
    assert cat.get_column("title").to_list() == ["Kite & string", None]
    assert cat.get_column("category").to_list() == ["Toys > Outdoor", "Toys"]
    got = read_reviews(reviews)
    assert got.sort("timestamp").select("item_id", "user_id", "review_text", "review_title").rows() == [
        ("A2", "u2", None, None), ("A1", "u1", "flies well", "Great")]


def test_reads_generic_tables(tmp_path) -> None:
    items = tmp_path / "items.csv"
    pl.DataFrame({"item_id": ["007", "008"], "title": ["Spy kit", "Decoder ring"]}).write_csv(items)
    reviews = tmp_path / "reviews.csv"
    pl.DataFrame({"user_id": ["a", "b"], "item_id": ["007", "008"], "timestamp": [1, 2],
                  "review_text": ["secret agent stuff", "decodes"]}).write_csv(reviews)
    assert read_catalogue(items).get_column("item_id").to_list() == ["007", "008"]
    assert read_reviews(reviews).get_column("item_id").to_list() == ["007", "008"]
    no_text = tmp_path / "no_text.csv"
    pl.DataFrame({"user_id": ["a"], "item_id": ["007"], "timestamp": [1]}).write_csv(no_text)
    with pytest.raises(MissingColumnError, match="review_text"):
        read_reviews(no_text)
