"""Connecting to a tracking store: a fast reachability check, the experiment, a new run."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from shortlist.errors import ConfigError
from shortlist.tracking._mlflow import mlflow_module
from shortlist.tracking.config import TrackingSettings

PROBE_TIMEOUT_S = 5.0


def probe(uri: str, *, timeout: float = PROBE_TIMEOUT_S) -> None:
    """For an ``http(s)`` store, fail within ``timeout`` seconds when nothing listens at its address
    (MLflow's own client would retry for much longer). Other stores are checked by MLflow itself."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    if not parts.hostname:
        raise ConfigError(f"tracking URI {uri!r} has no host; e.g. http://127.0.0.1:5000")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname, port), timeout=timeout):
        pass


def client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``, used for both tracking and the model registry."""
    mlflow = mlflow_module()
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(c: Any, name: str, *, create: bool = True) -> str | None:
    """The id of experiment ``name`` (created when missing and ``create``; a concurrent creator wins)."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    if not create:
        return None
    mlflow = mlflow_module()
    try:
        return str(c.create_experiment(name))
    except mlflow.exceptions.MlflowException:
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


def open_run(settings: TrackingSettings, *, run_name: str, tags: dict[str, str], start_ms: int | None = None
             ) -> tuple[Any, str]:
    """A new run in the settings' experiment, tagged like MLflow's own runs (user, source) plus ``tags``,
    started at ``start_ms`` (epoch milliseconds; default now)."""
    from mlflow.tracking.context.registry import resolve_tags

    c = client(settings.uri)
    eid = experiment_id(c, settings.experiment)
    assert eid is not None
    run = c.create_run(eid, start_time=start_ms, run_name=run_name, tags=resolve_tags(tags))
    return c, str(run.info.run_id)
