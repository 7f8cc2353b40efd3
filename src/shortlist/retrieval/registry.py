"""The one registry of candidate sources: a name → how to build it, and save / load by that name
(JSON params + ``.npy`` arrays, never pickle)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shortlist.errors import ConfigError, ModelLoadError
from shortlist.pipeline.artifacts import SharedArrays, load_arrays, load_json, save_arrays, save_json
from shortlist.retrieval.base import CandidateSource
from shortlist.retrieval.chain import Chain


@dataclass(frozen=True)
class SourceSpec:
    """Where a source's class lives (imported on first use) and the arguments its name implies."""

    module: str
    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load_class(self) -> Any:
        return getattr(importlib.import_module(self.module), self.cls)


#: name → spec. A source saved under a class name not listed here is refused on load.
SOURCES: dict[str, SourceSpec] = {
    "popular": SourceSpec("shortlist.retrieval.popularity", "Popularity"),
    "popular_recent": SourceSpec("shortlist.retrieval.popularity", "Popularity", {"window_days": "auto"}),
    "repurchase": SourceSpec("shortlist.retrieval.repurchase", "Repurchase"),
    "itemknn": SourceSpec("shortlist.retrieval.covisit", "CoVisitation", {"kind": "user"}),
    "covisit": SourceSpec("shortlist.retrieval.covisit", "CoVisitation", {"kind": "session"}),
    "transition": SourceSpec("shortlist.retrieval.covisit", "CoVisitation", {"kind": "transition"}),
    "ease": SourceSpec("shortlist.retrieval.ease", "EASE"),
    "userknn": SourceSpec("shortlist.retrieval.userknn", "UserKNN"),
    "als": SourceSpec("shortlist.retrieval.als", "ALS"),
    "two_tower": SourceSpec("shortlist.retrieval.two_tower", "TwoTower"),
    "content": SourceSpec("shortlist.retrieval.content", "ContentSource"),
}


def register_source(name: str, spec: SourceSpec) -> None:
    """Make a source buildable by :func:`make_source` and loadable by :func:`load_source`."""
    SOURCES[name] = spec


def make_source(name: str, **overrides: Any) -> CandidateSource:
    """A fresh source by registry name (``overrides`` update its constructor arguments)."""
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    spec = SOURCES[name]
    source: CandidateSource = spec.load_class()(**{**spec.kwargs, "name": name, **overrides})
    return source


def save_source(source: CandidateSource, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Chain):
        for i, child in enumerate(source.sources):
            save_source(child, directory / f"part_{i}")
        save_json(directory / "source.json", {"type": "Chain", "name": source.name, "parts": len(source.sources)})
        return
    params, arrays = source.get_state()
    save_json(directory / "source.json", {"type": type(source).__name__, "params": params})
    save_arrays(directory, arrays)


def load_source(directory: Path, shared: SharedArrays | None = None) -> CandidateSource:
    """A saved source; ``shared``: the arrays the model's sources load once (:class:`SharedArrays`)."""
    meta = load_json(directory / "source.json")
    kind = meta.get("type")
    if kind == "Chain":
        parts = [load_source(directory / f"part_{i}", shared) for i in range(int(meta["parts"]))]
        return Chain(parts, name=meta["name"])
    specs = {spec.cls: spec for spec in SOURCES.values()}
    if kind not in specs:
        raise ModelLoadError(f"{directory}: unknown source type {kind!r}; known: {sorted(specs)}")
    source: CandidateSource = specs[kind].load_class().from_state(meta["params"], load_arrays(directory, shared))
    return source
