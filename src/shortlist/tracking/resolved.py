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
    """``{"kind": ..., **model.config()}`` with, for a fitted two-stage model, the sources it chose,
    its candidate budget and window count, each source's constructor parameters and the ranker's
    full parameter set (the values the fit used, defaults included)."""
    config: dict[str, Any] = {"kind": getattr(model, "name", type(model).__name__), **model.config()}
    if hasattr(model, "resolved_kind"):  # a baseline: "auto" becomes the kind it chose
        config["kind"] = f"baseline:{model.resolved_kind}"
        return config
    generator = getattr(model, "generator_", None)
    if generator is not None:
        config["sources"] = list(generator.names)
        config["source_params"] = {name: _source_params(src) for name, src in generator.sources_.items()}
    if hasattr(model, "candidates_count"):
        config["max_candidates"] = model.candidates_count
        config["n_windows"] = model.windows_count
    ranker = getattr(model, "ranker_", None)
    if ranker is not None and hasattr(ranker, "params"):
        config["ranker_params"] = dict(ranker.params())
    return config


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
