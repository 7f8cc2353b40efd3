"""What a fitted model tells a run, read from what it exposes: its resolved configuration as
params, every number of ``metrics_`` as a metric (per label window: candidate recall per source and
for the union, rows, positives), the ranker's validation curve as step metrics, its features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shortlist.tracking.resolved import flatten, metric_key, resolved_config

#: Metric key prefixes for the groups of ``metrics_`` (others keep their own name).
_GROUPS = {"candidate_recall": "recall", "window_stats": "window", "source_weights": "fusion_weight",
           "timings": "time"}
#: The ranker's per-round validation metrics inside ``metrics_["ranker"]``.
CURVE = "valid_curve"


def model_params(model: Any) -> dict[str, Any]:
    """``model.*`` params: the resolved configuration, flattened, and the label windows it used."""
    params = flatten(resolved_config(model), "model.")
    windows = getattr(model, "metrics_", {}).get("windows")
    if windows is not None:
        params["model.windows"] = ", ".join(map(str, windows))
    return params


def model_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Every number in ``metrics`` under a dotted key (``window.<w>.recall.union``, ``ranker.valid_ndcg_at_10``,
    ``time.total_s``); the per-round curves and non-numbers are left out."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        _numbers(value, metric_key(_GROUPS.get(name, name)), out)
    return out


def _numbers(value: Any, key: str, out: dict[str, float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        out[key] = float(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if k != CURVE:
                _numbers(v, f"{key}.{metric_key(str(k))}", out)


def model_curves(metrics: Mapping[str, Any]) -> dict[str, list[float]]:
    """``ranker.rounds.valid_ndcg_at_10`` → the value at each boosting round (round 1 first)."""
    curves = (metrics.get("ranker") or {}).get(CURVE) or {}
    return {metric_key("ranker", "rounds", f"valid_{m}"): list(map(float, v)) for m, v in curves.items()}


def feature_table(model: Any) -> dict[str, Any] | None:
    """``features.json``: each ranker feature's name, description, and gain and split importance."""
    features = getattr(model, "features_", None)
    if features is None:
        return None
    descriptions = features.descriptions()
    importance = {row["name"]: row for row in model.importance().iter_rows(named=True)}
    rows = [{"name": n, "description": descriptions.get(n, ""),
             "gain": importance.get(n, {}).get("gain"), "split": importance.get(n, {}).get("split")}
            for n in features.names]
    return {"features": rows}
