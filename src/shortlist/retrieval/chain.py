"""Fill-in chains: take a source's list, then top it up from the next ("repurchase then popular")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.retrieval.base import CandidateSource, State, TopK, check_k


def chain_topk(parts: Sequence[TopK], k: int) -> TopK:
    """Merge (rows × k) lists in priority order: earlier lists first, repeated items dropped, ``k`` a
    row; scored ``k + 1 - rank`` so that higher is better and the order is explicit."""
    rows = parts[0][0].shape[0] if parts else 0
    items = np.concatenate([p[0] for p in parts], axis=1) if parts else np.zeros((0, 0), np.int64)
    keep = items >= 0
    order = np.lexsort((np.broadcast_to(np.arange(items.shape[1]), items.shape), items), axis=1)  # item, then position
    by_item = np.take_along_axis(items, order, axis=1)
    repeat = np.zeros(items.shape, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], by_item[:, 1:] == by_item[:, :-1], axis=1)  # a later copy of an item
    keep &= ~repeat
    slot = np.cumsum(keep, axis=1) - 1
    keep &= slot < k
    out = np.full((rows, k), -1, np.int64)
    r, c = np.nonzero(keep)
    out[r, slot[r, c]] = items[r, c]
    scores = np.where(out >= 0, (k + 1 - np.arange(1, k + 1, dtype=np.float32))[None, :], -np.inf)
    return out, scores.astype(np.float32)


class Chain:
    """A baseline that lists ``sources[0]``'s items, then fills up from ``sources[1]``, and so on."""

    def __init__(self, sources: Sequence[CandidateSource], *, name: str | None = None) -> None:
        if not sources:
            raise ConfigError("Chain needs at least one source")
        self.sources = list(sources)
        self.name = name or "_then_".join(s.name for s in self.sources)

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self:
        for s in self.sources:
            s.fit(history, items=items, rng=rng)
        return self

    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> TopK:
        check_k(k)
        return chain_topk([s.topk(users, k, exclude_seen=exclude_seen) for s in self.sources], k)

    def topk_for_history(self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None,
                         exclude_seen: bool = True, weights: np.ndarray | None = None) -> TopK:
        check_k(k)
        return chain_topk([s.topk_for_history(items, k, timestamps=timestamps, exclude_seen=exclude_seen,
                                              weights=weights) for s in self.sources], k)

    def get_state(self) -> State:
        raise NotImplementedError("Chain is saved through its sources (see shortlist.retrieval.registry)")

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        raise NotImplementedError("Chain is loaded through its sources (see shortlist.retrieval.registry)")
