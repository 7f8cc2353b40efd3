"""``Candidates``: the one value type between stages — (user, item, score, rank, source) rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shortlist.schema import ID_DTYPE, ITEM, RANK, SCORE, SOURCE, USER

CANDIDATE_SCHEMA: dict[str, pl.DataType] = {
    USER: ID_DTYPE,
    ITEM: ID_DTYPE,
    SCORE: pl.Float32(),
    RANK: pl.Int32(),
    SOURCE: pl.Utf8(),
}


@dataclass(frozen=True)
class Candidates:
    """Ranked candidates of one or more sources; ``rank`` is 1-based within (user, source)."""

    frame: pl.DataFrame

    @classmethod
    def empty(cls, source: str = "") -> Candidates:
        return cls(pl.DataFrame(schema=CANDIDATE_SCHEMA))

    @classmethod
    def from_topk(cls, users: np.ndarray, items: np.ndarray, scores: np.ndarray, source: str) -> Candidates:
        """From (n_users × k) item and score matrices sorted best-first; item ``-1`` marks padding."""
        users = np.asarray(users).reshape(-1)
        n = items.shape[0]
        valid = items >= 0
        per_row = valid.sum(axis=1)
        if len(np.unique(users)) == n:
            # Ranks count valid entries only, so padding holes never leave gaps.
            ranks = np.cumsum(valid, axis=1, dtype=np.int32)[valid]
        else:  # a user listed twice is ranked over both rows, in order
            user_rows = np.repeat(users, per_row)
            order = np.argsort(user_rows, kind="stable")
            first = np.flatnonzero(np.r_[True, user_rows[order][1:] != user_rows[order][:-1]])
            counts = np.diff(np.r_[first, len(order)])
            ranks = np.empty(len(order), np.int32)
            ranks[order] = (np.arange(len(order)) - np.repeat(first, counts) + 1).astype(np.int32)
        total = int(per_row.sum())
        frame = pl.DataFrame(
            [
                pl.Series(USER, np.repeat(users.astype(np.int32), per_row), dtype=pl.Int32),
                pl.Series(ITEM, items[valid].astype(np.int32), dtype=pl.Int32),
                pl.Series(SCORE, scores[valid].astype(np.float32), dtype=pl.Float32),
                pl.Series(RANK, ranks, dtype=pl.Int32),
                # a short list is ~6x cheaper than pl.repeat's per-call setup; long ones repeat natively
                pl.Series(SOURCE, [source] * total, dtype=pl.Utf8) if total <= 4096
                else pl.repeat(source, total, dtype=pl.Utf8, eager=True).alias(SOURCE),
            ]
        )
        return cls(frame)

    def __len__(self) -> int:
        return self.frame.height

    @property
    def sources(self) -> list[str]:
        return self.frame.get_column(SOURCE).unique(maintain_order=True).to_list()

    def to_matrix(self, users: np.ndarray, k: int) -> np.ndarray:
        """(len(users) × k) item ids in rank order, padded with -1; rows follow ``users``."""
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), k), -1, dtype=np.int64)
        if not len(self.frame) or not len(users):
            return out
        f = self.frame.filter(pl.col(RANK) <= k)
        top = int(f.get_column(USER).max() or 0)  # type: ignore[arg-type]
        pos = np.full(max(int(users.max()), top) + 1, -1, dtype=np.int64)
        pos[users] = np.arange(len(users))
        u = f.get_column(USER).to_numpy()
        row = pos[u]
        keep = row >= 0
        out[row[keep], f.get_column(RANK).to_numpy()[keep] - 1] = f.get_column(ITEM).to_numpy()[keep]
        return out
