"""Bad inputs fail early with typed errors that say what to fix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shortlist.errors import ConfigError, DataValidationError, NotFittedError, ShortlistError
from shortlist.index import (
    EmptyIndexError,
    IndexConfigError,
    IndexInputError,
    IndexNotBuiltError,
    VectorIndex,
)

ITEMS = np.eye(4, 3, dtype=np.float32)


def _built() -> VectorIndex:
    return VectorIndex(backend="numpy").build(ITEMS)


def test_error_classes_fit_the_package_hierarchy() -> None:
    assert issubclass(IndexInputError, DataValidationError)
    assert issubclass(IndexInputError, ValueError)
    assert issubclass(IndexConfigError, ConfigError)
    assert issubclass(IndexNotBuiltError, NotFittedError)
    assert issubclass(EmptyIndexError, ShortlistError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "annoy"}, "backend"),
        ({"metric": "l2"}, "metric"),
        ({"nprobe": 0}, "nprobe"),
        ({"chunk_size": -1}, "chunk_size"),
        ({"hnsw_m": True}, "hnsw_m"),
    ],
)
def test_bad_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(IndexConfigError, match=match):
        VectorIndex(**kwargs)  # type: ignore[arg-type]


def test_empty_index() -> None:
    with pytest.raises(EmptyIndexError, match="at least one item"):
        VectorIndex(backend="numpy").build(np.zeros((0, 3), np.float32))


@pytest.mark.parametrize(
    ("vectors", "match"),
    [
        (np.zeros(3), "2-D"),
        (np.zeros((2, 0)), "0 dimensions"),
        (np.array([["a", "b"]]), "not numeric"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), r"NaN or inf \(first rows: \[0\]\)"),
        (np.array([[1.0, 0.0], [np.inf, 1.0]]), r"first rows: \[1\]"),
    ],
)
def test_bad_vectors(vectors: np.ndarray, match: str) -> None:
    with pytest.raises(IndexInputError, match=match):
        VectorIndex(backend="numpy").build(vectors)


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (np.array([0, 1, 1, 2]), "unique"),
        (np.array([0, -1, 2, 3]), "negative"),
        (np.array([0, 1, 2]), "one id per vector"),
        (np.array([0.0, 1.0, 2.0, 3.0]), "not integer"),
    ],
)
def test_bad_ids(ids: np.ndarray, match: str) -> None:
    with pytest.raises(IndexInputError, match=match):
        VectorIndex(backend="numpy").build(ITEMS, ids=ids)


def test_query_dimension_mismatch_names_both_dimensions() -> None:
    with pytest.raises(IndexInputError, match="dimension 5 does not match the index dimension 3"):
        _built().search(np.zeros((2, 5)), 1)


def test_nan_query() -> None:
    with pytest.raises(IndexInputError, match="queries"):
        _built().search(np.array([[np.nan, 0, 0]]), 1)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, None])
def test_bad_k(k: object) -> None:
    with pytest.raises(IndexInputError, match="k: must be a positive integer"):
        _built().search(np.ones((1, 3)), k)  # type: ignore[arg-type]


def test_exclude_must_be_sparse_with_one_row_per_query() -> None:
    with pytest.raises(IndexInputError, match=r"scipy\.sparse"):
        _built().search(np.ones((2, 3)), 1, exclude=np.zeros((2, 4)))
    with pytest.raises(IndexInputError, match="3 rows but there are 2 queries"):
        _built().search(np.ones((2, 3)), 1, exclude=sp.csr_matrix((3, 4)))


def test_use_before_build() -> None:
    index = VectorIndex(backend="numpy")
    for call in (lambda: index.search(np.ones((1, 3)), 1), lambda: index.n_items, lambda: index.save("x")):
        with pytest.raises(IndexNotBuiltError, match="build"):
            call()
    assert "not built" in repr(index)


def test_build_copies_the_callers_array() -> None:
    items = ITEMS.copy()
    index = VectorIndex(backend="numpy").build(items)
    items[:] = 0
    np.testing.assert_array_equal(index.search(np.array([[1.0, 0, 0]]), 1)[0], [[0]])
