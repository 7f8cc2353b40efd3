"""The load driver's HTTP client: bounded runs of requests over keep-alive connections (``run_bench``).

The client is raw asyncio HTTP/1.1 over keep-alive connections, one per concurrent worker: a
general-purpose client (httpx) costs several hundred microseconds per request in Python, which on a
2-core machine would make the client, not the service, the bottleneck. Every run is bounded in
request count and wall time, and only loopback hosts are accepted: this is a benchmark, not a tool
for loading other people's servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shortlist.serving.http_conn import Conn, request_head

logger = logging.getLogger(__name__)

MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 256
MAX_DURATION_S = 600.0
_ERROR_SAMPLES = 5

Payload = Mapping[str, Any] | bytes | None
PayloadFn = Callable[[int], Payload]
#: ``observe(i, status, body)``: request ``i``'s answer (``body``: its JSON object, else ``None``).
Observer = Callable[[int, int, "dict[str, Any] | None"], None]


@dataclass(frozen=True)
class BenchResult:
    """Client-side latency percentiles and throughput of one load phase, plus what the responses said."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float
    errors: int
    n: int
    concurrency: int = 1
    duration_s: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    server_p50_ms: float | None = None  # from the responses' ``latency_ms``
    server_p99_ms: float | None = None
    cache_hits: int = 0  # responses with ``cache_hit: true``
    min_candidates: int | None = None  # smallest ``n_candidates`` seen
    fallbacks: int = 0  # responses with a non-null ``fallback``
    client_cpu_us: float = 0.0  # the driver's own CPU time per request (its overhead; the rest is the server)
    status_counts: dict[int, int] = field(default_factory=dict)  # 0: no response (connection error / timeout)
    error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["status_counts"] = {str(k): v for k, v in self.status_counts.items()}
        return out


# --- URL and safety --------------------------------------------------------------------------------
def loopback_target(base_url: str) -> tuple[str, int, str]:
    """``(host, port, path_prefix)`` of a loopback ``http://`` URL; anything else is refused."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme != "http":
        raise ValueError(f"load driver: only plain http:// URLs are supported, got {base_url!r}")
    host = parts.hostname or ""
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"load driver: refusing non-loopback host {host!r} in {base_url!r}; "
                             "use 127.0.0.1, ::1 or localhost")
    return host, parts.port or 80, parts.path.rstrip("/")


def _check_bounds(n_requests: int, concurrency: int, duration_cap_s: float) -> None:
    if not 1 <= n_requests <= MAX_REQUESTS:
        raise ValueError(f"n_requests must be in 1..{MAX_REQUESTS}, got {n_requests}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be in 1..{MAX_CONCURRENCY}, got {concurrency}")
    if not 0 < duration_cap_s <= MAX_DURATION_S:
        raise ValueError(f"duration_cap_s must be in (0, {MAX_DURATION_S}], got {duration_cap_s}")


def recommend_payloads(users: Sequence[str | int], *, k: int = 10, use_cache: bool = False) -> PayloadFn:
    """Request ``i`` asks for ``users[i % len(users)]`` (bodies encoded once, reused)."""
    if not users:
        raise ValueError("recommend_payloads needs at least one user")
    bodies = [json.dumps({"user_id": u, "k": k, "use_cache": use_cache}).encode() for u in users]
    return lambda i: bodies[i % len(bodies)]


@dataclass
class _Tally:
    latencies_ns: list[int] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    status_counts: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    cache_hits: int = 0
    fallbacks: int = 0
    min_candidates: int | None = None
    error_samples: list[str] = field(default_factory=list)

    def error(self, status: int, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < _ERROR_SAMPLES:
            self.error_samples.append(f"{status or 'no response'}: {message[:200]}")

    def response_fields(self, data: bytes) -> dict[str, Any] | None:
        """Pick the service's own figures out of a JSON response (silently skips anything else); the
        parsed body when it is a JSON object."""
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        if isinstance(obj.get("latency_ms"), int | float):
            self.server_ms.append(float(obj["latency_ms"]))
        if obj.get("cache_hit") is True:
            self.cache_hits += 1
        if obj.get("fallback") is not None:
            self.fallbacks += 1
        nc = obj.get("n_candidates")
        if isinstance(nc, int):
            self.min_candidates = nc if self.min_candidates is None else min(self.min_candidates, nc)
        return obj


async def run_bench_async(
    base_url: str,
    *,
    users: Sequence[str | int] = (),
    n_requests: int = 1_000,
    concurrency: int = 1,
    payload_fn: PayloadFn | None = None,
    path: str = "/recommend",
    method: str = "POST",
    k: int = 10,
    use_cache: bool = False,
    duration_cap_s: float = 60.0,
    timeout_s: float = 10.0,
    parse_responses: bool = True,
    headers: Mapping[str, str] | None = None,
    observe: Observer | None = None,
) -> BenchResult:
    """Send up to ``n_requests`` over ``concurrency`` keep-alive connections, stopping at ``duration_cap_s``.

    POST bodies come from ``payload_fn(i)`` (a mapping, pre-encoded bytes, or ``None`` for no body);
    by default request ``i`` is ``{"user_id": users[i % len(users)], "k": k, "use_cache": use_cache}``.
    Non-2xx answers, connection errors and timeouts count as errors. Only loopback hosts are allowed.
    ``headers`` go with every request (an ``Authorization`` key); ``observe(i, status, body)`` hears of
    each answer (``body``: the parsed JSON object, or ``None``).
    """
    _check_bounds(n_requests, concurrency, duration_cap_s)
    host, port, prefix = loopback_target(base_url)
    method = method.upper()
    if payload_fn is None and method == "POST":
        payload_fn = recommend_payloads(users, k=k, use_cache=use_cache)
    full_path = prefix + path
    bare_head = request_head(method, host, port, full_path, None, headers)
    tally = _Tally()
    next_index = 0
    deadline = time.perf_counter() + duration_cap_s

    async def worker() -> None:
        nonlocal next_index
        conn = Conn(host, port)
        try:
            while next_index < n_requests and time.perf_counter() < deadline:
                i = next_index
                next_index += 1
                payload = payload_fn(i) if payload_fn is not None else None
                body = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                head = bare_head if payload is None else request_head(method, host, port, full_path, len(body), headers)
                t0 = time.perf_counter_ns()
                try:
                    async with asyncio.timeout(timeout_s):
                        status, data = await conn.request(head, body)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as e:
                    conn.close()
                    tally.latencies_ns.append(time.perf_counter_ns() - t0)
                    tally.status_counts[0] = tally.status_counts.get(0, 0) + 1
                    tally.error(0, f"{type(e).__name__}: {e}")
                    continue
                tally.latencies_ns.append(time.perf_counter_ns() - t0)
                tally.status_counts[status] = tally.status_counts.get(status, 0) + 1
                if not 200 <= status < 300:
                    tally.error(status, data.decode("utf-8", "replace"))
                    obj = None
                else:
                    obj = tally.response_fields(data) if parse_responses or observe else None
                if observe is not None:
                    observe(i, status, obj)
        finally:
            conn.close()

    t_start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _summarise(tally, concurrency, time.perf_counter() - t_start, time.process_time() - cpu_start)


def run_bench(base_url: str, **options: Any) -> BenchResult:
    """:func:`run_bench_async` run to completion (the same keyword options), for callers without a loop."""
    return asyncio.run(run_bench_async(base_url, **options))


def _summarise(tally: _Tally, concurrency: int, duration_s: float, cpu_s: float) -> BenchResult:
    lat = np.asarray(tally.latencies_ns, dtype=np.float64) / 1e6
    n = len(lat)
    if n:
        p50, p95, p99 = (float(x) for x in np.percentile(lat, [50, 95, 99]))
        mean, mx = float(lat.mean()), float(lat.max())
    else:
        p50 = p95 = p99 = mean = mx = float("nan")
    srv = np.asarray(tally.server_ms, dtype=np.float64)
    return BenchResult(
        p50_ms=p50, p95_ms=p95, p99_ms=p99, throughput_rps=n / duration_s if duration_s > 0 else 0.0,
        errors=tally.errors, n=n, concurrency=concurrency, duration_s=duration_s, mean_ms=mean, max_ms=mx,
        server_p50_ms=float(np.percentile(srv, 50)) if len(srv) else None,
        server_p99_ms=float(np.percentile(srv, 99)) if len(srv) else None,
        cache_hits=tally.cache_hits, min_candidates=tally.min_candidates, fallbacks=tally.fallbacks,
        client_cpu_us=cpu_s / n * 1e6 if n else 0.0,
        status_counts=dict(sorted(tally.status_counts.items())), error_samples=tally.error_samples,
    )
