"""SearchIndex on the tiny catalogue: every mode, the re-ranker's fit discipline, save/load."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shortlist.errors import ConfigError, ModelLoadError
from shortlist.search import SearchIndex, SearchOptions, load_index, save_index
from shortlist.search.index import top_per_query

RANKER = {"min_child_samples": 2, "min_rounds": 5, "n_estimators": 20}


def _index(catalogue, reviews, encoder, **kw) -> SearchIndex:
    options = SearchOptions(depth=3, popular=2, holdout=0.3, ranker_params=RANKER, **kw)
    return SearchIndex(options, encoder=encoder).fit(catalogue, reviews)


QUERIES = ["green tea for the morning", "helmet for cycling", "", "zzz unknown words"]


def test_every_mode_finds_the_obvious_item(catalogue, reviews, hash_encoder) -> None:
    index = _index(catalogue, reviews, hash_encoder)
    assert index.metrics_["documents"] == 5  # "plain" has no text
    assert index.metrics_["ranker"]["label_queries"] == 14
    for mode in ("bm25", "dense", "hybrid", "reranked", "auto"):
        found = index.search(QUERIES, 2, mode=mode)
        top = found.filter(pl.col("rank") == 1).select("query", "item_id").rows()
        assert (0, "tea") in top and (1, "bike") in top, mode
        assert found.columns == ["query", "item_id", "rank", "score"]
        assert found.group_by("query").len().get_column("len").max() <= 2


def test_empty_and_unknown_queries(catalogue, reviews, hash_encoder) -> None:
    index = _index(catalogue, reviews, hash_encoder)
    assert index.search(["", "zzz"], 3, mode="bm25").height == 0  # no shared word, no BM25 result
    assert index.search([""], 3, mode="dense").height == 0
    # the re-ranker still answers an empty query from the most reviewed items (the popular candidates)
    reranked = index.search([""], 3, mode="reranked")
    assert sorted(reranked.get_column("item_id").to_list()) == sorted(
        index.search([""], 2, mode="popular").get_column("item_id").to_list())


def test_popular_mode_orders_by_review_count_then_recency(catalogue, reviews, hash_encoder) -> None:
    extra = reviews.head(2).with_columns(pl.lit("coffee").alias("item_id"), pl.col("timestamp") + 10**6)
    index = _index(catalogue, pl.concat([reviews, extra]), hash_encoder)
    found = index.search(["anything"], 5, mode="popular")
    # coffee has 11 reviews; the others 9 each, the most recently reviewed first
    assert found.get_column("item_id").to_list() == ["coffee", "novel", "bike", "yoga", "tea"]
    assert found.get_column("rank").to_list() == [1, 2, 3, 4, 5]


def test_k_larger_than_the_catalogue(catalogue, reviews, hash_encoder) -> None:
    index = _index(catalogue, reviews, hash_encoder)
    assert index.search(["tea"], 50, mode="dense").height == 5


def test_same_seed_same_results(catalogue, reviews, hash_encoder) -> None:
    a = _index(catalogue, reviews, hash_encoder).search(QUERIES, 3)
    b = _index(catalogue, reviews, hash_encoder).search(QUERIES, 3)
    assert a.equals(b)


def test_without_reviews_there_is_no_reranker(catalogue, hash_encoder) -> None:
    index = SearchIndex(SearchOptions(), encoder=hash_encoder).fit(catalogue)
    assert index.resolve_mode("auto") == "hybrid"
    with pytest.raises(ConfigError, match="no re-ranker"):
        index.search(["tea"], 3, mode="reranked")
    with pytest.raises(ConfigError, match="unknown search mode"):
        index.search(["tea"], 3, mode="magic")
    with pytest.raises(ConfigError):
        index.search(["tea"], 0)


def test_label_reviews_must_be_enough(catalogue, reviews, hash_encoder) -> None:
    from shortlist.errors import DataValidationError

    with pytest.raises(DataValidationError, match="labelled queries"):
        SearchIndex(SearchOptions(holdout=0.05), encoder=hash_encoder).fit(catalogue, reviews)


def test_label_queries_are_scored_against_an_index_built_without_them(catalogue, reviews, hash_encoder,
                                                                       monkeypatch) -> None:
    """Fit discipline: documents and statistics for the re-ranker's queries come from the history
    only; the index is then rebuilt from every review."""
    import shortlist.search.index as index_module

    seen: list[pl.DataFrame] = []
    real = index_module.build_state

    def spy(catalogue, reviews, encoder, **kw):
        seen.append(reviews)
        return real(catalogue, reviews, encoder, **kw)

    monkeypatch.setattr(index_module, "build_state", spy)
    marked = reviews.with_columns(pl.when(pl.col("timestamp") == pl.col("timestamp").max())
                                  .then(pl.lit("zebra zebra")).otherwise(pl.col("review_text")).alias("review_text"))
    index = _index(catalogue, marked, hash_encoder)
    assert [r.height for r in seen] == [31, 45]
    assert not seen[0].get_column("review_text").str.contains("zebra").any()
    assert seen[1].get_column("review_text").str.contains("zebra").any()
    assert index.metrics_["ranker"]["label_queries"] == 14


def test_save_load_round_trip(catalogue, reviews, hash_encoder, tmp_path) -> None:
    index = _index(catalogue, reviews, hash_encoder)
    save_index(index, tmp_path / "idx")
    loaded = load_index(tmp_path / "idx", encoder=hash_encoder)
    for mode in ("bm25", "dense", "hybrid", "reranked"):
        assert loaded.search(QUERIES, 3, mode=mode).equals(index.search(QUERIES, 3, mode=mode)), mode
    assert loaded.metrics_["ranker"]["label_queries"] == 14


def test_load_refuses_a_modified_or_foreign_directory(catalogue, reviews, hash_encoder, tmp_path) -> None:
    index = _index(catalogue, reviews, hash_encoder)
    save_index(index, tmp_path / "idx")
    np.save(tmp_path / "idx" / "stats.npy", np.zeros((5, 9), dtype=np.float32))
    with pytest.raises(ModelLoadError, match="checksum"):
        load_index(tmp_path / "idx", encoder=hash_encoder)
    (tmp_path / "other").mkdir()
    with pytest.raises(ModelLoadError):
        load_index(tmp_path / "other", encoder=hash_encoder)


def test_save_refuses_a_folder_it_did_not_write(catalogue, hash_encoder, tmp_path) -> None:
    from shortlist.errors import OutputPathError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    index = SearchIndex(SearchOptions(), encoder=hash_encoder).fit(catalogue)
    with pytest.raises(OutputPathError):
        save_index(index, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_chroma_backed_index_round_trip(catalogue, reviews, hash_encoder, tmp_path) -> None:
    from shortlist.search.chroma import chroma_available

    if not chroma_available():
        pytest.skip("chromadb (extra shortlist[chroma]) is not installed")
    exact = _index(catalogue, reviews, hash_encoder)
    chroma = _index(catalogue, reviews, hash_encoder, store="chroma")
    queries = QUERIES[:2]  # (the others tie at 0 with every document: any tied item is a right answer)
    got, want = chroma.search(queries, 3, mode="dense"), exact.search(queries, 3, mode="dense")
    assert got.select("query", "item_id", "rank").equals(want.select("query", "item_id", "rank"))
    assert np.allclose(got.get_column("score").to_numpy(), want.get_column("score").to_numpy(), atol=1e-5)
    save_index(chroma, tmp_path / "idx")
    loaded = load_index(tmp_path / "idx", encoder=hash_encoder)
    queries = QUERIES[:3]
    assert loaded.search(queries, 3).equals(chroma.search(queries, 3))
    # opening it again (Chroma touches its own files) still loads
    assert load_index(tmp_path / "idx", encoder=hash_encoder).search(queries, 3).equals(chroma.search(queries, 3))


def test_top_per_query_ties_break_by_position() -> None:
    query = np.array([0, 0, 0, 1, 1])
    pos = np.array([5, 2, 9, 1, 0])
    score = np.array([1.0, 1.0, 3.0, 0.5, 0.5], dtype=np.float32)
    keep = top_per_query(query, pos, score, 2)
    assert list(zip(query[keep].tolist(), pos[keep].tolist(), strict=True)) == [(0, 9), (0, 2), (1, 0), (1, 1)]


def test_faiss_backed_index_round_trip(catalogue, reviews, hash_encoder, tmp_path) -> None:
    pytest.importorskip("faiss")
    exact = _index(catalogue, reviews, hash_encoder)
    flat = _index(catalogue, reviews, hash_encoder, store="faiss")
    queries = QUERIES[:2]
    assert flat.search(queries, 3).select("query", "item_id").equals(exact.search(queries, 3).select("query", "item_id"))
    save_index(flat, tmp_path / "idx")
    assert (tmp_path / "idx" / "store" / "index.faiss").is_file()
    assert load_index(tmp_path / "idx", encoder=hash_encoder).search(queries, 3).equals(flat.search(queries, 3))
