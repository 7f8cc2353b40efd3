"""The ``Ranker`` protocol: what the pipeline calls on a stage-2 learner."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import polars as pl


class Ranker(Protocol):
    """Learns to order each query group's rows: ``fit`` on (rows × features), graded labels and the
    sizes of consecutive groups (one group = one user × label window), early-stopped on ``valid``;
    ``predict`` scores rows (higher first). ``metrics_`` holds what the fit measured."""

    metrics_: dict[str, Any]

    def fit(self, X: np.ndarray, y: np.ndarray, group: np.ndarray, *, feature_names: Sequence[str],
            valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def importance(self) -> pl.DataFrame: ...

    def save(self, path: Path) -> None: ...

    def load_model(self, path: Path, *, feature_names: Sequence[str], metrics: dict[str, Any]) -> Self: ...


def ranker_kind(ranker: Any) -> str:
    """The saved kind of a ranker object: ``lightgbm`` or ``xgboost`` (the kinds a model can save)."""
    from shortlist.errors import ConfigError
    from shortlist.ranking.lgbm import LGBMRanker
    from shortlist.ranking.xgb import XGBRanker

    if isinstance(ranker, LGBMRanker):
        return "lightgbm"
    if isinstance(ranker, XGBRanker):
        return "xgboost"
    raise ConfigError(f"ranker must be 'lightgbm', 'xgboost' or an LGBMRanker / XGBRanker object (the kinds a "
                      f"model can save), got {type(ranker).__name__}")
