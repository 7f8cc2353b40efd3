"""`runs`: tracked runs side by side; and what `fit`, `evaluate`, `serve` and `recommend` share for
tracking: the options, the settings from flags + config + environment, and `models:/` model paths."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shortlist.cli._common import app, console, out
from shortlist.config import load_config

if TYPE_CHECKING:
    from shortlist.tracking.config import TrackingSettings

Track = Annotated[bool | None, typer.Option(
    "--track/--no-track", help="Record this run in MLflow (default: the config's tracking.enabled; "
                               "needs the mlflow extra).")]
TrackingUri = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow store: a server (http://127.0.0.1:5000) or a database (sqlite:///mlruns.db). "
                           "Default: MLFLOW_TRACKING_URI, else the config's, else sqlite:///mlruns.db here.")]
Experiment = Annotated[str | None, typer.Option(help="MLflow experiment (default: the config's, 'shortlist').")]
Register = Annotated[str | None, typer.Option(
    help="Register the model as a new version of this name in the MLflow registry (implies --track).")]
Alias = Annotated[str | None, typer.Option(help="Point this registry alias (e.g. champion) at the new version.")]


def tracking_settings(cfg: dict[str, Any], *, track: bool | None, uri: str | None, experiment: str | None = None,
                      register: str | None = None, alias: str | None = None) -> TrackingSettings | None:
    """The command's tracking from its flags, the config's [tracking] and MLFLOW_TRACKING_URI (None: untracked)."""
    from shortlist.tracking.config import tracking_settings as settings

    found = settings(cfg["tracking"], track=track, uri=uri, experiment=experiment, register=register, alias=alias,
                     env=os.environ)
    if found is not None and find_spec("mlflow") is None:  # say so before the work, not after it
        from shortlist.errors import DependencyMissingError

        raise DependencyMissingError("mlflow", "mlflow", "experiment tracking (--track, --register)")
    return found


def model_directory(model: Path, tracking_uri: str | None) -> Path:
    """``model`` itself, or for ``models:/NAME@alias`` / ``models:/NAME/VERSION`` the registered
    version's model directory, downloaded once into ``$SHORTLIST_CACHE_DIR/models`` (default
    ``~/.cache/shortlist/models``)."""
    text = str(model)
    if not text.startswith("models:"):
        return model
    from shortlist.tracking.config import resolve_uri
    from shortlist.tracking.registry import fetch_model

    uri = resolve_uri(tracking_uri, None, os.environ)
    cache = Path(os.environ.get("SHORTLIST_CACHE_DIR") or Path.home() / ".cache" / "shortlist") / "models"
    with console.status(f"fetching {text} from {uri}"):
        local = fetch_model(text, tracking_uri=uri, cache_dir=cache)
    console.print(f"{text} → {local}", style="dim")
    return local


def start_tracking(kind: str, settings: TrackingSettings | None, ds: Any, *, source: str, config: Path | None,
                   options: dict[str, object]) -> Any:
    """A started fit or evaluation tracker (``settings=None``: one that does nothing)."""
    from shortlist.tracking.evaluation import EvaluationTracking
    from shortlist.tracking.fit import FitTracking

    tracker = FitTracking if kind == "fit" else EvaluationTracking
    return tracker(settings, dataset=ds, data_source=source, config_file=config, options=options).start()


def finish_tracking(tracker: Any, **kwargs: Any) -> None:
    """Complete a tracked run (``log_fit`` / ``log_evaluation`` with ``kwargs``) and say where it went."""
    if tracker.settings is None:
        return
    log = tracker.log_fit if hasattr(tracker, "log_fit") else tracker.log_evaluation
    with console.status(f"logging the run to {tracker.settings.uri}"):
        tracked = log(**kwargs)
    if tracked is not None:
        console.print(str(tracked))


@app.command()
def runs(
    experiment: Experiment = None,
    tracking_uri: TrackingUri = None,
    limit: Annotated[int, typer.Option(help="Newest runs to show.", min=1)] = 10,
    config: Annotated[Path | None, typer.Option(help="TOML file whose tracking section names the store.")] = None,
) -> None:
    """Show tracked runs side by side: data, code, headline metrics, and the parameters that differ."""
    from shortlist.tracking.config import resolve_uri
    from shortlist.tracking.runs import FIELD, runs_table

    section = load_config(config)["tracking"]
    uri = resolve_uri(tracking_uri, section["uri"] or None, os.environ)
    name = experiment or section["experiment"]
    with console.status(f"reading runs of {name!r} from {uri}"):
        table = runs_table(uri, name, limit=limit)
    if table.width == 1:
        console.print(f"no runs in experiment {name!r} at {uri}")
        return
    t = Table(title=f"{name}: {table.width - 1} newest runs ({uri})")
    for col in table.columns:
        t.add_column(col, justify="left" if col == FIELD else "right", overflow="fold")
    for row in table.iter_rows():
        t.add_row(*row)
    out.print(t)
