"""A Redis connection that never takes the service down: short timeouts and a circuit breaker.

When a call fails, Redis is marked down for ``retry_s`` seconds and every call in between returns
the caller's default at once (no timeout paid per request); then one call probes it again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shortlist.errors import DependencyMissingError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RedisLink:
    """Wraps a ``redis.Redis`` client; :meth:`call` runs a function on it or returns a default."""

    def __init__(self, url: str, *, timeout_s: float = 0.05, retry_s: float = 1.0) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - the serve extra brings it
            raise DependencyMissingError("redis", "serve", "a Redis cache and feature store") from e
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                           health_check_interval=0)
        self.retry_s = retry_s
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.failures = 0
        self.on_state_change: Callable[[bool], None] | None = None

    @property
    def up(self) -> bool:
        return time.monotonic() >= self._down_until

    def call(self, fn: Callable[[Any], T], default: T) -> tuple[T, bool]:
        """``(fn(client), True)``, or ``(default, False)`` when Redis is down or the call fails."""
        if not self.up:
            return default, False
        try:
            out = fn(self.client)
        except Exception as e:  # any client/network error: bypass, never fail the request
            with self._lock:
                self.failures += 1
                was_up = self.up
                self._down_until = time.monotonic() + self.retry_s
            if was_up:
                logger.warning("redis %s unreachable (%s): bypassing it for %.1fs", self.url, e, self.retry_s)
                if self.on_state_change is not None:
                    self.on_state_change(False)
            return default, False
        return out, True

    def ping(self) -> bool:
        ok, _ = self.call(lambda c: bool(c.ping()), False)
        return ok

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection
            self.client.close()
