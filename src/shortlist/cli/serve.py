"""`serve`, `features push` and `bench serve`: the HTTP service and what drives it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shortlist.cli._common import app, console, out
from shortlist.cli.runs import TrackingUri, model_directory
from shortlist.errors import ConfigError

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks of a running system (serving).")
app.add_typer(bench_app, name="bench")


def _serving_settings(model: Path, redis_url: str | None, max_k: int, cache_ttl: float, watch: float,
                      max_candidates: int | None = None) -> Any:
    from shortlist.serving.settings import ServingSettings

    return ServingSettings(model_dir=model, redis_url=redis_url, max_k=max_k, cache_ttl_s=cache_ttl, watch_s=watch,
                           max_candidates=max_candidates)


@app.command()
def serve(
    model: Annotated[Path, typer.Option(help="Model directory written by `shortlist fit`, or a registered model: "
                                             "models:/NAME@ALIAS or models:/NAME/VERSION (see --tracking-uri).")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    redis_url: Annotated[str | None, typer.Option(help="Redis for the response cache and online events, "
                                                        "e.g. redis://127.0.0.1:6379/0 (default: in-process).")] = None,
    max_k: Annotated[int, typer.Option(help="Largest k a request may ask for.", min=1)] = 100,
    cache_ttl: Annotated[float, typer.Option(help="Response cache TTL in seconds.")] = 300.0,
    watch: Annotated[float, typer.Option(help="Reload when the model directory changes, polling every N s "
                                              "(0: only POST /admin/reload).")] = 0.0,
    max_candidates: Annotated[int | None, typer.Option(
        help="Candidates a request ranks (default: the model's own; fewer rows to featurise and score).",
        min=1)] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Serve recommendations over HTTP (FastAPI + uvicorn): /recommend, /events, /metrics, a web page at /."""
    try:
        import uvicorn

        from shortlist.serving.app import create_app
    except ImportError as e:
        from shortlist.errors import DependencyMissingError

        raise DependencyMissingError(getattr(e, "name", None) or "fastapi", "serve", "`shortlist serve`") from e
    model = model_directory(model, tracking_uri)  # a registered version is fetched once, then served as a folder
    settings = _serving_settings(model, redis_url, max_k, cache_ttl, watch, max_candidates)
    # One BLAS thread: a request's matrix products are small, and waking a second thread on a busy
    # box costs more than the product itself.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    with console.status(f"loading and verifying {model}"):
        api = create_app(settings)
    # The loaded model is long-lived: move its objects out of the collector's generations, so a
    # full collection triggered by request garbage doesn't walk them (a p99 spike otherwise).
    import gc

    gc.collect()
    gc.freeze()
    console.print(f"serving {model} (model {api.state.service.holder.current.version}) on http://{host}:{port}")
    uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)


features_app = typer.Typer(no_args_is_help=True, help="The online feature store.")
app.add_typer(features_app, name="features")


@features_app.command("push")
def features_push(
    model: Annotated[Path, typer.Option(help="Model directory written by `shortlist fit`.")],
    redis_url: Annotated[str, typer.Option(help="Redis to write to, e.g. redis://127.0.0.1:6379/0.")],
) -> None:
    """Push a model's user histories to Redis, where `shortlist serve --redis-url` reads them."""
    import redis

    from shortlist.serving.engine import Engine
    from shortlist.serving.histories_redis import push_histories

    _serving_settings(model, redis_url, 100, 300.0, 0.0)  # validates the URL
    with console.status(f"loading {model}"):
        engine = Engine.load(model)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as e:
        raise ConfigError(f"cannot reach Redis at {redis_url}: {e}") from e
    t0 = time.perf_counter()
    n = push_histories(engine, client)
    console.print(f"pushed {n:,} user histories of model {engine.version} to {redis_url} "
                  f"in {time.perf_counter() - t0:.1f}s")


@bench_app.command("serve")
def bench_serve(
    model: Annotated[Path, typer.Option(help="Model directory written by `shortlist fit`.")],
    requests: Annotated[int, typer.Option(help="Requests in the concurrent phase.", min=1)] = 10_000,
    sequential: Annotated[int, typer.Option(help="Requests in the sequential phase.", min=1)] = 2_000,
    concurrency: Annotated[int, typer.Option(help="Concurrent connections.", min=1, max=256)] = 16,
    k: Annotated[int, typer.Option(help="Items per request.", min=1)] = 10,
    max_candidates: Annotated[int | None, typer.Option(
        help="Passed to `shortlist serve --max-candidates` (default: the model's own).", min=1)] = None,
) -> None:
    """Start the service on a loopback port, drive a bounded load, print p50/p95/p99, throughput, errors."""
    from shortlist.serving.loadtest import default_server_cmd, serve_and_bench

    extra = ["--max-candidates", str(max_candidates)] if max_candidates is not None else []
    serve_and_bench(model, n_sequential=sequential, n_concurrent=requests, concurrency=concurrency, k=k, console=out,
                    server_cmd=default_server_cmd(model, extra=extra))


