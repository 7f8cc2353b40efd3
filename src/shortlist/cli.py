"""Command-line interface: parse → call the library → write output. Nothing else lives here."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from shortlist import __version__
from shortlist.config import load_config
from shortlist.errors import ConfigError, MissingColumnError, ShortlistError
from shortlist.schema import ITEM_ID, RANK, SCORE, USER_ID

if TYPE_CHECKING:
    from shortlist.data.containers import Dataset

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="shortlist: two-stage recommendations — fit, recommend, evaluate.",
)
console = Console(stderr=True)
# Tables stay readable when piped (rich would otherwise assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 200)

DataDir = Annotated[list[Path] | None, typer.Option("--data-dir", help="Folder holding dataset folders (repeatable).")]
ColumnMap = Annotated[
    list[str] | None, typer.Option("--map", help="Column mapping canonical=theirs, e.g. --map user_id=CustomerID.")
]


def _columns(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out_: dict[str, str] = {}
    for p in pairs:
        canonical, sep, theirs = p.partition("=")
        if not sep or not canonical or not theirs:
            raise ConfigError(f"--map {p!r} must look like canonical=their_column (e.g. user_id=CustomerID)")
        out_[canonical.strip()] = theirs.strip()
    return out_


def _search_dirs(extra: list[Path] | None) -> list[Path]:
    dirs = list(extra or [])
    if env := os.environ.get("SHORTLIST_DATA_DIR"):
        dirs.append(Path(env))
    dirs += [Path.cwd() / "data", Path.home() / ".cache" / "shortlist" / "data"]
    return dirs


def _load(dataset: str | None, interactions: Path | None, items: Path | None, columns: dict[str, str] | None,
          data_dir: list[Path] | None, repeats: bool | None):
    from shortlist.data.loaders import load_dataset, load_named

    if (dataset is None) == (interactions is None):
        raise ConfigError("pass exactly one of --dataset NAME or --interactions PATH")
    with console.status("loading data"):
        if dataset is not None:
            ds = load_named(dataset, search_dirs=_search_dirs(data_dir))
        else:
            assert interactions is not None
            ds = load_dataset(interactions, items, columns=columns, repeats=bool(repeats))
    console.print(f"[dim]{ds.report}[/dim]")
    return ds


def _print_table(table: pl.DataFrame, title: str) -> None:
    t = Table(title=title, show_lines=False)
    for col in table.columns:
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in table.iter_rows():
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    out.print(t)


@app.command()
def fit(
    interactions: Annotated[Path, typer.Option(help="CSV or Parquet with user_id, item_id, timestamp.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    items: Annotated[Path | None, typer.Option(help="Item catalogue (item_id, title, ...).")] = None,
    allow_repeats: Annotated[bool, typer.Option("--allow-repeats", help="Allow already-seen items.")] = False,
    target: Annotated[str | None, typer.Option(help="last | days:N (default: the config's, 'last').")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file overriding defaults.")] = None,
    column_map: ColumnMap = None,
) -> None:
    """Fit a model on interactions and save it to a directory."""
    cfg = load_config(config)
    ds = _load(None, interactions, items, _columns(column_map), None, allow_repeats)
    t0 = time.perf_counter()
    with console.status("fitting (candidate sources, features, ranker)"):
        model = _make_model(cfg, allow_repeats=allow_repeats, target=target)
        if hasattr(model, "resolved_kind"):
            model.fit(ds.interactions, rng=np.random.default_rng(cfg["model"]["seed"]))
        else:
            model.fit(ds.interactions, items=ds.items, rng=np.random.default_rng(cfg["model"]["seed"]))
        model.save(out_dir)
    console.print(f"fitted {cfg['model']['kind']} in {time.perf_counter() - t0:.1f}s → {out_dir}")
    metrics = getattr(model, "metrics_", {})
    if "candidate_recall" in metrics:
        console.print(f"[dim]candidate recall per label window: {metrics['candidate_recall']}; "
                      f"ranker: {metrics.get('ranker', 'not trained (too little data)')}[/dim]")


def _make_model(cfg: dict[str, Any], *, allow_repeats: bool, target: str | None) -> Any:
    from shortlist.pipeline.baseline import BaselineRecommender
    from shortlist.pipeline.two_stage import TwoStageRecommender

    m = cfg["model"]
    if m["kind"] != "two_stage":
        return BaselineRecommender(kind=m["kind"], allow_repeats=allow_repeats)
    return TwoStageRecommender(
        target=target or m["target"], allow_repeats=allow_repeats, sources=m["sources"] or None,
        source_params=cfg["source_params"], per_source=m["per_source"], max_candidates=m["max_candidates"] or None,
        n_windows=m["n_windows"] or None, max_negatives=m["max_negatives"], hard_negatives=m["hard_negatives"],
        ranker=m["ranker"], ranker_params=cfg["ranker"], seed=m["seed"],
    )


@app.command()
def recommend(
    model: Annotated[Path, typer.Option(help="Model directory written by `shortlist fit`.")],
    users: Annotated[Path, typer.Option(help="CSV with a user_id column.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output CSV: user_id,item_id,rank,score.")],
    k: Annotated[int, typer.Option(help="Items per user.", min=1)] = 10,
) -> None:
    """Write the top-K recommendations for each listed user."""
    from shortlist.pipeline.load import load_model

    with console.status("loading the model"):
        rec = load_model(model)
    user_ids = _read_users(users)
    with console.status(f"recommending for {len(user_ids):,} users"):
        recs = rec.recommend(user_ids, k)
    _write_csv_atomic(recs.select(USER_ID, ITEM_ID, RANK, SCORE), out_path)
    console.print(f"wrote {recs.height:,} rows for {len(user_ids):,} users → {out_path}")


@app.command()
def candidates(
    model: Annotated[Path, typer.Option(help="Two-stage model directory written by `shortlist fit`.")],
    users: Annotated[Path, typer.Option(help="CSV with a user_id column.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output CSV: the stage-1 candidate union.")],
) -> None:
    """Write stage 1's candidate union: user_id, item_id, n_sources, each source's score and rank."""
    from shortlist.pipeline.external import internal_users
    from shortlist.pipeline.two_stage import TwoStageRecommender

    with console.status("loading the model"):
        rec = TwoStageRecommender.load(model)
    assert rec.history_ is not None and rec.generator_ is not None
    ext, internal = internal_users(_read_users(users), rec.history_.users)
    with console.status(f"retrieving candidates for {len(ext):,} users"):
        union = rec.generator_.generate(internal.to_numpy().astype(np.int64), exclude_seen=not rec.allow_repeats)
    lookup = pl.DataFrame({"user": internal, USER_ID: ext})
    out_df = union.join(lookup, on="user", how="inner", maintain_order="left")
    out_df = out_df.with_columns(rec.history_.items.external(out_df.get_column("item")).alias(ITEM_ID))
    cols = [USER_ID, ITEM_ID, "n_sources", *[c for c in union.columns if c not in ("user", "item", "n_sources")]]
    _write_csv_atomic(out_df.select(cols), out_path)
    console.print(f"wrote {out_df.height:,} candidates for {len(ext):,} users → {out_path}")


def _read_users(path: Path) -> pl.Series:
    try:
        df = pl.read_csv(path, schema_overrides={USER_ID: pl.Utf8}, infer_schema_length=0)
    except FileNotFoundError as e:
        raise ConfigError(f"users file {path} does not exist") from e
    if USER_ID not in df.columns:
        raise MissingColumnError(str(path), USER_ID, df.columns)
    return df.get_column(USER_ID).str.strip_chars().drop_nulls().unique(maintain_order=True)


def _write_csv_atomic(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.write_csv(tmp)
    os.replace(tmp, path)


@app.command()
def evaluate(
    protocol: Annotated[str | None, typer.Option(help="llo | llo:N | days:N | quantile:Q (default: dataset's).")] = None,
    dataset: Annotated[str | None, typer.Option(help="A named dataset (see `shortlist datasets`).")] = None,
    interactions: Annotated[Path | None, typer.Option(help="CSV or Parquet with canonical columns.")] = None,
    items: Annotated[Path | None, typer.Option(help="Item catalogue.")] = None,
    k: Annotated[int, typer.Option(help="Cut-off for the headline metrics.", min=1)] = 10,
    report: Annotated[Path | None, typer.Option(help="Write report.md/.html and plots here.")] = None,
    allow_repeats: Annotated[
        bool | None, typer.Option("--allow-repeats/--no-repeats", help="Count re-consumed items (default: dataset's).")
    ] = None,
    data_dir: DataDir = None,
    column_map: ColumnMap = None,
    config: Annotated[Path | None, typer.Option(help="TOML file overriding defaults.")] = None,
) -> None:
    """Split, fit every model on the training part, and print models × metrics."""
    from shortlist.data.loaders import DATASETS

    ds = _load(dataset, interactions, items, _columns(column_map), data_dir, allow_repeats)
    spec = DATASETS.get(dataset) if dataset else None
    repeats = allow_repeats if allow_repeats is not None else ds.repeats
    protocol = protocol or (spec.protocol if spec else ("days:14" if repeats else "llo"))
    _run_evaluation(ds, protocol=protocol, repeats=repeats, k=k, report=report, config=config)


def _run_evaluation(ds: Dataset, *, protocol: str, repeats: bool, k: int, report: Path | None,
                    config: Path | None = None) -> None:
    from shortlist.data.split import split_by_protocol
    from shortlist.evaluation.full import evaluate_full
    from shortlist.evaluation.report import write_report

    cfg = load_config(config)
    t0 = time.perf_counter()
    split = split_by_protocol(ds.interactions, protocol, repeats=repeats)
    console.print(f"[dim]{split}[/dim]")
    ks = sorted({5, k, 20})
    params = _model_params(cfg)
    with console.status("evaluating") as status:
        result, recall, model = evaluate_full(split, items=ds.items, ks=ks, model_params=params,
                                              seed=cfg["model"]["seed"], on_step=lambda n: status.update(f"evaluating: {n}"))
    headline = [c for c in result.table.columns if c.endswith(f"@{k}") and not c.startswith("mpr")]
    headline += [c for c in ("fit_s", "rank_s") if c in result.table.columns]
    title = f"{ds.name} · {split.protocol} · repeats={repeats} · {result.n_users:,} test users"
    _print_table(result.table.select(["model", *headline]), title)
    _print_table(recall.rename({"candidates": "model"}), "candidate recall@N (stage 1)")
    seconds = round(time.perf_counter() - t0, 2)
    if report is not None:
        meta = {**result.meta, "dataset": ds.name, "cleaning": str(ds.report), "seconds": seconds,
                "model_metrics": model.metrics_}
        path = write_report(report, title=f"shortlist evaluation: {ds.name}",
                            tables={"results": result.table, "candidate recall": recall},
                            curves=result.curves, meta=meta, importances=model.importance())
        console.print(f"report → {path}")


def _model_params(cfg: dict[str, Any]) -> dict[str, Any]:
    m = cfg["model"]
    return {"sources": m["sources"] or None, "source_params": cfg["source_params"], "per_source": m["per_source"],
            "max_candidates": m["max_candidates"] or None, "n_windows": m["n_windows"] or None,
            "max_negatives": m["max_negatives"], "hard_negatives": m["hard_negatives"], "ranker": m["ranker"],
            "ranker_params": cfg["ranker"]}


@app.command()
def demo(
    report: Annotated[Path, typer.Option(help="Where to write the report.")] = Path("reports/demo"),
) -> None:
    """End to end on the bundled UCI Online Retail data: load → split → models → table."""
    from shortlist.data.loaders import load_named

    t0 = time.perf_counter()
    with console.status("loading the bundled UCI Online Retail data"):
        ds = load_named("online-retail", search_dirs=[])
    console.print(f"[dim]{ds.report}[/dim]")
    _run_evaluation(ds, protocol="days:14", repeats=True, k=10, report=report)
    console.print(f"demo finished in {time.perf_counter() - t0:.1f}s")


@app.command()
def split(
    protocol: Annotated[str, typer.Option(help="llo | llo:N | days:N | quantile:Q")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train.parquet, test.parquet, test_users.csv.")],
    dataset: Annotated[str | None, typer.Option(help="A named dataset.")] = None,
    interactions: Annotated[Path | None, typer.Option(help="CSV or Parquet with canonical columns.")] = None,
    allow_repeats: Annotated[bool, typer.Option("--allow-repeats", help="Keep re-consumed test items.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Write a leak-free train/test split with external ids (for `fit` / `recommend` / `score`)."""
    from shortlist.data.export import export_interactions
    from shortlist.data.split import split_by_protocol

    ds = _load(dataset, interactions, None, None, data_dir, allow_repeats)
    s = split_by_protocol(ds.interactions, protocol, repeats=allow_repeats)
    out_dir.mkdir(parents=True, exist_ok=True)
    export_interactions(s.train).write_parquet(out_dir / "train.parquet")
    export_interactions(s.test).write_parquet(out_dir / "test.parquet")
    users = s.train.users.external(s.test_users)
    _write_csv_atomic(pl.DataFrame({USER_ID: users}), out_dir / "test_users.csv")
    console.print(f"{s} → {out_dir}")


@app.command()
def score(
    recs: Annotated[Path, typer.Option(help="RECS.csv written by `shortlist recommend`.")],
    test: Annotated[Path, typer.Option(help="Test interactions (CSV/Parquet with user_id, item_id).")],
    k: Annotated[int, typer.Option(min=1)] = 10,
) -> None:
    """Score a recommendations file against held-out interactions (users without recs score 0)."""
    from shortlist.evaluation.files import score_files

    result = score_files(recs, test, ks=sorted({k, 5, 20}))
    _print_table(pl.DataFrame([{"model": recs.name, **result}]).select(
        ["model", *[c for c in result if c.endswith(f"@{k}")]]), f"{recs.name} vs {test.name}")


@app.command()
def download(
    name: Annotated[str, typer.Argument(help="ml-100k | ml-1m | ml-latest-small")],
    data_dir: Annotated[Path | None, typer.Option(help="Destination (default ~/.cache/shortlist/data).")] = None,
) -> None:
    """Download a public dataset (checksum-verified) into the data folder."""
    from shortlist.data.download import download_dataset

    path = download_dataset(name, cache_dir=data_dir or Path.home() / ".cache" / "shortlist" / "data")
    console.print(f"{name} → {path}")


@app.command()
def datasets() -> None:
    """List the named datasets."""
    from shortlist.data.loaders import DATASETS

    for name, spec in DATASETS.items():
        out.print(f"{name:24s} {spec.protocol:10s} {spec.description}")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks of a running system (serving).")
app.add_typer(bench_app, name="bench")


def _serving_settings(model: Path, redis_url: str | None, max_k: int, cache_ttl: float, watch: float,
                      max_candidates: int | None = None) -> Any:
    from shortlist.serving.settings import ServingSettings

    return ServingSettings(model_dir=model, redis_url=redis_url, max_k=max_k, cache_ttl_s=cache_ttl, watch_s=watch,
                           max_candidates=max_candidates)


@app.command()
def serve(
    model: Annotated[Path, typer.Option(help="Model directory written by `shortlist fit`.")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    redis_url: Annotated[str | None, typer.Option(help="Redis for the response cache and online events, "
                                                        "e.g. redis://127.0.0.1:6379/0 (default: in-process).")] = None,
    max_k: Annotated[int, typer.Option(help="Largest k a request may ask for.", min=1)] = 100,
    cache_ttl: Annotated[float, typer.Option(help="Response cache TTL in seconds.")] = 300.0,
    watch: Annotated[float, typer.Option(help="Reload when the model directory changes, polling every N s "
                                              "(0: only POST /admin/reload).")] = 0.0,
    max_candidates: Annotated[int | None, typer.Option(
        help="Candidates a request ranks (default: the model's own, 300; Online Retail NDCG@10 is the same "
             "from 150 up; fewer rows to featurise and score).", min=1)] = None,
) -> None:
    """Serve recommendations over HTTP (FastAPI + uvicorn): /recommend, /events, /metrics, a web page at /."""
    try:
        import uvicorn

        from shortlist.serving.app import create_app
    except ImportError as e:
        from shortlist.errors import DependencyMissingError

        raise DependencyMissingError(getattr(e, "name", None) or "fastapi", "serve", "`shortlist serve`") from e
    settings = _serving_settings(model, redis_url, max_k, cache_ttl, watch, max_candidates)
    # One BLAS thread: a request's matrix products are small, and waking a second thread on a busy
    # box cost more than the product itself (ALS one-user scores ~8 ms instead of ~0.3 ms).
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


def main() -> None:
    """Entry point: one clear line and a non-zero exit on errors, never a traceback."""
    logging.basicConfig(level=os.environ.get("SHORTLIST_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    debug = bool(os.environ.get("SHORTLIST_DEBUG"))
    try:
        app()  # standalone: usage errors print their own message and exit 2
    except (ShortlistError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        if debug:
            raise
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # anything unexpected: still one line, with the way to see more
        if debug:
            raise
        console.print(f"[red]error:[/red] {type(e).__name__}: {e} (set SHORTLIST_DEBUG=1 for the traceback)",
                      highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
