"""A fitted model's configuration with every default and data-derived choice filled in, read
from what the model exposes (its constructor config, chosen sources, budgets, ranker parameters),
and the flat keys MLflow wants for params and metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_INVALID_KEY_CHARS = re.compile(r"[^\w.\-/]+")


def resolved_config(model: Any) -> dict[str, Any]:
    """``{"kind": ..., **config}`` with every default and data-derived choice filled in: the sources
    the fit chose, its candidate budget and window count, each source's parameters, and the ranker's
    full parameter set. A model that keeps its derived configuration (``resolved_`` with
    ``to_json()``) is read from it; otherwise from its config plus the fitted parts."""
    name = getattr(model, "name", type(model).__name__)
    if hasattr(model, "resolved_kind"):  # a baseline: "auto" becomes the kind it chose
        return {**_declared(model), "kind": f"baseline:{model.resolved_kind}"}
    resolved = getattr(model, "resolved_", None)
    if resolved is not None and hasattr(resolved, "to_json"):
        config = {"kind": name, **resolved.to_json()}
    else:
        config = {"kind": name, **_declared(model), **_derived(model)}
    ranker = getattr(model, "ranker_", None)
    if ranker is not None and hasattr(ranker, "params"):
        config["ranker_params"] = {**(config.get("ranker_params") or {}), **dict(ranker.params())}
    return config


def _declared(model: Any) -> dict[str, Any]:
    """The model's own configuration: ``config()``, or a ``config`` object with ``to_json()``."""
    config: Any = getattr(model, "config", None)
    if callable(config):
        return dict(config())
    return dict(config.to_json()) if hasattr(config, "to_json") else {}


def _derived(model: Any) -> dict[str, Any]:
    """What a fitted model chose from the data: sources (with their parameters), budget, windows."""
    out: dict[str, Any] = {}
    generator = getattr(model, "generator_", None)
    if generator is not None:
        out["sources"] = list(generator.names)
        out["source_params"] = {name: _source_params(src) for name, src in generator.sources_.items()}
    if hasattr(model, "candidates_count"):
        out["max_candidates"] = model.candidates_count
        out["n_windows"] = model.windows_count
    return out


def _source_params(source: Any) -> dict[str, Any]:
    """A source's constructor parameters as it saves them (learned values, ending in ``_``, left out)."""
    if not hasattr(source, "get_state"):
        return {}
    params, _ = source.get_state()
    return {k: v for k, v in params.items() if not k.endswith("_") and k != "name"}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists as JSON text (``{"a": {"b": [1]}}`` → ``{"a.b": "[1]"}``)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten(value, f"{name}.")
        elif isinstance(value, list | tuple | Mapping):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out


def metric_key(*parts: str) -> str:
    """An MLflow-safe key: ``@`` as ``_at_``, each run of other unsafe characters (``:``, spaces,
    brackets) as one ``_`` (``("eval", "source:als", "ndcg@10")`` → ``eval.source_als.ndcg_at_10``,
    ``"union (≤100)"`` → ``union_100``)."""
    return ".".join(_INVALID_KEY_CHARS.sub("_", p.replace("@", "_at_")).strip("_") or "_" for p in parts)
