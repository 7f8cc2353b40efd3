"""Test helper: every array reachable through a fitted object's attributes (importable from any test
folder: the root conftest puts this folder on the path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp


def arrays(obj: Any, path: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(path, shape) of every array or sparse matrix reachable through ``obj``'s attributes, once each."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray) or sp.issparse(obj):
        yield path, obj.shape
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from arrays(v, f"{path}[{k!r}]", seen)
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from arrays(v, f"{path}[{i}]", seen)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("shortlist"):
        for k, v in vars(obj).items():
            yield from arrays(v, f"{path}.{k}", seen)
