"""`evaluate`, `demo`, `split` and `score`: honest offline numbers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import polars as pl
import typer

from shortlist.cli._cluster import Scheduler, cluster, scheduler_of
from shortlist.cli._common import (
    ColumnMap,
    DataDir,
    DropInvalid,
    ItemsMap,
    TimestampUnitOption,
    app,
    console,
    load_data,
    parse_column_map,
    print_table,
    write_table_atomic,
)
from shortlist.cli.runs import (
    Experiment,
    Track,
    TrackingUri,
    finish_tracking,
    start_tracking,
    tracking_settings,
)
from shortlist.config import load_config, model_config
from shortlist.errors import ConfigError
from shortlist.schema import USER_ID

if TYPE_CHECKING:
    from shortlist.data.containers import Dataset
    from shortlist.tracking.config import TrackingSettings


@app.command()
def evaluate(
    protocol: Annotated[str | None, typer.Option(
        help="llo | llo:N | days:N | quantile:Q | random:Q (default: the dataset's).")] = None,
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
    items_map: ItemsMap = None,
    drop_invalid: DropInvalid = False,
    timestamp_unit: TimestampUnitOption = "auto",
    config: Annotated[Path | None, typer.Option(help="TOML file overriding defaults.")] = None,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", help="Score a saved model NAME=MODEL_DIR on the split instead of fitting (repeat to compare "
                          "A/B variants); each must be fitted on `shortlist split`'s train.parquet of the same "
                          "protocol, and is refused if it saw the test data.")] = None,
    track: Track = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = None,
    scheduler: Scheduler = None,
) -> None:
    """Split, fit every model on the training part, and print models × metrics (tracked: log them to MLflow).
    With --scheduler the fit's training rows are built on a Dask cluster.

    With --variant: score the saved models (A/B variants) on the same split, beside popularity."""
    from shortlist.data.loaders import DATASETS
    from shortlist.data.split import default_protocol

    cfg = load_config(config)
    tracking = tracking_settings(cfg, track=track, uri=tracking_uri, experiment=experiment)
    if scheduler_of(cfg, scheduler) and variant:
        raise ConfigError("--scheduler runs a fit's training rows on a cluster; --variant fits nothing (drop one)")
    ds = load_data(dataset, interactions, items, parse_column_map(column_map), data_dir, allow_repeats,
                   items_columns=parse_column_map(items_map, option="--items-map"), drop_invalid=drop_invalid,
                   timestamp_unit=timestamp_unit)
    spec = DATASETS.get(dataset) if dataset else None
    repeats = allow_repeats if allow_repeats is not None else ds.repeats
    protocol = protocol or default_protocol(ds.interactions, spec.protocol if spec else ("days:14" if repeats else "llo"))
    if variant:
        _evaluate_variants(ds, variant, protocol=protocol, repeats=repeats, k=k, config=config,
                           tracking_uri=tracking_uri)
        return
    _run_evaluation(ds, protocol=protocol, repeats=repeats, k=k, report=report, config=config, tracking=tracking,
                    source=str(interactions or dataset), scheduler=scheduler)


def _run_evaluation(ds: Dataset, *, protocol: str, repeats: bool, k: int, report: Path | None,
                    config: Path | None = None, tracking: TrackingSettings | None = None, source: str = "",
                    scheduler: str | None = None) -> None:
    from shortlist.data.split import split_by_protocol
    from shortlist.evaluation.full import evaluate_full
    from shortlist.evaluation.report import write_report
    from shortlist.tracking.resolved import resolved_config

    cfg = load_config(config)
    tracker = start_tracking("evaluate", tracking, ds, source=source or ds.name, config=config,
                             options={"protocol": protocol, "k": k, "repeats": repeats})
    t0 = time.perf_counter()
    split = split_by_protocol(ds.interactions, protocol, repeats=repeats, seed=cfg["model"]["seed"], dataset=ds.name)
    console.print(str(split), style="dim")
    ks = sorted({5, k, 20})
    with cluster(cfg, scheduler), console.status("evaluating") as status:
        result, recall, model = evaluate_full(split, items=ds.items, ks=ks, config=model_config(cfg),
                                              seed=cfg["model"]["seed"], on_step=lambda n: status.update(f"evaluating: {n}"))
    headline = [c for c in result.table.columns if c.endswith(f"@{k}") and not c.startswith("mpr")]
    headline += [c for c in ("fit_s", "rank_s") if c in result.table.columns]
    title = f"{ds.name} · {split.protocol} · repeats={repeats} · {result.n_users:,} test users"
    print_table(result.table.select(["model", *headline]), title)
    print_table(recall.rename({"candidates": "model"}), "candidate recall@N (stage 1)")
    seconds = round(time.perf_counter() - t0, 2)
    report_dir = report or tracker.report_dir()  # a tracked run keeps the report even when none was asked for
    if report_dir is not None:
        meta = {**result.meta, "dataset": ds.name, "cleaning": str(ds.report), "seconds": seconds,
                "model_metrics": model.metrics_}
        ranker = model.metrics_.get("ranker") or {}
        path = write_report(report_dir, title=f"shortlist evaluation: {ds.name}",
                            tables={"results": result.table, "candidate recall": recall},
                            curves=result.curves, meta=meta, importances=model.importance(),
                            config=resolved_config(model), rounds=ranker.get("valid_curve"),
                            best_round=ranker.get("best_iteration"))
        if report is not None:
            console.print(f"report → {path}")
    finish_tracking(tracker, split=split, table=result.table, recall=recall, model=model, report=report_dir)


def _evaluate_variants(ds: Dataset, variants: list[str], *, protocol: str, repeats: bool, k: int,
                       config: Path | None, tracking_uri: str | None) -> None:
    from shortlist.cli._serve_opts import parse_variants
    from shortlist.cli.runs import model_directory
    from shortlist.data.split import split_by_protocol
    from shortlist.evaluation.saved import evaluate_saved
    from shortlist.pipeline.two_stage import TwoStageRecommender

    named = parse_variants(variants)
    if len({n for n, _ in named}) < len(named):
        raise ConfigError(f"--variant names must be distinct, got {[n for n, _ in named]}")
    seed = load_config(config)["model"]["seed"]
    split = split_by_protocol(ds.interactions, protocol, repeats=repeats, seed=seed, dataset=ds.name)
    console.print(str(split), style="dim")
    with console.status("loading the variants' models"):
        models = {name: TwoStageRecommender.load(model_directory(Path(where), tracking_uri)) for name, where in named}
    with console.status("scoring the variants"):
        result = evaluate_saved(models, split, ks=sorted({5, k, 20}))
    headline = [c for c in result.table.columns if c.endswith(f"@{k}") and not c.startswith("mpr")]
    print_table(result.table.select(["model", *headline, *[c for c in ("rank_s",) if c in result.table.columns]]),
                f"{ds.name} · {split.protocol} · repeats={repeats} · {result.n_users:,} test users · A/B variants")


@app.command()
def demo(
    report: Annotated[Path, typer.Option(help="Where to write the report.")] = Path("reports/demo"),
) -> None:
    """End to end on the bundled UCI Online Retail data: load → split → models → table."""
    from shortlist.data.loaders import load_named

    t0 = time.perf_counter()
    with console.status("loading the bundled UCI Online Retail data"):
        ds = load_named("online-retail", search_dirs=[])
    console.print(str(ds.report), style="dim")
    _run_evaluation(ds, protocol="days:14", repeats=True, k=10, report=report)
    console.print(f"demo finished in {time.perf_counter() - t0:.1f}s")


@app.command()
def split(
    protocol: Annotated[str, typer.Option(help="llo | llo:N | days:N | quantile:Q | random:Q")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train.parquet, test.parquet, test_users.csv.")],
    dataset: Annotated[str | None, typer.Option(help="A named dataset.")] = None,
    interactions: Annotated[Path | None, typer.Option(help="CSV or Parquet with canonical columns.")] = None,
    allow_repeats: Annotated[bool, typer.Option("--allow-repeats", help="Keep re-consumed test items.")] = False,
    data_dir: DataDir = None,
    column_map: ColumnMap = None,
    drop_invalid: DropInvalid = False,
    timestamp_unit: TimestampUnitOption = "auto",
) -> None:
    """Write a leak-free train/test split with external ids (for `fit` / `recommend` / `score`)."""
    from shortlist.data.export import export_interactions
    from shortlist.data.split import split_by_protocol

    ds = load_data(dataset, interactions, None, parse_column_map(column_map), data_dir, allow_repeats,
                   drop_invalid=drop_invalid, timestamp_unit=timestamp_unit)
    s = split_by_protocol(ds.interactions, protocol, repeats=allow_repeats, dataset=ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table_atomic(export_interactions(s.train), out_dir / "train.parquet")
    write_table_atomic(export_interactions(s.test), out_dir / "test.parquet")
    users = s.train.users.external(s.test_users)
    write_table_atomic(pl.DataFrame({USER_ID: users}), out_dir / "test_users.csv")
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
    print_table(pl.DataFrame([{"model": recs.name, **result}]).select(
        ["model", *[c for c in result if c.endswith(f"@{k}")]]), f"{recs.name} vs {test.name}")


