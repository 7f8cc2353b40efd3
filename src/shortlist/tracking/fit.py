"""A tracked ``shortlist fit``: the tracking worker opens the run beside the fit; what the fitted
model knows goes to it while the model is saved; the saved model is logged and registered last."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from shortlist.data.containers import Dataset
from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.datasets import DataInput, data_profile
from shortlist.tracking.record import RunRecord, fit_report_inputs, input_record, model_record, profile_file
from shortlist.tracking.registry import Registered
from shortlist.tracking.remote import RemoteRun
from shortlist.tracking.run import warn_failure


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
    """``start()`` before the fit; optionally ``fitted(model)`` before ``model.save`` (the worker logs
    what the model knows and draws the report while it is saved); ``log_fit(model, model_dir)`` after
    the save: the model is logged, registered, and the run ends. With ``settings=None`` all do nothing."""

    def __init__(self, settings: TrackingSettings | None, *, dataset: Dataset, data_source: str,
                 config_file: Path | None = None, options: Mapping[str, object] | None = None) -> None:
        self.settings, self.dataset, self.data_source, self.config_file = settings, dataset, data_source, config_file
        params = {f"cli.{k}": v for k, v in (options or {}).items()} | {"data.name": dataset.name,
                                                                           "data.source": data_source}
        self.remote = RemoteRun(settings, kind="fit", params=params, run_name=f"fit {dataset.name}") \
            if settings is not None else None
        self._fingerprint: str | None = None
        self._sent = False

    def start(self) -> Self:
        if self.remote is not None:
            self.remote.start()
        return self

    def fitted(self, model: Any) -> None:
        """Hand the worker the fitted model's params, metrics, data input, files and report inputs."""
        if self.remote is None or self._sent:
            return
        self._sent = True
        try:
            self.remote.send(self._state(model))
        except Exception as e:  # a record could not be built: the fit goes on, its model is saved as usual
            warn_failure(self.settings.uri if self.settings else None, "fit", f"{type(e).__name__}: {e}")

    def log_fit(self, model: Any, model_dir: Path) -> Tracked | None:
        """Log the saved model (and register it), end the run; ``None`` when untracked or tracking failed."""
        if self.remote is None or self.settings is None:
            return None
        self.fitted(model)
        final = RunRecord(model_dir=str(Path(model_dir).resolve()), register=self.settings.register,
                          alias=self.settings.alias, model_metadata={
                              "shortlist_kind": getattr(model, "name", type(model).__name__),
                              "data_fingerprint": self._data_fingerprint(model)})
        done = self.remote.finish(final)
        return Tracked(self.settings.uri, self.settings.experiment, *done) if done else None

    def _state(self, model: Any) -> RunRecord:
        ds = self.dataset
        record, config = model_record(model, dataset=ds, config_file=self.config_file)
        data = DataInput(ds.name, self._data_fingerprint(model), self.data_source,
                         {**data_profile(ds.interactions), "repeats": ds.repeats}, "training")
        record.inputs = input_record([data])
        record.files |= profile_file(data)
        summary = {"data": ds.name, "fingerprint": data.fingerprint, **data.profile}
        record.fit_report = fit_report_inputs(model, title=f"shortlist fit: {ds.name}", config=config,
                                              summary=summary, cleaning=str(ds.report))
        return record

    def _data_fingerprint(self, model: Any) -> str:
        """The fitted data's fingerprint: the model's own, or the dataset's (the same data for a fit)."""
        if self._fingerprint is None:
            self._fingerprint = getattr(model, "fingerprint_", None) or self.dataset.interactions.fingerprint()
        return self._fingerprint
