"""The tracking worker: a process of its own that imports MLflow, opens the store and logs what the
command sends it, so the command's process never imports MLflow nor shares its interpreter lock with
tracking work (``python -m shortlist.tracking.worker``; started by :class:`~shortlist.tracking.remote.RemoteRun`).

Protocol, one line each on stdin: a JSON header (settings, kind, params, run name, start time), then
the path of each :class:`~shortlist.tracking.record.RunRecord` file; after the final record one JSON
line on stdout: ``{"run_id", "registered", "failure"}``. Stdin closed before the final record: the
run ends ``FAILED``.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.datasets import DataInput, to_mlflow
from shortlist.tracking.record import RunRecord
from shortlist.tracking.registry import Registered, log_model, register, warm_model_saving
from shortlist.tracking.run import TrackedRun


def apply(run: TrackedRun, record: RunRecord) -> Registered | None:
    """Log one record: the small files and the fit report are written on a second thread while the
    model directory is copied into the store."""
    run.log_params(record.params)
    run.log_metrics(record.metrics)
    for key, values in record.series.items():
        run.log_series(key, values)
    if record.inputs:
        inputs = [DataInput(**i) for i in record.inputs]
        run.call(lambda c, r: c.log_inputs(r, datasets=[to_mlflow(i) for i in inputs]))
    with tempfile.TemporaryDirectory(prefix="shortlist-run-") as tmp, ThreadPoolExecutor(1) as pool:
        writing = pool.submit(_write_files, Path(tmp), record)
        logged = log_model(run, Path(record.model_dir), metadata=record.model_metadata) if record.model_dir else False
        if writing.result():
            run.log_artifacts(Path(tmp))
    for path, local in record.dirs.items():
        run.log_artifacts(Path(local), path or None)
    if logged and record.register is not None:
        return register(run, record.register, record.alias)
    return None


def _write_files(folder: Path, record: RunRecord) -> bool:
    for name, text in record.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    if record.fit_report is not None:
        from shortlist.tracking.fit_report import write_fit_report

        write_fit_report(folder / "report", **record.fit_report)
    return bool(record.files or record.fit_report)


def _prepare() -> None:
    """What the records need, done while the command works: matplotlib's first drawing (fonts,
    backend) and MLflow's one-time requirements scan of a first model save."""
    import io

    from matplotlib.figure import Figure

    import shortlist.tracking.fit_report  # noqa: F401

    Figure(figsize=(1, 1)).savefig(io.BytesIO(), format="png")
    warm_model_saving()


def serve(lines: Any, reply: Any) -> None:
    """Run the protocol over ``lines`` (an iterator of text lines) and write the reply to ``reply``."""
    header = json.loads(next(lines))
    run = TrackedRun(TrackingSettings(**header["settings"]), kind=header["kind"], params=header["params"],
                     run_name=header["run_name"], prepare=_prepare).start(start_ms=header["start_ms"])
    registered, done = None, False
    try:
        for line in lines:
            record = RunRecord.from_json(Path(line.strip()).read_text())
            try:
                registered = apply(run, record) or registered
            except Exception as e:  # a file could not be written: the command's outputs are not at stake
                run.fail(e)
            if record.final:
                done = True
                break
    finally:
        run.finish("FINISHED" if done else "FAILED")
    reply.write(json.dumps({"run_id": run.run_id if done else None, "failure": run.failure,
                            "registered": asdict(registered) if registered else None}) + "\n")
    reply.flush()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    serve(iter(sys.stdin.readline, ""), sys.stdout)


if __name__ == "__main__":
    main()
