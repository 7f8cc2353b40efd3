"""Experiment tracking and a model registry on MLflow (the ``mlflow`` extra).

Every ``fit`` and ``evaluate`` can be recorded as a run: the resolved configuration, the data's
fingerprint and split as dataset inputs, package versions and the git commit, per-window candidate
recall, the ranker's validation NDCG per boosting round, the evaluation table, and artifacts (the
model directory as a pyfunc, ``features.json``, the HTML report, the cleaning report). A fitted
model can be registered under an alias and served back from ``models:/NAME@alias``.

Like ``serving/``, this package talks to the outside world (a tracking store, git, a worker
process); it reads no environment variables itself (the CLI passes ``MLFLOW_TRACKING_URI`` in) and
logs instead of printing. ``fit`` and ``evaluate`` hand plain records to a worker process that
alone imports MLflow (:mod:`~shortlist.tracking.remote`, :mod:`~shortlist.tracking.worker`);
tracking that fails never fails the work it records.

- :mod:`~shortlist.tracking.config`: settings (URI resolution, experiment, registry name, alias).
- :mod:`~shortlist.tracking.run`: :class:`TrackedRun` / :func:`tracked_run`, the generic API.
- :mod:`~shortlist.tracking.fit`, :mod:`~shortlist.tracking.evaluation`: what the commands log
  (as :class:`~shortlist.tracking.record.RunRecord` s for the worker).
- :mod:`~shortlist.tracking.registry`: pyfunc logging, registration, ``models:/`` resolution.
- :mod:`~shortlist.tracking.runs`: runs side by side.
"""

from __future__ import annotations

from shortlist.tracking.config import DEFAULT_EXPERIMENT, DEFAULT_URI, TrackingSettings, resolve_uri, tracking_settings
from shortlist.tracking.run import TrackedRun, tracked_run

__all__ = ["DEFAULT_EXPERIMENT", "DEFAULT_URI", "TrackedRun", "TrackingSettings", "resolve_uri", "tracked_run",
           "tracking_settings"]
