import numpy as np
import pytest

from shortlist.ordering import best_first


def _messy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, 50, n))
    scores = np.round(rng.standard_normal(n), 1).astype(np.float32)  # many ties
    special = rng.random(n)
    scores[special < 0.05] = np.nan
    scores[(special >= 0.05) & (special < 0.08)] = -0.0
    scores[(special >= 0.08) & (special < 0.10)] = 0.0
    scores[(special >= 0.10) & (special < 0.12)] = np.inf
    scores[(special >= 0.12) & (special < 0.14)] = -np.inf
    return groups, scores, rng.integers(0, 30, n)


@pytest.mark.parametrize("seed", range(5))
def test_best_first_equals_lexsort_with_ties_nan_and_signed_zeros(seed: int) -> None:
    groups, scores, ties = _messy(5_000, seed)
    np.testing.assert_array_equal(best_first(groups, scores), np.lexsort((-scores, groups)))
    np.testing.assert_array_equal(best_first(groups, scores, ties), np.lexsort((ties, -scores, groups)))
    shuffled = np.random.default_rng(seed).permutation(len(groups))  # groups need not come sorted
    g, s, t = groups[shuffled], scores[shuffled], ties[shuffled]
    np.testing.assert_array_equal(best_first(g, s, t), np.lexsort((t, -s, g)))


def test_other_dtypes_and_large_groups_keep_lexsort_order() -> None:
    groups, scores, ties = _messy(2_000, 9)
    wide = scores.astype(np.float64) + 1e-9  # float64 is not packed into 32 bits
    np.testing.assert_array_equal(best_first(groups, wide, ties), np.lexsort((ties, -wide, groups)))
    big = groups.astype(np.int64) + 2**33
    np.testing.assert_array_equal(best_first(big, scores), np.lexsort((-scores, big)))
    assert best_first(np.zeros(0, np.int64), np.zeros(0, np.float32)).tolist() == []
