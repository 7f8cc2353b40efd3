"""A bounded load driver for the recommendation service (``shortlist bench serve``): start the
service on a loopback port, run measured phases with the client of :mod:`shortlist.serving.http_bench`,
print a table, stop it. Only loopback hosts are accepted: this is a benchmark, not a tool for loading
other people's servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist.serving.http_bench import (
    MAX_CONCURRENCY,
    MAX_DURATION_S,
    MAX_REQUESTS,
    BenchResult,
    Observer,
    PayloadFn,
    loopback_target,
    recommend_payloads,
    run_bench,
    run_bench_async,
)
from shortlist.serving.http_conn import Conn, request_head

logger = logging.getLogger(__name__)

__all__ = ["MAX_CONCURRENCY", "MAX_DURATION_S", "MAX_REQUESTS", "BenchResult", "Observer", "PayloadFn", "Phase",
           "bench_running", "default_phases", "default_server_cmd", "free_port", "known_users", "recommend_payloads",
           "results_table", "run_bench", "run_bench_async", "running_server", "serve_and_bench", "wait_ready"]


# --- start a server, run the phases, stop it ------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def get_json(host: str, port: int, path: str, timeout_s: float = 5.0) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        conn = Conn(host, port)
        try:
            async with asyncio.timeout(timeout_s):
                status, data = await conn.request(request_head("GET", host, port, path, None), b"")
        finally:
            conn.close()
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None
    return asyncio.run(go())


def wait_ready(host: str, port: int, *, timeout_s: float = 120.0, proc: subprocess.Popen[bytes] | None = None,
               log: Path | None = None) -> None:
    """Poll ``GET /ready`` until it says ``ready: true``; fail early when ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"the server exited with code {proc.returncode} before it was ready:\n{tail}")
        try:
            status, body = get_json(host, port, "/ready", timeout_s=2.0)
            if status == 200 and isinstance(body, dict) and body.get("ready") is True:
                return
            last = f"{status} {body}"
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    raise TimeoutError(f"the server on {host}:{port} was not ready after {timeout_s:.0f} s (last: {last})")


def default_server_cmd(model_dir: Path | str, *, extra: Sequence[str] = ()) -> list[str]:
    """``shortlist serve --model DIR --host {host} --port {port}`` run by this interpreter."""
    return [sys.executable, "-m", "shortlist.cli", "serve", "--model", str(model_dir),
            "--host", "{host}", "--port", "{port}", *extra]


@contextlib.contextmanager
def running_server(cmd: Sequence[str], *, host: str = "127.0.0.1", port: int | None = None,
                   ready_timeout_s: float = 180.0) -> Any:
    """Start ``cmd`` (``{host}``/``{port}`` filled in), wait for ``/ready``, yield the base URL, then stop it."""
    loopback_target(f"http://{host}:1")
    port = port or free_port(host)
    argv = [part.format(host=host, port=port) for part in cmd]
    with tempfile.TemporaryDirectory(prefix="shortlist-bench-") as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_ready(host, port, timeout_s=ready_timeout_s, proc=proc, log=log)
            yield f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def known_users(base_url: str, *, limit: int = 1_000) -> list[str | int]:
    """A sample of the model's known users from ``GET /users``."""
    host, port, prefix = loopback_target(base_url)
    status, body = get_json(host, port, f"{prefix}/users?limit={limit}")
    if status != 200 or not isinstance(body, dict) or not body.get("users"):
        raise RuntimeError(f"GET /users answered {status}: {body!r}")
    return list(body["users"])


@dataclass(frozen=True)
class Phase:
    """One measured phase of :func:`serve_and_bench`."""

    name: str
    path: str
    method: str
    n_requests: int
    concurrency: int
    use_cache: bool = False


def default_phases(*, n_sequential: int = 2_000, n_concurrent: int = 10_000, concurrency: int = 16) -> list[Phase]:
    """The HTTP floor (``/health``: client + framework), then ``/recommend`` uncached (sequential, concurrent) and cached."""
    return [
        Phase("floor: GET /health, sequential", "/health", "GET", min(n_sequential, 2_000), 1),
        Phase("/recommend uncached, sequential", "/recommend", "POST", n_sequential, 1),
        Phase(f"/recommend uncached, {concurrency} concurrent", "/recommend", "POST", n_concurrent, concurrency),
        Phase(f"/recommend cached, {concurrency} concurrent", "/recommend", "POST", n_concurrent, concurrency, True),
    ]


def bench_running(base_url: str, *, phases: Sequence[Phase], users: Sequence[str | int] | None = None, k: int = 10,
                  warmup: int = 200, duration_cap_s: float = 120.0) -> dict[str, BenchResult]:
    """Run ``phases`` against an already running service; a cached phase is primed with one pass over the users."""
    users = list(users) if users is not None else known_users(base_url)
    if warmup:
        run_bench(base_url, users=users, n_requests=warmup, concurrency=4, k=k, duration_cap_s=duration_cap_s)
    results: dict[str, BenchResult] = {}
    for ph in phases:
        if ph.use_cache:  # every user's entry is in the cache before the measured phase starts
            run_bench(base_url, users=users, n_requests=min(len(users), ph.n_requests), concurrency=ph.concurrency,
                      k=k, use_cache=True, duration_cap_s=duration_cap_s)
        logger.info("bench phase %s", ph.name)
        results[ph.name] = run_bench(base_url, users=users, n_requests=ph.n_requests, concurrency=ph.concurrency,
                                     path=ph.path, method=ph.method, k=k, use_cache=ph.use_cache,
                                     duration_cap_s=duration_cap_s)
    return results


def results_table(results: Mapping[str, BenchResult], *, title: str = "shortlist serve benchmark") -> Any:
    """A ``rich`` table of the phases (client-side and server-side latency)."""
    from rich.table import Table

    def ms(x: float | None) -> str:
        return "-" if x is None or x != x else f"{x:.2f}"

    table = Table(title=title)
    for col in ("phase", "n", "conc.", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors",
                "server p50 ms", "server p99 ms", "cache hits", "min cand.", "client µs/req"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for name, r in results.items():
        table.add_row(name, str(r.n), str(r.concurrency), ms(r.p50_ms), ms(r.p95_ms), ms(r.p99_ms),
                      f"{r.throughput_rps:,.0f}", str(r.errors), ms(r.server_p50_ms), ms(r.server_p99_ms),
                      str(r.cache_hits), "-" if r.min_candidates is None else str(r.min_candidates),
                      f"{r.client_cpu_us:.0f}")
    return table


def serve_and_bench(
    model_dir: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    n_sequential: int = 2_000,
    n_concurrent: int = 10_000,
    concurrency: int = 16,
    k: int = 10,
    warmup: int = 200,
    duration_cap_s: float = 120.0,
    server_cmd: Sequence[str] | None = None,
    ready_timeout_s: float = 180.0,
    console: Any = None,
) -> dict[str, BenchResult]:
    """Start ``shortlist serve`` on a free loopback port, run :func:`default_phases`, print a table, stop it.

    ``server_cmd`` overrides the command (``{host}`` and ``{port}`` are filled in). The table goes to
    ``console`` (a ``rich`` console; a new one on stdout when ``None``). ``client µs/req`` is the driver's
    own CPU per request (what the measurement costs the machine it shares).
    """
    cmd = list(server_cmd) if server_cmd is not None else default_server_cmd(model_dir)
    phases = default_phases(n_sequential=n_sequential, n_concurrent=n_concurrent, concurrency=concurrency)
    with running_server(cmd, host=host, port=port, ready_timeout_s=ready_timeout_s) as url:
        results = bench_running(url, phases=phases, k=k, warmup=warmup, duration_cap_s=duration_cap_s)
    if console is None:
        from rich.console import Console
        console = Console()
    console.print(results_table(results, title=f"shortlist serve benchmark: {model_dir}"))
    for name, r in results.items():
        for sample in r.error_samples:
            console.print(f"[red]{name}: {sample}[/red]")
    return results
