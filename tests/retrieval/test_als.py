import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from listing import retrieve, retrieve_for_history

from shortlist.data import Interactions
from shortlist.data.events import DEFAULT_EVENT_WEIGHTS, weigh
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError, NotFittedError
from shortlist.pipeline.artifacts import load_json
from shortlist.retrieval import als as als_module
from shortlist.retrieval.als import ALS, bm25_values, fold_in, interaction_strength
from shortlist.retrieval.registry import load_source, save_source
from shortlist.schema import ITEM, RANK, SCORE, USER

SMALL = dict(factors=8, iterations=5)


def events() -> Interactions:
    # u0: view x, purchase x, cart y; u1: view y twice (ids: u0, u1 -> 0, 1; x, y -> 0, 1)
    return Interactions.from_frame(pl.DataFrame({
        "user_id": ["u0", "u0", "u0", "u1", "u1"],
        "item_id": ["x", "x", "y", "y", "y"],
        "timestamp": [0, 1, 2, 3, 4],
        "event": ["view", "purchase", "cart", "view", "view"],
    }))


@pytest.fixture(scope="module")
def data() -> Interactions:
    return make_synthetic(n_users=80, n_items=50, n_interactions=1200, seed=3).interactions


@pytest.fixture(scope="module")
def model(data) -> ALS:
    return ALS(**SMALL).fit(data, rng=np.random.default_rng(7))


def test_strength_sums_weights_times_event_strength():
    data = weigh(events(), DEFAULT_EVENT_WEIGHTS)  # view 1, cart 2, purchase 3
    assert data.users.get("u1") == 1 and data.items.get("y") == 1
    assert interaction_strength(data, event_weights=True).toarray().tolist() == [[4.0, 2.0], [0.0, 2.0]]
    assert interaction_strength(data, event_weights=False).toarray().tolist() == [[2.0, 1.0], [0.0, 2.0]]


def test_confidence_transforms():
    counts = sp.csr_matrix(np.array([[4.0, 2.0, 0.0], [0.0, 2.0, 1.0]], dtype=np.float32))
    log = ALS(confidence="log", alpha=2.0, eps=2.0)._confidence(counts)
    np.testing.assert_allclose(log.data, 1 + 2 * np.log1p(np.array([4, 2, 2, 1]) / 2), rtol=1e-6)
    lin = ALS(confidence="linear", alpha=0.5)._confidence(counts)
    np.testing.assert_allclose(lin.data, [3.0, 2.0, 2.0, 1.5])
    idf = np.array([1.0, 0.5, 2.0])
    bm = bm25_values(counts, idf=idf, avg_len=2.0, k1=1.0, b=1.0)  # both rows have length 2
    np.testing.assert_allclose(bm, [4 * 2 / 5 * 1.0, 2 * 2 / 3 * 0.5, 2 * 2 / 3 * 0.5, 1 * 2 / 2 * 2.0])


def test_fold_in_solves_the_weighted_least_squares():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 3)).astype(np.float32)
    conf = sp.csr_matrix(np.array([[0, 3.0, 0, 1.5, 0, 0], [2.0, 0, 0, 0, 0, 5.0], [0] * 6], np.float32))
    got = fold_in(conf, y, 0.1)
    for row in range(3):
        c = conf[row].toarray()[0]
        p = (c > 0).astype(float)
        cw = np.where(c > 0, c, 1.0)
        a = y.T.astype(float) @ (cw[:, None] * y) + 0.1 * np.eye(3)
        np.testing.assert_allclose(got[row], np.linalg.solve(a, y.T @ (cw * p)), rtol=1e-4, atol=1e-6)
    assert np.all(got[2] == 0)  # no history: zero vector
    for row in range(3):  # one row alone (the serving path) solves the same system
        np.testing.assert_allclose(fold_in(conf[row], y, 0.1)[0], got[row], rtol=1e-5, atol=1e-7)


def test_retrieve_excludes_seen_keeps_k_and_scores_by_dot_product(model, data):
    users = np.arange(80)
    c = retrieve(model, users, 10)
    f = c.frame
    assert f.group_by(USER).len()["len"].max() <= 10 and f[RANK].min() == 1
    seen = data.to_csr(binary=True)
    assert not np.any(np.asarray(seen[f[USER].to_numpy(), f[ITEM].to_numpy()]).ravel())
    u, i = f[USER].to_numpy(), f[ITEM].to_numpy()
    dots = np.einsum("nd,nd->n", model.user_embeddings(u), model.item_embeddings()[i])
    np.testing.assert_allclose(f[SCORE].to_numpy(), dots, rtol=1e-4, atol=1e-6)
    assert f.sort([USER, RANK]).group_by(USER, maintain_order=True).agg(
        (pl.col(SCORE).diff().fill_null(0) <= 0).all())[SCORE].all()
    again = retrieve(model, users, 10, exclude_seen=False).frame
    assert np.any(np.asarray(seen[again[USER].to_numpy(), again[ITEM].to_numpy()]).ravel())


def test_unknown_users_get_nothing_and_zero_embeddings(model):
    c = retrieve(model, np.array([5, 500, 999]), 5)
    assert c.frame[USER].unique().to_list() == [5]
    emb = model.user_embeddings(np.array([5, 500]))
    assert emb.shape == (2, 8) and emb.dtype == np.float32
    assert np.any(emb[0] != 0) and np.all(emb[1] == 0)
    assert model.item_embeddings().shape == (50, 8) and model.metric == "ip"


def test_same_seed_same_candidates_and_different_seed_differs(data, model):
    again = ALS(**SMALL).fit(data, rng=np.random.default_rng(7))
    users = np.arange(80)
    assert retrieve(again, users, 10).frame.equals(retrieve(model, users, 10).frame)
    np.testing.assert_array_equal(again.item_embeddings(), model.item_embeddings())
    other = ALS(**SMALL).fit(data, rng=np.random.default_rng(8))
    assert not np.array_equal(other.item_embeddings(), model.item_embeddings())


def test_retrieve_for_history_folds_in_and_excludes(model):
    hist = np.array([3, 7, 7, 999])  # a duplicate and an id outside the catalogue
    c = retrieve_for_history(model, hist, 6)
    f = c.frame
    assert f[USER].unique().to_list() == [-1] and len(f) == 6
    assert not set(f[ITEM].to_list()) & {3, 7}
    counts = sp.csr_matrix(([1.0, 2.0], ([0, 0], [3, 7])), shape=(1, 50))
    vec = fold_in(model._confidence(counts), model.item_embeddings(), model.regularization)[0]
    scores = model.item_embeddings() @ vec
    scores[[3, 7]] = -np.inf
    assert f[ITEM].to_list() == np.argsort(-scores, kind="stable")[:6].tolist()
    assert len(retrieve_for_history(model, np.array([], dtype=np.int64), 6)) == 0


def test_chunked_search_equals_one_shot(model, monkeypatch):
    users = np.arange(80)
    whole = retrieve(model, users, 5).frame
    monkeypatch.setattr(als_module, "_CHUNK_CELLS", 50 * 9)
    assert retrieve(model, users, 5).frame.equals(whole)


@pytest.mark.parametrize("confidence", ["log", "bm25"])
def test_save_load_gives_identical_output(tmp_path, data, confidence):
    m = ALS(confidence=confidence, name="als2", **SMALL).fit(data, rng=np.random.default_rng(1))
    save_source(m, tmp_path)
    meta = load_json(tmp_path / "source.json")
    assert meta["type"] == "ALS"
    loaded = load_source(tmp_path)
    assert isinstance(loaded, ALS)
    users = np.arange(85)
    assert retrieve(loaded, users, 10).frame.equals(retrieve(m, users, 10).frame)
    assert retrieve_for_history(loaded, np.array([1, 2, 2]), 5).frame.equals(
        retrieve_for_history(m, np.array([1, 2, 2]), 5).frame)
    assert loaded.name == "als2"


def test_bad_options_and_not_fitted():
    for bad in ({"factors": 0}, {"iterations": 1.5}, {"regularization": 0}, {"alpha": -1.0},
                {"confidence": "sqrt"}, {"num_threads": -2}):
        with pytest.raises(ConfigError):
            ALS(**bad)
    with pytest.raises(NotFittedError):
        retrieve(ALS(), np.array([0]), 3)
    with pytest.raises(NotFittedError):
        ALS().item_embeddings()
