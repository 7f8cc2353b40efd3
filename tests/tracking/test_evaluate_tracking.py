"""`shortlist evaluate --track`: every model row of the results table as metrics, the split as
dataset inputs (whole data, train, test), the evaluated model's state, the report with its plots."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shortlist.tracking.resolved import metric_key

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


@pytest.fixture(scope="module")
def evaluated(store: tuple[str, Path], files: Path, tmp_path_factory: pytest.TempPathFactory,
              shortlist_cli: Callable[..., tuple[int, str, str]]) -> dict[str, Any]:
    import mlflow

    uri, folder = store
    report = tmp_path_factory.mktemp("eval-report")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, _, _ = shortlist_cli(["evaluate", "--interactions", str(files / "train.csv"), "--protocol", "llo",
                                    "--k", "5", "--report", str(report), "--track", "--tracking-uri", uri,
                                    "--experiment", "evals"])
    finally:
        os.chdir(cwd)
    assert code == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("evals").experiment_id])
    return {"client": client, "run": run, "report": report}


def test_every_model_row_is_logged(evaluated: dict[str, Any]) -> None:
    client, run = evaluated["client"], evaluated["run"]
    results = pl.read_csv(client.download_artifacts(run.info.run_id, "evaluation/results.csv"))
    assert results.height >= 5 and "two_stage" in results["model"].to_list()
    metrics = run.data.metrics
    for row in results.iter_rows(named=True):
        for col in ("ndcg@5", "recall@20", "coverage@5"):
            assert metrics[metric_key("eval", row["model"], col)] == pytest.approx(row[col])
    recall = pl.read_csv(client.download_artifacts(run.info.run_id, "evaluation/candidate_recall.csv"))
    union = recall.filter(pl.col("candidates").str.starts_with("union")).row(0, named=True)
    assert metrics[metric_key("candidates", union["candidates"], "recall@50")] == pytest.approx(union["recall@50"])
    assert run.data.params["eval.protocol"] == "llo:1" and run.data.tags["shortlist.kind"] == "evaluate"
    assert "ranker.rounds.valid_ndcg_at_10" in metrics and any(k.startswith("window.") for k in metrics)


def test_the_split_is_three_dataset_inputs(evaluated: dict[str, Any]) -> None:
    inputs = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
              for i in evaluated["run"].inputs.dataset_inputs}
    assert set(inputs) == {"source", "train", "test"}
    train, test = json.loads(inputs["train"].profile), json.loads(inputs["test"].profile)
    assert train["split"] == test["split"] and train["split"]["protocol"] == "llo:1"
    assert test["rows"] == train["split"]["test_users"]  # leave-last-out: one target a test user
    assert inputs["train"].digest != inputs["test"].digest != inputs["source"].digest


def test_the_report_is_logged_and_kept_where_asked(evaluated: dict[str, Any]) -> None:
    client, run_id, report = evaluated["client"], evaluated["run"].info.run_id, evaluated["report"]
    logged = {a.path for a in client.list_artifacts(run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/ndcg_at_k.png"} <= logged
    assert (report / "report.html").is_file()
    page = (report / "report.html").read_text()
    assert "ndcg@K for K = 1 .." in page and "<h2>Configuration</h2>" in page and 'src="data:image/png' in page
    assert {a.path for a in client.list_artifacts(run_id)} >= {"features.json", "config", "data", "evaluation"}
