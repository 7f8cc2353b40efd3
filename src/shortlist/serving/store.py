"""The online feature store: per-user events that arrived after the model was trained.

A user's history at request time is the model's offline history (loaded from the model
directory, in memory) plus these online events. Events are kept with *external* ids, so they
survive a model reload; an event no newer than the loaded model's data is already part of its
history and is not applied twice. In-process by default; Redis when configured (a list per user,
``shortlist:events:<user>``, capped at ``max_events``), so replicas share what users did.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Protocol

from shortlist.serving.redis_link import RedisLink

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    item_id: str
    timestamp: int
    event: str

    def encode(self) -> bytes:
        return f"{self.timestamp}\t{self.event}\t{self.item_id}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> Event:
        ts, event, item = raw.decode().split("\t", 2)
        return cls(item_id=item, timestamp=int(ts), event=event)


class EventStore(Protocol):
    backend: str

    def append(self, user: str, event: Event) -> tuple[int, bool]: ...
    def events(self, user: str) -> tuple[list[Event], bool]: ...


class MemoryEventStore:
    """In-process events, oldest first, at most ``max_events`` per user and ``max_users`` users (the
    least recently active user's events are dropped first, counted in :attr:`evicted_users` and
    logged: a long-running service with many anonymous users should use Redis)."""

    backend = "memory"

    def __init__(self, *, max_events: int, max_users: int = 100_000) -> None:
        self.max_events, self.max_users = max_events, max_users
        self._data: OrderedDict[str, deque[Event]] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted_users = 0

    def append(self, user: str, event: Event) -> tuple[int, bool]:
        """Store an event; returns (the user's online event count, stored durably)."""
        with self._lock:
            q = self._data.get(user)
            if q is None:
                q = self._data[user] = deque(maxlen=self.max_events)
            q.append(event)
            self._data.move_to_end(user)
            while len(self._data) > self.max_users:
                dropped, _ = self._data.popitem(last=False)
                self.evicted_users += 1
                logger.warning("in-process event store full (%d users): dropped the events of %r",
                               self.max_users, dropped)
            return len(q), True

    def events(self, user: str) -> tuple[list[Event], bool]:
        with self._lock:
            q = self._data.get(user)
            return (list(q) if q else []), True



class RedisEventStore:
    """Events in Redis. While Redis is unreachable, new events go to an in-process buffer (so the
    user's next request still reflects them on this replica) and reads return that buffer; the
    second element of each result says whether Redis answered."""

    backend = "redis"
    prefix = "shortlist:events:"

    def __init__(self, link: RedisLink, *, max_events: int) -> None:
        self.link, self.max_events = link, max_events
        self.buffer = MemoryEventStore(max_events=max_events)

    def append(self, user: str, event: Event) -> tuple[int, bool]:
        key = self.prefix + user

        def push(c: Any) -> int:
            p = c.pipeline(transaction=False)
            p.rpush(key, event.encode())
            p.ltrim(key, -self.max_events, -1)
            p.llen(key)
            return int(p.execute()[-1])

        n, ok = self.link.call(push, -1)
        if not ok:
            return self.buffer.append(user, event)[0], False
        return n, True

    def events(self, user: str) -> tuple[list[Event], bool]:
        empty: list[bytes] = []
        raw, ok = self.link.call(lambda c: c.lrange(self.prefix + user, 0, -1), empty)
        buffered, _ = self.buffer.events(user)
        return [Event.decode(r) for r in raw] + buffered, ok
