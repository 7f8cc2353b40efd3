"""shortlist: a two-stage recommender system.

    from shortlist import TwoStageRecommender, load_dataset, load_model

The names below are imported on first use, so ``import shortlist`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "TwoStageRecommender": "shortlist.pipeline.two_stage",
    "TwoStageConfig": "shortlist.config",
    "BaselineRecommender": "shortlist.pipeline.baseline",
    "Interactions": "shortlist.data",
    "Items": "shortlist.data",
    "Dataset": "shortlist.data",
    "build_dataset": "shortlist.data",
    "load_dataset": "shortlist.data.loaders",
    "load_named": "shortlist.data.loaders",
    "load_model": "shortlist.pipeline.load",
}

__all__ = [  # noqa: RUF022  (the order _EXPORTS gives)
    "__version__", "TwoStageRecommender", "TwoStageConfig", "BaselineRecommender", "Interactions", "Items",
    "Dataset", "build_dataset", "load_dataset", "load_named", "load_model",
]

if TYPE_CHECKING:
    from shortlist.config import TwoStageConfig
    from shortlist.data import Dataset, Interactions, Items, build_dataset
    from shortlist.data.loaders import load_dataset, load_named
    from shortlist.pipeline.baseline import BaselineRecommender
    from shortlist.pipeline.load import load_model
    from shortlist.pipeline.two_stage import TwoStageRecommender


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shortlist' has no attribute {name!r}")
