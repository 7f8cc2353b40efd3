"""The one place MLflow is imported: telemetry off and quiet, bounded network retries."""

from __future__ import annotations

import os
from types import ModuleType

from shortlist.errors import DependencyMissingError

#: Set before MLflow is imported (it reads them at import or per call). Telemetry is always off;
#: the others are defaults a user's environment may override: no per-file progress bars on the
#: console, and a tracking server that stops answering costs a few retries, not MLflow's default
#: backoff of several minutes.
_FORCED = {"MLFLOW_DISABLE_TELEMETRY": "true"}
_DEFAULTS = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def mlflow_module() -> ModuleType:
    """``mlflow`` with :data:`_FORCED` and :data:`_DEFAULTS` applied; a clear error without the extra."""
    os.environ.update(_FORCED)
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
        import mlflow.artifacts
        import mlflow.data.meta_dataset
        import mlflow.entities
    except ImportError as e:
        raise DependencyMissingError("mlflow", "mlflow", "experiment tracking and the model registry") from e
    return mlflow
