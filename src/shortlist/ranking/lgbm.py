"""LightGBM lambdarank re-ranker."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from shortlist.errors import ConfigError, ModelLoadError, NotFittedError

logger = logging.getLogger(__name__)
SINGLE_THREAD_ROWS = 20_000


def _rows(X: np.ndarray) -> np.ndarray:
    """A small matrix as LightGBM reads it fastest: C order, float64 (it traverses trees in double,
    so the scores are the same). Large matrices are passed as they are (no copy)."""
    if len(X) < SINGLE_THREAD_ROWS:
        return np.ascontiguousarray(X, dtype=np.float64)
    return X


class LGBMRanker:
    """LightGBM ``lambdarank`` with NDCG eval at 5/10/20 and early stopping on a user-grouped split.

    Defaults are deliberately regularised (15 leaves, ≥100 rows a leaf, half the features per tree,
    L2 10) because the training groups are small and the features strong. Each round trains on half
    the query groups (``bagging_by_query``: whole users, not scattered rows), which halves a round's
    cost at equal quality; the bag stays at 0.5 because LightGBM grows different trees on every run
    with a larger query bag. Early stopping watches the smoothed validation NDCG. ``refit``: once
    early stopping has chosen the rounds, train again on the training and validation groups together
    (pays where the ranker is short of data). Measurements behind each default:
    ``benchmarks/RESULTS.md`` (tuning history). ``group`` arrays are sizes of consecutive query
    groups (one group = one user × label window).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        learning_rate: float = 0.1,
        num_leaves: int = 15,
        max_bin: int = 255,
        bin_sample_rows: int = 200_000,
        min_child_samples: int = 100,
        feature_fraction: float = 0.5,
        bagging_fraction: float = 0.5,
        bagging_freq: int = 1,
        bagging_by_query: bool = True,
        lambda_l2: float = 10.0,
        truncation_level: int = 20,
        label_gain: Sequence[float] | None = None,
        eval_at: Sequence[int] = (10, 5, 20),
        early_stopping_rounds: int = 25,
        min_rounds: int = 50,
        smoothing: int = 5,
        categorical: Sequence[str] = (),
        refit: bool = False,
        n_jobs: int = 2,
        seed: int = 0,
    ) -> None:
        if n_estimators < 1 or not 0 < learning_rate <= 1 or num_leaves < 2 or bagging_freq < 1 or bin_sample_rows < 1:
            raise ConfigError("LGBMRanker needs n_estimators>=1, 0<learning_rate<=1, num_leaves>=2, bagging_freq>=1, "
                              "bin_sample_rows>=1")
        self.n_estimators, self.learning_rate, self.num_leaves = n_estimators, learning_rate, num_leaves
        self.min_child_samples, self.feature_fraction, self.max_bin = min_child_samples, feature_fraction, max_bin
        self.bagging_fraction, self.bagging_by_query, self.lambda_l2 = bagging_fraction, bagging_by_query, lambda_l2
        self.bagging_freq, self.bin_sample_rows = bagging_freq, bin_sample_rows
        self.truncation_level, self.label_gain = truncation_level, label_gain
        self.eval_at, self.early_stopping_rounds = tuple(eval_at), early_stopping_rounds
        self.min_rounds, self.smoothing = min_rounds, max(1, smoothing)
        self.categorical, self.n_jobs, self.seed = tuple(categorical), n_jobs, seed
        self.refit = refit
        self.booster_: Any = None
        self.feature_names_: list[str] | None = None
        self.metrics_: dict[str, Any] = {}
        if bagging_by_query and 0.5 < bagging_fraction < 1 and n_jobs != 1:
            warnings.warn(
                f"bagging_fraction={bagging_fraction} with bagging_by_query on {n_jobs} threads: LightGBM (4.7 "
                "measured) then grows different trees on every run, so two fits with the same seed differ. "
                "For reproducible fits keep bagging_fraction <= 0.5 or 1, set bagging_by_query=False, or n_jobs=1",
                RuntimeWarning, stacklevel=2)

    def params(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": list(self.eval_at),
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_bin": self.max_bin,
            "bin_construct_sample_cnt": self.bin_sample_rows,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq if self.bagging_fraction < 1 else 0,
            "bagging_by_query": self.bagging_by_query,
            "lambda_l2": self.lambda_l2,
            "lambdarank_truncation_level": self.truncation_level,
            "num_threads": self.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        if self.label_gain is not None:
            p["label_gain"] = list(self.label_gain)
        return p

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        group: np.ndarray,
        *,
        feature_names: Sequence[str],
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> Self:
        import lightgbm as lgb

        names = list(feature_names)
        cats = [c for c in self.categorical if c in names]
        train = lgb.Dataset(X, y, group=group, feature_name=names, categorical_feature=cats, free_raw_data=True)
        sets, labels = [], []
        if valid is not None and len(valid[2]):
            sets.append(lgb.Dataset(valid[0], valid[1], group=valid[2], reference=train))
            labels.append("valid")
        evals: dict[str, Any] = {}
        callbacks = [lgb.record_evaluation(evals)]
        if sets and self.early_stopping_rounds:
            callbacks.append(_smoothed_early_stopping(evals, f"ndcg@{self.eval_at[0]}", patience=self.early_stopping_rounds,
                                                      min_rounds=self.min_rounds, window=self.smoothing))
        # The training set is scored once, at the chosen round, not every round (~15% of the fit).
        booster = lgb.train(self.params(), train, num_boost_round=self.n_estimators, valid_sets=sets,
                            valid_names=labels, callbacks=callbacks, keep_training_booster=True)
        curve = evals.get("valid", {}).get(f"ndcg@{self.eval_at[0]}")
        best = _best_round(curve, min_rounds=self.min_rounds, window=self.smoothing) if curve else \
            int(booster.current_iteration())
        while booster.current_iteration() > best:
            booster.rollback_one_iter()
        self.feature_names_ = names
        self.metrics_ = {"best_iteration": best}
        for entry in booster.eval_train():  # (data name, metric, value, higher is better)
            self.metrics_[f"train_{entry[1]}"] = float(entry[2])
        for split_name, per_metric in evals.items():
            for metric, curve in per_metric.items():
                self.metrics_[f"{split_name}_{metric}"] = float(curve[best - 1])
        # Each validation metric per boosting round (including the rounds after the best one), for
        # learning curves in reports and experiment tracking.
        self.metrics_["valid_curve"] = {m: [float(v) for v in c] for m, c in evals.get("valid", {}).items()}
        if "train_ndcg@10" in self.metrics_ and "valid_ndcg@10" in self.metrics_:
            self.metrics_["ndcg@10_gap"] = self.metrics_["train_ndcg@10"] - self.metrics_["valid_ndcg@10"]
        if self.refit and sets:
            # The validation users chose the number of rounds; now they train too, for that many rounds.
            del booster, train, sets
            X_all, y_all = np.concatenate([X, valid[0]]), np.concatenate([y, valid[1]])  # type: ignore[index]
            group_all = np.concatenate([group, valid[2]])  # type: ignore[index]
            full = lgb.Dataset(X_all, y_all, group=group_all, feature_name=names, categorical_feature=cats,
                               free_raw_data=True)
            booster = lgb.train(self.params(), full, num_boost_round=best)
            self.metrics_["refit_rows"] = len(y_all)
            self.metrics_["best_iteration"] = int(booster.current_iteration())
        self.booster_ = lgb.Booster(model_str=booster.model_to_string())  # drops the training data
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores for rows of ``X``; identical whatever the batch size (small batches run on one thread:
        starting OpenMP workers costs more than scoring a few hundred rows, and stalls on a busy box)."""
        if self.booster_ is None:
            raise NotFittedError("LGBMRanker")
        compiled = getattr(self, "compiled_", None)
        if compiled is not None and compiled.booster is self.booster_ and len(X) < SINGLE_THREAD_ROWS:
            return compiled.predict(_rows(X)).astype(np.float32)
        return np.asarray(self.booster_.predict(_rows(X), num_iteration=self.metrics_.get("best_iteration"),
                                                **self._threads(len(X))), np.float32)

    def compile(self, *, cache: Path | None = None) -> bool:
        """Compile the trees for request-sized batches (the ``fast`` extra, see
        :mod:`shortlist.ranking.compiled`): :meth:`predict` then scores fewer than
        ``SINGLE_THREAD_ROWS`` rows with machine code (the same scores). ``False``: the extra is
        missing or compiling failed; LightGBM keeps scoring."""
        if self.booster_ is None:
            raise NotFittedError("LGBMRanker")
        from shortlist.ranking.compiled import compile_booster

        self.compiled_ = compile_booster(self.booster_, num_iteration=self.metrics_.get("best_iteration"), cache=cache)
        return self.compiled_ is not None

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contributions (``pred_contrib``): (rows × (features + 1)), last column the bias;
        each row sums to :meth:`predict`'s score."""
        if self.booster_ is None:
            raise NotFittedError("LGBMRanker")
        return np.asarray(self.booster_.predict(_rows(X), num_iteration=self.metrics_.get("best_iteration"),
                                                pred_contrib=True, **self._threads(len(X))))

    def _threads(self, rows: int) -> dict[str, int]:
        return {"num_threads": 1} if rows < SINGLE_THREAD_ROWS else {}

    def importance(self) -> pl.DataFrame:
        """Feature importance by total gain and by split count, sorted by gain."""
        if self.booster_ is None or self.feature_names_ is None:
            raise NotFittedError("LGBMRanker")
        it = self.metrics_.get("best_iteration")
        return pl.DataFrame({
            "name": self.feature_names_,
            "gain": self.booster_.feature_importance("gain", iteration=it).astype(np.float64),
            "split": self.booster_.feature_importance("split", iteration=it).astype(np.int64),
        }).sort("gain", descending=True)

    def save(self, path: Path) -> None:
        if self.booster_ is None:
            raise NotFittedError("LGBMRanker")
        self.booster_.save_model(str(path), num_iteration=self.metrics_.get("best_iteration"))

    def load_model(self, path: Path, *, feature_names: Sequence[str], metrics: dict[str, Any]) -> Self:
        import lightgbm as lgb

        try:
            self.booster_ = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as e:
            raise ModelLoadError(f"{path}: not a LightGBM text model ({e})") from e
        self.feature_names_ = list(feature_names)
        self.metrics_ = dict(metrics)
        self.metrics_["best_iteration"] = None  # the saved model holds exactly the best iterations
        return self


def _smoothed(curve: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average: one lucky round on a small validation set should not decide."""
    c = np.cumsum(np.asarray(curve, dtype=np.float64))
    out = c.copy()
    out[window:] = c[window:] - c[:-window]
    return out / np.minimum(np.arange(1, len(c) + 1), window)


def _best_round(curve: Sequence[float], *, min_rounds: int, window: int) -> int:
    """1-based round with the best smoothed validation NDCG, no earlier than ``min_rounds``."""
    sm = _smoothed(curve, window)
    start = min(max(min_rounds, 1), len(sm)) - 1
    return int(start + np.argmax(sm[start:]) + 1)


def _smoothed_early_stopping(evals: dict[str, Any], metric: str, *, patience: int, min_rounds: int, window: int) -> Any:
    """Stop once the smoothed validation NDCG (first ``eval_at``) has not improved for ``patience``
    rounds, never before ``min_rounds``: plain early stopping on a few hundred validation users
    stops on noise."""
    import lightgbm as lgb

    def callback(env: Any) -> None:
        curve = evals.get("valid", {}).get(metric)
        if not curve:
            return
        it = len(curve)
        if it < max(min_rounds, patience):
            return
        best = _best_round(curve, min_rounds=min_rounds, window=window)
        if it - best >= patience:
            raise lgb.callback.EarlyStopException(best - 1, [])

    callback.order = 30  # type: ignore[attr-defined]  # after record_evaluation (order 20)
    return callback
