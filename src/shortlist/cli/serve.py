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


def _serving_settings(model: Path | None, redis_url: str | None, max_k: int, cache_ttl: float, watch: float,
                      max_candidates: int | None = None, **extra: Any) -> Any:
    from shortlist.serving.settings import ServingSettings

    return ServingSettings(model_dir=model, redis_url=redis_url, max_k=max_k, cache_ttl_s=cache_ttl, watch_s=watch,
                           max_candidates=max_candidates, **extra)


VariantOption = Annotated[list[str] | None, typer.Option(
    "--variant", help="An A/B variant NAME=MODEL_DIR (repeat for each; the first is the control). Users are "
                      "bucketed between the variants by a hash of (salt, user id).")]
SplitOption = Annotated[str | None, typer.Option(help="The variants' shares of users, in their order (e.g. 50,50 or "
                                                      "90,10; default: equal).")]
SaltOption = Annotated[str, typer.Option(help="Salt of the A/B bucketing hash: a new salt reshuffles the users.")]


def _variants(values: list[str] | None, split: str | None, tracking_uri: str | None) -> tuple[Any, ...]:
    from shortlist.cli._serve_opts import parse_split, parse_variants
    from shortlist.serving.settings import Variant

    named = parse_variants(values)
    if not named:
        if split is not None:
            raise ConfigError("--split applies to an A/B test: give two or more --variant NAME=DIR")
        return ()
    shares = parse_split(split, len(named))
    return tuple(Variant(name, model_directory(Path(where), tracking_uri), share)
                 for (name, where), share in zip(named, shares, strict=True))


@app.command()
def serve(
    model: Annotated[Path | None, typer.Option(
        help="Model directory written by `shortlist fit`, or a registered model: models:/NAME@ALIAS or "
             "models:/NAME/VERSION (see --tracking-uri). Or serve an A/B test with --variant.")] = None,
    variant: VariantOption = None,
    split: SplitOption = None,
    salt: SaltOption = "shortlist",
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1: this machine only; writes then "
                                           "need no key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    redis_url: Annotated[str | None, typer.Option(help="Redis for the response cache and online events, "
                                                        "e.g. redis://127.0.0.1:6379/0 (default: in-process).")] = None,
    max_k: Annotated[int, typer.Option(help="Largest k a request may ask for.", min=1)] = 100,
    cache_ttl: Annotated[float, typer.Option(help="Response cache TTL in seconds.")] = 300.0,
    watch: Annotated[float, typer.Option(help="Reload when a model directory changes, polling every N s "
                                              "(0: only POST /admin/reload).")] = 0.0,
    max_candidates: Annotated[int | None, typer.Option(
        help="Candidates a request ranks (default: the model's own; fewer rows to featurise and score).",
        min=1)] = None,
    rules_file: Annotated[Path | None, typer.Option("--rules", help="Business rules every request follows (TOML or "
                                                    "JSON; a request's own rules add to them).")] = None,
    api_key_file: Annotated[Path | None, typer.Option(
        help="File of API keys, one a line (also: the SHORTLIST_API_KEY environment variable). Writes (/events) "
             "and admin (/admin/*) need one as Authorization: Bearer KEY.")] = None,
    require_key_for_reads: Annotated[bool, typer.Option(
        "--require-key-for-reads", help="Every endpoint but /health, /ready and the page needs a key.")] = False,
    write_rate: Annotated[float, typer.Option(help="Writes a second per client (its key, else its address); "
                                                   "0: no limit.", min=0)] = 100.0,
    write_burst: Annotated[int, typer.Option(help="Writes a client may send at once before the rate applies.",
                                             min=1)] = 200,
    tracking_uri: TrackingUri = None,
) -> None:
    """Serve recommendations over HTTP (FastAPI + uvicorn): /recommend, /events, /metrics, a web page at /."""
    try:
        import uvicorn

        from shortlist.serving.app import create_app
    except ImportError as e:
        from shortlist.errors import DependencyMissingError

        raise DependencyMissingError(getattr(e, "name", None) or "fastapi", "serve", "`shortlist serve`") from e
    from shortlist.cli._rules_io import read_rules
    from shortlist.cli._serve_opts import read_api_keys

    variants = _variants(variant, split, tracking_uri)
    if model is not None:  # a registered version is fetched once, then served as a folder
        model = model_directory(model, tracking_uri)
    keys = read_api_keys(api_key_file)  # never printed: only how many there are
    settings = _serving_settings(model, redis_url, max_k, cache_ttl, watch, max_candidates, variants=variants,
                                 salt=salt, host=host, api_keys=keys, require_key_for_reads=require_key_for_reads,
                                 write_rate_per_s=write_rate, write_burst=write_burst,
                                 rules=None if rules_file is None else read_rules(rules_file))
    # One BLAS thread: a request's matrix products are small, and waking a second thread on a busy
    # box costs more than the product itself.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    with console.status("loading and verifying the model(s)"):
        api = create_app(settings)
    # The loaded models are long-lived: move their objects out of the collector's generations, so a
    # full collection triggered by request garbage doesn't walk them (a p99 spike otherwise).
    import gc

    gc.collect()
    gc.freeze()
    served = ", ".join(f"{v.name}={v.model_dir} ({h.current.version}, {v.share:.0%})" for v, h in
                       zip(settings.served, api.state.service.variants.holders.values(), strict=True))
    console.print(f"serving {served} on http://{host}:{port}; {len(keys)} API key(s)"
                  + ("" if keys or settings.loopback else "; no key: /events and /admin answer 403"))
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
    model: Annotated[Path | None, typer.Option(help="Model directory written by `shortlist fit` (or --variant).")
                     ] = None,
    variant: VariantOption = None,
    split: SplitOption = None,
    salt: SaltOption = "shortlist",
    requests: Annotated[int, typer.Option(help="Requests in the concurrent phase (the A/B run).", min=1)] = 10_000,
    sequential: Annotated[int, typer.Option(help="Requests in the sequential phase.", min=1)] = 2_000,
    concurrency: Annotated[int, typer.Option(help="Concurrent connections.", min=1, max=256)] = 16,
    k: Annotated[int, typer.Option(help="Items per request.", min=1)] = 10,
    max_candidates: Annotated[int | None, typer.Option(
        help="Passed to `shortlist serve --max-candidates` (default: the model's own).", min=1)] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Start the service on a loopback port, drive a bounded load, print p50/p95/p99, throughput, errors.

    With --variant (twice or more): the A/B run instead — the share of users and requests each variant
    served against its target, users seen in two variants, and GET /variants."""
    import json

    extra = ["--max-candidates", str(max_candidates)] if max_candidates is not None else []
    named = _variants(variant, split, None)
    if (model is None) == (not named):
        raise ConfigError("pass --model DIR, or two or more --variant NAME=DIR")
    if named:
        from shortlist.serving.ab_bench import serve_and_bench_ab

        result = serve_and_bench_ab([(v.name, v.model_dir) for v in named], split=[v.share * 100 for v in named],
                                    salt=salt, n_requests=requests, concurrency=concurrency, k=k, extra=extra,
                                    console=out)
        figures: dict[str, Any] = result.as_dict()
    else:
        from shortlist.serving.loadtest import default_server_cmd, serve_and_bench

        assert model is not None
        results = serve_and_bench(model, n_sequential=sequential, n_concurrent=requests, concurrency=concurrency,
                                  k=k, console=out, server_cmd=default_server_cmd(model, extra=extra))
        figures = {name: r.as_dict() for name, r in results.items()}
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=2, default=str))
