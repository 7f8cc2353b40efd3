"""``ServingSettings``: everything the service is configured with (the CLI fills it; no env reads below)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shortlist.errors import ConfigError


@dataclass(frozen=True)
class ServingSettings:
    """Options of one service instance.

    ``redis_url``: the response cache and the online feature store (user histories and events) go
    to Redis when set, in-process otherwise. ``watch_s``: poll the model directory's manifest every
    so many seconds and reload when it changes (0: only ``POST /admin/reload``). ``max_candidates``:
    the candidate union a request ranks (default: the model's own).
    """

    model_dir: Path
    redis_url: str | None = None
    cache_ttl_s: float = 300.0
    cache_max_users: int = 50_000
    max_k: int = 100
    max_body_bytes: int = 64 * 1024
    max_request_items: int = 500
    max_online_events: int = 1_000
    redis_timeout_s: float = 0.05
    redis_retry_s: float = 1.0
    watch_s: float = 0.0
    drift_threshold: float = 0.2
    drift_reference_users: int = 300
    explain_top: int = 5
    max_candidates: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "cache_ttl_s": self.cache_ttl_s > 0, "cache_max_users": self.cache_max_users > 0,
            "max_k": self.max_k >= 1, "max_body_bytes": self.max_body_bytes >= 1024,
            "max_request_items": self.max_request_items >= 1, "max_online_events": self.max_online_events >= 1,
            "redis_timeout_s": self.redis_timeout_s > 0, "redis_retry_s": self.redis_retry_s >= 0,
            "watch_s": self.watch_s >= 0, "drift_threshold": self.drift_threshold > 0,
            "drift_reference_users": self.drift_reference_users >= 1, "explain_top": self.explain_top >= 1,
            "max_candidates": self.max_candidates is None or self.max_candidates >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid serving setting(s) {bad}: see `shortlist serve --help` for valid ranges")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"--redis-url must start with redis://, rediss:// or unix://, got {self.redis_url!r}")
