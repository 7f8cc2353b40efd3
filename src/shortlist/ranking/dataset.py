"""Training-set assembly for the ranker: labels, negative down-sampling, user-grouped validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from shortlist.schema import LABEL

GROUP = "group"
BEST_RANK = "best_rank"
ROW = "row"  # position of a candidate row in the feature matrix it came from


@dataclass
class TrainingSet:
    """Rows sorted by group; ``group_sizes`` follow that order."""

    X: np.ndarray
    y: np.ndarray
    group_sizes: np.ndarray
    n_groups_dropped: int


def drop_groups_without_positives(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Groups (user × window) whose candidates hold no positive teach a ranker nothing."""
    has = frame.group_by(GROUP).agg((pl.col(LABEL) > 0).any().alias("_has"))
    keep = has.filter(pl.col("_has")).get_column(GROUP)
    dropped = has.height - keep.len()
    return frame.filter(pl.col(GROUP).is_in(keep.implode())), dropped


def sample_negatives(
    frame: pl.DataFrame, *, max_negatives: int | None, hard: int, rng: np.random.Generator
) -> pl.DataFrame:
    """Keep every positive, the ``hard`` best-ranked negatives, and a random sample of the rest,
    so each group has at most ``max_negatives`` negatives (``None``: keep all)."""
    if max_negatives is None:
        return frame
    f = frame.with_columns(pl.Series("_r", rng.random(frame.height)))
    neg = pl.col(LABEL) == 0
    f = f.with_columns(
        pl.when(neg).then(pl.col(BEST_RANK).rank("ordinal").over(GROUP)).otherwise(0).alias("_hard"),
    )
    f = f.with_columns(
        pl.when(neg & (pl.col("_hard") > hard)).then(pl.col("_r")).otherwise(None)
        .rank("ordinal").over(GROUP).alias("_rnd")
    )
    keep = ~neg | (pl.col("_hard") <= hard) | (pl.col("_rnd").fill_null(np.iinfo(np.int32).max) <= max(max_negatives - hard, 0))
    return f.filter(keep).drop("_r", "_hard", "_rnd")


def split_groups(groups: np.ndarray, *, valid_share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of rows whose group falls in the validation share (grouped: no user straddles)."""
    uniq = np.unique(groups)
    n_valid = round(len(uniq) * valid_share)
    if n_valid < 2 or len(uniq) - n_valid < 2:
        return np.zeros(len(groups), dtype=bool)
    chosen = rng.choice(uniq, size=n_valid, replace=False)
    return np.isin(groups, chosen)


def to_training_set(frame: pl.DataFrame, features: Sequence[str], *, n_dropped: int = 0) -> TrainingSet:
    f = frame.sort(GROUP, maintain_order=True)
    X = f.select(features).to_numpy().astype(np.float32)
    y = f.get_column(LABEL).to_numpy().astype(np.float32)
    sizes = f.group_by(GROUP, maintain_order=True).len().get_column("len").to_numpy()
    return TrainingSet(X, y, sizes, n_dropped)


def to_training_rows(meta: pl.DataFrame, X: np.ndarray, *, n_dropped: int = 0) -> TrainingSet:
    """As :func:`to_training_set`, for a narrow frame (``ROW``, label, group) beside a feature
    matrix: sampling and splitting touch three columns, and ``X`` is gathered once at the end."""
    f = meta.sort(GROUP, maintain_order=True)
    rows = f.get_column(ROW).to_numpy()
    y = f.get_column(LABEL).to_numpy().astype(np.float32)
    sizes = f.group_by(GROUP, maintain_order=True).len().get_column("len").to_numpy()
    return TrainingSet(np.ascontiguousarray(X[rows], dtype=np.float32), y, sizes, n_dropped)
