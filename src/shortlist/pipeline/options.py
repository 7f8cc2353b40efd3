"""Constructor options of the two-stage model checked up front, naming what is valid."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from shortlist.errors import ConfigError
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.ranking.xgb import XGBRanker


def check_options(ranker: str, ranker_params: Mapping[str, Any], sources: Sequence[str] | None,
                   source_params: Mapping[str, Any]) -> None:
    """Unknown ranker parameters, rankers or source names fail now, naming what is valid."""
    from shortlist.retrieval.registry import SOURCES

    if ranker not in ("lightgbm", "xgboost", "lightgbm-dask"):
        raise ConfigError(f"ranker must be 'lightgbm', 'xgboost' or 'lightgbm-dask' (on a Dask cluster), got {ranker!r}")
    cls = XGBRanker if ranker == "xgboost" else LGBMRanker
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "seed", "categorical")]
    unknown = sorted(set(ranker_params) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {ranker} ranker parameter(s) {unknown}; valid: {', '.join(valid)}")
    for name in [*(sources or []), *source_params]:
        if name not in SOURCES:
            raise ConfigError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
