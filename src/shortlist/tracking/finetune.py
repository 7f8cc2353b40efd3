"""What a tracked `shortlist search finetune` logs, from its result's ``to_dict()``: the settings as
params, each validation evaluation as step metrics, the run's figures, the fine-tuned model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shortlist.tracking.resolved import flatten, metric_key
from shortlist.tracking.run import TrackedRun


def log_finetune(run: TrackedRun, result: Any) -> None:
    """``result``: an object with ``to_dict()`` giving ``config`` (settings), ``evaluations`` (``[{"step":
    N, metric: value}]``), ``model_dir`` and scalar figures (pairs, steps, seconds, device)."""
    summary = dict(result.to_dict())
    run.log_params(flatten(summary.pop("config", {}) or {}, "finetune."))
    run.log_steps(summary.pop("evaluations", []) or [], prefix="valid")
    model_dir = summary.pop("model_dir", None)
    numbers = {metric_key(k): float(v) for k, v in summary.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    run.log_metrics(numbers)
    run.log_params({f"result.{k}": v for k, v in summary.items() if metric_key(k) not in numbers})
    if model_dir is not None and Path(model_dir).is_dir():
        run.log_artifacts(Path(model_dir), "model")
