"""User histories in Redis: what ``shortlist features push`` writes and the service reads.

Key ``shortlist:history:<model version>:<user_id>`` holds one user's offline history as ``.npy``
bytes (the same serialisation as the model's own arrays): an int64 array of shape (2, n), item
indices of that model version, then timestamps, oldest first. ``…:<version>:__complete__`` holds
the user count once a push has finished, so a reader can tell "no history" from "not pushed".
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from shortlist.serving.engine import Engine
from shortlist.serving.redis_link import RedisLink

PREFIX = "shortlist:history:"
COMPLETE = "__complete__"


def encode(items: np.ndarray, ts: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.stack([items.astype(np.int64), ts.astype(np.int64)]), allow_pickle=False)
    return buf.getvalue()


def decode(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    arr = np.load(io.BytesIO(raw), allow_pickle=False)
    if arr.ndim != 2 or arr.shape[0] != 2 or arr.dtype != np.int64:
        raise ValueError(f"a user history must be an int64 (2, n) array, got {arr.dtype} {arr.shape}")
    return arr[0], arr[1]


def push_histories(engine: Engine, client: Any, *, batch: int = 1_000) -> int:
    """Write every user's offline history for ``engine``'s model version; returns the user count."""
    ids = engine.users.ids.to_list()
    base = f"{PREFIX}{engine.version}:"
    for start in range(0, len(ids), batch):
        p = client.pipeline(transaction=False)
        for u in range(start, min(start + batch, len(ids))):
            p.set(base + ids[u], encode(*engine.histories.of(u)))
        p.execute()
    client.set(base + COMPLETE, str(len(ids)))
    return len(ids)


class RedisHistories:
    """Reads pushed histories; ``None`` means "use the in-process copy" (not pushed, or Redis down)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._complete: dict[str, bool] = {}

    def pushed(self, version: str) -> bool:
        if version not in self._complete:
            value, ok = self.link.call(lambda c: c.get(f"{PREFIX}{version}:{COMPLETE}"), None)
            if not ok:
                return False
            self._complete[version] = value is not None
        return self._complete[version]

    def of(self, version: str, user_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.pushed(version):
            return None
        raw, ok = self.link.call(lambda c: c.get(f"{PREFIX}{version}:{user_id}"), None)
        if not ok:
            return None
        if raw is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return decode(raw)
