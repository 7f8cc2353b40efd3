import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shortlist.errors import ConfigError
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.union import union
from shortlist.schema import MISSING_RANK


def cands(source: str, rows: list[tuple[int, int, float]]) -> Candidates:
    """rows: (user, item, score) in rank order per user."""
    users = sorted({u for u, _, _ in rows})
    k = max(sum(1 for u2, _, _ in rows if u2 == u) for u in users)
    items = np.full((len(users), k), -1)
    scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    for r, u in enumerate(users):
        mine = [(i, s) for u2, i, s in rows if u2 == u]
        items[r, : len(mine)] = [i for i, _ in mine]
        scores[r, : len(mine)] = [s for _, s in mine]
    return Candidates.from_topk(np.array(users), items, scores, source)


A = cands("a", [(0, 10, 0.9), (0, 11, 0.5), (1, 12, 0.7)])
B = cands("b", [(0, 11, 3.0), (0, 13, 2.0), (0, 10, 1.0), (2, 10, 5.0)])


def test_union_one_row_per_pair_with_per_source_columns():
    u = union([A, B])
    assert u.columns == ["user", "item", "n_sources", "a_score", "a_rank", "b_score", "b_rank"]
    assert u.select("user", "item", "n_sources", "a_rank", "b_rank").rows() == [
        (0, 10, 2, 1, 3),
        (0, 11, 2, 2, 1),
        (0, 13, 1, MISSING_RANK, 2),
        (1, 12, 1, 1, MISSING_RANK),
        (2, 10, 1, MISSING_RANK, 1),
    ]
    assert u["a_score"].to_list()[2] is None and u["b_score"].to_list()[:3] == [1.0, 3.0, 2.0]


def test_union_budgets_and_exclusion():
    u = union([A, B], budgets={"b": 1})
    assert u.select("user", "item").rows() == [(0, 10), (0, 11), (1, 12), (2, 10)]
    seen = sp.csr_matrix(([1.0], ([0], [11])), shape=(3, 20))
    u = union([A, B], exclude=seen)
    assert (0, 11) not in u.select("user", "item").rows() and u.height == 4


def test_union_orders_sources_and_keeps_empty_ones():
    u = union([A, Candidates.empty("c")], sources=["c", "a"])
    assert u.columns == ["user", "item", "n_sources", "c_score", "c_rank", "a_score", "a_rank"]
    assert u["c_rank"].to_list() == [MISSING_RANK] * 3
    assert union([], sources=["x"]).height == 0


def test_union_rejects_duplicate_names():
    with pytest.raises(ConfigError):
        union([A], sources=["a", "a"])


def test_union_dtypes():
    u = union([A, B])
    assert u.schema["user"] == pl.Int32 and u.schema["a_rank"] == pl.Int32 and u.schema["a_score"] == pl.Float32
