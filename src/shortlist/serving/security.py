"""Who may call what: API keys and a per-client rate limit on writes, as FastAPI dependencies.

Endpoints come in three kinds. Reads (recommendations, lookups, metrics) are open unless the service
requires a key for them. Writes (``POST /events``) and admin (``/admin/*``) always need a key when
one is configured; without one they answer 403, unless the service is bound to loopback (then only
this machine can reach it). A wrong or missing key is a 401 with ``WWW-Authenticate: Bearer``. Keys
are compared in constant time; a key is never logged. Writes are rate-limited per client — its key,
else its address — by a token bucket (429 with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict

from fastapi import HTTPException, Request

from shortlist.serving.settings import ServingSettings

#: Clients a rate limiter remembers (least recently seen forgotten first): its memory is bounded.
MAX_CLIENTS = 10_000


def _unauthorized(message: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="shortlist"' + (f', error="{error}"' if error else "")
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": challenge})


class TokenBucket:
    """Per-client token buckets: ``rate`` tokens a second up to ``burst``; one token a request."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = MAX_CLIENTS) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when ``client`` may go now (a token is spent), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


class Guard:
    """The dependencies routes declare: :meth:`read`, :meth:`write` and :meth:`admin`."""

    def __init__(self, settings: ServingSettings) -> None:
        self.keys = [k.encode() for k in settings.api_keys]
        self.reads_need_key = settings.require_key_for_reads
        self.loopback = settings.loopback
        self.limiter = TokenBucket(settings.write_rate_per_s, settings.write_burst)

    def _client_key(self, request: Request) -> int | None:
        """The index of the key the request carries; raises 401 for a missing or wrong one."""
        header = request.headers.get("authorization")
        if header is None:
            raise _unauthorized("this endpoint needs an API key: send Authorization: Bearer KEY")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("send the API key as Authorization: Bearer KEY", "invalid_request")
        given = token.strip().encode("utf-8", "replace")
        matched = None
        for i, key in enumerate(self.keys):  # every key compared, in constant time each
            if hmac.compare_digest(given, key) and matched is None:
                matched = i
        if matched is None:
            raise _unauthorized("the API key is not valid", "invalid_token")
        return matched

    def _privileged(self, request: Request, what: str) -> str:
        """The client's rate-limit identity once it may use a write or admin endpoint."""
        if self.keys:
            return f"key:{self._client_key(request)}"
        if not self.loopback:
            raise HTTPException(status_code=403, detail=f"{what} endpoints are disabled on a service reachable from "
                                "other machines without an API key: start it with --api-key-file FILE (or "
                                "SHORTLIST_API_KEY), or bind it to 127.0.0.1")
        return f"addr:{request.client.host if request.client else 'unknown'}"

    async def read(self, request: Request) -> None:
        if self.reads_need_key:
            self._client_key(request)

    async def write(self, request: Request) -> None:
        client = self._privileged(request, "write")
        wait = self.limiter.take(client)
        if wait > 0:
            raise HTTPException(status_code=429, detail="too many writes from this client; retry later",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})

    async def admin(self, request: Request) -> None:
        self._privileged(request, "admin")


def key_fingerprint(key: str) -> str:
    """A key's short SHA-256 prefix: what logs and messages may show of it."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


__all__ = ["Guard", "TokenBucket", "key_fingerprint"]
