"""A/B variants: the served models, who goes where (:mod:`shortlist.serving.bucketing`), and per-variant figures."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.serving.bucketing import assign
from shortlist.serving.engine import Engine
from shortlist.serving.holder import ModelHolder
from shortlist.serving.settings import Variant

#: Latencies kept per (variant, endpoint) for the percentiles in ``GET /variants``.
LATENCY_WINDOW = 20_000


class UnknownVariantError(LookupError):
    pass


class Variants:
    """Name → :class:`ModelHolder` for each served variant, and who goes where."""

    def __init__(self, variants: tuple[Variant, ...], *, salt: str,
                 loader: Callable[[Path], Engine] = Engine.load) -> None:
        self.specs, self.salt = variants, salt
        self.names = tuple(v.name for v in variants)
        self.shares = tuple(v.share for v in variants)
        self.holders = {v.name: ModelHolder(v.model_dir, loader=loader) for v in variants}
        self.stats = VariantStats(self.names)

    @property
    def control(self) -> str:
        """The first variant listed: where requests that name no user go."""
        return self.names[0]

    def assign(self, user_id: str | int | None) -> str:
        """The variant of ``user_id`` (``None``: the control)."""
        return assign(user_id, self.names, self.shares, self.salt)

    def holder(self, name: str | None = None) -> ModelHolder:
        """The holder of variant ``name`` (``None``: the control); an unknown name raises."""
        try:
            return self.holders[name or self.control]
        except KeyError:
            raise UnknownVariantError(f"unknown variant {name!r}; served: {', '.join(self.names)}") from None

    def summary(self) -> dict[str, Any]:
        """What ``GET /variants`` answers: each variant's share, model, requests, errors and latency."""
        return {"variants": [
            {"name": v.name, "share": v.share, "model_version": self.holders[v.name].current.version,
             **self.stats.of(v.name)} for v in self.specs]}


class VariantStats:
    """Requests, errors (by status) and latency percentiles per variant and endpoint."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self._requests = dict.fromkeys(names, 0)
        self._errors: dict[str, dict[str, int]] = {n: {} for n in names}
        self._latency: dict[tuple[str, str], deque[float]] = {}

    def record(self, variant: str, endpoint: str, status: int, seconds: float) -> None:
        if variant not in self._requests:
            return
        with self._lock:
            self._requests[variant] += 1
            if status >= 400:
                errors = self._errors[variant]
                errors[str(status)] = errors.get(str(status), 0) + 1
            self._latency.setdefault((variant, endpoint), deque(maxlen=LATENCY_WINDOW)).append(seconds)

    def of(self, variant: str) -> dict[str, Any]:
        with self._lock:
            windows = {e: np.array(d) * 1000 for (v, e), d in self._latency.items() if v == variant and len(d)}
            out = {"requests": self._requests[variant], "errors": dict(self._errors[variant])}
        latency = {}
        for endpoint, ms in sorted(windows.items()):
            p50, p95, p99 = np.percentile(ms, [50, 95, 99])
            latency[endpoint] = {"n": len(ms), "p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3),
                                 "p99_ms": round(float(p99), 3)}
        return {**out, "latency": latency}


__all__ = ["UnknownVariantError", "VariantStats", "Variants"]
