import importlib
import json
import sys

import numpy as np
import polars as pl
import pytest
from listing import retrieve, retrieve_for_history

from shortlist.data import Interactions
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError, DependencyMissingError, NotFittedError
from shortlist.pipeline.artifacts import load_arrays, save_arrays
from shortlist.pipeline.user_rows import for_users, item_side, user_rows
from shortlist.retrieval.two_tower import TwoTower
from shortlist.retrieval.two_tower.data import Sequences, adhoc_history
from shortlist.schema import ITEM, RANK, SCORE, USER

pytest.importorskip("torch")

TINY = {"dim": 8, "hidden": 16, "max_history": 10, "epochs": 2, "batch_size": 64, "n_threads": 1}


@pytest.fixture(scope="module")
def synth():
    return make_synthetic(n_users=60, n_items=40, n_interactions=900, seed=3)


@pytest.fixture(scope="module")
def fitted(synth):
    return TwoTower(**TINY).fit(synth.interactions, items=synth.items, rng=np.random.default_rng(7))


def follows_log(n_users: int = 40, seed: int = 0) -> Interactions:
    """Every user has item "a" immediately followed by item "b", amid random other items."""
    rng = np.random.default_rng(seed)
    others = np.array([f"x{i}" for i in range(8)])
    users, items, times = [], [], []
    for u in range(n_users):
        seq = list(rng.choice(others, size=6))
        at = int(rng.integers(0, 6))
        seq[at:at] = ["a", "b"]
        users += [f"u{u}"] * len(seq)
        items += seq
        times += list(range(len(seq)))
    return Interactions.from_frame(pl.DataFrame({"user_id": users, "item_id": items, "timestamp": times}))


def test_sequences_pairs_and_padded_histories():
    data = Interactions.from_frame(pl.DataFrame({
        "user_id": ["u", "u", "u", "v"], "item_id": ["p", "q", "r", "p"], "timestamp": [3, 1, 2, 0],
    }))  # u: q(1) r(2) p(0) in time order -> items [1, 2, 0]; v: [0]
    seqs = Sequences.from_interactions(data)
    assert seqs.items.tolist() == [1, 2, 0, 0] and seqs.indptr.tolist() == [0, 3, 4]
    users, pos = seqs.training_pairs(None)
    assert users.tolist() == [0, 0] and pos.tolist() == [1, 2]
    assert seqs.training_pairs(1)[1].tolist() == [2]
    assert seqs.histories(users, pos, 3, pad=9).tolist() == [[9, 9, 1], [9, 1, 2]]
    assert seqs.last_histories(np.array([0, 1]), 2, pad=9).tolist() == [[2, 0], [9, 0]]
    hist = adhoc_history(np.array([5, 1, 99]), np.array([2, 1, 0]), 3, pad=9, n_items=6)
    assert hist.tolist() == [[9, 1, 5]]  # sorted by time, unknown item 99 dropped


def test_learns_that_b_always_follows_a():
    data = follows_log()
    a, b, *others = (int(data.items.index(pl.Series([x])).item()) for x in ("a", "b", "x0", "x1", "x2"))
    tt = TwoTower(dim=16, hidden=32, max_history=10, epochs=10, batch_size=128, lr=2e-2, n_threads=1)
    tt.fit(data, rng=np.random.default_rng(0))
    assert tt.losses_[-1] < tt.losses_[0]
    assert retrieve_for_history(tt, np.array([a]), 3).frame[ITEM][0] == b
    # "a" as the most recent item dominates older ones.
    assert retrieve_for_history(tt, np.array([*others, a]), 3).frame[ITEM][0] == b


def test_same_seed_same_embeddings_and_candidates(synth, fitted):
    import torch

    threads, state = torch.get_num_threads(), torch.get_rng_state()
    torch.set_num_threads(3)
    try:
        again = TwoTower(**TINY).fit(synth.interactions, items=synth.items, rng=np.random.default_rng(7))
        assert torch.get_num_threads() == 3  # fit used 1 thread and restored the setting
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.get_rng_state(), state)  # torch's global RNG untouched
    np.testing.assert_array_equal(again.item_embeddings(), fitted.item_embeddings())
    users = np.arange(10)
    assert retrieve(again, users, 5).frame.equals(retrieve(fitted, users, 5).frame)
    other = TwoTower(**TINY).fit(synth.interactions, items=synth.items, rng=np.random.default_rng(8))
    assert not np.array_equal(other.item_embeddings(), fitted.item_embeddings())


def test_at_most_k_ranked_and_seen_excluded(synth, fitted):
    users = np.arange(synth.interactions.n_users)
    c = retrieve(fitted, users, 7)
    per_user = c.frame.group_by(USER).agg(pl.len(), pl.col(RANK).max().alias("r"), pl.col(SCORE).first().alias("s"))
    assert per_user["len"].max() <= 7 and (per_user["len"] == per_user["r"]).all()
    seen = synth.interactions.frame.select(USER, ITEM).unique()
    assert c.frame.join(seen, on=[USER, ITEM], how="inner").height == 0
    scores = c.frame.filter(pl.col(USER) == 0)[SCORE].to_numpy()
    assert (np.diff(scores) <= 0).all()
    with_seen = retrieve(fitted, users, 7, exclude_seen=False)
    assert with_seen.frame.join(seen, on=[USER, ITEM], how="inner").height > 0


def test_unknown_users_get_nothing_and_zero_embeddings(synth, fitted):
    n = synth.interactions.n_users
    c = retrieve(fitted, np.array([0, n + 3, -1]), 4)
    assert set(c.frame[USER].to_list()) == {0}
    emb = fitted.user_embeddings(np.array([0, n + 3]))
    assert emb.shape == (2, 8) and emb.dtype == np.float32
    assert np.abs(emb[0]).sum() > 0 and not emb[1].any()
    assert fitted.item_embeddings().shape == (synth.interactions.n_items, 8)
    assert fitted.metric == "cosine"
    np.testing.assert_allclose(np.linalg.norm(fitted.item_embeddings(), axis=1), 1.0, rtol=1e-5)


def test_retrieve_for_history_matches_the_users_own_history(synth, fitted):
    f = synth.interactions.frame.filter(pl.col(USER) == 0)
    items, ts = f[ITEM].to_numpy(), f["timestamp"].to_numpy()
    adhoc = retrieve_for_history(fitted, items[::-1], 5, timestamps=ts[::-1])
    own = retrieve(fitted, np.array([0]), 5)
    assert adhoc.frame[USER].to_list() == [-1] * 5
    assert adhoc.frame[ITEM].to_list() == own.frame[ITEM].to_list()
    np.testing.assert_allclose(adhoc.frame[SCORE].to_numpy(), own.frame[SCORE].to_numpy(), rtol=1e-5)
    assert not set(adhoc.frame[ITEM].to_list()) & set(items.tolist())
    assert len(retrieve_for_history(fitted, np.array([10_000]), 5)) == 0  # only unknown items


def test_save_load_identical_without_retraining(synth, fitted, tmp_path):
    params, arrays = fitted.get_state()
    save_arrays(tmp_path, arrays)  # .npy, no pickle
    loaded = TwoTower.from_state(json.loads(json.dumps(params)), load_arrays(tmp_path))
    users = np.arange(synth.interactions.n_users + 2)
    assert retrieve(loaded, users, 6).frame.equals(retrieve(fitted, users, 6).frame)
    hist = np.array([1, 2, 3])
    assert retrieve_for_history(loaded, hist, 6).frame.equals(retrieve_for_history(fitted, hist, 6).frame)
    np.testing.assert_array_equal(loaded.user_embeddings(users), fitted.user_embeddings(users))


@pytest.mark.parametrize("options", [
    {"loss": "bpr", "n_negatives": 3, "pooling": "mean"},
    {"loss": "softmax", "logq": False, "pooling": "recency", "normalize": False, "use_user_id": True},
])
def test_losses_and_options_run(synth, options):
    vectors = np.random.default_rng(0).normal(size=(synth.interactions.n_items, 5))
    tt = TwoTower(**{**TINY, "epochs": 1}, **options)
    tt.fit(synth.interactions, items=synth.items, item_features=vectors, rng=np.random.default_rng(1))
    assert tt.features_ is not None and tt.features_.n_categories > 1 and tt.features_.n_price_buckets > 1
    assert np.isfinite(tt.losses_).all()
    assert tt.metric == ("cosine" if tt.normalize else "ip")
    assert len(retrieve(tt, np.arange(5), 3)) == 15
    params, arrays = tt.get_state()
    loaded = TwoTower.from_state(params, arrays)
    assert retrieve_for_history(loaded, np.array([4, 5]), 3).frame.equals(
        retrieve_for_history(tt, np.array([4, 5]), 3).frame)
    # a shard's split copy of the loaded source rebuilds the same network (its users: the trained ones)
    part = for_users(item_side(loaded), user_rows(loaded, np.array([3, 1])))
    assert retrieve_for_history(part, np.array([4, 5]), 3).frame.equals(
        retrieve_for_history(tt, np.array([4, 5]), 3).frame)


def test_errors(synth):
    with pytest.raises(ConfigError):
        TwoTower(loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TwoTower(dim=0)
    with pytest.raises(NotFittedError):
        retrieve(TwoTower(), np.array([0]), 3)
    with pytest.raises(ConfigError):
        TwoTower(**TINY).fit(synth.interactions, item_features=np.zeros((3, 2)))


def test_missing_torch_is_a_typed_error(synth, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    for name in [m for m in sys.modules if m.startswith("shortlist.retrieval.two_tower")]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module("shortlist.retrieval.two_tower")  # imports fine without torch
    with pytest.raises(DependencyMissingError, match="torch"):
        fresh.TwoTower(**TINY).fit(synth.interactions)
