"""Offline user histories as flat arrays (one sort at load): a user's items and times in O(1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shortlist.data.containers import Interactions
from shortlist.schema import ITEM, TIMESTAMP, USER


@dataclass(frozen=True)
class OfflineHistories:
    indptr: np.ndarray
    items: np.ndarray
    ts: np.ndarray

    @classmethod
    def build(cls, history: Interactions) -> OfflineHistories:
        f = history.frame
        u = f.get_column(USER).to_numpy().astype(np.int64)
        t = f.get_column(TIMESTAMP).to_numpy().astype(np.int64)
        i = f.get_column(ITEM).to_numpy().astype(np.int64)
        order = np.lexsort((t, u))  # by user, then time (stable: input order on ties)
        counts = np.bincount(u, minlength=history.n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr=indptr, items=i[order], ts=t[order])

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def of(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """(items, timestamps) oldest first; empty for users outside the map."""
        if not 0 <= user < self.n_users:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a, b = self.indptr[user], self.indptr[user + 1]
        return self.items[a:b], self.ts[a:b]

    def items_of(self, user: int) -> np.ndarray:
        return self.of(user)[0]

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)
