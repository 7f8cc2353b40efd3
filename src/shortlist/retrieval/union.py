"""``union``: merge sources' candidates into one row per (user, item) with per-source columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.errors import ConfigError
from shortlist.retrieval.candidates import Candidates
from shortlist.schema import ITEM, MISSING_RANK, N_SOURCES, RANK, SCORE, SOURCE, USER


def score_col(source: str) -> str:
    return f"{source}_score"


def rank_col(source: str) -> str:
    return f"{source}_rank"


def union(
    parts: Sequence[Candidates],
    *,
    budgets: Mapping[str, int] | None = None,
    exclude: sp.csr_matrix | None = None,
    sources: Sequence[str] | None = None,
) -> pl.DataFrame:
    """One row per (user, item) proposed by any source, within each source's budget.

    Columns: ``user``, ``item``, ``n_sources``, then ``<source>_score`` (null where the source did not
    propose the item) and ``<source>_rank`` (``MISSING_RANK`` there) for every source, in ``sources``
    order (default: order of appearance). ``exclude`` (users × items CSR) removes seen pairs.
    Rows are sorted by user, then by the best rank any source gave, then item.
    """
    frames = [p.frame for p in parts if len(p)]
    names = list(sources) if sources is not None else list(dict.fromkeys(s for p in parts for s in p.sources))
    if len(set(names)) != len(names):
        raise ConfigError(f"source names must be unique, got {names}")
    if not frames:
        return pl.DataFrame(schema={USER: pl.Int32, ITEM: pl.Int32, N_SOURCES: pl.UInt32,
                                    **{c: t for s in names for c, t in ((score_col(s), pl.Float32),
                                                                        (rank_col(s), pl.Int32))}})
    f = pl.concat(frames, how="vertical_relaxed")
    if budgets:
        limit = pl.col(SOURCE).replace_strict(dict(budgets), default=None, return_dtype=pl.Int32)
        f = f.filter(limit.is_null() | (pl.col(RANK) <= limit))
    if exclude is not None and exclude.nnz:
        f = drop_pairs(f, exclude)
    f = f.sort([USER, ITEM, SOURCE, RANK]).unique([USER, ITEM, SOURCE], keep="first", maintain_order=True)
    aggs: list[pl.Expr] = [pl.len().alias(N_SOURCES).cast(pl.UInt32), pl.col(RANK).min().alias("_best")]
    for s in names:
        is_s = pl.col(SOURCE) == s
        aggs.append(pl.col(SCORE).filter(is_s).first().alias(score_col(s)))
        aggs.append(pl.col(RANK).filter(is_s).first().fill_null(MISSING_RANK).alias(rank_col(s)))
    out = f.group_by([USER, ITEM]).agg(aggs).sort([USER, "_best", ITEM]).drop("_best")
    return out


def drop_pairs(frame: pl.DataFrame, exclude: sp.csr_matrix) -> pl.DataFrame:
    """Rows of ``frame`` whose (user, item) is not stored in ``exclude`` (users beyond it are kept)."""
    coo = exclude.tocoo()
    n_items = np.int64(exclude.shape[1])
    seen = pl.Series("_k", coo.row.astype(np.int64) * n_items + coo.col.astype(np.int64))
    key = pl.col(USER).cast(pl.Int64) * n_items + pl.col(ITEM).cast(pl.Int64)
    inside = pl.col(USER) < exclude.shape[0]
    return frame.filter(~(inside & key.is_in(seen.implode())))
