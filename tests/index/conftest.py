"""Shared synthetic data for the index tests (seeded, small enough for the unit suite)."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist.index import clustered_vectors


@pytest.fixture(scope="session")
def clustered_20k() -> tuple[np.ndarray, np.ndarray]:
    """20k items x 64 dims and 300 queries from one Gaussian mixture."""
    return clustered_vectors(20_000, 64, n_queries=300, rng=np.random.default_rng(7))


@pytest.fixture(scope="session")
def random_small() -> tuple[np.ndarray, np.ndarray]:
    """2,000 random items x 16 dims and 50 queries: real-valued scores, no exact ties."""
    rng = np.random.default_rng(3)
    return (
        rng.standard_normal((2_000, 16)).astype(np.float32),
        rng.standard_normal((50, 16)).astype(np.float32),
    )
