"""BM25, rank fusion, dense retrieval and the vector stores (Chroma against FAISS Flat and exact numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shortlist.errors import ConfigError
from shortlist.search.chroma import ChromaStore, chroma_available
from shortlist.search.dense import DenseRetriever, build_store, encode_texts, load_store
from shortlist.search.hybrid import rrf_score
from shortlist.search.lexical import BM25

DOCS = ["red helmets for road cycling", "green tea leaves", "tea cup and tea pot", "cycling shoes"]


def test_bm25_matches_the_lucene_formula_by_hand() -> None:
    bm = BM25(k1=1.5, b=0.75).fit(DOCS)
    scores = bm.scores(["tea"])[0]
    # stemmed tokens per doc: [red, helmet, road, cycl], [green, tea, leav], [tea, cup, tea, pot], [cycl, shoe]
    lengths, avg, n, df = [4, 3, 4, 2], 13 / 4, 4, 2
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))

    def part(tf: int, dl: int) -> float:  # bm25s leaves out the constant factor (k1 + 1): same ranking
        return tf / (tf + 1.5 * (1 - 0.75 + 0.75 * dl / avg))

    expected = [0.0, idf * part(1, lengths[1]), idf * part(2, lengths[2]), 0.0]
    assert scores == pytest.approx(expected, rel=1e-5)


def test_bm25_search_stems_skips_unknown_and_empty_queries() -> None:
    bm = BM25().fit(DOCS)
    pos, scores = bm.search(["a helmet for cycling", "zebra", "", "teas"], 3)
    assert pos[0].tolist() == [0, 3, -1]  # "helmet" and "cycling" stem-match doc 0; doc 3 only "cycling"
    assert pos[1].tolist() == [-1, -1, -1] and pos[2].tolist() == [-1, -1, -1]
    assert pos[3].tolist() == [2, 1, -1]
    assert np.isinf(scores[1]).all()
    _, known = bm.score_queries(["the helmet helmet zebra", ""])
    assert known.tolist() == [2.0, 0.0]


def test_bm25_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError):
        BM25(b=2.0)
    with pytest.raises(ConfigError):
        BM25().fit([])


def test_rrf_score() -> None:
    got = rrf_score(np.array([1.0, np.nan, 3.0]), np.array([2.0, 1.0, np.nan]))
    assert got.tolist() == pytest.approx([1 / 61 + 1 / 62, 1 / 61, 1 / 63])


def test_encode_texts_encodes_each_distinct_text_once(hash_encoder) -> None:
    memo: dict[str, np.ndarray] = {}
    a = encode_texts(hash_encoder, ["tea", "", "tea", "coffee"], memo)
    assert hash_encoder.texts == 2
    assert not a[1].any() and np.array_equal(a[0], a[2])
    encode_texts(hash_encoder, ["coffee", "tea"], memo)
    assert hash_encoder.texts == 2  # all in the memo


def test_dense_retriever_search_and_pair_scores(hash_encoder) -> None:
    dense = DenseRetriever(hash_encoder).fit(DOCS)
    q = dense.encode(["tea pot", ""])
    pos, scores = dense.search(q, 10)
    assert pos.shape == (2, 10)
    assert pos[0, 0] == 2 and pos[0, 4] == -1  # only 4 documents
    assert (pos[1] == -1).all()  # an empty query finds nothing
    cos = dense.pair_scores(q, np.array([0, 0]), np.array([2, 1]))
    assert cos[0] == pytest.approx(scores[0, 0])
    assert cos[1] == pytest.approx(float(q[0] @ dense.vectors_[1]))


@pytest.fixture
def clustered() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, x[:12] + 0.3 * rng.normal(size=(12, 24)).astype(np.float32)


def test_faiss_flat_equals_exact_numpy(clustered) -> None:
    pytest.importorskip("faiss")
    x, q = clustered
    exact = build_store("numpy", x).search(q, 10)
    flat = build_store("faiss", x).search(q, 10)
    assert np.array_equal(exact[0], flat[0])
    assert np.allclose(exact[1], flat[1], atol=1e-5)


@pytest.mark.skipif(not chroma_available(), reason="chromadb (extra shortlist[chroma]) is not installed")
def test_chroma_returns_the_same_top_k_as_faiss_flat_and_exact(clustered, tmp_path) -> None:
    x, q = clustered
    exact_pos, exact_scores = build_store("numpy", x).search(q, 10)
    chroma = build_store("chroma", x)
    pos, scores = chroma.search(q, 10)
    assert np.array_equal(pos, exact_pos)
    assert np.allclose(scores, exact_scores, atol=1e-5)
    if pytest.importorskip("faiss"):
        assert np.array_equal(build_store("faiss", x).search(q, 10)[0], pos)
    chroma.save(tmp_path / "chroma")
    again = load_store("chroma", tmp_path / "chroma", x).search(q, 10)
    assert np.array_equal(again[0], exact_pos)
    assert (tmp_path / "chroma" / "chroma.sqlite3").is_file()


@pytest.mark.skipif(not chroma_available(), reason="chromadb (extra shortlist[chroma]) is not installed")
def test_chroma_pads_short_results_and_refuses_bad_input() -> None:
    x = np.eye(3, dtype=np.float32)
    pos, scores = ChromaStore().build(x).search(x[:1], 5)
    assert pos.tolist() == [[0, 1, 2, -1, -1]]
    assert np.isinf(scores[0, 3:]).all()
    with pytest.raises(ConfigError):
        ChromaStore().build(np.zeros((0, 3), dtype=np.float32))


def test_missing_chromadb_is_a_clear_error(monkeypatch) -> None:
    import builtins

    from shortlist.errors import DependencyMissingError

    real_import = builtins.__import__

    def no_chroma(name, *args, **kwargs):
        if name == "chromadb":
            raise ImportError("no chromadb")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_chroma)
    monkeypatch.setattr("importlib.import_module", lambda name: no_chroma(name))
    with pytest.raises(DependencyMissingError, match=r"shortlist\[chroma\]"):
        build_store("chroma", np.eye(2, dtype=np.float32))


def test_unknown_store() -> None:
    with pytest.raises(ConfigError, match="numpy, faiss, chroma"):
        build_store("pinecone", np.eye(2, dtype=np.float32))


@pytest.mark.skipif(not chroma_available(), reason="chromadb (extra shortlist[chroma]) is not installed")
def test_chroma_is_an_embedded_library_with_our_vectors_and_no_telemetry(tmp_path) -> None:
    import sys

    from chromadb.api.fastapi import FastAPI

    x = np.eye(4, dtype=np.float32)
    store = build_store("chroma", x)
    store.save(tmp_path / "db")
    loaded = load_store("chroma", tmp_path / "db", x)
    for s in (store, loaded):
        collection = s._collection
        assert collection._embedding_function is None  # vectors come from shortlist, never Chroma's model
        assert collection._client.get_settings().anonymized_telemetry is False
        assert not isinstance(collection._client, FastAPI)  # in-process: not the HTTP client of a Chroma server
    assert not [m for m in sys.modules if m.startswith("chromadb.server")]  # its HTTP server is never imported
