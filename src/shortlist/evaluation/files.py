"""Score a recommendations file against a file of held-out interactions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.ids import IdMap
from shortlist.errors import DataValidationError, MissingColumnError, UnsupportedFormatError
from shortlist.evaluation.metrics import compute_metrics
from shortlist.schema import ITEM_ID, RANK, USER_ID


def _read(path: Path, columns: Sequence[str]) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pl.read_parquet(path)
    elif suffix in (".csv", ".tsv"):
        df = pl.read_csv(path, separator="\t" if suffix == ".tsv" else ",", infer_schema_length=0)
    else:
        raise UnsupportedFormatError(str(path), suffix, [".csv", ".tsv", ".parquet"])
    for c in columns:
        if c not in df.columns:
            raise MissingColumnError(str(path), c, df.columns)
    return df.with_columns(pl.col(USER_ID).cast(pl.Utf8), pl.col(ITEM_ID).cast(pl.Utf8))


def score_files(recs_path: Path, test_path: Path, *, ks: Sequence[int] = (10,)) -> dict[str, float]:
    """Metrics of ``recs_path`` (user_id,item_id,rank) over every user in ``test_path``."""
    recs = _read(recs_path, [USER_ID, ITEM_ID, RANK]).with_columns(pl.col(RANK).cast(pl.Int64))
    test = _read(test_path, [USER_ID, ITEM_ID]).unique([USER_ID, ITEM_ID])
    if test.height == 0:
        raise DataValidationError(f"{test_path}: no test interactions")
    users = IdMap.from_values(test.get_column(USER_ID))
    items = IdMap.from_values(test.get_column(ITEM_ID), recs.get_column(ITEM_ID))
    depth = max(ks)
    recs = recs.filter(pl.col(RANK).is_between(1, depth)).with_columns(
        users.index(recs.get_column(USER_ID)).alias("u"), items.index(recs.get_column(ITEM_ID)).alias("i")
    ).drop_nulls("u")
    matrix = np.full((len(users), depth), -1, dtype=np.int64)
    matrix[recs.get_column("u").to_numpy(), recs.get_column(RANK).to_numpy() - 1] = recs.get_column("i").to_numpy()
    t_u = users.index(test.get_column(USER_ID)).to_numpy()
    t_i = items.index(test.get_column(ITEM_ID)).to_numpy()
    targets = sp.csr_matrix((np.ones(len(t_u), np.float32), (t_u, t_i)), shape=(len(users), len(items)))
    return compute_metrics(matrix, targets, ks=ks, metrics=("ndcg", "recall", "precision", "map", "mrr", "hitrate"))
