"""Ranking metrics: exact hand-computed values, a brute-force reference on random inputs, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from shortlist.errors import ConfigError, DataValidationError
from shortlist.evaluation import hits as hits_module
from shortlist.evaluation.metrics import (
    METRICS,
    PER_USER,
    candidate_recall,
    compute_metrics,
    metric_curve,
    per_user_metrics,
)


def _targets(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


# --- brute-force reference: plain Python loops and sets, independent of the vectorised code ----------


def _reference(recs: list[list[int]], rel: list[set[int]], k: int, n_items: int) -> dict[str, float]:
    sums = dict.fromkeys(PER_USER, 0.0)
    n_eval = 0
    covered: set[int] = set()
    for row, relevant in zip(recs, rel, strict=True):
        if not relevant:
            continue
        n_eval += 1
        ranked = [i for i in row if i != -1]
        head = ranked[:k]
        covered.update(head)
        hits = [i in relevant for i in head]
        n_hits = sum(hits)
        sums["recall"] += n_hits / len(relevant)
        sums["precision"] += n_hits / k
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
        sums["ndcg"] += dcg / idcg
        ap, seen = 0.0, 0
        for r, h in enumerate(hits):
            if h:
                seen += 1
                ap += seen / (r + 1)
        sums["map"] += ap / min(len(relevant), k)
        first = next((r for r, h in enumerate(hits) if h), None)
        sums["mrr"] += 0.0 if first is None else 1 / (first + 1)
        sums["hitrate"] += float(n_hits > 0)
        # MPR: the unranked remainder occupies positions len(head) .. n_items-1 in random order.
        remainder_mid = (len(head) + n_items - 1) / 2
        positions = [head.index(i) if i in head else remainder_mid for i in relevant]
        sums["mpr"] += sum(p / max(n_items - 1, 1) for p in positions) / len(relevant)
    out = {f"{m}@{k}": (s / n_eval if n_eval else math.nan) for m, s in sums.items()}
    out[f"coverage@{k}"] = len(covered) / n_items
    return out


@st.composite
def _ranking_case(draw: st.DrawFn) -> tuple[np.ndarray, sp.csr_matrix, list[set[int]], int, int]:
    n_items = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, n_items))
    rows, rel = [], []
    for _ in range(n_users):
        items = draw(st.permutations(range(n_items)))
        n_valid = draw(st.integers(0, width))  # trailing -1 padding when a model returned fewer
        rows.append(list(items[:n_valid]) + [-1] * (width - n_valid))
        rel.append(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)))
    extra = draw(st.integers(0, 3))  # catalogue larger than the target columns
    k = draw(st.integers(1, width))
    return (
        np.array(rows, dtype=np.int64),
        _targets([sorted(s) for s in rel], n_items),
        rel,
        n_items + extra,
        k,
    )


@settings(max_examples=300, deadline=None)
@given(_ranking_case())
def test_matches_brute_force_reference(
    case: tuple[np.ndarray, sp.csr_matrix, list[set[int]], int, int],
) -> None:
    recs, targets, rel, n_items, k = case
    got = compute_metrics(recs, targets, ks=(k,), n_items=n_items)
    want = _reference(recs.tolist(), rel, k, n_items)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key


@pytest.mark.parametrize("buffer_cells", [1 << 21, 6000, 600, 8])  # 1 block; 2; compacted: 7, 200
def test_matches_reference_on_larger_seeded_inputs(
    buffer_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hits_module, "_BUFFER_CELLS", buffer_cells)
    rng = np.random.default_rng(7)
    n_users, n_items, width = 200, 60, 25
    recs = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    n_valid = rng.integers(0, width + 1, n_users)
    recs[np.arange(width)[None, :] >= n_valid[:, None]] = -1
    rel = [set(rng.choice(n_items, rng.integers(0, 8), replace=False).tolist()) for _ in range(n_users)]
    targets = _targets([sorted(s) for s in rel], n_items)
    got = compute_metrics(recs, targets, ks=(1, 5, 25))
    for k in (1, 5, 25):
        for key, value in _reference(recs.tolist(), rel, k, n_items).items():
            assert got[key] == pytest.approx(value, abs=1e-12), key


# --- exact values on a tiny hand-built case -----------------------------------------------------------

# n_items = 10.
# user 0: recs [3, 1, 7, 2], targets {1, 2, 9}: hits at ranks 2 and 4.
# user 1: recs [5, -1, -1, -1] (padding), targets {5}: hit at rank 1.
# user 2: recs [0, 4, 6, 8], no targets: excluded from every average and from coverage.
# user 3: recs [0, 1, 2, 3], targets {9}: no hit.
RECS = np.array([[3, 1, 7, 2], [5, -1, -1, -1], [0, 4, 6, 8], [0, 1, 2, 3]])
TARGETS = _targets([[1, 2, 9], [5], [], [9]], 10)
L2 = math.log2


def test_exact_values_at_4() -> None:
    got = compute_metrics(RECS, TARGETS, ks=(4,))
    ndcg0 = (1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3) + 1 / L2(4))  # ideal over min(3, 4) = 3 hits
    expected = {
        "recall@4": (2 / 3 + 1 + 0) / 3,  # = 5/9
        "precision@4": (2 / 4 + 1 / 4 + 0) / 3,  # padding counts as a miss
        "ndcg@4": (ndcg0 + 1 + 0) / 3,
        "map@4": ((1 / 2 + 2 / 4) / 3 + 1 / 1 + 0) / 3,  # user 0: (P@2 + P@4) / min(3, 4)
        "mrr@4": (1 / 2 + 1 + 0) / 3,
        "hitrate@4": 2 / 3,
        # MPR (positions 0-based, / (10 - 1)); unranked items sit at the mid-point (4 + 9) / 2 = 6.5
        # of the unranked positions 4..9. user 0: (1 + 3 + 6.5) / 3 / 9 = 7/18; user 1: 0;
        # user 3: 6.5 / 9 = 13/18.
        "mpr@4": (7 / 18 + 0 + 13 / 18) / 3,  # = 10/27
        "coverage@4": 6 / 10,  # {0, 1, 2, 3, 5, 7}
    }
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_exact_values_at_2_and_key_order() -> None:
    got = compute_metrics(RECS, TARGETS, ks=(2, 4), metrics=("ndcg", "map", "mpr", "coverage"))
    assert list(got) == ["ndcg@2", "ndcg@4", "map@2", "map@4", "mpr@2", "mpr@4", "coverage@2", "coverage@4"]
    # user 0 at K=2: one hit at rank 2; ideal over min(3, 2) = 2 hits.
    assert got["ndcg@2"] == pytest.approx(((1 / L2(3)) / (1 + 1 / L2(3)) + 1 + 0) / 3)
    assert got["map@2"] == pytest.approx(((1 / 2) / 2 + 1 + 0) / 3)
    # user 0: item 1 at position 1, items 2 and 9 at the mid-point (2 + 9) / 2 = 5.5 → (1 + 11) / 27.
    # user 3: n_ranked = 2 → mid-point 5.5 → 5.5 / 9.
    assert got["mpr@2"] == pytest.approx((12 / 27 + 0 + 5.5 / 9) / 3)
    assert got["coverage@2"] == pytest.approx(4 / 10)  # {3, 1, 5, 0}


def test_per_user_arrays_and_count() -> None:
    pu = per_user_metrics(RECS, TARGETS, ks=(4,), metrics=("recall", "mrr", "coverage"))
    assert pu.n_users == 3
    np.testing.assert_array_equal(pu.users, [0, 1, 3])
    assert list(pu.values) == ["recall@4", "mrr@4"]  # coverage is not per user
    np.testing.assert_allclose(pu.values["recall@4"], [2 / 3, 1, 0])
    np.testing.assert_allclose(pu.values["mrr@4"], [0.5, 1, 0])
    assert pu.means()["recall@4"] == pytest.approx(5 / 9)


def test_metric_curve_equals_metric_at_each_k() -> None:
    for metric in METRICS:
        curve = metric_curve(RECS, TARGETS, metric=metric)
        assert curve.shape == (4,)
        for k in range(1, 5):
            assert curve[k - 1] == pytest.approx(compute_metrics(RECS, TARGETS, ks=(k,))[f"{metric}@{k}"])


def test_candidate_recall_is_recall_for_large_n() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, n = 500, 2000, 300
    recs = np.stack([rng.permutation(n_items)[:n] for _ in range(n_users)])
    rel = [set(rng.choice(n_items, 5, replace=False).tolist()) for _ in range(n_users)]
    targets = _targets([sorted(s) for s in rel], n_items)
    expected = np.mean([len(s & set(row)) / len(s) for s, row in zip(rel, recs.tolist(), strict=True)])
    assert candidate_recall(recs, targets, n) == pytest.approx(expected)
    assert candidate_recall(recs, targets, 10) == pytest.approx(
        compute_metrics(recs, targets, ks=(10,), metrics=("recall",))["recall@10"]
    )


# --- edge cases ---------------------------------------------------------------------------------------


def test_all_padding_scores_zero_and_mpr_is_random_expectation() -> None:
    got = compute_metrics(np.full((2, 3), -1), _targets([[0], [1, 2]], 5), ks=(3,))
    for name in ("recall", "precision", "ndcg", "map", "mrr", "hitrate", "coverage"):
        assert got[f"{name}@3"] == 0.0
    assert got["mpr@3"] == pytest.approx(0.5)


def test_no_hits() -> None:
    got = compute_metrics(np.array([[0, 1], [2, 3]]), _targets([[4], [5]], 6), ks=(2,))
    assert got["ndcg@2"] == got["recall@2"] == got["mrr@2"] == got["hitrate@2"] == 0.0
    assert got["mpr@2"] == pytest.approx((2 + 5) / 2 / 5)  # mid-point of positions 2..5, / 5


def test_users_without_targets_are_excluded() -> None:
    recs = np.array([[0, 1], [0, 1], [2, 3]])
    got = compute_metrics(recs, _targets([[0], [], []], 4), ks=(1,), metrics=("recall", "coverage"))
    assert got == {"recall@1": 1.0, "coverage@1": 0.25}


def test_no_user_with_targets_gives_nan_and_zero_count() -> None:
    recs, targets = np.array([[0, 1]]), _targets([[]], 3)
    assert math.isnan(compute_metrics(recs, targets, ks=(2,))["ndcg@2"])
    assert per_user_metrics(recs, targets, ks=(2,)).n_users == 0


def test_explicit_zeros_are_not_relevant_and_sparse_arrays_accepted() -> None:
    targets = sp.csr_array((np.array([0.0, 1.0]), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 3))
    got = compute_metrics(np.array([[0, 1, 2]]), targets, ks=(1, 3), metrics=("recall",))
    assert got == {"recall@1": 0.0, "recall@3": 1.0}


def test_k_larger_than_number_of_targets() -> None:
    # 1 target, K = 5: precision 1/5, ndcg ideal over 1 item, map normalised by 1.
    got = compute_metrics(np.array([[4, 2, 0, 1, 3]]), _targets([[2]], 5), ks=(5,))
    assert got["precision@5"] == pytest.approx(0.2)
    assert got["ndcg@5"] == pytest.approx(1 / L2(3))
    assert got["map@5"] == pytest.approx(0.5)


# --- errors -------------------------------------------------------------------------------------------


def test_unknown_metric_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric.*'auc'.*valid metrics: recall, precision"):
        compute_metrics(RECS, TARGETS, ks=(2,), metrics=("ndcg", "auc"))


@pytest.mark.parametrize("ks", [(5,), (0,), (), (2.0,)])
def test_bad_k_is_config_error(ks: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError):
        compute_metrics(RECS, TARGETS, ks=ks)


def test_input_shape_and_id_errors() -> None:
    with pytest.raises(DataValidationError, match="rows"):
        compute_metrics(RECS[:2], TARGETS, ks=(2,))
    with pytest.raises(DataValidationError, match="padding"):
        compute_metrics(np.array([[-1, 3]]), _targets([[3]], 5), ks=(2,))
    with pytest.raises(DataValidationError, match="outside"):
        compute_metrics(np.array([[7]]), _targets([[3]], 5), ks=(1,))
    with pytest.raises(DataValidationError, match="integer"):
        compute_metrics(np.array([[0.0]]), _targets([[0]], 5), ks=(1,))
    with pytest.raises(ConfigError, match="n_items"):
        compute_metrics(RECS, TARGETS, ks=(2,), n_items=5)
