"""`fit`, `recommend` and `candidates`: a model directory in, recommendations out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import typer

from shortlist.cli._cluster import ClusterConfig, Scheduler, cluster, scheduler_of
from shortlist.cli._common import (
    ColumnMap,
    DropInvalid,
    ItemsMap,
    TimestampUnitOption,
    app,
    check_output_file,
    console,
    load_data,
    parse_column_map,
    progress_bar,
    read_users,
    write_batches_atomic,
)
from shortlist.cli.runs import (
    Alias,
    Experiment,
    Register,
    Track,
    TrackingUri,
    finish_tracking,
    model_directory,
    start_tracking,
    tracking_settings,
)
from shortlist.config import load_config, model_config
from shortlist.errors import ConfigError
from shortlist.schema import ITEM_ID, RANK, SCORE, USER_ID


@app.command()
def fit(
    interactions: Annotated[Path, typer.Option(help="CSV or Parquet with user_id, item_id, timestamp.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    items: Annotated[Path | None, typer.Option(help="Item catalogue (item_id, title, ...).")] = None,
    allow_repeats: Annotated[bool, typer.Option("--allow-repeats", help="Allow already-seen items.")] = False,
    target: Annotated[str | None, typer.Option(help="last | days:N (default: the config's, 'last').")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file overriding defaults.")] = None,
    column_map: ColumnMap = None,
    items_map: ItemsMap = None,
    drop_invalid: DropInvalid = False,
    timestamp_unit: TimestampUnitOption = "auto",
    track: Track = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = None,
    register: Register = None,
    alias: Alias = None,
    scheduler: Scheduler = None,
) -> None:
    """Fit a model on interactions and save it to a directory (and, tracked, log it to MLflow)."""
    from shortlist.pipeline.artifacts import check_model_target

    check_model_target(out_dir)  # before the fit: a refused folder costs nothing
    cfg = load_config(config)
    scheduler_of(cfg, scheduler)
    tracking = tracking_settings(cfg, track=track, uri=tracking_uri, experiment=experiment, register=register,
                                 alias=alias)  # checked before the fit too
    ds = load_data(None, interactions, items, parse_column_map(column_map), None, allow_repeats,
                   items_columns=parse_column_map(items_map, option="--items-map"), drop_invalid=drop_invalid,
                   timestamp_unit=timestamp_unit)
    tracker = start_tracking("fit", tracking, ds, source=str(interactions), config=config,
                             options={"target": target, "allow_repeats": allow_repeats})
    t0 = time.perf_counter()
    with cluster(cfg, scheduler), progress_bar("fitting") as progress:
        model = _make_model(cfg, allow_repeats=allow_repeats, target=target)
        if hasattr(model, "resolved_kind"):
            model.fit(ds.interactions, rng=np.random.default_rng(cfg["model"]["seed"]))
        else:
            model.fit(ds.interactions, items=ds.items, rng=np.random.default_rng(cfg["model"]["seed"]), progress=progress)
        tracker.fitted(model)  # tracked: its metrics and report go to the tracking worker while the model is saved
        model.save(out_dir)
    console.print(f"fitted {cfg['model']['kind']} in {time.perf_counter() - t0:.1f}s → {out_dir}")
    metrics = getattr(model, "metrics_", {})
    if "candidate_recall" in metrics:
        ranker = {k: v for k, v in metrics.get("ranker", {}).items() if k != "valid_curve"}  # per round: in reports
        console.print(f"candidate recall per label window: {metrics['candidate_recall']}; "
                      f"ranker: {ranker or 'not trained (too little data)'}", style="dim")
    finish_tracking(tracker, model=model, model_dir=out_dir)


def _make_model(cfg: dict[str, Any], *, allow_repeats: bool, target: str | None) -> Any:
    from shortlist.pipeline.baseline import BaselineRecommender
    from shortlist.pipeline.two_stage import TwoStageRecommender

    if cfg["model"]["kind"] != "two_stage":
        return BaselineRecommender(kind=cfg["model"]["kind"], allow_repeats=allow_repeats)
    return TwoStageRecommender(model_config(cfg, target=target, allow_repeats=allow_repeats or None))


@app.command()
def recommend(
    model: Annotated[Path, typer.Option(help="Model directory written by `shortlist fit`, or a registered "
                                             "model: models:/NAME@ALIAS or models:/NAME/VERSION.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output: user_id,item_id,rank,score as CSV, or Parquet "
                                                         "for a .parquet name (written as it goes, shard by shard).")],
    users: Annotated[Path | None, typer.Option(help="Users file (CSV, Parquet or JSON with a user_id column).")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Every user the model knows.")] = False,
    k: Annotated[int, typer.Option(help="Items per user.", min=1)] = 10,
    rules_file: Annotated[Path | None, typer.Option("--rules", help="Business rules (TOML or JSON): filters, "
                                                    "boosts, pins, a cap per category; see docs/serving.md.")] = None,
    partition_users: Annotated[int | None, typer.Option(
        help="Write --out as a folder of Parquet parts of N users each (part-00000.parquet, ...) with a "
             "_manifest.json naming the model version and the rows of each part.", min=1)] = None,
    tracking_uri: TrackingUri = None,
    scheduler: Scheduler = None,
    config: ClusterConfig = None,
) -> None:
    """Write the top-K recommendations for each listed user (or, with --all-users, every known user).
    With --scheduler the parts are ranked on a Dask cluster and --out is a partitioned folder."""
    from shortlist.pipeline.load import load_model

    if (users is None) == (not all_users):
        raise ConfigError("pass exactly one of --users FILE or --all-users")
    cfg = load_config(config)
    on_cluster = scheduler_of(cfg, scheduler) is not None
    if partition_users is None and not on_cluster:
        check_output_file(out_path, [USER_ID, ITEM_ID, RANK, SCORE])
    else:
        from shortlist.pipeline.batch_export import check_export_target

        check_export_target(out_path)
    rules = _read_rules(rules_file)
    model = model_directory(model, tracking_uri)
    with console.status("loading the model"):
        rec = load_model(model)
    if (rules is not None or partition_users is not None or on_cluster) and not hasattr(rec, "rank"):
        raise ConfigError(f"--rules, --partition-users and --scheduler need a two-stage model; {model} is a baseline")
    user_ids = read_users(users) if users is not None else None
    if user_ids is not None:
        _report_unknown(user_ids, rec)
    n = len(user_ids) if user_ids is not None else rec.n_users
    if partition_users is not None or on_cluster:
        with cluster(cfg, scheduler):
            _export(rec, model, out_path, user_ids, k, partition_users, rules, n)
        return
    with progress_bar(f"recommending for {n:,} users") as progress:
        extra = {} if rules is None else {"rules": rules}
        batches = rec.recommend_batches(user_ids, k, progress=progress, **extra)
        rows = write_batches_atomic((b.select(USER_ID, ITEM_ID, RANK, SCORE) for b in batches), out_path)
    console.print(f"wrote {rows:,} rows for {n:,} users → {out_path}")


def _read_rules(path: Path | None) -> Any:
    if path is None:
        return None
    from shortlist.cli._rules_io import read_rules

    return read_rules(path)


def _export(rec: Any, model: Path, out_path: Path, user_ids: pl.Series | None, k: int, per_part: int | None,
            rules: Any, n: int) -> None:
    """The partitioned export (parts of ``per_part`` users; None: the model's shard size)."""
    from shortlist.pipeline.batch_export import export_partitioned

    with progress_bar(f"exporting {n:,} users") as progress:
        manifest = export_partitioned(rec, model, out_path, k=k, users_per_part=per_part or rec.config.shard_users,
                                      user_ids=user_ids, rules=rules, progress=progress)
    console.print(f"wrote {manifest['rows']:,} rows for {manifest['users']:,} users in {len(manifest['parts'])} "
                  f"parts (model {manifest['model_version']}) → {out_path}")


def _report_unknown(user_ids: pl.Series, rec: Any) -> None:
    """Say how many requested users the model has never seen: they get the popularity fallback."""
    from shortlist.pipeline.external import unknown_users

    known = rec.history_.users if getattr(rec, "history_", None) is not None else rec.users_
    n_unknown = len(unknown_users(user_ids, known))
    if n_unknown:
        console.print(f"{n_unknown:,} of {len(user_ids):,} users unknown to the model: popularity fallback")


@app.command()
def candidates(
    model: Annotated[Path, typer.Option(help="Two-stage model directory written by `shortlist fit`.")],
    users: Annotated[Path, typer.Option(help="Users file (CSV, Parquet or JSON with a user_id column).")],
    out_path: Annotated[Path, typer.Option("--out", help="Output: the stage-1 candidate union (CSV, or Parquet).")],
    scheduler: Scheduler = None,
    config: ClusterConfig = None,
) -> None:
    """Write stage 1's candidate union: user_id, item_id, n_sources, each source's score and rank, fused_score."""
    from shortlist.pipeline.two_stage import TwoStageRecommender

    cfg = load_config(config)
    with console.status("loading the model"):
        rec = TwoStageRecommender.load(model)
    user_ids = read_users(users)
    with cluster(cfg, scheduler), progress_bar(f"retrieving candidates for {len(user_ids):,} users") as progress:
        rows = write_batches_atomic(rec.candidate_batches(user_ids, progress=progress), out_path)
    console.print(f"wrote {rows:,} candidates for {len(user_ids):,} users → {out_path}")


@app.command()
def update(
    model: Annotated[Path, typer.Option(help="Two-stage model directory written by `shortlist fit` or `update`.")],
    interactions: Annotated[Path, typer.Option(help="The new interactions (CSV or Parquet), with the columns the "
                                                    "model was fitted on.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write (not --model's, unless --in-place).")],
    items: Annotated[Path | None, typer.Option(help="Catalogue rows to add, or to replace the model's for the same "
                                                    "items.")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Allow --out to be --model: it is replaced.")] = False,
    ranker: Annotated[str, typer.Option(help="refresh: retrain the ranker on the new interactions as one label "
                                             "window over the model's own sources (docs/update.md); keep: keep it.")
                      ] = "refresh",
    column_map: ColumnMap = None,
    items_map: ItemsMap = None,
    drop_invalid: DropInvalid = False,
    timestamp_unit: TimestampUnitOption = "auto",
) -> None:
    """Refresh a fitted model with new interactions, without a full refit: new users and items come in,
    the sources' counts advance, ALS runs a few sweeps from its factors; the ranker is retrained on
    the new period (--ranker keep keeps it)."""
    from shortlist.pipeline.artifacts import check_model_target
    from shortlist.pipeline.update import update_directory
    from shortlist.pipeline.update_ranker import check_ranker_mode

    check_ranker_mode(ranker)
    check_model_target(out_dir)  # before loading anything
    ds = load_data(None, interactions, items, parse_column_map(column_map), None, None,
                   items_columns=parse_column_map(items_map, option="--items-map"), drop_invalid=drop_invalid,
                   timestamp_unit=timestamp_unit)
    t0 = time.perf_counter()
    with console.status("updating the model"):
        updated = update_directory(model, ds.interactions, out_dir, items=ds.items, in_place=in_place,
                                   ranker=ranker)
    s = updated.metrics_["update"]
    console.print(f"updated {model} → {out_dir} in {time.perf_counter() - t0:.1f}s: {s['rows']:,} new rows, "
                  f"{s['new_users']:,} new users, {s['new_items']:,} new items ({_ranker_note(s)})")
    if s["duplicate_rows_dropped"]:
        console.print(f"{s['duplicate_rows_dropped']:,} rows were already in the model's history: left out",
                      style="yellow")


def _ranker_note(summary: dict[str, Any]) -> str:
    """What the update did with the ranker, for the console line."""
    refresh = summary.get("ranker_refresh")
    if not refresh:
        return "ranker kept"
    return (f"ranker retrained on {refresh['groups_kept']:,} users' labels of {refresh['window']} "
            f"in {refresh['seconds']:.1f}s")
