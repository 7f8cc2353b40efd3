"""A tracked ``shortlist fit``: the run opens beside the fit and is completed from the saved model."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from shortlist.data.containers import Dataset
from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.datasets import DataInput, data_profile, profile_text, to_mlflow
from shortlist.tracking.model_log import log_model_state, write_model_artifacts
from shortlist.tracking.registry import Registered, log_model, register
from shortlist.tracking.run import TrackedRun


@dataclass(frozen=True)
class Tracked:
    """Where a command's run went: the store, the run and, for a fit, the registered version."""

    uri: str
    experiment: str
    run_id: str
    registered: Registered | None = None

    def __str__(self) -> str:
        text = f"tracked run {self.run_id} in experiment {self.experiment!r} at {self.uri}"
        return text + (f"; registered {self.registered}" if self.registered else "")


class FitTracking:
    """``start()`` before the fit (the store opens meanwhile), ``log_fit(model, model_dir)`` after
    ``model.save``: logs and ends the run. With ``settings=None`` both do nothing."""

    def __init__(self, settings: TrackingSettings | None, *, dataset: Dataset, data_source: str,
                 config_file: Path | None = None, options: Mapping[str, object] | None = None) -> None:
        self.settings, self.dataset, self.data_source, self.config_file = settings, dataset, data_source, config_file
        params = {f"cli.{k}": v for k, v in (options or {}).items()} | {"data.name": dataset.name,
                                                                           "data.source": data_source}
        self.run = TrackedRun(settings, kind="fit", params=params, run_name=f"fit {dataset.name}",
                              prepare=_import_for_logging)

    def start(self) -> Self:
        self.run.start()
        return self

    def log_fit(self, model: Any, model_dir: Path) -> Tracked | None:
        """Everything about the fitted and saved model; ``None`` when untracked or tracking failed."""
        if self.settings is None:
            return None
        try:
            if not self.run.active:
                return None
            logged = self._log(model, Path(model_dir))
            name = self.settings.register
            registered = register(self.run, name, self.settings.alias) if logged and name is not None else None
            run_id = self.run.run_id
        except Exception as e:  # writing an artifact failed: the model is saved, the fit must not fail
            self.run.fail(e)
            return None
        finally:
            self.run.finish()
        return Tracked(self.settings.uri, self.settings.experiment, run_id, registered) if run_id else None

    def _log(self, model: Any, model_dir: Path) -> bool:
        """Params, metrics and the data input; the report and small artifacts are written on a second
        thread (plots: CPU) while the model directory is copied into the store (I/O). Whether the
        model was logged."""
        ds = self.dataset
        data = DataInput(ds.name, getattr(model, "fingerprint_", None) or ds.interactions.fingerprint(),
                         self.data_source, {**data_profile(ds.interactions), "repeats": ds.repeats}, "training")
        metadata = {"shortlist_kind": getattr(model, "name", type(model).__name__), "data_fingerprint": data.fingerprint}
        with tempfile.TemporaryDirectory(prefix="shortlist-run-") as tmp, ThreadPoolExecutor(1) as pool:
            writing = pool.submit(self._write_artifacts, Path(tmp), model, data)
            log_model_state(self.run, model)
            self.run.call(lambda c, r: c.log_inputs(r, datasets=[to_mlflow(data)]))
            logged = log_model(self.run, model_dir, metadata=metadata)
            writing.result()
            self.run.log_artifacts(Path(tmp))
        return logged

    def _write_artifacts(self, folder: Path, model: Any, data: DataInput) -> None:
        """The model's artifacts (features, configuration, cleaning report), the data profile, and
        the fit report with its plots."""
        from shortlist.tracking.fit_report import write_fit_report  # matplotlib: only when tracking

        config = write_model_artifacts(folder, model, dataset=self.dataset, config_file=self.config_file)
        (folder / "data" / "training.json").write_text(profile_text(data))
        summary = {"data": self.dataset.name, "fingerprint": data.fingerprint, **data.profile}
        write_fit_report(folder / "report", model, title=f"shortlist fit: {self.dataset.name}", config=config,
                         summary=summary, cleaning=str(self.dataset.report))


def _import_for_logging() -> None:
    """What :meth:`FitTracking.log_fit` imports (matplotlib, MLflow's model API), loaded during the fit."""
    import mlflow.pyfunc  # noqa: F401

    import shortlist.tracking.fit_report
    import shortlist.tracking.pyfunc  # noqa: F401
