"""Options `serve` and `bench serve` share: A/B variants and their split, API keys, the rules file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shortlist.cli._common import console
from shortlist.errors import ConfigError

#: The environment variable an API key may come from (read here, in the CLI, never below it).
API_KEY_ENV = "SHORTLIST_API_KEY"
#: Where Docker mounts secrets: readable inside the container only, so the file mode is no warning.
DOCKER_SECRETS = Path("/run/secrets")


def parse_variants(values: list[str] | None) -> list[tuple[str, str]]:
    """``["A=models/a", "B=models:/shop@challenger"]`` → ``[("A", "models/a"), ...]``."""
    out = []
    for value in values or []:
        name, sep, where = value.partition("=")
        if not sep or not name.strip() or not where.strip():
            raise ConfigError(f"--variant {value!r} must look like NAME=MODEL_DIR (e.g. --variant A=models/a)")
        out.append((name.strip(), where.strip()))
    return out


def parse_split(split: str | None, n: int) -> tuple[float, ...]:
    """``"50,50"`` → ``(0.5, 0.5)``: one positive weight per variant, in their order (default: equal)."""
    if split is None:
        return tuple(1 / n for _ in range(n))
    try:
        weights = [float(w) for w in split.split(",")]
    except ValueError:
        raise ConfigError(f"--split {split!r} must be numbers separated by commas, e.g. 50,50") from None
    if len(weights) != n:
        raise ConfigError(f"--split {split!r} has {len(weights)} weights for {n} variants")
    if any(not w > 0 or w == float("inf") for w in weights):
        raise ConfigError(f"--split {split!r}: every weight must be a positive number")
    total = sum(weights)
    return tuple(w / total for w in weights)


def read_api_keys(path: Path | None) -> tuple[str, ...]:
    """The API keys of ``--api-key-file`` (one a line; blank lines and ``#`` comments skipped) and of
    ``SHORTLIST_API_KEY``. A key file others may read is served, with a warning (not under
    ``/run/secrets``, a container's own)."""
    keys: list[str] = []
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except OSError as e:
            raise ConfigError(f"--api-key-file {path}: cannot read it ({e.strerror})") from e
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not keys:
            raise ConfigError(f"--api-key-file {path}: the file holds no key")
        if mode & (stat.S_IRGRP | stat.S_IROTH) and not path.resolve().is_relative_to(DOCKER_SECRETS):
            console.print(f"warning: {path} is readable by other users; chmod 600 it", style="yellow")
    env = os.environ.get(API_KEY_ENV, "").strip()
    if env:
        keys.append(env)
    return tuple(dict.fromkeys(keys))
