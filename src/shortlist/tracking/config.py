"""Where runs go and what to register: settings resolved from flags, the ``[tracking]`` config
section and the environment (passed in, never read here), checked before any work starts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shortlist.errors import ConfigError

#: The store used when neither ``--tracking-uri``, ``MLFLOW_TRACKING_URI`` nor the config names one:
#: a SQLite file in the working directory (artifacts under ``./mlruns``).
DEFAULT_URI = "sqlite:///mlruns.db"
DEFAULT_EXPERIMENT = "shortlist"
URI_ENV = "MLFLOW_TRACKING_URI"
_ALIAS = re.compile(r"^[A-Za-z0-9_\-]+$")
_VERSION_LIKE = re.compile(r"^[vV]\d+$")


@dataclass(frozen=True)
class TrackingSettings:
    """One command's tracking: the store, the experiment, and (for ``fit``) the registry entry."""

    uri: str
    experiment: str = DEFAULT_EXPERIMENT
    register: str | None = None
    alias: str | None = None


def resolve_uri(flag: str | None, configured: str | None, env: Mapping[str, str]) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the config's ``uri``, else
    :data:`DEFAULT_URI` (command line over environment over file, as pip and git do)."""
    for value in (flag, env.get(URI_ENV), configured):
        if value is not None and value.strip():
            return value.strip()
    return DEFAULT_URI


def tracking_settings(
    section: Mapping[str, Any],
    *,
    track: bool | None,
    uri: str | None,
    experiment: str | None = None,
    register: str | None = None,
    alias: str | None = None,
    env: Mapping[str, str],
) -> TrackingSettings | None:
    """The settings for one command, or ``None`` when it is not tracked.

    Tracking is on with ``--track``, or ``[tracking] enabled = true``, or when a registry name or a
    tracking URI is given on the command line; ``--no-track`` turns it off (and then ``--register``
    is an error: nothing could be registered). Names are checked here, before any work.
    """
    flagged = register
    register = register if register is not None else (section.get("register") or None)
    alias = alias if alias is not None else (section.get("alias") or None)
    if alias is not None and register is None:
        raise ConfigError(f"alias {alias!r} needs a registered model name: --register NAME or [tracking] register "
                          "(the alias points at a version of NAME)")
    wanted = bool(section.get("enabled")) or flagged is not None or uri is not None
    on = track if track is not None else wanted
    if not on:
        if flagged is not None and track is False:
            raise ConfigError(f"--register {register} needs tracking: drop --no-track (the model is "
                              "registered from its run)")
        return None
    check_model_name(register)
    check_alias(alias)
    name = (experiment or section.get("experiment") or DEFAULT_EXPERIMENT).strip()
    if not name:
        raise ConfigError("the experiment name is empty; pass --experiment NAME or drop the option")
    return TrackingSettings(resolve_uri(uri, section.get("uri") or None, env), name, register, alias)


def check_model_name(name: str | None) -> None:
    """Registered model names: non-empty, without ``/`` or ``:`` (they are part of ``models:/`` URIs)."""
    if name is None:
        return
    if not name.strip() or "/" in name or ":" in name or name.strip() in (".", ".."):
        raise ConfigError(f"--register {name!r}: a registered model name must be non-empty and contain no "
                          "'/' or ':' (e.g. --register shortlist)")


def check_alias(alias: str | None) -> None:
    """Aliases: letters, digits, ``_`` and ``-``; not ``latest`` nor version-like (``v3``), which
    MLflow reserves."""
    if alias is None:
        return
    if not _ALIAS.match(alias) or alias.lower() == "latest" or _VERSION_LIKE.match(alias) or len(alias) > 255:
        raise ConfigError(f"--alias {alias!r}: use letters, digits, '_' and '-' (e.g. champion); "
                          "'latest' and version-like names such as 'v3' are reserved")
