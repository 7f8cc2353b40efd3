"""The command's side of tracking: a worker process (:mod:`shortlist.tracking.worker`) opens the
store while the command works, then logs the records the command hands it. Nothing here imports
MLflow; whatever goes wrong with the worker or the store becomes one warning naming the URI."""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, Self

from shortlist.tracking.config import TrackingSettings
from shortlist.tracking.record import RunRecord
from shortlist.tracking.registry import Registered
from shortlist.tracking.run import warn_failure

#: How long a command waits for its worker to finish logging (a large model to a slow server).
FINISH_TIMEOUT_S = 600.0


class RemoteRun:
    """``start()`` spawns the worker; ``send(record)`` hands it records; ``finish(record)`` sends the
    final one and waits for the run id (``None``, after one warning, when tracking failed)."""

    def __init__(self, settings: TrackingSettings, *, kind: str, params: Mapping[str, object], run_name: str) -> None:
        self.settings, self.kind, self.run_name, self.params = settings, kind, run_name, dict(params)
        self._proc: subprocess.Popen[str] | None = None
        self._dir: Path | None = None
        self._log: IO[bytes] | None = None
        self._sent = 0
        self._failure: str | None = None

    def start(self) -> Self:
        self._dir = Path(tempfile.mkdtemp(prefix="shortlist-tracking-"))
        self._log = open(self._dir / "worker.log", "wb")  # noqa: SIM115  (closed in _close)
        header = {"settings": asdict(self.settings), "kind": self.kind, "params": self.params,
                  "run_name": self.run_name, "start_ms": int(time.time() * 1000)}
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "shortlist.tracking.worker"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=self._log, text=True)
            self._write(json.dumps(header, default=str))
        except OSError as e:
            self._fail(f"{type(e).__name__}: {e}")
        atexit.register(self._close)
        return self

    def send(self, record: RunRecord) -> None:
        """Hand ``record`` over (written to a file first, so a busy worker never blocks the command)."""
        if self._proc is None or self._dir is None or self._failure is not None:
            return
        self._sent += 1
        path = self._dir / f"record-{self._sent}.json"
        path.write_text(record.to_json())
        self._write(str(path))

    def finish(self, record: RunRecord) -> tuple[str, Registered | None] | None:
        """Send the ``final`` record and wait for the worker: ``(run id, registered version)``."""
        record.final = True
        self.send(record)
        try:
            reply = self._reply()
        finally:
            self._close()
        if reply is None or self._failure is not None:
            return None
        if reply.get("failure"):
            self._fail(str(reply["failure"]))
        if not reply.get("run_id"):
            return None
        registered = Registered(**reply["registered"]) if reply.get("registered") else None
        return str(reply["run_id"]), registered

    def _reply(self) -> dict[str, Any] | None:
        if self._proc is None or self._failure is not None:
            return None
        try:
            out, _ = self._proc.communicate(timeout=FINISH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._fail(f"the tracking worker did not finish within {FINISH_TIMEOUT_S:.0f} s")
            return None
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            self._fail(f"the tracking worker stopped (exit code {self._proc.returncode}): {self._log_tail()}")
            return None
        reply: dict[str, Any] = json.loads(lines[-1])
        return reply

    def _write(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail(f"the tracking worker stopped: {self._log_tail()}")

    def _fail(self, failure: str) -> None:
        if self._failure is None:
            self._failure = failure
            warn_failure(self.settings.uri, self.kind, failure)

    def _log_tail(self) -> str:
        if self._dir is None or not (self._dir / "worker.log").exists():
            return "no output"
        lines = (self._dir / "worker.log").read_text(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "no output"

    def _close(self) -> None:
        """Stop waiting for the worker (a worker still running ends its run ``FAILED``) and clean up."""
        atexit.unregister(self._close)
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._log is not None:
            self._log.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
