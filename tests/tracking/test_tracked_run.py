"""A tracked run: what it records in a SQLite store, how it ends, and that a store it cannot reach
costs one warning naming the URI and nothing else."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from shortlist.tracking import TrackedRun, TrackingSettings, tracked_run
from shortlist.tracking.provenance import COMMIT_TAG, DIRTY_TAG, code_version

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def _client(uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)


def test_a_run_records_params_metrics_series_and_artifacts(store: tuple[str, Path], tmp_path: Path) -> None:
    uri, _ = store
    (tmp_path / "notes.txt").write_text("hello")
    with tracked_run("finetune", {"trials": 3, "space": None, "flag": True}, TrackingSettings(uri, "generic")) as run:
        run.log_metrics({"best.ndcg_at_10": 0.25, "skipped": None})  # type: ignore[dict-item]
        run.log_series("trial.ndcg_at_10", [0.1, 0.2, 0.25])
        run.log_steps([{"step": 50, "recall@10": 0.4, "device": "cpu"}, {"step": 100, "recall@10": 0.5}], prefix="valid")
        run.log_params({"long": "x" * 7000})
        run.log_artifacts(tmp_path / "notes.txt", "extra")
        run_id = run.run_id
    assert run_id is not None
    client = _client(uri)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "finetune"
    assert got.data.tags["shortlist.kind"] == "finetune"
    params = got.data.params
    assert (params["trials"], params["space"], params["flag"]) == ("3", "null", "true")
    assert len(params["long"]) == 6000 and params["long"].endswith("…")
    assert params["env.shortlist"] and params["env.lightgbm"] and params["env.mlflow"]
    assert got.data.metrics == {"best.ndcg_at_10": 0.25, "trial.ndcg_at_10": 0.25, "valid.recall_at_10": 0.5}
    history = client.get_metric_history(run_id, "trial.ndcg_at_10")
    assert [(m.step, m.value) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.25)]
    steps = client.get_metric_history(run_id, "valid.recall_at_10")
    assert [(m.step, m.value) for m in steps] == [(50, 0.4), (100, 0.5)]
    assert [a.path for a in client.list_artifacts(run_id, "extra")] == ["extra/notes.txt"]
    assert got.data.tags[COMMIT_TAG] == code_version()[COMMIT_TAG]


def test_a_run_whose_work_raises_ends_failed(store: tuple[str, Path]) -> None:
    uri, _ = store
    with pytest.raises(ZeroDivisionError), tracked_run("fit", None, TrackingSettings(uri, "generic")) as run:
        run_id = run.run_id
        1 / 0  # noqa: B018
    assert _client(uri).get_run(run_id).info.status == "FAILED"


def test_an_unreachable_store_warns_once_with_its_uri_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    uri = "http://127.0.0.1:1"
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="shortlist.tracking"), \
            tracked_run("fit", {"a": 1}, TrackingSettings(uri)) as run:
        run.log_metrics({"m": 1.0})
        run.log_series("s", [1.0, 2.0])
        assert not run.active and run.run_id is None
    warnings = [r for r in caplog.records if r.name.startswith("shortlist.tracking")]
    assert len(warnings) == 1 and uri in warnings[0].getMessage() and "goes on" in warnings[0].getMessage()
    assert time.perf_counter() - t0 < 10  # refused at once: no retry loop


def test_an_untracked_run_never_imports_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise AssertionError("mlflow imported for an untracked run")

    monkeypatch.setattr("shortlist.tracking._mlflow.mlflow_module", boom)
    run = TrackedRun(None, kind="fit").start()
    run.log_params({"a": 1})
    run.log_metrics({"m": 1.0})
    run.finish()
    assert not run.active and run.run_id is None


def test_code_version_outside_a_checkout_of_shortlist_is_unknown(tmp_path: Path) -> None:
    assert code_version(tmp_path) == {COMMIT_TAG: "unknown", DIRTY_TAG: "unknown"}
    here = code_version()
    assert here[COMMIT_TAG] == "unknown" or len(here[COMMIT_TAG]) == 40


class _FinetuneResult:
    """The shape of ``shortlist.search.finetune.FinetuneResult.to_dict()``."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    def to_dict(self) -> dict[str, object]:
        return {"model_dir": str(self.model_dir), "config": {"base_model": "minilm", "epochs": 1.0, "max_steps": 150},
                "evaluations": [{"step": 75, "recall@10": 0.31, "mrr@100": 0.2}, {"step": 150, "recall@10": 0.38}],
                "train_pairs": 4800, "steps": 150, "pairs_per_second": 52.5, "device": "cpu", "fp16": False}


def test_a_finetune_result_is_logged_as_params_steps_figures_and_the_model(store: tuple[str, Path],
                                                                            tmp_path: Path) -> None:
    from shortlist.tracking.finetune import log_finetune

    uri, _ = store
    (tmp_path / "encoder").mkdir()
    (tmp_path / "encoder" / "config.json").write_text("{}")
    with tracked_run("finetune", None, TrackingSettings(uri, "search")) as run:
        log_finetune(run, _FinetuneResult(tmp_path / "encoder"))
        run_id = run.run_id
    client = _client(uri)
    got = client.get_run(run_id)
    assert {k: v for k, v in got.data.params.items() if not k.startswith("env.")} == {
        "finetune.base_model": "minilm", "finetune.epochs": "1.0", "finetune.max_steps": "150",
        "result.device": "cpu", "result.fp16": "false"}
    assert got.data.metrics == {"valid.recall_at_10": 0.38, "valid.mrr_at_100": 0.2, "train_pairs": 4800.0,
                                "steps": 150.0, "pairs_per_second": 52.5}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "valid.recall_at_10")] == [(75, 0.31), (150, 0.38)]
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/config.json"]
