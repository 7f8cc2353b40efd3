"""What a command hands its tracking worker: plain JSON (params, metrics, per-step series, dataset
inputs, small files, folders, the fit report's inputs, the model to log and register), built from
the live model in the command's process without MLflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shortlist.data.containers import Dataset
from shortlist.tracking.datasets import DataInput, profile_text
from shortlist.tracking.model_log import feature_table, model_curves, model_metrics, model_params
from shortlist.tracking.resolved import resolved_config


@dataclass
class RunRecord:
    """One batch of things to log; the worker applies records in order and ends the run after the
    ``final`` one. ``files``: artifact path → text; ``dirs``: artifact path ("" = the root) → local
    folder; ``fit_report``: the inputs of :func:`~shortlist.tracking.fit_report.write_fit_report`;
    ``model_dir``: logged as the run's pyfunc (``model_metadata`` in its MLmodel), registered as
    ``register`` with ``alias``."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)
    fit_report: dict[str, Any] | None = None
    model_dir: str | None = None
    model_metadata: dict[str, Any] = field(default_factory=dict)
    register: str | None = None
    alias: str | None = None
    final: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls(**json.loads(text))


def model_record(model: Any, *, dataset: Dataset, config_file: Path | None) -> tuple[RunRecord, dict[str, Any]]:
    """A fitted model's params, metrics, curves, ``features.json``, ``config/resolved.json`` (and the
    user's config file) and the cleaning report; also returns the resolved configuration."""
    metrics = getattr(model, "metrics_", {})
    config = resolved_config(model)
    files = {"config/resolved.json": _json(config),
             "data/cleaning_report.txt": str(dataset.report) + "\n",
             "data/cleaning_report.json": _json(dataset.report.to_dict())}
    features = feature_table(model)
    if features is not None:
        files["features.json"] = _json(features)
    if config_file is not None and Path(config_file).is_file():
        files[f"config/{Path(config_file).name}"] = Path(config_file).read_text()
    record = RunRecord(params=model_params(model), metrics=model_metrics(metrics), series=model_curves(metrics),
                       files=files)
    return record, config


def input_record(items: list[DataInput]) -> list[dict[str, Any]]:
    return [asdict(i) | {"profile": dict(i.profile)} for i in items]


def fit_report_inputs(model: Any, *, title: str, config: Mapping[str, Any], summary: Mapping[str, Any],
                      cleaning: str) -> dict[str, Any]:
    """What the worker needs to draw the fit report (the model's metrics and importances as JSON)."""
    importances = model.importance().to_dicts() if hasattr(model, "importance") else []
    return {"title": title, "metrics": getattr(model, "metrics_", {}), "importances": importances,
            "config": dict(config), "summary": dict(summary), "cleaning": cleaning}


def profile_file(item: DataInput) -> dict[str, str]:
    return {f"data/{item.context}.json": profile_text(item)}


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
