"""A tracked ``shortlist evaluate``: every model row of the results table as metrics, the split as
dataset inputs, the two-stage model's own state, and the evaluation report as artifacts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import polars as pl

from shortlist.data.containers import Dataset
from shortlist.data.split import Split
from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.datasets import DataInput, data_profile, split_inputs
from shortlist.tracking.fit import Tracked
from shortlist.tracking.record import RunRecord, input_record, model_record
from shortlist.tracking.remote import RemoteRun
from shortlist.tracking.resolved import metric_key
from shortlist.tracking.run import warn_failure

MODEL = "model"


def table_metrics(table: pl.DataFrame, *, prefix: str, label: str = MODEL) -> dict[str, float]:
    """``<prefix>.<row label>.<column>`` → value for every numeric cell (``eval.two_stage.ndcg_at_10``)."""
    out: dict[str, float] = {}
    numeric = [c for c, t in zip(table.columns, table.dtypes, strict=True) if t.is_numeric() and c != label]
    for row in table.iter_rows(named=True):
        for col in numeric:
            if row[col] is not None:
                out[metric_key(prefix, str(row[label]), col)] = float(row[col])
    return out


class EvaluationTracking:
    """``start()`` before the evaluation, ``log_evaluation(...)`` after it (ends the run). The report
    goes into the run too: where the user asked for none, :meth:`report_dir` gives a temporary one."""

    def __init__(self, settings: TrackingSettings | None, *, dataset: Dataset, data_source: str,
                 config_file: Path | None = None, options: Mapping[str, object] | None = None) -> None:
        self.settings, self.dataset, self.data_source, self.config_file = settings, dataset, data_source, config_file
        params = {f"cli.{k}": v for k, v in (options or {}).items()} | {"data.name": dataset.name,
                                                                           "data.source": data_source}
        self.remote = RemoteRun(settings, kind="evaluate", params=params, run_name=f"evaluate {dataset.name}") \
            if settings is not None else None
        self._scratch: Path | None = None

    def start(self) -> Self:
        if self.remote is not None:
            self.remote.start()
        return self

    def report_dir(self) -> Path | None:
        """A temporary folder for the report when tracking (removed once logged), else ``None``."""
        if self.remote is None:
            return None
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="shortlist-report-"))
        return self._scratch

    def log_evaluation(self, *, split: Split, table: pl.DataFrame, recall: pl.DataFrame, model: Any,
                       report: Path | None) -> Tracked | None:
        """Results (``eval.*``), candidate recall (``candidates.*``), the split, the model, the report."""
        if self.remote is None or self.settings is None:
            return None
        try:
            done = self.remote.finish(self._record(split, table, recall, model, report))
        except Exception as e:  # a record could not be built: the evaluation itself is done
            warn_failure(self.settings.uri, "evaluate", f"{type(e).__name__}: {e}")
            done = None
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
        return Tracked(self.settings.uri, self.settings.experiment, done[0]) if done else None

    def _record(self, split: Split, table: pl.DataFrame, recall: pl.DataFrame, model: Any,
                report: Path | None) -> RunRecord:
        record, _ = model_record(model, dataset=self.dataset, config_file=self.config_file)
        record.params |= {"eval.protocol": split.protocol, "eval.repeats": split.repeats}
        record.metrics |= table_metrics(table, prefix="eval") | \
            table_metrics(recall, prefix="candidates", label=recall.columns[0])
        whole = DataInput(self.dataset.name, self.dataset.interactions.fingerprint(), self.data_source,
                          data_profile(self.dataset.interactions), "source")
        record.inputs = input_record([whole, *split_inputs(split, name=self.dataset.name, source=self.data_source)])
        record.files |= {"evaluation/results.csv": table.write_csv(), "evaluation/candidate_recall.csv": recall.write_csv()}
        if report is not None and Path(report).is_dir():
            record.dirs["report"] = str(Path(report).resolve())
        return record
