"""A source's top-k matrices as (user, item, score, rank) rows, for assertions on small cases."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Listed:
    """Rows of a source's lists: ``frame`` has user, item, score, rank (1-based within a user)."""

    frame: pl.DataFrame

    def __len__(self) -> int:
        return self.frame.height


def listed(users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> Listed:
    users = np.asarray(users).reshape(-1)
    valid = items >= 0
    return Listed(pl.DataFrame({
        "user": np.repeat(users, valid.sum(axis=1)).astype(np.int64),
        "item": items[valid].astype(np.int64),
        "score": scores[valid].astype(np.float32),
        "rank": np.cumsum(valid, axis=1)[valid].astype(np.int32),
    }))


def retrieve(source, users, k: int, **kw) -> Listed:
    """``source.topk`` as rows."""
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    return listed(users, *source.topk(users, k, **kw))


def retrieve_for_history(source, items, k: int, **kw) -> Listed:
    """``source.topk_for_history`` as rows of user -1."""
    return listed(np.array([-1]), *source.topk_for_history(np.asarray(items), k, **kw))
