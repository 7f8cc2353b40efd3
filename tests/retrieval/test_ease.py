import numpy as np
import polars as pl
import pytest
from listing import retrieve, retrieve_for_history

from shortlist.data import Interactions
from shortlist.data.ids import IdMap
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError, NotFittedError
from shortlist.pipeline.artifacts import load_json
from shortlist.retrieval import ease as ease_module
from shortlist.retrieval.ease import DEFAULT_L2, EASE
from shortlist.retrieval.registry import load_source, save_source
from shortlist.schema import ITEM, RANK, SCORE, SECONDS_PER_DAY, USER

# 4 users x 5 items, ids in order of first appearance: u0..u3 -> 0..3, i0..i4 -> 0..4
HISTORY = [("u0", "i0"), ("u0", "i1"), ("u0", "i2"), ("u1", "i0"), ("u1", "i1"),
           ("u2", "i2"), ("u2", "i3"), ("u3", "i3"), ("u3", "i4")]


def tiny(extra_items: tuple[str, ...] = ()) -> Interactions:
    users, items = zip(*HISTORY, strict=True)
    df = pl.DataFrame({"user_id": users, "item_id": items,
                       "timestamp": [i * SECONDS_PER_DAY for i in range(len(HISTORY))]})
    item_map = IdMap.from_values(pl.Series([f"i{j}" for j in range(5)])).extend(extra_items)
    data = Interactions.from_frame(df, items=item_map)
    assert data.users.get("u3") == 3 and data.items.get("i4") == 4
    return data


def direct_ease(x: np.ndarray, lam: float) -> np.ndarray:
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def rows(c):
    return c.frame.select(USER, ITEM, RANK).rows()


def test_weights_match_the_closed_form():
    data = tiny()
    m = EASE(l2=0.5).fit(data)
    x = data.to_csr(binary=True).toarray().astype(np.float64)
    np.testing.assert_allclose(m.weights_, direct_ease(x, 0.5), rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(m.weights_) == 0) and m.weights_.dtype == np.float32
    assert m.l2_ == 0.5


def test_auto_l2_is_constant_for_binary_and_scaled_by_decayed_values():
    data = tiny()
    assert EASE().fit(data).l2_ == pytest.approx(DEFAULT_L2)
    decayed = EASE(half_life_days=4.0).fit(data)
    x = decayed.profiles_.toarray()
    assert x[3, 4] == pytest.approx(1.0) and x[0, 0] == pytest.approx(0.5**2)  # ages 0 and 8 days
    assert decayed.l2_ == pytest.approx(DEFAULT_L2 * np.mean(decayed.profiles_.data**2))


def test_retrieve_scores_and_excludes_seen():
    data = tiny()
    m = EASE(l2=0.5).fit(data)
    c = retrieve(m, np.array([1, 3]), 2)
    b = direct_ease(data.to_csr(binary=True).toarray().astype(np.float64), 0.5)
    # u1 had i0, i1: i2 (bought with both by u0) comes first; u3 had i3, i4: i2 (with i3 by u2).
    assert rows(c) == [(1, 2, 1), (1, 4, 2), (3, 2, 1), (3, 0, 2)]  # i0, i1 tie: lower id
    assert c.frame.filter(pl.col(USER) == 1)[SCORE].to_list() == pytest.approx(
        [b[0, 2] + b[1, 2], b[0, 4] + b[1, 4]], rel=1e-5)
    full = retrieve(m, np.array([1]), 5, exclude_seen=False)
    assert len(full) == 5 and set(full.frame[ITEM].to_list()) == set(range(5))


def test_k_bounds_unknown_users_and_unseen_items():
    data = tiny(extra_items=("i5",))  # catalogue-only item: never proposed
    m = EASE(l2=1.0).fit(data)
    c = retrieve(m, np.array([0, 1, 2, 3, 99]), 10)
    per_user = c.frame.group_by(USER).len()
    assert 99 not in per_user[USER].to_list()  # unknown user: no rows
    assert 5 not in c.frame[ITEM].to_list()
    assert dict(per_user.rows()) == {0: 2, 1: 3, 2: 3, 3: 3}  # 5 active items minus the seen ones
    assert c.frame.group_by(USER).agg(pl.col(RANK).max())[RANK].max() <= 3
    with pytest.raises(ConfigError):
        retrieve(m, np.array([0]), 0)


def test_retrieve_for_history_matches_a_known_user():
    m = EASE(l2=0.5).fit(tiny())
    known = retrieve(m, np.array([1]), 3).frame
    adhoc = retrieve_for_history(m, np.array([1, 0, 1, 77]), 3).frame  # duplicates and unknown ids
    assert adhoc[USER].unique().to_list() == [-1]
    assert adhoc[ITEM].to_list() == known[ITEM].to_list()
    assert adhoc[SCORE].to_list() == pytest.approx(known[SCORE].to_list())
    assert len(retrieve_for_history(m, np.array([], dtype=np.int64), 3)) == 0


def test_retrieve_for_history_decays_relative_to_its_last_timestamp():
    m = EASE(l2=0.5, half_life_days=1.0).fit(tiny())
    day = SECONDS_PER_DAY
    old_i3 = retrieve_for_history(m, np.array([3, 0]), 1, timestamps=np.array([0, 10 * day]))
    old_i0 = retrieve_for_history(m, np.array([3, 0]), 1, timestamps=np.array([10 * day, 0]))
    assert old_i3.frame[ITEM].to_list() == [1]  # the recent i0 dominates: i1 (bought with i0)
    assert old_i0.frame[ITEM].to_list() != [1]


def test_chunked_retrieval_equals_one_shot(monkeypatch):
    data = make_synthetic(n_users=60, n_items=40, n_interactions=600, seed=1).interactions
    m = EASE().fit(data)
    users = np.arange(60)
    whole = retrieve(m, users, 7).frame
    monkeypatch.setattr(ease_module, "_CHUNK_CELLS", 40 * 7)  # 7 users per chunk
    assert retrieve(m, users, 7).frame.equals(whole)


def test_save_load_gives_identical_output(tmp_path):
    data = make_synthetic(n_users=50, n_items=30, n_interactions=500, seed=2).interactions
    m = EASE(half_life_days=30.0, name="ease_decay").fit(data)
    save_source(m, tmp_path)
    meta = load_json(tmp_path / "source.json")
    assert meta["type"] == "EASE"
    loaded = load_source(tmp_path)
    assert isinstance(loaded, EASE)
    users = np.arange(55)
    assert retrieve(loaded, users, 10).frame.equals(retrieve(m, users, 10).frame)
    assert retrieve_for_history(loaded, np.array([1, 2]), 5).frame.equals(
        retrieve_for_history(m, np.array([1, 2]), 5).frame)
    assert loaded.name == "ease_decay"


def test_refuses_large_catalogues_and_bad_options():
    with pytest.raises(ConfigError, match="ALS"):
        EASE(max_items=4).fit(tiny())
    for bad in ({"l2": 0}, {"l2": "big"}, {"max_items": 0}, {"half_life_days": -1.0}):
        with pytest.raises(ConfigError):
            EASE(**bad)
    with pytest.raises(NotFittedError):
        retrieve(EASE(), np.array([0]), 3)


def test_general_inverse_when_cholesky_fails(monkeypatch):
    """Should float32 rounding make the Gram indefinite, a fresh Gram takes the general inverse."""
    import scipy.linalg

    x = ease_module.profile_matrix(tiny().frame, (4, 5), binary=True, half_life_days=None, now=None)
    expected = ease_module.ease_weights(x, 1.0)
    real_inv, calls = scipy.linalg.inv, []

    def failing_cholesky(a, *args, assume_a=None, **kwargs):
        calls.append(assume_a)
        if assume_a == "pos":
            a[:] = np.nan  # what an in-place factorisation that gave up may leave behind
            raise np.linalg.LinAlgError("not positive definite")
        return real_inv(a, *args, assume_a=assume_a, **kwargs)

    monkeypatch.setattr(scipy.linalg, "inv", failing_cholesky)
    got = ease_module.ease_weights(x, 1.0)
    assert calls == ["pos", "general"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, direct_ease(x.toarray(), 1.0), rtol=1e-5, atol=1e-7)


def test_older_scipy_without_structure_takes_the_general_inverse(monkeypatch):
    import scipy.linalg

    x = ease_module.profile_matrix(tiny().frame, (4, 5), binary=True, half_life_days=None, now=None)
    expected = ease_module.ease_weights(x, 1.0)
    real_inv, calls = scipy.linalg.inv, []

    def old_inv(a, overwrite_a=False, check_finite=True):  # SciPy < 1.17's signature
        calls.append("lu")
        return real_inv(a, overwrite_a=overwrite_a, check_finite=check_finite)

    monkeypatch.setattr(scipy.linalg, "inv", old_inv)
    monkeypatch.setattr(ease_module, "_INV_TAKES_STRUCTURE", False)
    np.testing.assert_allclose(ease_module.ease_weights(x, 1.0), expected, rtol=1e-5, atol=1e-7)
    assert calls == ["lu"]
