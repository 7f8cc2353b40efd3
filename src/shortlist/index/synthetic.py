"""Seeded synthetic embeddings for index tests and benchmarks (a Gaussian mixture, like trained ones)."""

from __future__ import annotations

import numpy as np

from shortlist.index._topk import F32


def clustered_vectors(
    n_items: int,
    dim: int,
    *,
    n_queries: int = 1000,
    n_clusters: int = 100,
    spread: float = 0.5,
    rng: np.random.Generator,
) -> tuple[F32, F32]:
    """Item and query vectors (float32) drawn around the same `n_clusters` Gaussian centres.

    Trained embeddings are clustered (genres, categories; users near what they like) and item
    norms vary with popularity; both make approximate inner-product search harder than
    uniform random data, so recall measured here is not flattered.
    """
    centres = rng.standard_normal((n_clusters, dim))
    weights = rng.dirichlet(np.full(n_clusters, 2.0))

    def draw(n: int, norm_sigma: float) -> F32:
        x = centres[rng.choice(n_clusters, size=n, p=weights)] + spread * rng.standard_normal((n, dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x *= rng.lognormal(mean=0.0, sigma=norm_sigma, size=(n, 1))
        return x.astype(np.float32)

    return draw(n_items, 0.25), draw(n_queries, 0.1)
