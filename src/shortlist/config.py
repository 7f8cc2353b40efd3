"""Experiment configuration: defaults live in code; a TOML file only overrides them.

Unknown sections or keys, and values of the wrong type, are errors that name the key.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shortlist.errors import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {
        "kind": "two_stage",  # or a baseline: auto | popular | popular_recent | repurchase_then_popular
        "seed": 0,
        "target": "last",  # last | days:N (the --target flag overrides)
        "sources": [],  # empty: the default set for the data
        "per_source": 300,
        "max_candidates": 0,  # 0: 200 a user for target=last, 100 for days:N
        "n_windows": 0,  # 0: 3 label depths for target=last, 2 windows for days:N
        "max_negatives": 250,
        "hard_negatives": 50,
        "ranker": "lightgbm",  # or xgboost
    },
    "ranker": {},  # LightGBM/XGBoost ranker parameters, e.g. num_leaves = 63
    "source_params": {},  # per-source constructor overrides, e.g. [source_params.als] factors = 128
    "evaluate": {
        "k": 10,
        "ks": [5, 10, 20],
        "depth": 100,
    },
    "tracking": {  # MLflow runs of fit / evaluate (pip install 'shortlist[mlflow]'); flags override
        "enabled": False,
        "uri": "",  # empty: MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in the working directory
        "experiment": "shortlist",
        "register": "",  # fit only: register each tracked model as a new version of this name
        "alias": "",  # and point this alias (e.g. champion) at it
    },
}


def merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any], *, where: str = "config") -> dict[str, Any]:
    """A deep copy of ``defaults`` with ``overrides`` applied, checking every key and type."""
    out = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if key not in out:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(out))}")
        base = out[key]
        if isinstance(base, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table, got {type(value).__name__}")
            # An empty default table is free-form: its keys are checked by whoever consumes it.
            out[key] = merge(base, value, where=f"{where}.{key}") if base else copy.deepcopy(dict(value))
        elif base is not None and not _compatible(base, value):
            raise ConfigError(
                f"{where}: {key} must be {type(base).__name__}, got {type(value).__name__} ({value!r})"
            )
        else:
            out[key] = value
    return out


def _compatible(base: Any, value: Any) -> bool:
    if isinstance(base, bool) or isinstance(value, bool):
        return isinstance(base, bool) and isinstance(value, bool)
    if isinstance(base, int | float) and isinstance(value, int | float):
        return True
    return isinstance(value, type(base))


def load_config(path: Path | str | None, *, defaults: Mapping[str, Any] = DEFAULTS) -> dict[str, Any]:
    """Defaults, overridden by the TOML file at ``path`` when given."""
    if path is None:
        return copy.deepcopy(dict(defaults))
    path = Path(path)
    try:
        overrides = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from e
    return merge(defaults, overrides, where=str(path))
