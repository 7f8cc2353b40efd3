"""Save and load candidate sources by type name (JSON params + ``.npy`` arrays, never pickle)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from shortlist.errors import ModelLoadError
from shortlist.pipeline.artifacts import load_arrays, load_json, save_arrays, save_json
from shortlist.retrieval.base import CandidateSource
from shortlist.retrieval.chain import Chain
from shortlist.retrieval.popularity import Popularity
from shortlist.retrieval.repurchase import Repurchase

SOURCE_TYPES: dict[str, Any] = {"Popularity": Popularity, "Repurchase": Repurchase}
#: Sources in modules with heavier imports, loaded on first use.
LAZY_SOURCES: dict[str, tuple[str, str]] = {
    "CoVisitation": ("shortlist.retrieval.covisit", "CoVisitation"),
    "EASE": ("shortlist.retrieval.ease", "EASE"),
    "UserKNN": ("shortlist.retrieval.userknn", "UserKNN"),
    "ALS": ("shortlist.retrieval.als", "ALS"),
    "TwoTower": ("shortlist.retrieval.two_tower", "TwoTower"),
    "ContentSource": ("shortlist.retrieval.content", "ContentSource"),
}


def register_source(cls: Any) -> Any:
    """Make a source class loadable by :func:`load_source` (usable as a decorator)."""
    SOURCE_TYPES[cls.__name__] = cls
    return cls


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


def load_source(directory: Path) -> CandidateSource:
    meta = load_json(directory / "source.json")
    kind = meta.get("type")
    if kind == "Chain":
        parts = [load_source(directory / f"part_{i}") for i in range(int(meta["parts"]))]
        return Chain(parts, name=meta["name"])
    if kind in LAZY_SOURCES and kind not in SOURCE_TYPES:
        module, attr = LAZY_SOURCES[kind]
        SOURCE_TYPES[kind] = getattr(importlib.import_module(module), attr)
    if kind not in SOURCE_TYPES:
        raise ModelLoadError(f"{directory}: unknown source type {kind!r}; known: {sorted(SOURCE_TYPES)}")
    source: CandidateSource = SOURCE_TYPES[kind].from_state(meta["params"], load_arrays(directory))
    return source
