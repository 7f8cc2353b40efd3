"""Runs of an experiment side by side: one column a run (newest first), one row a field: what ran,
on which data and code, the headline metrics, and the parameters that differ between the runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from shortlist.errors import ConfigError
from shortlist.tracking.datasets import CONTEXT_TAG
from shortlist.tracking.provenance import COMMIT_TAG, DIRTY_TAG
from shortlist.tracking.run import KIND_TAG
from shortlist.tracking.store import client, experiment_id

FIELD = "field"
#: Metric keys shown (by prefix): the evaluated two-stage model, the ranker's validation NDCG, the
#: candidate recall of each label window, and the fit's total time.
HEADLINE = ("eval.two_stage.", "ranker.valid_ndcg", "ranker.best_iteration", "recall.", "time.total_s")
#: Parameters always shown for a single run (with several, those that differ).
KEY_PARAMS = ("model.kind", "model.target", "model.sources", "model.max_candidates", "model.n_windows", "model.seed")


def runs_table(uri: str, experiment: str, *, limit: int = 10) -> pl.DataFrame:
    """The ``limit`` newest runs of ``experiment`` at ``uri`` as text columns beside a ``field`` column."""
    if limit < 1:
        raise ConfigError(f"--limit {limit}: show at least one run")
    c = client(uri)
    eid = experiment_id(c, experiment, create=False)
    if eid is None:
        known = sorted(e.name for e in c.search_experiments())
        raise ConfigError(f"no experiment {experiment!r} at {uri} (experiments there: {', '.join(known) or 'none'}); "
                          "pass --experiment NAME or --tracking-uri of the store the runs went to")
    runs = c.search_runs([eid], order_by=["attributes.start_time DESC"], max_results=limit)
    columns: dict[str, list[str]] = {FIELD: _fields(runs)}
    for run in runs:
        label = f"{run.info.run_name} {run.info.run_id[:8]}"
        columns[label] = [_cell(v) for v in _values(c, run, columns[FIELD])]
    return pl.DataFrame(columns, schema={k: pl.Utf8 for k in columns})


_ABOUT = ("run id", "kind", "status", "started (UTC)", "seconds", "data", "code", "registered")


def _fields(runs: Sequence[Any]) -> list[str]:
    metrics = sorted({k for r in runs for k in r.data.metrics if k.startswith(HEADLINE)})
    params = sorted({k for r in runs for k in r.data.params})
    if len(runs) > 1:
        shown = [k for k in params if len({r.data.params.get(k) for r in runs}) > 1]
    else:
        shown = [k for k in params if k in KEY_PARAMS]
    return [*_ABOUT, *metrics, *shown]


def _values(c: Any, run: Any, fields: list[str]) -> list[object]:
    info, data = run.info, run.data
    versions = [c.get_model_version(v.name, v.version) for v in c.search_model_versions(f"run_id = '{info.run_id}'")]
    registered = ", ".join(f"{v.name} v{v.version}" + "".join(f" @{a}" for a in v.aliases) for v in versions)
    about = {
        "run id": info.run_id, "kind": data.tags.get(KIND_TAG, "-"), "status": info.status,
        "started (UTC)": datetime.fromtimestamp(info.start_time / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": f"{(info.end_time - info.start_time) / 1000:.1f}" if info.end_time else None,
        "data": _data(run), "code": _code(data.tags), "registered": registered or "-",
    }
    return [about[f] if f in about else data.metrics.get(f, data.params.get(f)) for f in fields]


def _data(run: Any) -> str:
    inputs = getattr(run.inputs, "dataset_inputs", None) or []
    parts = []
    for item in inputs:
        context = next((t.value for t in item.tags if t.key == CONTEXT_TAG), "")
        parts.append(f"{item.dataset.name}@{item.dataset.digest[:8]}" + (f" ({context})" if context else ""))
    return ", ".join(parts) or "-"


def _code(tags: dict[str, str]) -> str:
    commit = tags.get(COMMIT_TAG, "unknown")
    short = commit[:10] if commit != "unknown" else commit
    return short + (" (uncommitted changes)" if tags.get(DIRTY_TAG) == "true" else "")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return str(int(value)) if value.is_integer() and abs(value) < 1e12 else f"{value:.4f}"
    return str(value)
