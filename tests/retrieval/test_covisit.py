"""Co-visitation graphs: built a block of item rows at a time, the same graph as at once."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist.data.synthetic import make_synthetic
from shortlist.retrieval import cooccurrence
from shortlist.retrieval.covisit import CoVisitation


@pytest.mark.parametrize("kind", ["user", "session"])
def test_blocked_graph_equals_the_whole_product(monkeypatch, kind):
    data = make_synthetic(n_users=150, n_items=80, n_interactions=4000, seed=3).interactions
    whole = CoVisitation(kind=kind, neighbours=15).fit(data).sim_
    monkeypatch.setattr(cooccurrence, "PAIRS_PER_BLOCK", 500)  # many small blocks
    blocked = CoVisitation(kind=kind, neighbours=15).fit(data).sim_
    assert blocked.shape == whole.shape and (blocked != whole).nnz == 0
    np.testing.assert_array_equal(blocked.indptr, whole.indptr)
    assert not any(blocked[i, i] for i in range(80))  # an item is never its own neighbour


def test_the_graph_s_blocks_go_through_the_shard_mapper_of_the_caller_s_threads(monkeypatch):
    """Inside a cluster's mapper the partitions and blocks are its tasks, also from the threads the sources fit on."""
    from shortlist.pipeline.parallel import in_process, map_tasks, use_mapper

    data = make_synthetic(n_users=150, n_items=80, n_interactions=4000, seed=3).interactions
    whole = CoVisitation(kind="user", neighbours=15).fit(data).sim_
    monkeypatch.setattr(cooccurrence, "PAIRS_PER_BLOCK", 500)
    steps: list[tuple[str, int]] = []

    def recording(fn, shared, tasks, **kw):
        steps.append((kw["step"], len(tasks)))
        return in_process(fn, shared, tasks, **kw)

    with use_mapper(recording):
        fitted = map_tasks(lambda kind: CoVisitation(kind=kind, neighbours=15).fit(data), ["user", "session"], n_jobs=2)
    names = {f"{source} co-occurrence{part}" for source in ("covisit", "itemknn") for part in ("", " groups")}
    assert {s for s, _ in steps} == names
    assert all(n > 1 for s, n in steps if s.endswith("co-occurrence"))  # many blocks
    assert (fitted[0].sim_ != whole).nnz == 0
