"""Fill-in chains: take a source's list, then top it up from the next ("repurchase then popular")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import polars as pl

from shortlist.data.containers import Interactions
from shortlist.errors import ConfigError
from shortlist.retrieval.base import CandidateSource, State, check_k
from shortlist.retrieval.candidates import Candidates
from shortlist.schema import ITEM, RANK, SCORE, SOURCE, USER


def chain_candidates(parts: Sequence[Candidates], k: int, name: str) -> Candidates:
    """Merge lists in priority order: earlier parts first, duplicates dropped, ``k`` per user.

    The score is ``k + 1 - rank`` so that higher is better and the order is explicit.
    """
    frames = [p.frame.with_columns(pl.lit(i, pl.Int32).alias("_prio")) for i, p in enumerate(parts) if len(p)]
    if not frames:
        return Candidates.empty(name)
    f = (
        pl.concat(frames)
        .sort([USER, "_prio", RANK])
        .unique([USER, ITEM], keep="first", maintain_order=True)
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(USER).alias(RANK))
        .filter(pl.col(RANK) <= k)
        .with_columns((k + 1 - pl.col(RANK)).cast(pl.Float32).alias(SCORE), pl.lit(name).alias(SOURCE))
    )
    return Candidates(f.select(USER, ITEM, SCORE, RANK, SOURCE))


class Chain:
    """A baseline that lists ``sources[0]``'s items, then fills up from ``sources[1]``, and so on."""

    def __init__(self, sources: Sequence[CandidateSource], *, name: str | None = None) -> None:
        if not sources:
            raise ConfigError("Chain needs at least one source")
        self.sources = list(sources)
        self.name = name or "_then_".join(s.name for s in self.sources)

    def fit(self, history: Interactions, *, rng: np.random.Generator | None = None) -> Self:
        for s in self.sources:
            s.fit(history, rng=rng)
        return self

    def retrieve(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> Candidates:
        check_k(k)
        parts = [s.retrieve(users, k, exclude_seen=exclude_seen) for s in self.sources]
        return chain_candidates(parts, k, self.name)

    def get_state(self) -> State:
        raise NotImplementedError("Chain is saved through its sources (see shortlist.pipeline)")

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        raise NotImplementedError("Chain is loaded through its sources (see shortlist.pipeline)")
