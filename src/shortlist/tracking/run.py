"""One MLflow run that never fails, and never holds up for long, the work it records.

Opening the store (importing MLflow, connecting, creating tables, creating the run) happens on a
background thread started with the work; every later call waits for it. The first failure (a
store that cannot be reached, a server that dies) is logged once as a warning naming the URI, and
every later call becomes a no-op: the work goes on and whatever it writes is kept.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.provenance import code_version, package_versions
from shortlist.tracking.store import open_run, probe

logger = logging.getLogger(__name__)
T = TypeVar("T")
KIND_TAG = "shortlist.kind"
_PARAMS_PER_BATCH, _METRICS_PER_BATCH, _MAX_PARAM = 100, 1000, 6000


class TrackedRun:
    """An MLflow run of one ``kind`` of work (``fit``, ``evaluate``, ``finetune``, ...).

    ``settings=None`` gives an inactive run: every method is a no-op, so callers need no branches.
    Use as a context manager (the run ends ``FINISHED``, or ``FAILED`` when the block raises), or
    :meth:`start` and :meth:`finish`; a run still open when the interpreter exits ends ``FAILED``.
    """

    def __init__(self, settings: TrackingSettings | None, *, kind: str, params: Mapping[str, object] | None = None,
                 run_name: str | None = None, prepare: Callable[[], None] | None = None) -> None:
        """``prepare``: run on the background thread once the run exists (e.g. imports that the final
        logging needs), so that it overlaps the work instead of following it."""
        self.settings, self.kind, self.run_name, self._prepare = settings, kind, run_name or kind, prepare
        self._params = dict(params or {})
        self._client: Any = None
        self._run_id: str | None = None
        self._failed = settings is None
        self._finished = False
        self._thread: threading.Thread | None = None
        self._start_ms = 0
        self.failure: str | None = None  # the first failure, as "Error: message"

    @property
    def uri(self) -> str | None:
        return None if self.settings is None else self.settings.uri

    def start(self, *, start_ms: int | None = None) -> Self:
        """Open the store and create the run on a background thread; returns at once. The run starts
        at ``start_ms`` (epoch milliseconds; default now), whenever the store answers."""
        if self.settings is not None and self._thread is None:
            self._start_ms = start_ms or int(time.time() * 1000)
            self._thread = threading.Thread(target=self._open, name="shortlist-tracking", daemon=True)
            self._thread.start()
            atexit.register(self._end_at_exit)
        return self

    def _open(self) -> None:
        assert self.settings is not None
        try:
            probe(self.settings.uri)
            tags = {KIND_TAG: self.kind, **code_version()}
            self._client, self._run_id = open_run(self.settings, run_name=self.run_name, tags=tags,
                                                  start_ms=self._start_ms)
        except Exception as e:  # any failure of the store: warn once, go on without tracking
            self.fail(e)
            return
        self.log_params({**{f"env.{k}": v for k, v in package_versions().items()}, **self._params}, wait=False)
        if self._prepare is not None:
            try:
                self._prepare()
            except Exception as e:  # preparing is an optimisation: the final logging will tell
                logger.debug("preparing the %s run failed: %s", self.kind, e)

    def fail(self, error: BaseException) -> None:
        """Record that tracking failed: one warning naming the URI, then every call is a no-op."""
        if not self._failed:
            first = (str(error).strip().splitlines() or [""])[0][:300]
            self.failure = f"{type(error).__name__}: {first}"
            warn_failure(self.uri, self.kind, self.failure)
        self._failed = True

    @property
    def active(self) -> bool:
        """Whether the run exists and nothing has failed yet (waits for the store to open)."""
        self._wait()
        return not self._failed and self._run_id is not None

    @property
    def run_id(self) -> str | None:
        return self._run_id if self.active else None

    def _wait(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def call(self, fn: Callable[[Any, str], T], *, wait: bool = True) -> T | None:
        """``fn(client, run_id)``, or ``None`` when the run is inactive or ``fn`` fails (then warned once)."""
        if wait:
            self._wait()
        if self._failed or self._run_id is None or self._finished:
            return None
        try:
            return fn(self._client, self._run_id)
        except Exception as e:  # the store went away or refused a value: the work must go on
            self.fail(e)
            return None

    def log_params(self, params: Mapping[str, object], *, wait: bool = True) -> None:
        """Parameters as strings (``None`` as ``null``; values cut to MLflow's 6000 characters)."""
        items = [(k, _param_text(v)) for k, v in params.items()]
        for i in range(0, len(items), _PARAMS_PER_BATCH):
            self.call(_batch(params=items[i:i + _PARAMS_PER_BATCH]), wait=wait)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Scalar metrics at one ``step``; ``None`` values are left out."""
        self._log_metric_rows([(k, float(v), step) for k, v in metrics.items() if v is not None])

    def log_series(self, key: str, values: Sequence[float], *, first_step: int = 1) -> None:
        """``values`` as one metric's history, step ``first_step`` onwards (e.g. one per boosting round)."""
        self._log_metric_rows([(key, float(v), first_step + i) for i, v in enumerate(values)])

    def log_steps(self, rows: Sequence[Mapping[str, object]], *, prefix: str, step_key: str = "step") -> None:
        """Evaluations taken during training (``[{"step": 50, "recall@10": 0.4}, ...]``) as step metrics
        ``<prefix>.<metric>``; non-numbers are left out."""
        from shortlist.tracking.resolved import metric_key

        self._log_metric_rows([(metric_key(prefix, k), float(v), int(row[step_key]))  # type: ignore[call-overload]
                               for row in rows for k, v in row.items()
                               if k != step_key and isinstance(v, int | float) and not isinstance(v, bool)])

    def _log_metric_rows(self, rows: list[tuple[str, float, int]]) -> None:
        for i in range(0, len(rows), _METRICS_PER_BATCH):
            self.call(_batch(metrics=rows[i:i + _METRICS_PER_BATCH]))

    def log_artifacts(self, local: Path, artifact_path: str | None = None) -> None:
        """A file or a whole folder under ``artifact_path``."""
        if Path(local).is_dir():
            self.call(lambda c, r: c.log_artifacts(r, str(local), artifact_path))
        else:
            self.call(lambda c, r: c.log_artifact(r, str(local), artifact_path))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.call(lambda c, r: [c.set_tag(r, k, str(v)) for k, v in tags.items()])

    def finish(self, status: str = "FINISHED") -> None:
        """End the run (``FINISHED``, ``FAILED`` or ``KILLED``; ``FAILED`` once a logging call has
        failed, if the store still answers); later calls are no-ops."""
        self._wait()
        if self._run_id is not None and not self._finished:
            try:
                self._client.set_terminated(self._run_id, status="FAILED" if self._failed else status)
            except Exception as e:  # the store is gone: the first failure was already reported
                self.fail(e)
        self._finished = True
        atexit.unregister(self._end_at_exit)

    def _end_at_exit(self) -> None:
        if not self._finished:
            self.finish("FAILED")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.finish("FINISHED" if kind is None else ("KILLED" if kind is KeyboardInterrupt else "FAILED"))


def warn_failure(uri: str | None, kind: str, failure: str) -> None:
    """The one warning a failed tracking gives: which store, what went wrong, and that the work goes on."""
    logger.warning("experiment tracking at %s failed (%s); nothing more is logged there, and the %s goes on: "
                   "its outputs are written as usual", uri, failure, kind)


@contextmanager
def tracked_run(kind: str, params: Mapping[str, object] | None, settings: TrackingSettings | None, *,
                run_name: str | None = None) -> Iterator[TrackedRun]:
    """``with tracked_run("finetune", params, settings) as run: ... run.log_metrics(...)``: the generic
    API for any command; ``settings=None`` tracks nothing."""
    with TrackedRun(settings, kind=kind, params=params, run_name=run_name) as run:
        yield run


def _param_text(value: object) -> str:
    text = "null" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    return text if len(text) <= _MAX_PARAM else text[:_MAX_PARAM - 1] + "…"


def _batch(*, params: Sequence[tuple[str, str]] = (), metrics: Sequence[tuple[str, float, int]] = ()
           ) -> Callable[[Any, str], None]:
    """One ``log_batch`` call (entities built only when the run is active, so MLflow is imported then)."""
    def log(client: Any, run_id: str) -> None:
        from shortlist.tracking._mlflow import mlflow_module

        entities = mlflow_module().entities
        stamp = int(time.time() * 1000)
        client.log_batch(run_id, params=[entities.Param(k, v) for k, v in params],
                         metrics=[entities.Metric(k, v if math.isfinite(v) else math.nan, stamp, s) for k, v, s in metrics])

    return log
