"""The contract every candidate source satisfies (shared; add new sources to SOURCES)."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from listing import retrieve, retrieve_for_history

from reachable import arrays
from shortlist.data.synthetic import make_synthetic
from shortlist.retrieval.base import CandidateSource
from shortlist.retrieval.registry import load_source, save_source
from shortlist.schema import ITEM, RANK, SCORE, USER


def _lazy(module: str, cls: str, **kwargs) -> Callable[[], CandidateSource]:
    def make() -> CandidateSource:
        try:
            mod = importlib.import_module(module)
        except ImportError as e:  # pragma: no cover - optional extras
            pytest.skip(f"{module} unavailable: {e}")
        return getattr(mod, cls)(**kwargs)

    return make


SOURCES: dict[str, Callable[[], CandidateSource]] = {
    "popular": _lazy("shortlist.retrieval.popularity", "Popularity"),
    "popular_recent": _lazy("shortlist.retrieval.popularity", "Popularity", window_days="auto", half_life_days=7.0),
    "repurchase": _lazy("shortlist.retrieval.repurchase", "Repurchase"),
    "itemknn": _lazy("shortlist.retrieval.covisit", "CoVisitation", kind="user"),
    "covisit": _lazy("shortlist.retrieval.covisit", "CoVisitation", kind="session"),
    "transition": _lazy("shortlist.retrieval.covisit", "CoVisitation", kind="transition"),
    "ease": _lazy("shortlist.retrieval.ease", "EASE"),
    "userknn": _lazy("shortlist.retrieval.userknn", "UserKNN", neighbours=10),
    "als": _lazy("shortlist.retrieval.als", "ALS", factors=16, iterations=5),
    "two_tower": _lazy("shortlist.retrieval.two_tower", "TwoTower", dim=8, hidden=16, epochs=2, batch_size=128),
    "content": _lazy("shortlist.retrieval.content", "ContentSource", encoder="tfidf", tfidf_dim=16, backend="numpy"),
    "content_mean": _lazy("shortlist.retrieval.content", "ContentSource", encoder="tfidf", tfidf_dim=16,
                          backend="numpy", aggregate="mean"),
}


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(n_users=120, n_items=60, n_interactions=2500, seed=11)


@pytest.fixture(scope="module")
def data(dataset):
    return dataset.interactions


def make_fitted(name, dataset):
    return SOURCES[name]().fit(dataset.interactions, items=dataset.items, rng=np.random.default_rng(0))


@pytest.fixture(scope="module", params=sorted(SOURCES))
def fitted(request, dataset):
    return request.param, make_fitted(request.param, dataset)


#: Sources with a ``warm()`` (serving indexes built at load; their lists must not change).
WARMABLE = ("userknn",)


@pytest.fixture(scope="module", params=WARMABLE)
def warmed(request, dataset):
    """(name, fitted source, a warmed copy of it)."""
    src = make_fitted(request.param, dataset)
    return request.param, src, copy.deepcopy(src).warm()


def test_every_source_is_a_candidate_source_and_warmable_ones_are_listed(dataset):
    from shortlist.retrieval.base import Warmable

    assert all(isinstance(SOURCES[n](), CandidateSource) for n in SOURCES)
    assert {n for n in SOURCES if isinstance(SOURCES[n](), Warmable)} == set(WARMABLE)


USERS = np.array([0, 3, 5, 17, 40])


@pytest.mark.parametrize("exclude", [True, False])
def test_at_most_k_rows_ranked_and_typed(fitted, exclude):
    _, src = fitted
    c = retrieve(src, USERS, 7, exclude_seen=exclude)
    f = c.frame
    items, scores = src.topk(USERS, 7, exclude_seen=exclude)
    assert items.shape == scores.shape == (len(USERS), 7) and items.dtype == np.int64 and scores.dtype == np.float32
    assert np.isneginf(scores[items < 0]).all() and np.isfinite(scores[items >= 0]).all()
    if len(f):
        per_user = f.group_by(USER).agg(pl.len(), pl.col(RANK).sort(), pl.col(ITEM).n_unique().alias("u"))
        assert per_user["len"].max() <= 7
        assert all(r == list(range(1, len(r) + 1)) for r in per_user[RANK].to_list())
        assert (per_user["u"] == per_user["len"]).all()
        assert set(f[USER].unique().to_list()) <= set(USERS.tolist())
        # scores never increase down a user's list
        ok = f.sort([USER, RANK]).group_by(USER, maintain_order=True).agg((pl.col(SCORE).diff() <= 1e-6).all())
        assert ok[SCORE].fill_null(True).all()


def test_no_seen_items_when_excluded(fitted, data):
    _, src = fitted
    f = retrieve(src, USERS, 20, exclude_seen=True).frame
    seen = data.frame.select(USER, ITEM).unique()
    assert f.join(seen, on=[USER, ITEM], how="inner").height == 0


def test_deterministic_for_a_seed(fitted, dataset):
    name, src = fitted
    again = make_fitted(name, dataset)
    assert retrieve(src, USERS, 10).frame.equals(retrieve(again, USERS, 10).frame)


def test_save_load_identical(fitted, tmp_path):
    _, src = fitted
    save_source(src, tmp_path / "src")
    loaded = load_source(tmp_path / "src")
    for excl in (True, False):
        assert retrieve(src, USERS, 10, exclude_seen=excl).frame.equals(
            retrieve(loaded, USERS, 10, exclude_seen=excl).frame)


def test_unknown_users_handled(fitted, data):
    _, src = fitted
    unknown = np.array([data.n_users + 5, data.n_users + 1000])
    f = retrieve(src, unknown, 5).frame
    assert f.height <= 10 and set(f[USER].to_list()) <= set(unknown.tolist())


def test_retrieve_for_ad_hoc_history(fitted, data):
    _, src = fitted
    history = np.array([1, 2, 3])
    f = retrieve_for_history(src, history, 5, exclude_seen=True).frame
    with_times = retrieve_for_history(src, history, 5, timestamps=np.array([10, 20, 30]), exclude_seen=True)
    assert with_times.frame.height <= 5
    assert f.height <= 5 and (f[USER] == -1).all()
    assert not set(f[ITEM].to_list()) & {1, 2, 3}


# --- a user's list does not depend on the shard it is asked in (a request is a shard of one) ----
def all_users(data) -> np.ndarray:
    return np.arange(data.n_users + 2)  # two users unknown at fit time


#: Sources scored by a float32 BLAS product in the vector index: a score's last bit depends on
#: the batch's shape, so one user's list equals the batch row up to that rounding.
BLAS_SCORED = {"two_tower", "content_mean"}


@pytest.mark.parametrize("exclude", [True, False])
def test_one_user_topk_equals_the_batch_rows(fitted, data, exclude):
    name, src = fitted
    _check_one_user_rows(name, src, src, data, exclude)


@pytest.mark.parametrize("exclude", [True, False])
def test_warmed_one_user_topk_equals_the_batch_rows(warmed, data, exclude):
    """After ``warm()`` (the serving indexes built at load) a request's list still equals the batch row."""
    name, src, warm = warmed
    _check_one_user_rows(name, src, warm, data, exclude)


def _check_one_user_rows(name, batch_src, one_src, data, exclude):
    users = all_users(data)
    items, scores = batch_src.topk(users, 12, exclude_seen=exclude)
    assert items.shape == scores.shape == (len(users), 12)
    for r, u in enumerate(users):
        one_items, one_scores = one_src.topk(np.array([u]), 12, exclude_seen=exclude)
        if name in BLAS_SCORED:
            np.testing.assert_allclose(one_scores[0], scores[r], rtol=1e-5)
            assert_same_up_to_rounding(one_items[0], items[r], scores[r])
        else:
            np.testing.assert_array_equal(one_items[0], items[r])
            np.testing.assert_array_equal(one_scores[0], scores[r])


def assert_same_up_to_rounding(got: np.ndarray, want: np.ndarray, want_scores: np.ndarray, rtol: float = 1e-5) -> None:
    """``got`` lists ``want``'s items in ``want``'s order, except that items whose scores differ by
    no more than float32 rounding (duplicate items, say) may trade places, or trade the last place
    with an item just outside the list. Anything else (a missing item, a real reordering) fails."""
    tol = rtol * max(float(np.max(np.abs(want_scores[np.isfinite(want_scores)]), initial=0.0)), 1e-30)
    where = {int(i): j for j, i in enumerate(want)}
    for j in np.flatnonzero(got != want):
        i = int(got[j])
        k = where.get(i)
        near = want_scores[-1] if k is None else want_scores[k]  # not in want's list: it tied its last place
        assert abs(float(near) - float(want_scores[j])) <= tol, (
            f"position {j}: got item {i}, want {int(want[j])}; their scores differ by more than rounding\n"
            f"got  {got.tolist()}\nwant {want.tolist()}")


@pytest.mark.parametrize("exclude", [True, False])
def test_warm_history_topk_is_unchanged(warmed, exclude):
    """``warm()`` changes how an ad-hoc history is scored, never what it lists."""
    _, src, warm = warmed
    history, times = np.array([4, 1, 2, 1, 7, 99, -3]), np.array([50, 10, 20, 30, 40, 60, 70])
    for ts in (None, times):
        want = src.topk_for_history(history, 8, timestamps=ts, exclude_seen=exclude)
        got = warm.topk_for_history(history, 8, timestamps=ts, exclude_seen=exclude)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# --- split by user rows (a shard on a worker): the same lists from the shard's rows alone ---------
@pytest.mark.parametrize("exclude", [True, False])
def test_split_for_a_shard_lists_what_the_whole_lists(fitted, data, exclude):
    """The item side plus a shard's user rows (users out of order) answers for them as rows 0..n-1
    with the lists the whole source gives their ids."""
    from shortlist.pipeline.user_rows import for_users, item_side, user_rows

    name, src = fitted
    users = np.array([40, 3, 17, 0, 5, data.n_users - 1])
    part = for_users(item_side(src), user_rows(src, users))
    items, scores = src.topk(users, 12, exclude_seen=exclude)
    got_items, got_scores = part.topk(np.arange(len(users)), 12, exclude_seen=exclude)
    _assert_same_lists(name, (got_items, got_scores), (items, scores))


@pytest.mark.parametrize("exclude", [True, False])
def test_a_split_keeps_unknown_users_unknown(fitted, data, exclude):
    """A shard's unknown users (ids past the fit's, among known ones) carry no rows and get, at ids
    past the shard's rows, what the whole source gives an unknown user."""
    from shortlist.pipeline.user_rows import for_users, item_side, with_rows

    name, src = fitted
    users = np.array([data.n_users + 7, 40, 3, data.n_users, 17, data.n_users - 1])
    shard = with_rows(src, users, data.n_users)
    part = for_users(item_side(src), shard.rows)
    assert shard.local.tolist() == [4, 0, 1, 5, 2, 3]
    _assert_same_lists(name, part.topk(shard.local, 12, exclude_seen=exclude),
                       src.topk(users, 12, exclude_seen=exclude))
    none_known = with_rows(src, users[[0, 3]], data.n_users)
    _assert_same_lists(name, for_users(item_side(src), none_known.rows).topk(none_known.local, 12, exclude_seen=exclude),
                       src.topk(users[[0, 3]], 12, exclude_seen=exclude))


def _assert_same_lists(name, got, want):
    (got_items, got_scores), (items, scores) = got, want
    assert got_items.shape == items.shape
    if name in BLAS_SCORED:
        np.testing.assert_allclose(got_scores, scores, rtol=1e-5)
        for r in range(len(items)):
            assert_same_up_to_rounding(got_items[r], items[r], scores[r])
    else:
        np.testing.assert_array_equal(got_items, items)
        np.testing.assert_array_equal(got_scores, scores)


def test_item_side_holds_no_user_rows(fitted, data):
    """Every user-indexed array is declared in ``USER_ROWS``: none is left in the item side (the
    user-kNN pool, a sample of users every shard is compared with, is item side by design)."""
    from shortlist.pipeline.user_rows import item_side

    _, src = fitted
    assert data.n_users not in (data.n_items, data.n_items + 1)
    left = [path for path, shape in arrays(item_side(src), "source")
            if shape and shape[0] in (data.n_users, data.n_users + 1) and "pool" not in path]
    assert left == []

