"""Response cache keyed by model version, user and request options, with a TTL and per-user
invalidation (a new event for a user drops every cached response of theirs).

In-process (an LRU over users) by default; Redis when configured: one hash per user
(``shortlist:cache:<version>:<user>``, field = options key) that expires ``ttl_s`` after its last
write, so invalidating a user is one ``DEL``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

from shortlist.serving.redis_link import RedisLink


class ResponseCache(Protocol):
    backend: str

    def get(self, version: str, user: str, options: str) -> bytes | None: ...
    def set(self, version: str, user: str, options: str, value: bytes) -> None: ...
    def invalidate(self, user: str) -> None: ...


class MemoryCache:
    """Thread-safe in-process cache: at most ``max_users`` users, least recently used dropped first."""

    backend = "memory"

    def __init__(self, *, ttl_s: float, max_users: int) -> None:
        self.ttl_s, self.max_users = ttl_s, max_users
        self._data: OrderedDict[str, dict[tuple[str, str], tuple[float, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: str, user: str, options: str) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            entries = self._data.get(user)
            if entries is None:
                return None
            hit = entries.get((version, options))
            if hit is None:
                return None
            if hit[0] < now:
                del entries[(version, options)]
                return None
            self._data.move_to_end(user)
            return hit[1]

    def set(self, version: str, user: str, options: str, value: bytes) -> None:
        with self._lock:
            entries = self._data.setdefault(user, {})
            entries[(version, options)] = (time.monotonic() + self.ttl_s, value)
            self._data.move_to_end(user)
            while len(self._data) > self.max_users:
                self._data.popitem(last=False)

    def invalidate(self, user: str) -> None:
        with self._lock:
            self._data.pop(user, None)



class RedisCache:
    """The same cache in Redis; every call degrades to a miss / no-op while Redis is unreachable."""

    backend = "redis"
    prefix = "shortlist:cache:"

    def __init__(self, link: RedisLink, *, ttl_s: float) -> None:
        self.link, self.ttl_ms = link, max(1, int(ttl_s * 1000))

    def _key(self, user: str) -> str:
        return f"{self.prefix}{user}"

    def get(self, version: str, user: str, options: str) -> bytes | None:
        value, _ = self.link.call(lambda c: c.hget(self._key(user), f"{version}|{options}"), None)
        return value

    def set(self, version: str, user: str, options: str, value: bytes) -> None:
        def write(c: Any) -> Any:
            p = c.pipeline(transaction=False)
            p.hset(self._key(user), f"{version}|{options}", value)
            p.pexpire(self._key(user), self.ttl_ms)
            return p.execute()

        self.link.call(write, None)

    def invalidate(self, user: str) -> None:
        self.link.call(lambda c: c.delete(self._key(user)), 0)
