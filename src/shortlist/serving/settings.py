"""``ServingSettings``: everything the service is configured with (the CLI fills it; no env reads below)."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from shortlist.errors import ConfigError
from shortlist.pipeline.rules import Rules

#: The variant name of a service that serves one model.
DEFAULT_VARIANT = "default"
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
#: Shortest API key accepted: a guessable key is no key.
MIN_KEY_CHARS = 16
_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII without spaces: what a Bearer header carries


@dataclass(frozen=True)
class Variant:
    """One served model of an A/B test: ``name``, its model folder, and its ``share`` of the users."""

    name: str
    model_dir: Path
    share: float = 1.0


def is_loopback(host: str | None) -> bool:
    """Whether binding to ``host`` keeps the service on this machine (127.0.0.0/8, ::1, localhost)."""
    if host is None:
        return False
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServingSettings:
    """Options of one service instance.

    ``model_dir``: the one model served, or ``variants``: an A/B test's models, users bucketed
    between them by a hash of (``salt``, user id) in proportion to their shares (``model_dir``
    then names the first, the control). ``redis_url``: the response cache and the online feature
    store go to Redis when set, in-process otherwise. ``watch_s``: poll the model folders'
    manifests every so many seconds and reload a changed one (0: only ``POST /admin/reload``).
    ``max_candidates``: the candidate union a request ranks (default: the model's own). ``rules``:
    business rules applied to every request (a request's own rules add to them).

    Security: ``api_keys`` (never shown in a repr) are the accepted ``Authorization: Bearer`` keys,
    required by the write (``/events``) and admin (``/admin/*``) endpoints, and by every read too with
    ``require_key_for_reads``. Without a key, writes and admin answer 403 unless ``host`` (the bound
    interface; ``None``: unknown) is loopback. Writes are rate-limited per client (its key, else its
    address): ``write_rate_per_s`` tokens a second, bursts of ``write_burst`` (rate 0: no limit).
    """

    model_dir: Path | None = None
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
    rules: Rules | None = None
    variants: tuple[Variant, ...] = ()
    salt: str = "shortlist"
    host: str | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    require_key_for_reads: bool = False
    write_rate_per_s: float = 100.0
    write_burst: int = 200

    def __post_init__(self) -> None:
        checks = {
            "cache_ttl_s": self.cache_ttl_s > 0, "cache_max_users": self.cache_max_users > 0,
            "max_k": self.max_k >= 1, "max_body_bytes": self.max_body_bytes >= 1024,
            "max_request_items": self.max_request_items >= 1, "max_online_events": self.max_online_events >= 1,
            "redis_timeout_s": self.redis_timeout_s > 0, "redis_retry_s": self.redis_retry_s >= 0,
            "watch_s": self.watch_s >= 0, "drift_threshold": self.drift_threshold > 0,
            "drift_reference_users": self.drift_reference_users >= 1, "explain_top": self.explain_top >= 1,
            "max_candidates": self.max_candidates is None or self.max_candidates >= 1,
            "write_rate_per_s": math.isfinite(self.write_rate_per_s) and self.write_rate_per_s >= 0,
            "write_burst": self.write_burst >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid serving setting(s) {bad}: see `shortlist serve --help` for valid ranges")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"--redis-url must start with redis://, rediss:// or unix://, got {self.redis_url!r}")
        _check_keys(self.api_keys, self.require_key_for_reads)
        _check_variants(self.variants)
        if (self.model_dir is None) == (not self.variants):
            raise ConfigError("serve one model (--model DIR) or an A/B test (--variant NAME=DIR, twice or more), "
                              "not both and not neither")
        if self.variants:
            object.__setattr__(self, "model_dir", self.variants[0].model_dir)

    @property
    def served(self) -> tuple[Variant, ...]:
        """The variants served: the A/B test's, or the one model as variant ``default``."""
        assert self.model_dir is not None
        return self.variants or (Variant(DEFAULT_VARIANT, self.model_dir, 1.0),)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def _check_keys(keys: tuple[str, ...], for_reads: bool) -> None:
    for n, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS or not _KEY.match(key):
            raise ConfigError(f"API key {n} is not usable: a key is at least {MIN_KEY_CHARS} printable ASCII "
                              "characters without spaces (make one with: python -c \"import secrets; "
                              "print(secrets.token_urlsafe(32))\")")
    if for_reads and not keys:
        raise ConfigError("--require-key-for-reads needs an API key (--api-key-file FILE or SHORTLIST_API_KEY)")


def _check_variants(variants: tuple[Variant, ...]) -> None:
    if not variants:
        return
    if len(variants) < 2:
        raise ConfigError("an A/B test needs two or more --variant NAME=DIR (one model: --model DIR)")
    names = [v.name for v in variants]
    bad = [n for n in names if not _VARIANT_NAME.match(n)]
    if bad:
        raise ConfigError(f"variant name {bad[0]!r}: use 1-32 letters, digits, '_', '.', '-' (e.g. A, B, control)")
    if len(set(names)) < len(names):
        raise ConfigError(f"variant names must be distinct, got {names}")
    shares = [v.share for v in variants]
    if any(not math.isfinite(s) or s <= 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-9:
        raise ConfigError(f"variant shares must be positive and sum to 1, got {shares}")
