"""The report of a fit (``report.html`` in its run): label windows with rows, positives and candidate
recall per source, the ranker's metrics and learning curve, fusion weights, feature importance,
the resolved configuration and the cleaning report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from shortlist.evaluation.report import write_report
from shortlist.tracking.model_log import CURVE

UNION = "union"


def window_table(metrics: Mapping[str, Any]) -> pl.DataFrame | None:
    """One row per label window: rows, positives, labels and recall (union first, then per source)."""
    stats: Mapping[str, Any] = metrics.get("window_stats") or {}
    if stats:
        rows = []
        for window, s in stats.items():
            recall = dict(s.get("recall") or {})
            union = recall.pop(UNION, None)
            rows.append({"window": window, "rows": s.get("rows"), "positives": s.get("positives"),
                         "labels": s.get("labels"), "recall: union": union,
                         **{f"recall: {src}": v for src, v in recall.items()}})
        return pl.DataFrame(rows)
    recall = metrics.get("candidate_recall") or {}
    if not recall:
        return None
    return pl.DataFrame({"window": list(recall), "recall: union": [float(v) for v in recall.values()]})


def ranker_table(metrics: Mapping[str, Any]) -> pl.DataFrame | None:
    """The ranker's scalar metrics (best round, train and validation NDCG, rows, seconds)."""
    ranker = {k: v for k, v in (metrics.get("ranker") or {}).items()
              if k != CURVE and isinstance(v, int | float) and not isinstance(v, bool)}
    if not ranker:
        return None
    return pl.DataFrame({"metric": list(ranker), "value": [float(v) for v in ranker.values()]})


def write_fit_report(folder: Path, *, title: str, metrics: Mapping[str, Any], importances: list[dict[str, Any]],
                     config: Mapping[str, Any], summary: Mapping[str, Any], cleaning: str | None) -> Path:
    """``report.md`` / ``report.html`` and plots for a fitted model (its ``metrics_`` and feature
    importance rows), into ``folder``."""
    tables: dict[str, pl.DataFrame] = {}
    for name, table in (("Label windows (stage 1 candidates)", window_table(metrics)),
                        ("Ranker", ranker_table(metrics))):
        if table is not None:
            tables[name] = table
    weights = metrics.get("source_weights") or {}
    if weights:
        tables["Fusion weights"] = pl.DataFrame({"source": list(weights), "weight": [float(w) for w in weights.values()]})
    ranker = metrics.get("ranker") or {}
    meta = {**summary, "timings (s)": metrics.get("timings", {})}
    if cleaning:
        meta["cleaning report"] = cleaning if "\n" in cleaning else cleaning + "\n"
    gains = pl.DataFrame(importances) if importances else None
    return write_report(folder, title=title, tables=tables, meta=meta, importances=gains, config=config,
                        rounds=ranker.get(CURVE), best_round=ranker.get("best_iteration"))
