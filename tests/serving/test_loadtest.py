"""The load driver against a tiny stub HTTP service (not the real one): counts, errors, framing, bounds."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

uvicorn = pytest.importorskip("uvicorn")
rich_console = pytest.importorskip("rich.console")

from shortlist.serving.loadtest import (  # noqa: E402
    BenchResult,
    Phase,
    bench_running,
    free_port,
    recommend_payloads,
    results_table,
    run_bench,
    serve_and_bench,
)

STUB = textwrap.dedent('''
    """A stub of the service's HTTP surface: just enough for the load driver."""
    import asyncio
    import json
    import sys

    SEEN = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        status, out, chunked, close = 200, {}, False, False
        if path == "/health":
            out = {"status": "ok"}
        elif path == "/ready":
            out = {"ready": True, "degraded": []}
        elif path == "/users":
            out = {"users": ["u1", "u2", 3, "bad", "slow"]}
        elif path == "/chunked":
            out, chunked = {"latency_ms": 1.5}, True
        elif path == "/close":
            out, close = {"latency_ms": 2.0}, True
        elif path == "/recommend" and method == "POST":
            req = json.loads(body)
            SEEN.append(req["user_id"])
            if req.get("k", 10) <= 0:
                status, out = 422, {"detail": [{"loc": ["body", "k"], "msg": "k must be positive"}]}
            elif req["user_id"] == "bad":
                status, out = 500, {"detail": "boom"}
            else:
                if req["user_id"] == "slow":
                    await asyncio.sleep(0.05)
                out = {"user_id": req["user_id"], "items": [], "latency_ms": 1.0 if req.get("use_cache") else 4.0,
                       "cache_hit": bool(req.get("use_cache")), "n_candidates": 250, "fallback": None,
                       "model_version": "stub"}
        else:
            status, out = 404, {"detail": "not found"}
        data = json.dumps(out).encode()
        headers = [(b"content-type", b"application/json")]
        if close:
            headers.append((b"connection", b"close"))
        if chunked:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data[:5], "more_body": True})
            await send({"type": "http.response.body", "body": data[5:], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            headers.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data})

    if __name__ == "__main__":
        import uvicorn
        host, port = sys.argv[1], int(sys.argv[2])
        uvicorn.run(app, host=host, port=port, log_level="warning")
''')


@pytest.fixture(scope="module")
def stub_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stub") / "stub_service.py"
    path.write_text(STUB)
    return path


@pytest.fixture(scope="module")
def stub_url(stub_file) -> Iterator[str]:
    namespace: dict = {}
    exec(compile(stub_file.read_text(), str(stub_file), "exec"), namespace)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(namespace["app"], host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "stub server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_sequential_counts_every_request_and_reads_server_fields(stub_url):
    r = run_bench(stub_url, users=["u1", "u2", 3], n_requests=60, concurrency=1)
    assert (r.n, r.errors, r.concurrency) == (60, 0, 1)
    assert r.status_counts == {200: 60}
    assert r.p50_ms <= r.p95_ms <= r.p99_ms <= r.max_ms
    assert r.throughput_rps > 0
    assert r.server_p50_ms == 4.0 and r.server_p99_ms == 4.0
    assert (r.cache_hits, r.min_candidates, r.fallbacks) == (0, 250, 0)
    assert r.client_cpu_us > 0


def test_concurrent_run_spreads_users_and_counts_errors(stub_url):
    r = run_bench(stub_url, users=["u1", "bad", "u2", "u1"], n_requests=200, concurrency=16, use_cache=True)
    assert r.n == 200 and r.concurrency == 16
    assert r.errors == 50 and r.status_counts == {200: 150, 500: 50}
    assert r.error_samples and r.error_samples[0].startswith("500: ") and "boom" in r.error_samples[0]
    assert r.cache_hits == 150 and r.server_p50_ms == 1.0


def test_custom_payloads_and_a_422_are_errors(stub_url):
    r = run_bench(stub_url, n_requests=10, payload_fn=lambda i: {"user_id": "u1", "k": 0 if i % 2 else 5})
    assert r.n == 10 and r.errors == 5 and r.status_counts == {200: 5, 422: 5}
    assert "k must be positive" in r.error_samples[0]


def test_get_endpoints_chunked_bodies_and_connection_close(stub_url):
    health = run_bench(stub_url, path="/health", method="GET", n_requests=30, concurrency=2)
    assert (health.n, health.errors, health.server_p50_ms) == (30, 0, None)
    chunked = run_bench(stub_url, path="/chunked", method="GET", n_requests=20, concurrency=3)
    assert (chunked.n, chunked.errors, chunked.server_p50_ms) == (20, 0, 1.5)
    close = run_bench(stub_url, path="/close", method="GET", n_requests=20, concurrency=3)
    assert (close.n, close.errors, close.server_p50_ms) == (20, 0, 2.0)


def test_missing_endpoint_and_refused_connection_are_errors(stub_url):
    r = run_bench(stub_url, path="/nope", method="GET", n_requests=5)
    assert r.errors == 5 and r.status_counts == {404: 5}
    port = free_port()  # nothing listens there
    dead = run_bench(f"http://127.0.0.1:{port}", users=["u1"], n_requests=4, concurrency=2, timeout_s=2)
    assert dead.n == 4 and dead.errors == 4 and dead.status_counts == {0: 4}
    assert "Error" in dead.error_samples[0]


def test_duration_cap_stops_the_run_early(stub_url):
    # Each "slow" request takes 50 ms on the stub: 2,000 of them would take 100 s, the cap is 0.3 s.
    r = run_bench(stub_url, users=["slow"], n_requests=2_000, concurrency=1, duration_cap_s=0.3)
    assert 1 <= r.n < 2_000 and r.errors == 0


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "https://127.0.0.1:8000",
                                 "http://192.168.1.5", "ftp://localhost"])
def test_refuses_non_loopback_or_non_http_targets(url):
    with pytest.raises(ValueError, match=r"loopback|http://"):
        run_bench(url, users=["u1"], n_requests=1)


@pytest.mark.parametrize("kwargs", [{"n_requests": 0}, {"n_requests": 10**7}, {"concurrency": 0},
                                    {"concurrency": 10_000}, {"duration_cap_s": 0}, {"duration_cap_s": 10**5}])
def test_bounds_are_enforced(kwargs):
    args = {"users": ["u1"], "n_requests": 1, "concurrency": 1, **kwargs}
    with pytest.raises(ValueError):
        run_bench("http://127.0.0.1:1", **args)


def test_recommend_payloads_cycle_and_are_encoded_once():
    fn = recommend_payloads(["a", 7], k=3, use_cache=True)
    assert json.loads(fn(0)) == {"user_id": "a", "k": 3, "use_cache": True}
    assert json.loads(fn(3)) == {"user_id": 7, "k": 3, "use_cache": True}
    assert fn(0) is fn(2)
    with pytest.raises(ValueError):
        recommend_payloads([])


def test_bench_running_primes_the_cache_and_reads_users(stub_url):
    phases = [Phase("seq", "/recommend", "POST", 20, 1), Phase("cached", "/recommend", "POST", 30, 4, use_cache=True)]
    res = bench_running(stub_url, phases=phases, users=["u1", "u2"], warmup=5)
    assert list(res) == ["seq", "cached"]
    assert res["seq"].n == 20 and res["seq"].cache_hits == 0
    assert res["cached"].n == 30 and res["cached"].cache_hits == 30


def test_results_table_renders_every_phase():
    r = BenchResult(p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, throughput_rps=1234.0, errors=0, n=10, server_p50_ms=0.5)
    out = io.StringIO()
    rich_console.Console(file=out, width=200).print(results_table({"phase A": r, "phase B": r}))
    text = out.getvalue()
    assert "phase A" in text and "phase B" in text and "1,234" in text and "p99 ms" in text


def test_serve_and_bench_starts_benches_and_stops_a_server(stub_file, tmp_path):
    cmd = [sys.executable, str(stub_file), "{host}", "{port}"]
    out = io.StringIO()
    res = serve_and_bench(tmp_path, server_cmd=cmd, n_sequential=30, n_concurrent=60, concurrency=4, warmup=5,
                          console=rich_console.Console(file=out, width=200))
    names = list(res)
    assert len(names) == 4 and names[0].startswith("floor: GET /health")
    health, seq, conc, cached = (res[n] for n in names)
    assert health.n == 30 and seq.n == 30 and seq.concurrency == 1
    assert conc.n == 60 and conc.concurrency == 4
    # /users includes "bad" (500) and "slow": 1 in 5 requests fails on the stub, and the driver says so.
    assert seq.errors == 6 and conc.errors == 12
    assert cached.cache_hits == cached.n - cached.errors
    assert "errors" in out.getvalue() and "boom" in out.getvalue()


def test_serve_and_bench_reports_a_server_that_dies(tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match="exited with code 3"):
        serve_and_bench(tmp_path, server_cmd=cmd, n_sequential=1, n_concurrent=1, warmup=0)
