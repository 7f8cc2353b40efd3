"""Against a real `mlflow server` on loopback: a tracked, registered fit; `shortlist serve --model
models:/shortlist@champion` answering /recommend; and a server that dies mid-run costing a warning,
never the model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
pytest.importorskip("fastapi", reason="the serve extra is not installed")

from shortlist.serving.loadtest import default_server_cmd, free_port, running_server
from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.fit import FitTracking

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def mlflow_server(folder: Path, *, timeout_s: float = 180.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlflow server` with a SQLite backend on a free loopback port; waits for /health, stops it after."""
    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--artifacts-destination", str(folder / "art")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(folder / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server not healthy after {timeout_s:.0f} s")
            time.sleep(0.5)
        yield uri, proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _runs(client: Any, experiment: str) -> list[Any]:
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else list(client.search_runs([exp.experiment_id]))


def _post(base: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_fit_register_and_serve_through_a_tracking_server(files: Path, tmp_path: Path, store: tuple[str, Path],
                                                           shortlist_cli: Callable[..., tuple[int, str, str]],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    import mlflow

    from shortlist.data.loaders import load_dataset
    from shortlist.pipeline.load import load_model

    with mlflow_server(tmp_path) as (uri, proc):
        code, _, _ = shortlist_cli(["fit", "--interactions", str(files / "train.csv"), "--out", str(tmp_path / "m"),
                                    "--tracking-uri", uri, "--register", "shortlist", "--alias", "champion"])
        assert code == 0
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        version = client.get_model_version_by_alias("shortlist", "champion")
        run = client.get_run(version.run_id)
        assert run.info.status == "FINISHED" and "ranker.valid_ndcg_at_10" in run.data.metrics
        assert any(a.path == "model" for a in client.list_artifacts(run.info.run_id))

        offline = load_model(tmp_path / "m")
        cmd = default_server_cmd("models:/shortlist@champion", extra=["--tracking-uri", uri])
        with running_server(cmd, ready_timeout_s=240) as base:
            body = _post(base, "/recommend", {"user_id": "u1", "k": 5})
        assert [r["item_id"] for r in body["items"]] == offline.recommend(["u1"], 5)["item_id"].to_list()

        # the server dies while a fit is being tracked: the fit's model is kept, one warning names the URI
        ds = load_dataset(files / "train.csv", None)
        tracker = FitTracking(TrackingSettings(uri, "dies"), dataset=ds, data_source=str(files / "train.csv")).start()
        deadline = time.monotonic() + 120
        while not _runs(client, "dies"):  # the worker has opened the run
            assert time.monotonic() < deadline, "the tracking worker never created its run"
            time.sleep(0.5)
        stop(proc)
        with caplog.at_level(logging.WARNING, logger="shortlist.tracking"):
            assert tracker.log_fit(offline, tmp_path / "m") is None
        warnings = [r.getMessage() for r in caplog.records if r.name.startswith("shortlist.tracking")]
        assert len(warnings) == 1 and uri in warnings[0]
        assert load_model(tmp_path / "m").recommend(["u1"], 5).height == 5
