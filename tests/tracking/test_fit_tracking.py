"""`shortlist fit --track --register NAME --alias champion` into a SQLite store: the run holds the
resolved config, the data as a dataset input, versions and the commit, per-window recall, the
ranker's NDCG per round, the artifacts; the registry serves the model back, and a store that cannot
be reached costs a warning, never the model."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

Cli = Callable[[list[str]], tuple[int, str, str]]
pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def _artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_the_run_holds_config_data_code_and_metrics(tracked_fit: dict[str, Any]) -> None:
    client, run = tracked_fit["client"], tracked_fit["run"]
    manifest = json.loads((tracked_fit["model_dir"] / "manifest.json").read_text())
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED" and tags["shortlist.kind"] == "fit"
    # the resolved config: the sources the data called for, the budgets the target implies
    assert json.loads(params["model.sources"]) == manifest["sources"]
    assert (params["model.target"], params["model.max_candidates"], params["model.n_windows"]) == ("last", "200", "3")
    assert params["model.ranker_params.num_leaves"] == "15" and params["model.source_params.als.factors"] == "64"
    assert params["env.lightgbm"] and params["env.shortlist"] and params["cli.allow_repeats"] == "false"
    assert len(tags["mlflow.source.git.commit"]) == 40 or tags["mlflow.source.git.commit"] == "unknown"
    # the data: its fingerprint as the digest, its profile, its role
    (data,) = run.inputs.dataset_inputs
    assert data.dataset.digest == manifest["data_fingerprint"][:32] and data.dataset.name == "train"
    assert [(t.key, t.value) for t in data.tags] == [("mlflow.data.context", "training")]
    profile = json.loads(data.dataset.profile)
    train = pl.read_csv(tracked_fit["files"] / "train.csv", schema_overrides={"user_id": pl.Utf8})
    assert profile["fingerprint"] == manifest["data_fingerprint"] and profile["users"] == train["user_id"].n_unique()
    # per label window: rows, positives, recall of the union and of each source
    model_metrics = json.loads((tracked_fit["model_dir"] / "metrics.json").read_text())
    for window, stats in model_metrics["window_stats"].items():
        assert metrics[f"window.{window}.rows"] == stats["rows"]
        assert metrics[f"window.{window}.positives"] == stats["positives"]
        assert metrics[f"window.{window}.recall.union"] == pytest.approx(stats["recall"]["union"])
        for source in manifest["sources"]:
            assert metrics[f"window.{window}.recall.{source}"] == pytest.approx(stats["recall"][source])
    # the ranker's validation NDCG at every boosting round, as steps
    history = client.get_metric_history(run.info.run_id, "ranker.rounds.valid_ndcg_at_10")
    curve = model_metrics["ranker"]["valid_curve"]["ndcg@10"]
    assert [m.step for m in history] == list(range(1, len(curve) + 1))
    assert [m.value for m in history] == pytest.approx(curve)
    assert metrics["ranker.valid_ndcg_at_10"] == pytest.approx(curve[model_metrics["ranker"]["best_iteration"] - 1])


def test_the_run_holds_the_model_features_report_and_cleaning_report(tracked_fit: dict[str, Any]) -> None:
    client, run_id = tracked_fit["client"], tracked_fit["run"].info.run_id
    paths = _artifacts(client, run_id)
    model_files = {p.name for p in tracked_fit["model_dir"].rglob("*") if p.is_file()}
    logged_model = {Path(p).name for p in paths if p.startswith("model/artifacts/")}
    assert model_files <= logged_model  # the whole model directory, in shortlist's own format
    assert {"model/MLmodel", "model/pyfunc_model.py", "features.json", "config/resolved.json",
            "data/cleaning_report.txt", "data/cleaning_report.json", "data/training.json",
            "report/report.html", "report/report.md", "report/ranker_rounds.png"} <= paths
    assert not any(p.endswith((".pkl", ".pickle", ".cloudpickle")) for p in paths)
    local = Path(client.download_artifacts(run_id, "report/report.html"))
    page = local.read_text()
    assert "data:image/png;base64," in page and "<h2>Configuration</h2>" in page and "Label windows" in page
    features = json.loads(Path(client.download_artifacts(run_id, "features.json")).read_text())["features"]
    assert features and all(f["description"] for f in features)
    cleaning = Path(client.download_artifacts(run_id, "data/cleaning_report.txt")).read_text()
    assert "3,000 rows in" in cleaning


def test_the_model_is_registered_with_the_alias(tracked_fit: dict[str, Any]) -> None:
    client, run = tracked_fit["client"], tracked_fit["run"]
    version = client.get_model_version_by_alias("shortlist", "champion")
    assert version.run_id == run.info.run_id and int(version.version) == 1
    mlmodel = Path(client.download_artifacts(run.info.run_id, "model/MLmodel")).read_text()
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel  # from code: nothing pickled


def test_runs_prints_the_run_with_its_metrics(tracked_fit: dict[str, Any], cli: Cli) -> None:
    run = tracked_fit["run"]
    code, out, err = cli(["runs", "--experiment", "tiny", "--tracking-uri", tracked_fit["uri"]])
    assert code == 0, err
    assert run.info.run_id in out and "ranker.valid_ndcg_at_10" in out and "shortlist v1 @champion" in out
    assert f"{run.data.metrics['ranker.valid_ndcg_at_10']:.4f}" in out
    code, _, err = cli(["runs", "--experiment", "nope", "--tracking-uri", tracked_fit["uri"]])
    assert code == 2 and "no experiment 'nope'" in err and "tiny" in err


def test_recommend_from_the_registry_equals_recommend_from_the_folder(tracked_fit: dict[str, Any], files: Path,
                                                                      cli: Cli) -> None:
    folder = tracked_fit["folder"]
    common = ["--users", str(files / "users.csv"), "--k", "5"]
    code, _, err = cli(["recommend", "--model", str(tracked_fit["model_dir"]), *common,
                            "--out", str(folder / "from_dir.csv")])
    assert code == 0, err
    code, _, err = cli(["recommend", "--model", "models:/shortlist@champion", "--tracking-uri", tracked_fit["uri"],
                            *common, "--out", str(folder / "from_registry.csv")])
    assert code == 0, err
    assert (folder / "from_registry.csv").read_bytes() == (folder / "from_dir.csv").read_bytes()
    code, _, err = cli(["recommend", "--model", "models:/shortlist/1", "--tracking-uri", tracked_fit["uri"],
                            *common, "--out", str(folder / "by_version.csv")])
    assert code == 0 and (folder / "by_version.csv").read_bytes() == (folder / "from_dir.csv").read_bytes()


def test_the_pyfunc_predicts_what_recommend_writes(tracked_fit: dict[str, Any], files: Path,
                                                   cli: Cli) -> None:
    import mlflow.pyfunc
    import pandas as pd

    folder = tracked_fit["folder"]
    code, _, err = cli(["recommend", "--model", str(tracked_fit["model_dir"]), "--users", str(files / "users.csv"),
                            "--k", "7", "--out", str(folder / "recs7.csv")])
    assert code == 0, err
    expected = pl.read_csv(folder / "recs7.csv", schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
    mlflow.set_tracking_uri(tracked_fit["uri"])
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/shortlist@champion")
    finally:
        mlflow.set_tracking_uri(None)
    got = pyfunc.predict(pd.DataFrame({"user_id": ["u1", "u2", "never-seen"]}), params={"k": 7})
    assert list(got.columns) == ["user_id", "item_id", "rank", "score"]
    got_pl = pl.from_pandas(got).with_columns(pl.col("rank").cast(pl.Int64))
    assert got_pl.select("user_id", "item_id", "rank").equals(expected.select("user_id", "item_id", "rank"))
    assert got_pl["score"].to_numpy() == pytest.approx(expected["score"].to_numpy(), abs=1e-6, nan_ok=True)
    default_k = pyfunc.predict(pd.DataFrame({"user_id": ["u1"]}))
    assert len(default_k) == 10


def test_bad_registry_uris_are_clear(tracked_fit: dict[str, Any], files: Path, cli: Cli) -> None:
    common = ["--users", str(files / "users.csv"), "--out", str(tracked_fit["folder"] / "x.csv"),
              "--tracking-uri", tracked_fit["uri"]]
    code, _, err = cli(["recommend", "--model", "models:/shortlist", *common])
    assert code == 2 and "expected models:/NAME@ALIAS or models:/NAME/VERSION" in err
    code, _, err = cli(["recommend", "--model", "models:/shortlist@nobody", *common])
    assert code == 2 and "models:/shortlist@nobody: not found in the registry at" in err


def test_an_unreachable_store_still_writes_the_model(files: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     cli: Cli) -> None:
    uri = "http://127.0.0.1:1"
    with caplog.at_level(logging.WARNING, logger="shortlist.tracking"):
        code, _, err = cli(["fit", "--interactions", str(files / "train.csv"), "--out", str(tmp_path / "m"),
                                "--track", "--tracking-uri", uri, "--register", "shortlist"])
    assert code == 0, err
    assert (tmp_path / "m" / "manifest.json").is_file()
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("shortlist.tracking")]
    assert len(warnings) == 1 and uri in warnings[0]


def test_flags_are_checked_before_the_fit(files: Path, tmp_path: Path, cli: Cli) -> None:
    base = ["fit", "--interactions", str(files / "train.csv"), "--out", str(tmp_path / "m")]
    code, _, err = cli([*base, "--alias", "champion"])
    assert code == 2 and "needs a registered model name" in err
    code, _, err = cli([*base, "--no-track", "--register", "shortlist"])
    assert code == 2 and "drop --no-track" in err
    assert not (tmp_path / "m").exists()


def test_without_track_nothing_is_written_for_tracking(files: Path, tmp_path: Path,
                                                       cli: Cli) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, _, err = cli(["fit", "--interactions", str(files / "train.csv"), "--out", "m"])
    finally:
        os.chdir(cwd)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no mlruns.db, no mlruns/


def test_tracking_without_the_mlflow_extra_stops_before_the_fit(files: Path, tmp_path: Path, cli: Cli,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shortlist.cli.runs.find_spec", lambda name: None)
    code, _, err = cli(["fit", "--interactions", str(files / "train.csv"), "--out", str(tmp_path / "m"), "--track"])
    assert code == 2 and "pip install 'shortlist[mlflow]'" in err
    assert not (tmp_path / "m").exists()
