import numpy as np
import pytest

from shortlist.ranking.lgbm import LGBMRanker


def test_lgbm_ranker_learns_a_clear_signal_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    n_groups, size = 200, 20
    X = rng.normal(size=(n_groups * size, 3)).astype(np.float32)
    y = (X[:, 0] > 1.0).astype(np.float32)  # only feature 0 matters
    group = np.full(n_groups, size)
    r = LGBMRanker(n_estimators=50, min_child_samples=5, seed=0).fit(
        X[:3000], y[:3000], group[:150], feature_names=["a", "b", "c"],
        valid=(X[3000:], y[3000:], group[150:]))
    assert r.importance()["name"][0] == "a"
    assert r.metrics_["valid_ndcg@10"] > 0.9
    r.save(tmp_path / "m.txt")
    again = LGBMRanker().load_model(tmp_path / "m.txt", feature_names=["a", "b", "c"], metrics=r.metrics_)
    np.testing.assert_allclose(again.predict(X[:50]), r.predict(X[:50]), rtol=1e-6)
    assert r.contributions(X[:5]).shape == (5, 4)


def test_refit_trains_on_validation_groups_too_for_the_chosen_rounds():
    rng = np.random.default_rng(1)
    n_groups, size = 200, 20
    X = rng.normal(size=(n_groups * size, 3)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=len(X)) > 1.0).astype(np.float32)
    group = np.full(n_groups, size)
    parts = dict(feature_names=["a", "b", "c"], valid=(X[3000:], y[3000:], group[150:]))
    kw = dict(n_estimators=80, min_child_samples=5, min_rounds=10, early_stopping_rounds=10, seed=0)
    plain = LGBMRanker(**kw).fit(X[:3000], y[:3000], group[:150], **parts)
    refit = LGBMRanker(refit=True, **kw).fit(X[:3000], y[:3000], group[:150], **parts)
    assert "refit_rows" not in plain.metrics_ and refit.metrics_["refit_rows"] == len(X)
    best = plain.metrics_["best_iteration"]
    assert refit.metrics_["best_iteration"] == best == refit.booster_.current_iteration()
    assert refit.metrics_["valid_ndcg@10"] == plain.metrics_["valid_ndcg@10"]  # the held-out estimate stays
    assert not np.allclose(refit.predict(X[:200]), plain.predict(X[:200]))  # the validation rows taught it
    again = LGBMRanker(refit=True, **kw).fit(X[:3000], y[:3000], group[:150], **parts)
    np.testing.assert_array_equal(again.predict(X[:200]), refit.predict(X[:200]))


def test_xgb_ranker_same_interface():
    pytest.importorskip("xgboost")
    from shortlist.ranking.xgb import XGBRanker

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2)).astype(np.float32)
    y = (X[:, 1] > 1.0).astype(np.float32)
    r = XGBRanker(n_estimators=20).fit(X, y, np.full(100, 20), feature_names=["a", "b"])
    assert r.importance()["name"][0] == "b" and r.predict(X[:3]).shape == (3,)


def test_best_round_is_smoothed_and_not_too_early():
    from shortlist.ranking.lgbm import _best_round, _smoothed

    np.testing.assert_allclose(_smoothed([1.0, 3.0, 5.0, 7.0], 2), [1.0, 2.0, 4.0, 6.0])
    spike = [0.1] * 3 + [0.9] + [0.2] * 6 + [0.5] * 10  # one lucky round early, a real plateau later
    assert _best_round(spike, min_rounds=1, window=1) == 4
    assert _best_round(spike, min_rounds=1, window=5) == 15  # first round whose 5-round mean is the plateau
    assert _best_round(spike, min_rounds=12, window=1) == 12
    assert _best_round([0.3, 0.2], min_rounds=50, window=5) == 2  # shorter than min_rounds: the last


def test_predict_small_batches_single_threaded_identical(monkeypatch):
    import shortlist.ranking.lgbm as lgbmmod

    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(np.float32)
    r = LGBMRanker(n_estimators=20, min_child_samples=5).fit(X, y, np.full(100, 20), feature_names=["a", "b", "c"])
    whole = r.predict(X)
    monkeypatch.setattr(lgbmmod, "SINGLE_THREAD_ROWS", 10)
    np.testing.assert_array_equal(r.predict(X), whole)  # multi-threaded
    np.testing.assert_array_equal(r.predict(X[:5]), whole[:5])  # single-threaded


def test_a_query_bag_over_half_on_threads_warns_it_is_not_reproducible():
    """LightGBM grows different trees run to run with bagging_by_query, a bag over 0.5 and more than
    one thread: the defaults stay reproducible, the unreproducible setting says so."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LGBMRanker()  # defaults: bag 0.5
        LGBMRanker(bagging_fraction=0.8, n_jobs=1)
        LGBMRanker(bagging_fraction=0.8, bagging_by_query=False)
        LGBMRanker(bagging_fraction=1.0)
    with pytest.warns(RuntimeWarning, match="differ"):
        LGBMRanker(bagging_fraction=0.8)
