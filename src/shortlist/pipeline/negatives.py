"""Which candidate rows of a shard the ranker trains on: every positive, each user's best-ranked
negatives, and a seeded sample of the rest that depends on (seed, user, item) alone, so a user's
rows do not depend on the shard they were built in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from shortlist.config import TwoStageConfig
    from shortlist.retrieval.union import CandidateUnion


def sample_rows(u: CandidateUnion, y: np.ndarray, config: TwoStageConfig) -> np.ndarray:
    """Rows to train on: every positive, each user's ``hard_negatives`` best-ranked negatives, and a
    random sample of their other negatives, ``max_negatives`` negatives a user in all. The sample
    hashes (seed, user, item), so a user's rows do not depend on the shard they were built in."""
    n = len(u)
    if config.max_negatives is None:
        return np.arange(n)
    starts = u.starts()
    group = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    neg = y <= 0
    hardest = np.lexsort((np.arange(n), u.best_rank(), ~neg, group))  # a user's negatives first, best-ranked first
    hard_rank = np.empty(n, np.int64)
    hard_rank[hardest] = positions_in_groups(hardest, group)
    hard = neg & (hard_rank < config.hard_negatives)
    rest = neg & ~hard
    shuffled = np.lexsort((uniform_hash(u.users, u.items, config.seed), ~rest, group))
    random_rank = np.empty(n, np.int64)
    random_rank[shuffled] = positions_in_groups(shuffled, group)
    extra = rest & (random_rank < max(config.max_negatives - config.hard_negatives, 0))
    return np.flatnonzero(~neg | hard | extra)


def uniform_hash(users: np.ndarray, items: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) for each (user, item), a fixed function of ``seed`` (splitmix64)."""
    with np.errstate(over="ignore"):
        x = (users.astype(np.uint64) << np.uint64(32)) ^ items.astype(np.uint64) ^ np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def positions_in_groups(order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For rows taken in ``order`` (grouped), each one's position within its group."""
    g = group[order]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
