"""``ModelHolder``: the loaded model, reloaded beside the old one and swapped atomically.

Requests take :attr:`current` once at their start and use that object to the end, so a swap never
changes a model under a request in flight; the old model is freed when its last request ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from shortlist.errors import ModelLoadError
from shortlist.pipeline.artifacts import sha256_file
from shortlist.serving.engine import Engine

logger = logging.getLogger(__name__)


class ReloadInProgressError(RuntimeError):
    pass


class ModelHolder:
    def __init__(self, directory: Path, *, loader: Callable[[Path], Engine] = Engine.load) -> None:
        self.directory, self.loader = Path(directory), loader
        self._lock = threading.Lock()
        self.current: Engine = loader(self.directory)
        self._stamp = self._manifest_stamp()
        self.last_error: str | None = None

    def _manifest_stamp(self) -> str | None:
        try:
            return sha256_file(self.directory / "manifest.json")
        except OSError:
            return None

    def changed(self) -> bool:
        """Whether the model directory's manifest differs from the loaded one's (for watching)."""
        stamp = self._manifest_stamp()
        return stamp is not None and stamp != self._stamp

    def reload(self) -> tuple[str, str]:
        """Load and verify the directory's model, then swap it in. Returns (old, new) versions.

        Raises :class:`ReloadInProgressError` when another reload runs, and :class:`ModelLoadError`
        (the old model stays) when the new one fails to load or verify.
        """
        if not self._lock.acquire(blocking=False):
            raise ReloadInProgressError("a model reload is already in progress")
        try:
            old = self.current.version
            stamp = self._manifest_stamp()
            try:
                engine = self.loader(self.directory)
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                logger.error("model reload failed, keeping %s: %s", old, self.last_error)
                raise ModelLoadError(f"reload of {self.directory} failed, still serving {old}: {e}") from e
            self.current = engine  # one reference assignment: atomic for every reader
            self._stamp, self.last_error = stamp, None
            logger.info("model reloaded: %s -> %s", old, engine.version)
            return old, engine.version
        finally:
            self._lock.release()
