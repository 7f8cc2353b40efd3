"""User histories in Redis: what ``shortlist features push`` writes and the service reads.

Key ``shortlist:history:<model version>:<user_id>`` holds one user's history as the feature
pipeline reads it (:class:`UserHistory`, in history order) as ``.npy`` bytes (the serialisation of
the model's own arrays): a float64 array of shape (6, n) — item indices of that model version,
epoch-second timestamps, prices paid (NaN: unknown), basket codes, event strengths and event type
codes (NaN: none) — every value exact in float64 (a (4, n) array of an earlier push has no strengths
or event codes). ``…:<version>:__complete__`` holds
the user count once a push has finished, so a reader can tell "no history" from "not pushed".
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from shortlist.features.profile import UserHistory
from shortlist.serving.engine import Engine
from shortlist.serving.redis_link import RedisLink

PREFIX = "shortlist:history:"
COMPLETE = "__complete__"


def encode(history: UserHistory) -> bytes:
    n = len(history)
    prices = np.full(n, np.nan) if history.prices is None else history.prices
    baskets = np.full(n, np.nan) if history.baskets is None else history.baskets
    extra = [np.full(n, np.nan) if a is None else a for a in (history.weights, history.events)]
    arr = np.stack([history.items, history.timestamps, prices, baskets, *extra]).astype(np.float64)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def decode(raw: bytes) -> UserHistory:
    arr = np.load(io.BytesIO(raw), allow_pickle=False)
    if arr.ndim != 2 or arr.shape[0] not in (4, 6) or arr.dtype != np.float64:
        raise ValueError(f"a stored user history must be a float64 (4, n) or (6, n) array, got {arr.dtype} {arr.shape}")
    baskets, weights, events = (None if len(arr) <= r or np.isnan(arr[r]).all() else arr[r] for r in (3, 4, 5))
    return UserHistory(arr[0].astype(np.int64), arr[1].astype(np.int64), arr[2].copy(),
                       None if baskets is None else baskets.astype(np.int64),
                       None if weights is None else weights.astype(np.float32),
                       None if events is None else events.astype(np.int64))


def push_histories(engine: Engine, client: Any, *, batch: int = 1_000) -> int:
    """Write every user's offline history for ``engine``'s model version; returns the user count."""
    ids = engine.users.ids.to_list()
    base = f"{PREFIX}{engine.version}:"
    for start in range(0, len(ids), batch):
        p = client.pipeline(transaction=False)
        for u in range(start, min(start + batch, len(ids))):
            p.set(base + ids[u], encode(engine.user_history(u)))
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

    def of(self, version: str, user_id: str) -> UserHistory | None:
        if not self.pushed(version):
            return None
        raw, ok = self.link.call(lambda c: c.get(f"{PREFIX}{version}:{user_id}"), None)
        if not ok:
            return None
        if raw is None:
            return UserHistory(np.zeros(0, np.int64), np.zeros(0, np.int64))
        return decode(raw)
