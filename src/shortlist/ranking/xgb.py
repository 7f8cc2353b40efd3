"""XGBoost ``rank:ndcg`` re-ranker with the same interface as the LightGBM one (extra ``xgboost``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from shortlist.errors import DependencyMissingError, NotFittedError


class XGBRanker:
    """XGBoost ``rank:ndcg`` with the same interface as :class:`LGBMRanker` (extra ``xgboost``)."""

    def __init__(self, *, n_estimators: int = 400, learning_rate: float = 0.05, max_depth: int = 6,
                 early_stopping_rounds: int = 40, eval_at: int = 10, n_jobs: int = 2, seed: int = 0) -> None:
        self.n_estimators, self.learning_rate, self.max_depth = n_estimators, learning_rate, max_depth
        self.early_stopping_rounds, self.eval_at, self.n_jobs, self.seed = early_stopping_rounds, eval_at, n_jobs, seed
        self.booster_: Any = None
        self.feature_names_: list[str] | None = None
        self.metrics_: dict[str, Any] = {}

    @staticmethod
    def _xgb() -> Any:
        try:
            import xgboost
        except ImportError as e:
            raise DependencyMissingError("xgboost", "xgboost", "the XGBoost ranker") from e
        return xgboost

    def fit(self, X: np.ndarray, y: np.ndarray, group: np.ndarray, *, feature_names: Sequence[str],
            valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Self:
        xgb = self._xgb()
        names = list(feature_names)
        dtrain = xgb.DMatrix(X, label=y, feature_names=names)
        dtrain.set_group(group)
        evals = [(dtrain, "train")]
        if valid is not None and len(valid[2]):
            dvalid = xgb.DMatrix(valid[0], label=valid[1], feature_names=names)
            dvalid.set_group(valid[2])
            evals.append((dvalid, "valid"))
        params = {"objective": "rank:ndcg", "eval_metric": f"ndcg@{self.eval_at}", "eta": self.learning_rate,
                  "max_depth": self.max_depth, "nthread": self.n_jobs, "seed": self.seed, "tree_method": "hist"}
        record: dict[str, Any] = {}
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators, evals=evals,
                                  early_stopping_rounds=self.early_stopping_rounds if len(evals) > 1 else None,
                                  evals_result=record, verbose_eval=False)
        best = int(getattr(self.booster_, "best_iteration", self.n_estimators - 1)) + 1
        self.feature_names_ = names
        self.metrics_ = {"best_iteration": best}
        for split_name, per_metric in record.items():
            for metric, curve in per_metric.items():
                self.metrics_[f"{split_name}_{metric}"] = float(curve[best - 1])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.booster_ is None or self.feature_names_ is None:
            raise NotFittedError("XGBRanker")
        xgb = self._xgb()
        best = self.metrics_.get("best_iteration") or 0
        return np.asarray(self.booster_.predict(xgb.DMatrix(X, feature_names=self.feature_names_),
                                                iteration_range=(0, best)), np.float32)

    def importance(self) -> pl.DataFrame:
        if self.booster_ is None or self.feature_names_ is None:
            raise NotFittedError("XGBRanker")
        gain = self.booster_.get_score(importance_type="total_gain")
        split = self.booster_.get_score(importance_type="weight")
        return pl.DataFrame({
            "name": self.feature_names_,
            "gain": [float(gain.get(n, 0.0)) for n in self.feature_names_],
            "split": [int(split.get(n, 0)) for n in self.feature_names_],
        }).sort("gain", descending=True)

    def save(self, path: Path) -> None:
        if self.booster_ is None:
            raise NotFittedError("XGBRanker")
        self.booster_.save_model(str(path))

    def load_model(self, path: Path, *, feature_names: Sequence[str], metrics: dict[str, Any]) -> Self:
        xgb = self._xgb()
        self.booster_ = xgb.Booster()
        self.booster_.load_model(str(path))
        self.feature_names_ = list(feature_names)
        self.metrics_ = dict(metrics)
        return self
