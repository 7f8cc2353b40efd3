"""Co-visitation graphs: built a block of item rows at a time, the same graph as at once."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist.data.synthetic import make_synthetic
from shortlist.retrieval import covisit
from shortlist.retrieval.covisit import CoVisitation, _blocks


@pytest.mark.parametrize("kind", ["user", "session"])
def test_blocked_graph_equals_the_whole_product(monkeypatch, kind):
    data = make_synthetic(n_users=150, n_items=80, n_interactions=4000, seed=3).interactions
    whole = CoVisitation(kind=kind, neighbours=15).fit(data).sim_
    monkeypatch.setattr(covisit, "PAIRS_PER_BLOCK", 500)  # many small blocks
    blocked = CoVisitation(kind=kind, neighbours=15).fit(data).sim_
    assert blocked.shape == whole.shape and (blocked != whole).nnz == 0
    np.testing.assert_array_equal(blocked.indptr, whole.indptr)
    assert not any(blocked[i, i] for i in range(80))  # an item is never its own neighbour


def test_blocks_split_rows_by_work():
    assert _blocks(np.array([5, 5, 5, 20, 1, 1]), 10) == [0, 2, 4, 6]
    assert _blocks(np.array([]), 10) == [0] and _blocks(np.array([3.0]), 10) == [0, 1]
