"""recall_at_k on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist.index import IndexNotBuiltError, VectorIndex, recall_at_k

ITEMS = np.array([[4.0, 0.0], [3.0, 0.0], [2.0, 0.0], [1.0, 0.0]], dtype=np.float32)


def test_exact_index_has_recall_one() -> None:
    index = VectorIndex(backend="numpy").build(ITEMS)
    assert recall_at_k(index, np.array([[1.0, 0.0], [-1.0, 0.0]]), k=2) == 1.0


def test_partial_recall_against_a_given_exact_index() -> None:
    exact = VectorIndex(backend="numpy").build(ITEMS)
    # a "wrong" index: same ids, but item 0's vector points away, so it is never in the top-2
    wrong = VectorIndex(backend="numpy").build(ITEMS * np.array([[-1.0], [1.0], [1.0], [1.0]], np.float32))
    queries = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert recall_at_k(wrong, queries, k=2, exact=exact) == 0.5  # finds {1, 2}, truth {0, 1}
    assert recall_at_k(wrong, queries, k=2) == 1.0  # default exact uses wrong's own vectors


def test_padding_is_not_counted() -> None:
    index = VectorIndex(backend="numpy").build(ITEMS[:2])
    assert recall_at_k(index, np.array([[1.0, 0.0]]), k=10) == 1.0


def test_needs_a_built_index() -> None:
    with pytest.raises(IndexNotBuiltError):
        recall_at_k(VectorIndex(), np.ones((1, 2)), k=1)
