"""The compiled ranker (extra ``fast``) scores as LightGBM does; without the extra LightGBM is kept."""

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from shortlist.ranking import compiled
from shortlist.ranking.lgbm import LGBMRanker


def _ranker(seed: int = 0) -> tuple[LGBMRanker, np.ndarray]:
    r, X = _fitted(seed)
    fresh = LGBMRanker()
    fresh.booster_, fresh.feature_names_, fresh.metrics_ = r.booster_, r.feature_names_, dict(r.metrics_)
    return fresh, X


@lru_cache(maxsize=2)
def _fitted(seed: int) -> tuple[LGBMRanker, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_groups, size = 150, 20
    X = rng.normal(size=(n_groups * size, 6)) * np.array([1, 10, 0.1, 1000, 1, 1])
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take LightGBM's default branches
    y = ((np.nan_to_num(X[:, 0]) > 0.8) + (np.nan_to_num(X[:, 1]) > 12)).astype(np.float32)
    group = np.full(n_groups, size)
    r = LGBMRanker(n_estimators=60, min_child_samples=5, n_jobs=1, seed=seed).fit(
        X[:2400], y[:2400], group[:120], feature_names=list("abcdef"), valid=(X[2400:], y[2400:], group[120:]))
    return r, X


def test_without_the_extra_lightgbm_keeps_scoring(monkeypatch, tmp_path):
    r, X = _ranker()
    want = r.predict(X[:300])
    monkeypatch.setattr(compiled, "available", lambda: False)
    assert r.compile(cache=tmp_path) is False
    assert np.array_equal(r.predict(X[:300]), want) and not list(tmp_path.iterdir())


@pytest.mark.skipif(not compiled.available(), reason="the fast extra (lleaves) is not installed")
def test_compiled_scores_equal_lightgbm_and_the_object_is_cached(tmp_path: Path):
    r, X = _ranker()
    batches = [X[i: i + 300] for i in range(0, len(X), 300)]
    want = [r.predict(b) for b in batches]
    raw = r.booster_.predict(X[:300], num_iteration=r.metrics_["best_iteration"], num_threads=1)
    assert r.compile(cache=tmp_path)
    assert len(list(tmp_path.glob("forest-*.o"))) == 1
    assert np.allclose(r.compiled_.predict(X[:300]), raw, rtol=1e-12, atol=1e-12)
    for b, w in zip(batches, want, strict=True):
        got = r.predict(b)
        assert got.dtype == np.float32 and np.allclose(got, w, rtol=1e-6, atol=1e-6)
        assert np.array_equal(np.lexsort((np.arange(len(b)), -got)), np.lexsort((np.arange(len(b)), -w)))
    # a second compile loads the cached object: the same scores, still one file
    first = r.compiled_
    assert r.compile(cache=tmp_path) and r.compiled_ is not first
    assert np.array_equal(r.predict(X[:300]), first.predict(X[:300]).astype(np.float32))
    assert len(list(tmp_path.glob("forest-*.o"))) == 1


@pytest.mark.skipif(not compiled.available(), reason="the fast extra (lleaves) is not installed")
def test_a_corrupt_cached_object_is_replaced(tmp_path: Path):
    r, X = _ranker()
    assert r.compile(cache=tmp_path)
    (obj,) = tmp_path.glob("forest-*.o")
    obj.write_bytes(b"not an object file")
    want = r.booster_.predict(X[:50], num_iteration=r.metrics_["best_iteration"], num_threads=1)
    assert r.compile(cache=tmp_path)
    assert np.allclose(r.compiled_.predict(X[:50]), want, rtol=1e-12, atol=1e-12)
    assert obj.read_bytes() != b"not an object file"


@pytest.mark.skipif(not compiled.available(), reason="the fast extra (lleaves) is not installed")
def test_a_refitted_booster_is_never_scored_by_a_stale_compilation(tmp_path: Path):
    r, X = _ranker(0)
    assert r.compile(cache=tmp_path)
    other, _ = _ranker(1)
    r.booster_ = other.booster_  # as a refit would replace it
    assert np.array_equal(r.predict(X[:100]), other.predict(X[:100]))
